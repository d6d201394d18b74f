"""``manage.py approvals_sweep``: expire overdue approvals, run approved actions a crash left unrun, reconcile.

The same sweep Celery beat runs every APPROVALS_SWEEP_INTERVAL_S; usable from cron or an Airflow task.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from approvals.services import approvals_sweep


class Command(BaseCommand):
    help = "Expire overdue approval requests and run or reconcile approved actions left behind by a crash."

    def handle(self, *args, **options) -> None:
        counts = approvals_sweep()
        self.stdout.write(", ".join(f"{k}={v}" for k, v in sorted(counts.items())))

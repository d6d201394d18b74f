"""``manage.py monitoring_tick``: one monitoring pass (for cron or an Airflow task when Celery beat is not used)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from monitoring.services import monitoring_tick


class Command(BaseCommand):
    help = "Run one monitoring pass: missed run records, retries, escalations, SLA checks, a host sample."

    def handle(self, *args, **options) -> None:
        counts = monitoring_tick()
        self.stdout.write(", ".join(f"{k}={v}" for k, v in counts.items()))

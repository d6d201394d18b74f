"""The demo's helpers (issue 11): which emulators run, stop the ones the demo started, run the three jobs.

``demo_jobs running``: the names of the emulators answering on this checkout's ports.
``demo_jobs stop looker bigquery``: SIGTERM those emulators (the demo stops what it started, nothing else).
``demo_jobs run``: the cleanup, a sales report and a sheets sync through ``job_run_request``, so with
AIRFLOW_API_URL set each runs as a DAG run in Airflow (after waiting for the DAGs to be parsed).
"""

from __future__ import annotations

import time
from datetime import date, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

EMULATORS = {"looker": "LOOKER_EMULATOR_PORT", "bigquery": "BIGQUERY_EMULATOR_PORT", "sheets": "SHEETS_EMULATOR_PORT"}
JOBS = ("looker_cleanup", "sales_report", "sheets_sync")


class Command(BaseCommand):
    help = "Demo helpers: list or stop the emulators, run the three jobs (through Airflow when configured)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("what", choices=["running", "stop", "run"])
        parser.add_argument("names", nargs="*", help="emulators to stop")
        parser.add_argument("--wait", type=float, default=180, help="seconds to wait for Airflow's DAGs")

    def handle(self, *args, what: str, names: list[str], wait: float, **options) -> None:
        from sandbox.runner import emulator_health, stop_running

        if what == "running":
            up = [n for n, port in EMULATORS.items() if emulator_health(getattr(settings, port)) is not None]
            self.stdout.write(" ".join(up))
        elif what == "stop":
            for name in names:
                if name not in EMULATORS:
                    raise CommandError(f"unknown emulator {name!r}")
                if stop_running(name, port=getattr(settings, EMULATORS[name])):
                    self.stdout.write(f"stopped the {name} emulator")
        else:
            self._run(wait)

    def _run(self, wait: float) -> None:
        from connectors.airflow import AirflowClient, airflow_configured
        from connectors.errors import ConnectorError
        from orchestration.models import JobRun
        from orchestration.services import job_run_request

        if airflow_configured():
            deadline = time.monotonic() + wait
            while True:
                try:
                    found = {d.dag_id for d in AirflowClient().dags_list(tags=["dataops"])}
                except ConnectorError:
                    found = set()
                if set(JOBS) <= found or time.monotonic() > deadline:
                    break
                time.sleep(2)
            missing = set(JOBS) - found
            if missing:
                raise CommandError(f"Airflow has not parsed {', '.join(sorted(missing))} after {wait:.0f} s")
        yesterday = date.today() - timedelta(days=1)
        params = {
            "looker_cleanup": {"max_deletions": 500},
            "sales_report": {"start": (yesterday - timedelta(days=29)).isoformat(), "end": yesterday.isoformat()},
            "sheets_sync": {},
        }
        for job in JOBS:
            run = job_run_request(job=job, params=params[job], trigger=JobRun.Trigger.CLI)
            run.refresh_from_db()
            where = f" as Airflow DAG run {run.dag_id}/{run.dag_run_id}" if run.follows_airflow else ""
            self.stdout.write(f"{job}: JobRun #{run.pk} {run.status}{where}")

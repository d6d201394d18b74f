"""Write (or check) ``dags/job_params.json``: every job's Airflow ``params``, generated from its declared schema."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from orchestration.params import DAG_PARAMS_FILE, dag_params_text


class Command(BaseCommand):
    help = "Write dags/job_params.json from the jobs' parameter declarations (--check: fail when it is stale)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--check", action="store_true", help="exit non-zero when the file differs")

    def handle(self, *args, **options) -> None:
        text = dag_params_text()
        current = DAG_PARAMS_FILE.read_text() if DAG_PARAMS_FILE.exists() else ""
        if options["check"]:
            if current != text:
                raise CommandError(f"{DAG_PARAMS_FILE} is stale: run manage.py dag_params")
            self.stdout.write(f"{DAG_PARAMS_FILE} is up to date")
            return
        DAG_PARAMS_FILE.write_text(text)
        self.stdout.write(f"wrote {DAG_PARAMS_FILE} ({text.count(chr(10))} lines)")

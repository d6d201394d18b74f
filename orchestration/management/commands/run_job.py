"""Run one job in this process: ``manage.py run_job looker_cleanup [--dry-run] [--param k=v ...]``.

Airflow tasks call exactly this, passing ``--job-run-id`` when the run was created by the control plane.
Exit status 0 on success, 1 on failure, 2 on bad input.
"""

from __future__ import annotations

import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from orchestration.models import JobRun
from orchestration.registry import JobError, jobs_all
from orchestration.selectors import job_run_summary_text
from orchestration.services import job_run_create, job_run_execute, job_run_for_dag_run


class Command(BaseCommand):
    help = "Run a job in-process and print a one-screen summary."
    # No system checks here: they import every URL module, view and API (the SDKs with them), about a second
    # of every Airflow task's start-up (issue 15). They run where the code is deployed: `manage.py check`.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("job", help="job name: " + ", ".join(s.name for s in jobs_all()))
        parser.add_argument("--dry-run", action="store_true", help="plan only, change nothing")
        parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="job parameter")
        parser.add_argument("--job-run-id", type=int, help="execute this existing JobRun (from Airflow's conf)")
        parser.add_argument("--trigger", default=JobRun.Trigger.CLI, choices=JobRun.Trigger.values)
        parser.add_argument(
            "--principal",
            default="",
            help="who answers for this run when no person started it: schedule, airflow:<user>, cli:<user> "
            "(default: cli:<your shell user>); approvals never let this principal approve what the run asks for",
        )
        parser.add_argument("--airflow-dag-id", default="", help="the DAG running this (set by dags/)")
        parser.add_argument(
            "--airflow-dag-run-id",
            default="",
            help="the DAG run: a retried try re-executes the JobRun its first try created instead of a new one",
        )

    def handle(self, *args, **options) -> None:
        params: dict[str, str] = {}
        for item in options["param"]:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise CommandError(f"--param expects KEY=VALUE, got {item!r}", returncode=2)
            params[key.strip()] = value.strip()
        try:
            if options["job_run_id"]:
                run = JobRun.objects.filter(pk=options["job_run_id"], job=options["job"]).first()
                if run is None:
                    raise CommandError(f"no {options['job']} JobRun with id {options['job_run_id']}", returncode=2)
            elif options["airflow_dag_id"] and options["airflow_dag_run_id"]:
                run = job_run_for_dag_run(
                    job=options["job"],
                    params=params,
                    dry_run=options["dry_run"],
                    dag_id=options["airflow_dag_id"],
                    dag_run_id=options["airflow_dag_run_id"],
                    principal_label=options["principal"],
                )
            else:
                principal = options["principal"]
                if not principal and options["trigger"] == JobRun.Trigger.CLI:
                    principal = f"cli:{getpass.getuser()}"
                run = job_run_create(
                    job=options["job"],
                    params=params,
                    dry_run=options["dry_run"],
                    trigger=options["trigger"],
                    principal_label=principal,
                )
            run = job_run_execute(job_run_id=run.pk)
        except JobError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self.stdout.write(job_run_summary_text(run))
        if run.status != JobRun.Status.SUCCEEDED:
            sys.exit(1)

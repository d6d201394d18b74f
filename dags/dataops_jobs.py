"""The DataOps control plane's DAGs: one DAG per job, one task each, running ``manage.py run_job``.

This file is configuration. It imports nothing of the project and does no work at parse time; each task
runs the project's own command in the project's own Python, found through the environment of Airflow's
workers:

- ``DATAOPS_PROJECT_DIR``: the directory holding ``manage.py`` (required);
- ``DATAOPS_PYTHON``: the project's interpreter (its venv's ``bin/python``; default ``python3``);
- ``DATAOPS_ENV_FILE``: optional ``KEY=VALUE`` file sourced before each task (``DATABASE_URL``,
  ``DJANGO_SECRET_KEY``, the Looker/Google settings...), for when the workers' environment lacks them;
- ``DATAOPS_RETRIES``, ``DATAOPS_RETRY_DELAY_S``, ``DATAOPS_MAX_RETRY_DELAY_S``: the retry policy
  (exponential backoff: the delay doubles per try up to the maximum).

A run triggered by the control plane carries ``{"job_run_id": N}`` in its conf and executes that JobRun;
a scheduled run (or one triggered in Airflow's UI, parameters under ``conf["params"]``) creates its JobRun
on its first try and later tries re-execute the same one.
"""

from __future__ import annotations

import os
import shlex
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

OWNER = "data-platform"
RETRIES = int(os.environ.get("DATAOPS_RETRIES", "3"))
RETRY_DELAY = timedelta(seconds=float(os.environ.get("DATAOPS_RETRY_DELAY_S", "60")))
MAX_RETRY_DELAY = timedelta(seconds=float(os.environ.get("DATAOPS_MAX_RETRY_DELAY_S", "1800")))
START = datetime(2026, 1, 1)

# The shell prelude: read the optional env file, then run the project's command from its directory.
PRELUDE = (
    'set -eu; if [ -n "${DATAOPS_ENV_FILE:-}" ]; then set -a; . "$DATAOPS_ENV_FILE"; set +a; fi; '
    'cd "${DATAOPS_PROJECT_DIR:?set DATAOPS_PROJECT_DIR to the directory holding manage.py}"; '
    'exec "${DATAOPS_PYTHON:-python3}" manage.py run_job '
)


def run_job_command(job: str, *, dag_id: str, run_id: str, conf: dict[str, Any] | None) -> str:
    """The bash command for one try: execute the conf's JobRun, or the DAG run's own (created on first try)."""
    conf = conf or {}
    args = [job]
    if conf.get("job_run_id"):
        args += ["--job-run-id", str(int(conf["job_run_id"]))]
    else:
        args += ["--trigger", "airflow", "--airflow-dag-id", dag_id, "--airflow-dag-run-id", run_id]
        for key, value in sorted((conf.get("params") or {}).items()):
            args += ["--param", f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}"]
        if conf.get("dry_run"):
            args.append("--dry-run")
    return PRELUDE + shlex.join(args)


def job_dag(*, job: str, schedule: str | None, doc: str, tags: list[str]) -> DAG:
    """One DAG running ``run_job <job>``; overlapping runs would collide on the job's one-live-run rule."""
    with DAG(
        dag_id=job,
        description=doc,
        doc_md=doc,
        schedule=schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["dataops", *tags],
        default_args={
            "owner": OWNER,
            "retries": RETRIES,
            "retry_delay": RETRY_DELAY,
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": MAX_RETRY_DELAY,
        },
    ) as dag:

        @task.bash(task_id="run_job")
        def run_job(**context: Any) -> str:
            dag_run = context["dag_run"]
            return run_job_command(job, dag_id=dag_run.dag_id, run_id=dag_run.run_id, conf=dag_run.conf)

        run_job()
    return dag


looker_cleanup = job_dag(
    job="looker_cleanup",
    schedule="@monthly",
    doc="Monthly Looker dashboard cleanup: back up, verify and soft-delete inactive dashboards; tell owners.",
    tags=["looker", "cleanup"],
)
sales_report = job_dag(
    job="sales_report",
    schedule=None,
    doc="On-demand BigQuery sales report published to Google Sheets; parameters from the trigger's conf.",
    tags=["bigquery", "sheets", "sales"],
)
sheets_sync = job_dag(
    job="sheets_sync",
    schedule="*/5 * * * *",
    doc="Google Sheets sync every five minutes: detect changes, refresh from sources, write only what changed.",
    tags=["sheets", "sync"],
)
audit_anchor = job_dag(
    job="audit_anchor",
    schedule="@daily",
    doc="Daily: store the audit chain head in the backup store, so tampering with the database shows.",
    tags=["audit"],
)

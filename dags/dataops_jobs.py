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

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

OWNER = "data-platform"
RETRIES = int(os.environ.get("DATAOPS_RETRIES", "3"))
RETRY_DELAY = timedelta(seconds=float(os.environ.get("DATAOPS_RETRY_DELAY_S", "60")))
MAX_RETRY_DELAY = timedelta(seconds=float(os.environ.get("DATAOPS_MAX_RETRY_DELAY_S", "1800")))
START = datetime(2026, 1, 1)
BAD_INPUT_EXIT = 2  # run_job's exit status for bad parameters: retrying cannot help
# Each job's ``params`` (Airflow's trigger form), generated from the job's declared parameter schema by
# ``manage.py dag_params`` (the admin form and the API derive from the same declaration; a test compares them).
PARAMS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "job_params.json")


def job_params(job: str) -> dict[str, dict[str, Any]]:
    """The declared params of ``job`` as ``Param`` keyword arguments ({} when the file or the job is missing)."""
    try:
        with open(PARAMS_FILE, encoding="utf-8") as handle:
            return json.load(handle).get(job, {})
    except FileNotFoundError:
        return {}


def run_job_args(
    job: str,
    *,
    dag_id: str,
    run_id: str,
    conf: dict[str, Any] | None,
    principal: str = "",
    params: dict[str, Any] | None = None,
) -> list[str]:
    """``run_job``'s arguments for one try: the conf's JobRun, or the DAG run's own (created on the first try).

    An argument list, never a shell string or a template: values from a trigger's conf or run id are passed
    to the process as they are, so they cannot inject commands or Jinja.
    """
    conf = conf or {}
    if not conf.get("params") and params:
        # Triggered from Airflow's own form: the declared params (null: the job's default) are the parameters.
        conf = {**conf, "params": {k: v for k, v in params.items() if v not in (None, "", [])}}
    args = [job]
    if conf.get("job_run_id"):
        args += ["--job-run-id", str(int(conf["job_run_id"]))]
    else:
        args += ["--trigger", "airflow", "--airflow-dag-id", dag_id, "--airflow-dag-run-id", run_id]
        if principal:  # who answers for a run no person started here: the approvals' four-eyes rule uses it
            args += ["--principal", principal]
        for key, value in sorted((conf.get("params") or {}).items()):
            args += ["--param", f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}"]
        if conf.get("dry_run"):
            args.append("--dry-run")
    return args


def env_file_read(path: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments, optional ``export``, optional quotes), read without a shell."""
    values: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.removeprefix("export ").partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[key.strip()] = value
    return values


def run_job_process(args: list[str]) -> int:
    """Run ``manage.py run_job`` in the project's directory and interpreter, streaming its output to the log."""
    project_dir = os.environ.get("DATAOPS_PROJECT_DIR")
    if not project_dir:
        raise RuntimeError("set DATAOPS_PROJECT_DIR to the directory holding manage.py")
    env = dict(os.environ)
    if os.environ.get("DATAOPS_ENV_FILE"):
        env.update(env_file_read(os.environ["DATAOPS_ENV_FILE"]))
    command = [os.environ.get("DATAOPS_PYTHON", "python3"), "manage.py", "run_job", *args]
    print("running:", " ".join(command), flush=True)
    completed = subprocess.run(command, cwd=project_dir, env=env, check=False)  # noqa: S603 - an argument list
    sys.stdout.flush()
    return completed.returncode


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
        params={name: Param(**spec) for name, spec in job_params(job).items()},
        default_args={
            "owner": OWNER,
            "retries": RETRIES,
            "retry_delay": RETRY_DELAY,
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": MAX_RETRY_DELAY,
        },
    ) as dag:

        @task(task_id="run_job")
        def run_job(**context: Any) -> None:
            from airflow.exceptions import AirflowFailException

            dag_run = context["dag_run"]
            user = getattr(dag_run, "triggering_user_name", None) or ""
            principal = f"airflow:{user}" if user else "schedule"
            declared = set(job_params(job))
            params = {k: v for k, v in (context.get("params") or {}).items() if k in declared}
            args = run_job_args(
                job, dag_id=dag_run.dag_id, run_id=dag_run.run_id, conf=dag_run.conf, principal=principal,
                params=params,
            )  # fmt: skip
            code = run_job_process(args)
            if code == BAD_INPUT_EXIT:
                raise AirflowFailException(f"run_job {job} refused its parameters (exit 2): not retrying")
            if code != 0:
                raise RuntimeError(f"run_job {job} failed with exit status {code}; Airflow retries it")

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
monitoring_weekly_report = job_dag(
    job="monitoring_weekly_report",
    schedule="0 6 * * 1",
    doc="Mondays: the weekly performance report (runs, durations, SLAs, incidents, quotas), kept and mailed.",
    tags=["monitoring"],
)
audit_anchor = job_dag(
    job="audit_anchor",
    schedule="@daily",
    doc="Daily: store the audit chain head in the backup store, so tampering with the database shows.",
    tags=["audit"],
)
approvals_sweep = job_dag(
    job="approvals_sweep",
    schedule="*/15 * * * *",
    doc="Every 15 minutes: expire overdue approvals, run approved actions a crash left unrun, reconcile publishes.",
    tags=["approvals"],
)
privacy_retention_purge = job_dag(
    job="privacy_retention_purge",
    schedule="30 3 * * *",
    doc="Daily: delete or empty personal data past its retention period (quarantine, samples, sync details).",
    tags=["privacy"],
)

"""Celery tasks: thin adapters that take ids and call one service."""

from celery import shared_task

import dataops_site.celery  # noqa: F401 - the project's Celery app, configured from settings, before any task is sent

from .services import job_run_execute, job_runs_airflow_sync


@shared_task(name="orchestration.job_run_execute", acks_late=True)
def job_run_execute_task(job_run_id: int) -> str:
    """Execute a queued JobRun; the outcome is recorded on the row, the return value is its status."""
    return job_run_execute(job_run_id=job_run_id).status


@shared_task(name="orchestration.airflow_sync", ignore_result=True)
def airflow_sync_task() -> dict[str, int]:
    """Refresh JobRuns from their DAG runs (scheduled every AIRFLOW_SYNC_INTERVAL_S by Celery beat)."""
    return job_runs_airflow_sync()

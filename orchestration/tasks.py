"""Celery tasks: thin adapters that take ids and call one service."""

from celery import shared_task

from .services import job_run_execute


@shared_task(name="orchestration.job_run_execute", acks_late=True)
def job_run_execute_task(job_run_id: int) -> str:
    """Execute a queued JobRun; the outcome is recorded on the row, the return value is its status."""
    return job_run_execute(job_run_id=job_run_id).status

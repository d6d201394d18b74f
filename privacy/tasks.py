"""Celery tasks of privacy: thin adapters."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="privacy.retention_purge", ignore_result=True)
def retention_purge_task() -> int:
    """Queue the ``privacy_retention_purge`` job (Celery beat, daily, when Airflow does not schedule it)."""
    from orchestration.models import JobRun
    from orchestration.services import job_run_request

    return job_run_request(job="privacy_retention_purge", trigger=JobRun.Trigger.SCHEDULE).pk

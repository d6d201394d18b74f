"""Celery tasks of monitoring: thin adapters calling one service each."""

from __future__ import annotations

from celery import shared_task

import dataops_site.celery  # noqa: F401 - the project's Celery app, configured from settings, before any task is sent

from .services import monitoring_tick, notification_send


@shared_task(name="monitoring.tick", ignore_result=True)
def monitoring_tick_task() -> dict[str, int]:
    """Retries, escalations, SLA checks, a host sample, notification retries (Celery beat, every minute)."""
    return monitoring_tick()


@shared_task(name="monitoring.notification_send", acks_late=True, ignore_result=True)
def notification_send_task(notification_id: int) -> str:
    """Deliver one planned incident notification; a failure is recorded and retried by the tick."""
    return notification_send(notification_id=notification_id)


@shared_task(name="monitoring.weekly_report", ignore_result=True)
def weekly_report_task() -> int:
    """Queue the ``monitoring_weekly_report`` job (Celery beat, Mondays, when Airflow does not schedule it)."""
    from orchestration.models import JobRun
    from orchestration.services import job_run_request

    return job_run_request(job="monitoring_weekly_report", trigger=JobRun.Trigger.SCHEDULE).pk

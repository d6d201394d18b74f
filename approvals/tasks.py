"""Celery tasks of the approvals app: thin adapters over the services."""

from celery import shared_task

import dataops_site.celery  # noqa: F401 - the project's Celery app, configured from settings, before any task is sent

from .services import approval_execute, approvals_sweep


@shared_task(name="approvals.execute", acks_late=True)
def approval_execute_task(request_id: int) -> str:
    """Run an approved request's action once (a redelivery finds it claimed and does nothing)."""
    return approval_execute(request_id=request_id).execution


@shared_task(name="approvals.sweep", ignore_result=True)
def approvals_sweep_task() -> dict[str, int]:
    """Expire, run what a crash left unrun, take over stuck executions (Celery beat, APPROVALS_SWEEP_INTERVAL_S)."""
    return approvals_sweep()

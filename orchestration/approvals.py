"""Guarded actions of the orchestration app, and the shared executor for "run this job once approved".

A job run that needs an approval (a large cleanup, a costly query) pins ``{"job", "params"}`` in its request;
once approved, :func:`job_run_approved_execute` creates one JobRun linked to the request and runs it in this
process. A re-run after a crash finds that JobRun and finishes it instead of starting another.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from approvals.registry import ApprovalAction, ApprovalExecutionFailed, ApprovalStillRunning, approval_action_register

from .models import JobRun

DAG_CHANGE_ACTION = "orchestration.dag_change"
_CONFIRMATIONS: dict[str, Callable[..., Any]] = {}


def job_confirmation_register(job: str, preview: Callable[..., Any]) -> None:
    """A job whose real runs show a preview and ask for confirmation in the admin: ``preview(params=...)`` returns
    an object with ``text``, ``planned``, ``plan_sha256`` and ``needs_approval`` (reasons, or [])."""
    _CONFIRMATIONS[job] = preview


def job_confirmation(job: str) -> Callable[..., Any] | None:
    return _CONFIRMATIONS.get(job)


def dag_change_request(*, dag_id: str, operation: str, actor: Any, reason: str) -> Any:
    """Ask a second Platform Admin to pause or unpause a destructive DAG."""
    from approvals.services import approval_request_create

    return approval_request_create(
        action=DAG_CHANGE_ACTION,
        inputs={"dag_id": dag_id, "operation": operation},
        reason=reason,
        requested_by=actor,
        title=f"{operation.capitalize()} the destructive DAG {dag_id}",
    )


def job_run_approved_execute(*, request: Any) -> str:
    """Run the approved job exactly once (reusing the JobRun of an earlier, interrupted attempt)."""
    from .registry import JobError
    from .services import job_run_create, job_run_execute

    inputs = request.inputs
    with transaction.atomic():
        run = JobRun.objects.select_for_update().filter(approval=request).order_by("pk").first()
        if run is None:
            try:
                run = job_run_create(
                    job=inputs["job"],
                    params=inputs.get("params") or {},
                    trigger=JobRun.Trigger.APPROVAL,
                    actor=request.requested_by,
                    principal_label=request.requested_by_label,
                    approval=request,
                )
            except JobError as exc:
                raise ApprovalExecutionFailed(f"the job could not be started: {exc}") from exc
    alive_after = timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT_S)
    if run.status == JobRun.Status.RUNNING and run.heartbeat_at and run.heartbeat_at > alive_after:
        raise ApprovalStillRunning(f"{run} is still running (heartbeat {run.heartbeat_at:%H:%M:%S})")
    if not run.is_finished:
        try:
            run = job_run_execute(job_run_id=run.pk)
        except JobError as exc:
            raise ApprovalExecutionFailed(f"{run} could not run: {exc}") from exc
    if run.status != JobRun.Status.SUCCEEDED:
        reason = (run.error or run.status).splitlines()[0][:500]
        raise ApprovalExecutionFailed(f"{run} failed: {reason}")
    return f"{run} succeeded: {(run.summary or '').splitlines()[0][:500] if run.summary else 'done'}"


def job_run_link(*, request: Any) -> tuple[str, str] | None:
    run = JobRun.objects.filter(approval=request).order_by("pk").first()
    if run is not None:
        return str(run), reverse("admin:orchestration_jobrun_change", args=[run.pk])
    if request.object_type == "orchestration.jobrun" and request.object_id:
        return f"the run that asked (#{request.object_id})", reverse(
            "admin:orchestration_jobrun_change", args=[request.object_id]
        )
    return None


def dag_change_execute(*, request: Any) -> str:
    """Pause or unpause a destructive DAG in Airflow, as approved."""
    from connectors.airflow import AirflowClient
    from connectors.errors import ConnectorError

    operation, dag_id = request.inputs["operation"], request.inputs["dag_id"]
    if operation not in ("pause", "unpause"):
        raise ApprovalExecutionFailed(f"unknown DAG operation {operation!r}")
    try:
        AirflowClient().dag_pause_set(dag_id=dag_id, paused=operation == "pause")
    except ConnectorError as exc:
        raise ApprovalExecutionFailed(f"Airflow refused to {operation} {dag_id}: {exc}") from exc
    return f"{operation}d {dag_id}"


def destructive_dags() -> set[str]:
    """DAGs whose runs delete things: pausing or unpausing them from the admin needs an approval."""
    return {settings.AIRFLOW_DAGS.get(job, job) for job in settings.DESTRUCTIVE_JOBS}


def register() -> None:
    approval_action_register(
        ApprovalAction(
            name=DAG_CHANGE_ACTION,
            title="Pause or unpause a destructive Airflow DAG",
            approver_permission="orchestration.manage_airflow",
            approver_role="Platform Admin",
            execute=dag_change_execute,
            reason_required=True,
        )
    )

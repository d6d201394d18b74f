"""Creating, queueing and executing job runs. Every path (CLI, admin, API, Airflow) goes through here."""

from __future__ import annotations

import logging
import traceback
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import audit_context, audit_log

from .models import JobRun
from .registry import JobError, JobFailed, job_get

logger = logging.getLogger(__name__)


class JobConflict(JobError):
    """Another run of the same job is alive: running both would collide."""


def job_run_create(
    *,
    job: str,
    params: dict[str, Any] | None = None,
    dry_run: bool = False,
    trigger: str = JobRun.Trigger.CLI,
    actor: Any = None,
) -> JobRun:
    """Validate the job and its parameters and record a queued JobRun (audited)."""
    spec = job_get(job)
    parsed = spec.params_parse(params or {})
    if dry_run and not spec.supports_dry_run:
        raise JobError(f"{job} has no dry-run mode")
    with transaction.atomic():
        run = JobRun.objects.create(job=job, params=parsed, dry_run=dry_run, trigger=trigger, actor=actor)
        audit_log(
            action="job.requested",
            obj=run,
            actor=actor,
            job_run_id=run.pk,
            data={"job": job, "params": parsed, "dry_run": dry_run, "trigger": trigger},
        )
    return run


def job_run_request(
    *,
    job: str,
    params: dict[str, Any] | None = None,
    dry_run: bool = False,
    trigger: str = JobRun.Trigger.ADMIN,
    actor: Any = None,
) -> JobRun:
    """Create a JobRun and hand it to a Celery worker once the transaction commits."""
    from .tasks import job_run_execute_task

    with transaction.atomic():
        run = job_run_create(job=job, params=params, dry_run=dry_run, trigger=trigger, actor=actor)
        transaction.on_commit(lambda: job_run_execute_task.delay(run.pk))
    return run


def job_run_heartbeat(*, job_run: JobRun, progress: str = "", counters: dict[str, Any] | None = None) -> None:
    """Record progress on a long run so people (and the stale-run check) can see it is alive."""
    job_run.heartbeat_at = timezone.now()
    fields = ["heartbeat_at"]
    if progress:
        job_run.progress = progress[:255]
        fields.append("progress")
    if counters is not None:
        job_run.counters = {**job_run.counters, **counters}
        fields.append("counters")
    job_run.save(update_fields=fields)


def _claim(job_run_id: int) -> JobRun:
    """Move the run to RUNNING, refusing if it already finished or another run of the job is alive."""
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT_S)
    with transaction.atomic():
        run = JobRun.objects.select_for_update().get(pk=job_run_id)
        if run.status == JobRun.Status.SUCCEEDED:
            raise JobError(f"{run} already succeeded; start a new run instead")
        if run.status == JobRun.Status.RUNNING and run.heartbeat_at and run.heartbeat_at > stale_before:
            raise JobError(f"{run} is already running (last heartbeat {run.heartbeat_at:%H:%M:%S})")
        others = JobRun.objects.select_for_update().filter(job=run.job, status=JobRun.Status.RUNNING).exclude(pk=run.pk)
        for other in others.order_by("pk"):
            if other.heartbeat_at and other.heartbeat_at > stale_before:
                raise JobConflict(f"another {run.job} run ({other}) is in progress; wait for it to finish")
            other.status = JobRun.Status.FAILED
            other.finished_at = now
            other.error = "abandoned: no heartbeat, its process died; this run takes over its unfinished work"
            other.save(update_fields=["status", "finished_at", "error"])
            audit_log(action="job.abandoned", obj=other, job_run_id=other.pk, data={"taken_over_by": run.pk})
        run.status = JobRun.Status.RUNNING
        run.started_at = now
        run.heartbeat_at = now
        run.attempts += 1
        run.error = ""
        run.save(update_fields=["status", "started_at", "heartbeat_at", "attempts", "error"])
        audit_log(action="job.started", obj=run, actor=run.actor, job_run_id=run.pk, data={"attempt": run.attempts})
    return run


def job_run_execute(*, job_run_id: int) -> JobRun:
    """Run the job in this process and record the outcome. Never raises for a job failure: read the status."""
    try:
        run = _claim(job_run_id)
    except JobConflict as exc:
        # Record the refusal on this run, so whoever triggered it sees why nothing happened.
        return _finish(JobRun.objects.get(pk=job_run_id), status=JobRun.Status.FAILED, error=str(exc))
    spec = job_get(run.job)
    label = run.actor.get_username() if run.actor else f"{run.trigger}"
    try:
        with audit_context(user=run.actor, label=label, job_run_id=run.pk):
            result = spec.run(job_run=run, params=run.params, dry_run=run.dry_run)
    except JobFailed as exc:
        return _finish(run, status=JobRun.Status.FAILED, error=str(exc))
    except Exception as exc:  # a bug or an unmapped failure: keep the traceback for whoever looks
        logger.exception("job run %s crashed", run.pk)
        return _finish(
            run, status=JobRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"
        )
    return _finish(
        run,
        status=JobRun.Status.SUCCEEDED,
        summary=result.summary,
        counters=result.counters,
        details=result.details,
    )


def _finish(
    run: JobRun,
    *,
    status: str,
    error: str = "",
    summary: str = "",
    counters: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> JobRun:
    with transaction.atomic():
        run.refresh_from_db(fields=["counters", "details"])
        run.status = status
        run.finished_at = timezone.now()
        run.error = error
        run.progress = ""
        if summary:
            run.summary = summary
        if counters:
            run.counters = {**run.counters, **counters}
        if details:
            run.details = {**run.details, **details}
        run.save(update_fields=["status", "finished_at", "error", "progress", "summary", "counters", "details"])
        audit_log(
            action=f"job.{status}",
            obj=run,
            actor=run.actor,
            job_run_id=run.pk,
            data={"counters": run.counters, "error": error.splitlines()[0] if error else ""},
        )
    return run

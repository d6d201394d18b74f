"""Creating, queueing and executing job runs. Every path (CLI, admin, API, Airflow) goes through here."""

from __future__ import annotations

import logging
import traceback
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
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
        transaction.on_commit(lambda: _enqueue(run, job_run_execute_task))
    return run


def _enqueue(run: JobRun, task: Any) -> None:
    """Hand the run to Celery; if the broker refuses, say so on the run instead of leaving it queued forever."""
    try:
        result = task.delay(run.pk)
    except Exception as exc:  # noqa: BLE001 - any broker failure (connection refused, auth...)
        logger.exception("could not queue %s", run)
        JobRun.objects.filter(pk=run.pk, status=JobRun.Status.QUEUED).update(
            status=JobRun.Status.FAILED, finished_at=timezone.now(), error=f"could not queue the run: {exc}"
        )
        return
    JobRun.objects.filter(pk=run.pk).update(celery_task_id=getattr(result, "id", "") or "")


class JobAbandoned(JobFailed):
    """This run was taken over by a later one (it looked dead): stop without touching anything more."""


def job_run_heartbeat(*, job_run: JobRun, progress: str = "", counters: dict[str, Any] | None = None) -> None:
    """Record that a long run is alive (and its progress); raise JobAbandoned if another run took it over."""
    fields: dict[str, Any] = {"heartbeat_at": timezone.now()}
    if progress:
        fields["progress"] = progress[:255]
    if counters is not None:
        job_run.counters = {**job_run.counters, **counters}
        fields["counters"] = job_run.counters
    alive = JobRun.objects.filter(pk=job_run.pk, status=JobRun.Status.RUNNING, claim_token=job_run.claim_token).update(
        **fields
    )
    if not alive:
        raise JobAbandoned(f"{job_run} was taken over by another run; stopping")
    for name, value in fields.items():
        setattr(job_run, name, value)


def _claim(job_run_id: int) -> JobRun:
    """Move the run to RUNNING with a fresh claim token.

    Refuses a finished run and a job that has another live run. A run whose heartbeat stopped is
    marked abandoned and this one takes over its unfinished work. The partial unique index on
    (job) for running rows makes two concurrent claims impossible on every database.
    """
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT_S)
    try:
        with transaction.atomic():
            run = JobRun.objects.select_for_update().get(pk=job_run_id)
            if run.status == JobRun.Status.SUCCEEDED:
                raise JobError(f"{run} already succeeded; start a new run instead")
            others = JobRun.objects.select_for_update().filter(job=run.job, status=JobRun.Status.RUNNING)
            for other in others.order_by("pk"):
                if other.heartbeat_at and other.heartbeat_at > stale_before:
                    raise JobConflict(f"another {run.job} run ({other}) is in progress; wait for it to finish")
                other.status = JobRun.Status.FAILED
                other.finished_at = now
                other.error = "abandoned: no heartbeat, its process died; a later run took over its unfinished work"
                other.save(update_fields=["status", "finished_at", "error"])
                audit_log(action="job.abandoned", obj=other, job_run_id=other.pk, data={"taken_over_by": run.pk})
            run.status = JobRun.Status.RUNNING
            run.started_at = now
            run.heartbeat_at = now
            run.attempts += 1
            run.error = ""
            run.claim_token = uuid.uuid4().hex
            run.save(update_fields=["status", "started_at", "heartbeat_at", "attempts", "error", "claim_token"])
            audit_log(action="job.started", obj=run, actor=run.actor, job_run_id=run.pk, data={"attempt": run.attempts})
    except IntegrityError as exc:  # lost the race to a concurrent claim
        raise JobConflict(
            f"another run of the same job started at the same moment (run {job_run_id} lost the race)"
        ) from exc
    return run


def job_run_execute(*, job_run_id: int) -> JobRun:
    """Run the job in this process and record the outcome. Never raises for a job failure: read the status."""
    try:
        run = _claim(job_run_id)
    except JobConflict as exc:
        # Record the refusal on this run, so whoever triggered it sees why nothing happened.
        refused = JobRun.objects.get(pk=job_run_id)
        if refused.status != JobRun.Status.QUEUED:
            raise
        return _finish(refused, status=JobRun.Status.FAILED, error=str(exc))
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
        current = JobRun.objects.select_for_update().get(pk=run.pk)
        if run.claim_token and (current.claim_token != run.claim_token or current.status != JobRun.Status.RUNNING):
            logger.warning(
                "%s was taken over while it ran; its outcome (%s) is not recorded over the new one", run, status
            )
            return current
        run.counters, run.details = current.counters, current.details
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

"""Creating, queueing and executing job runs. Every path (CLI, admin, API, Airflow) goes through here."""

from __future__ import annotations

import logging
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


AIRFLOW_MISSING_GRACE = timedelta(minutes=10)  # a triggered DAG run Airflow cannot find after this is gone


class JobConflict(JobError):
    """Another run of the same job is alive: running both would collide."""


def job_principal_resolve(*, actor: Any = None, label: str = "", trigger: str = "") -> tuple[Any, str]:
    """Who answers for a run: its actor, else the named principal (``schedule``, ``airflow:<user>``,
    ``cli:<user>``) and the Django user of that name when there is one. The schedule's principal is the user
    named by DATAOPS_SCHEDULE_PRINCIPAL."""
    from django.contrib.auth import get_user_model

    if actor is not None:
        return actor, actor.get_username()
    label = (label or "").strip()
    if not label and trigger == JobRun.Trigger.SCHEDULE:
        label = "schedule"
    if label == "schedule" or label.startswith("schedule:"):
        name = settings.DATAOPS_SCHEDULE_PRINCIPAL
        label = f"schedule:{name}" if name else "schedule"
    else:
        name = label.partition(":")[2] if ":" in label else label
    user = get_user_model().objects.filter(username=name).first() if name else None
    return user, label[:150]


def job_run_create(
    *,
    job: str,
    params: dict[str, Any] | None = None,
    dry_run: bool = False,
    trigger: str = JobRun.Trigger.CLI,
    actor: Any = None,
    principal_label: str = "",
    approval: Any = None,
) -> JobRun:
    """Validate the job and its parameters and record a queued JobRun with its principal (audited)."""
    spec = job_get(job)
    parsed = spec.params_parse(params or {})
    if dry_run and not spec.supports_dry_run:
        raise JobError(f"{job} has no dry-run mode")
    principal, label = job_principal_resolve(actor=actor, label=principal_label, trigger=trigger)
    with transaction.atomic():
        run = JobRun.objects.create(
            job=job,
            params=parsed,
            dry_run=dry_run,
            trigger=trigger,
            actor=actor,
            principal=principal,
            principal_label=label,
            approval=approval,
        )
        audit_log(
            action="job.requested",
            obj=run,
            actor=actor,
            job_run_id=run.pk,
            data={"job": job, "params": parsed, "dry_run": dry_run, "trigger": trigger, "principal": label,
                  "approval": approval.pk if approval is not None else None},
        )  # fmt: skip
    return run


def job_run_request(
    *,
    job: str,
    params: dict[str, Any] | None = None,
    dry_run: bool = False,
    trigger: str = JobRun.Trigger.ADMIN,
    actor: Any = None,
) -> JobRun:
    """Create a JobRun and have it executed: by its Airflow DAG when Airflow is configured, else by Celery.

    With Airflow, the DAG run id is derived from the JobRun (``dataops__<id>``) and the trigger happens after
    the commit; a retried trigger of the same JobRun can never start a second DAG run.
    """
    from .tasks import job_run_execute_task

    dag_id = airflow_dag_for(job)
    with transaction.atomic():
        run = job_run_create(job=job, params=params, dry_run=dry_run, trigger=trigger, actor=actor)
        if dag_id:
            run.dag_id = dag_id
            run.dag_run_id = dag_run_id_for(run)
            run.save(update_fields=["dag_id", "dag_run_id"])
            transaction.on_commit(lambda: job_run_airflow_trigger(job_run_id=run.pk))
        else:
            transaction.on_commit(lambda: _enqueue(run, job_run_execute_task))
    return run


# --- Airflow ------------------------------------------------------------------------------------------------

DAG_RUN_ID_PREFIX = "dataops__"


def airflow_dag_for(job: str) -> str:
    """The DAG that runs ``job`` when Airflow is configured, else '' (the job runs through Celery)."""
    from connectors.airflow import airflow_configured

    if not airflow_configured():
        return ""
    return settings.AIRFLOW_DAGS.get(job, "")


def dag_run_id_for(run: JobRun) -> str:
    """The DAG run id of a control-plane-triggered JobRun: stable, so re-triggering it is idempotent."""
    return f"{DAG_RUN_ID_PREFIX}{run.pk}"


def job_run_for_dag_run(
    *, job: str, params: dict[str, Any] | None, dry_run: bool, dag_id: str, dag_run_id: str, principal_label: str = ""
) -> JobRun:
    """The JobRun of a DAG run Airflow started on its own (schedule, UI): created by the first try, reused after.

    Keyed on (dag_id, dag_run_id), so a retried task resumes the same JobRun instead of opening another.
    """
    existing = JobRun.objects.filter(job=job, dag_id=dag_id, dag_run_id=dag_run_id).order_by("pk").first()
    if existing is not None:
        return existing
    with transaction.atomic():
        run = job_run_create(
            job=job, params=params, dry_run=dry_run, trigger=JobRun.Trigger.AIRFLOW, principal_label=principal_label
        )
        run.dag_id, run.dag_run_id = dag_id, dag_run_id
        run.save(update_fields=["dag_id", "dag_run_id"])
    return run


def job_run_airflow_trigger(*, job_run_id: int) -> JobRun:
    """Trigger the JobRun's DAG run and record the outcome: TRIGGERED, or FAILED_TO_TRIGGER with the reason.

    Safe to call again (a retry after a failed trigger, a double click): the DAG run id is fixed, and
    Airflow's 409 for an existing run id counts as triggered.
    """
    from connectors.airflow import AirflowAlreadyTriggered, AirflowClient
    from connectors.errors import ConnectorAuthError, ConnectorError, ConnectorNotFound

    run = JobRun.objects.get(pk=job_run_id)
    if run.status not in (JobRun.Status.QUEUED, JobRun.Status.FAILED_TO_TRIGGER) or not run.follows_airflow:
        return run
    conf = {"job_run_id": run.pk, "job": run.job, "params": run.params, "dry_run": run.dry_run}
    reason, state, already = "", "", False
    client = AirflowClient()
    try:
        state = client.dag_run_trigger(dag_id=run.dag_id, dag_run_id=run.dag_run_id, conf=conf).state
    except AirflowAlreadyTriggered:
        already = True
    except ConnectorNotFound as exc:
        reason = f"Airflow has no DAG {run.dag_id!r}: deploy dags/ to Airflow and let it parse them ({exc})"
    except ConnectorAuthError as exc:
        reason = f"Airflow refused our credentials: check AIRFLOW_USERNAME/AIRFLOW_PASSWORD or AIRFLOW_TOKEN ({exc})"
    except ConnectorError as exc:
        reason = f"could not reach Airflow at {settings.AIRFLOW_API_URL}: {exc}"
        # A timeout or 5xx may hide a trigger that did land: ask for the run before calling it failed.
        try:
            state = client.dag_run_get(dag_id=run.dag_id, dag_run_id=run.dag_run_id).state
            reason, already = "", True
        except ConnectorError:
            pass
    with transaction.atomic():
        current = JobRun.objects.select_for_update().get(pk=run.pk)
        if current.status not in (JobRun.Status.QUEUED, JobRun.Status.FAILED_TO_TRIGGER):
            return current  # the DAG's task claimed it already: its state is the truth
        if reason:
            current.status = JobRun.Status.FAILED_TO_TRIGGER
            current.error = error_short(reason)
            current.finished_at = timezone.now()
            action = "job.trigger_failed"
        else:
            current.status = JobRun.Status.TRIGGERED
            current.error = ""
            current.finished_at = None
            current.airflow_state = state or current.airflow_state
            action = "job.triggered"
        current.save(update_fields=["status", "error", "finished_at", "airflow_state"])
        audit_log(
            action=action,
            obj=current,
            actor=current.actor,
            job_run_id=current.pk,
            data={"dag_id": current.dag_id, "dag_run_id": current.dag_run_id, "error": reason, "existing": already},
        )
    if reason:
        logger.warning("JobRun %s: %s", run.pk, reason)
    return current


def job_run_airflow_sync(*, job_run_id: int) -> JobRun:
    """Refresh a JobRun from its DAG run: Airflow's state, task instances with tries, durations and log links.

    When the DAG run failed while the JobRun still looks alive (its task never claimed it, or was killed),
    the JobRun is marked failed with what Airflow says. Raises ConnectorError when Airflow cannot be read.
    """
    from connectors.airflow import AirflowClient, task_log_url
    from connectors.errors import ConnectorNotFound

    run = JobRun.objects.get(pk=job_run_id)
    if not run.follows_airflow or run.status == JobRun.Status.FAILED_TO_TRIGGER:
        return run
    client = AirflowClient()
    ui = settings.AIRFLOW_UI_URL or settings.AIRFLOW_API_URL
    try:
        dag_run = client.dag_run_get(dag_id=run.dag_id, dag_run_id=run.dag_run_id)
        instances = client.task_instances(dag_id=run.dag_id, dag_run_id=run.dag_run_id)
    except ConnectorNotFound:
        dag_run, instances = None, []
    tasks = [
        {
            "task_id": ti.task_id,
            "state": ti.state,
            "try_number": ti.try_number,
            "max_tries": ti.max_tries,
            "duration_s": ti.duration_s,
            "log_url": task_log_url(base_url=ui, dag_id=run.dag_id, dag_run_id=run.dag_run_id, task_id=ti.task_id),
            "tries": [
                {
                    "try_number": t.try_number,
                    "state": t.state,
                    "duration_s": t.duration_s,
                    "start_date": t.start_date.isoformat() if t.start_date else None,
                    "end_date": t.end_date.isoformat() if t.end_date else None,
                    "log_url": task_log_url(
                        base_url=ui,
                        dag_id=run.dag_id,
                        dag_run_id=run.dag_run_id,
                        task_id=ti.task_id,
                        try_number=t.try_number,
                    ),
                }
                for t in ti.tries
            ],
        }
        for ti in instances
    ]
    with transaction.atomic():
        current = JobRun.objects.select_for_update().get(pk=run.pk)
        current.airflow_state = dag_run.state if dag_run else "missing"
        current.airflow_tasks = tasks
        current.airflow_synced_at = timezone.now()
        fields = ["airflow_state", "airflow_tasks", "airflow_synced_at"]
        alive = (JobRun.Status.QUEUED, JobRun.Status.TRIGGERED, JobRun.Status.RUNNING)
        missing_for = timezone.now() - (current.started_at or current.created_at)
        if dag_run is None and current.status == JobRun.Status.TRIGGERED and missing_for > AIRFLOW_MISSING_GRACE:
            # Triggered, never claimed, and Airflow no longer has the run (deleted, or its database reset).
            current.status = JobRun.Status.FAILED
            current.finished_at = timezone.now()
            current.error = (
                f"Airflow has no DAG run {current.dag_id}/{current.dag_run_id} any more and the job never started: "
                "trigger it again"
            )
            fields += ["status", "finished_at", "error"]
            audit_log(
                action="job.failed",
                obj=current,
                actor=current.actor,
                job_run_id=current.pk,
                data={"dag_run_state": "missing", "error": current.error},
            )
        if dag_run is not None and dag_run.state == "failed" and current.status in alive:
            failed = ", ".join(f"{t['task_id']}={t['state']} (try {t['try_number']})" for t in tasks) or "no tasks"
            current.status = JobRun.Status.FAILED
            current.finished_at = timezone.now()
            current.error = error_short(
                f"Airflow DAG run {current.dag_id}/{current.dag_run_id} failed: {failed}; see the task logs"
            )
            fields += ["status", "finished_at", "error"]
            audit_log(
                action="job.failed",
                obj=current,
                actor=current.actor,
                job_run_id=current.pk,
                data={"dag_run_state": dag_run.state, "error": current.error},
            )
        current.save(update_fields=fields)
    return current


def job_runs_airflow_sync() -> dict[str, int]:
    """Refresh every recent JobRun whose DAG run may still change (the periodic task); returns counts."""
    from connectors.errors import ConnectorError

    since = timezone.now() - timedelta(hours=settings.AIRFLOW_SYNC_MAX_AGE_H)
    pending = (
        JobRun.objects.filter(created_at__gte=since)
        .exclude(dag_run_id="")
        .exclude(status=JobRun.Status.FAILED_TO_TRIGGER)
        .exclude(airflow_state__in=["success", "failed"])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    counts = {"synced": 0, "errors": 0}
    for pk in pending:
        try:
            job_run_airflow_sync(job_run_id=pk)
            counts["synced"] += 1
        except ConnectorError as exc:
            counts["errors"] += 1
            logger.warning("could not refresh JobRun %s from Airflow: %s", pk, exc)
            break  # Airflow is unreachable: the next period tries again
    return counts


def _enqueue(run: JobRun, task: Any) -> None:
    """Hand the run to Celery; if the broker refuses, say so on the run (audited) instead of leaving it queued."""
    try:
        result = task.delay(run.pk)
    except Exception as exc:  # noqa: BLE001 - any broker failure (connection refused, auth...)
        ref = _error_ref()
        logger.exception("could not queue %s [ref %s]", run, ref)
        error = error_short(
            f"could not queue the run: the task broker refused it ({type(exc).__name__}); check CELERY_BROKER_URL "
            f"and the broker, then run it again (log reference {ref})"
        )
        with transaction.atomic():
            failed = JobRun.objects.filter(pk=run.pk, status=JobRun.Status.QUEUED).update(
                status=JobRun.Status.FAILED, finished_at=timezone.now(), error=error
            )
            if failed:
                audit_log(action="job.queue_failed", obj=run, actor=run.actor, job_run_id=run.pk, data={"error": error})
        return
    JobRun.objects.filter(pk=run.pk).update(celery_task_id=getattr(result, "id", "") or "")


# --- errors a person reads --------------------------------------------------------------------------------------

ERROR_MAX_CHARS = 1000  # JobRun.error is read by Viewers through the admin and the API: a message, not a dump


def error_short(message: str) -> str:
    """A message fit for JobRun.error: at most ERROR_MAX_CHARS, marked when cut. Tracebacks go to the log."""
    message = (message or "").strip()
    return message if len(message) <= ERROR_MAX_CHARS else message[: ERROR_MAX_CHARS - 20].rstrip() + " ... (cut)"


def _error_ref() -> str:
    """A short reference that ties the message a person sees to the traceback in the log."""
    return uuid.uuid4().hex[:10]


# --- pausing Airflow DAGs ---------------------------------------------------------------------------------------


def airflow_dag_pause_set(*, dag_id: str, paused: bool, actor: Any, approval: Any = None) -> None:
    """Pause or unpause a DAG in Airflow, audited: the request is recorded, then the call, then its outcome.

    A destructive DAG (``orchestration.approvals.destructive_dags``) changes only through its approved request
    (``approval``, recorded in the events); the admin opens that request instead of calling this.
    Raises ConnectorError when Airflow refuses (the failure is audited too).
    """
    from connectors.airflow import AirflowClient
    from connectors.errors import ConnectorError

    from .approvals import DAG_CHANGE_ACTION, destructive_dags

    if dag_id in destructive_dags() and not (
        approval is not None
        and approval.action == DAG_CHANGE_ACTION
        and approval.status == "approved"
        and approval.inputs.get("dag_id") == dag_id
        and approval.inputs.get("operation") == ("pause" if paused else "unpause")
    ):
        raise PermissionError(f"{dag_id} deletes things: pausing or unpausing it needs an approved request")
    tag = {"approval": approval.pk} if approval is not None else {}
    with transaction.atomic():
        audit_log(
            action="airflow.dag_pause_requested",
            actor=actor,
            object_type="airflow.dag",
            object_id=dag_id,
            data={"dag_id": dag_id, "paused": paused, **tag},
        )
    try:
        AirflowClient().dag_pause_set(dag_id=dag_id, paused=paused)
    except ConnectorError as exc:
        with transaction.atomic():
            audit_log(
                action="airflow.dag_pause_failed",
                actor=actor,
                object_type="airflow.dag",
                object_id=dag_id,
                data={"dag_id": dag_id, "paused": paused, "error": error_short(str(exc)), **tag},
            )
        raise
    with transaction.atomic():
        audit_log(
            action="airflow.dag_paused" if paused else "airflow.dag_unpaused",
            actor=actor,
            object_type="airflow.dag",
            object_id=dag_id,
            data={"dag_id": dag_id, **tag},
        )


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
        return _finish(refused, status=JobRun.Status.FAILED, error=error_short(str(exc)), exc=exc)
    from monitoring.services import job_run_observed

    _lineage("started", run)
    spec = job_get(run.job)
    label = run.actor.get_username() if run.actor else f"{run.trigger}"
    try:
        with audit_context(user=run.actor, label=label, job_run_id=run.pk), job_run_observed(job_run=run):
            result = spec.run(job_run=run, params=run.params, dry_run=run.dry_run)
    except JobFailed as exc:
        return _finish(run, status=JobRun.Status.FAILED, error=error_short(str(exc)), exc=exc)
    except Exception as exc:  # a bug or an unmapped failure: the traceback goes to the log, never to the run
        ref = _error_ref()
        logger.exception("job run %s crashed [ref %s]", run.pk, ref)
        return _finish(
            run,
            status=JobRun.Status.FAILED,
            error=(
                f"the job stopped on an internal error ({type(exc).__name__}); nothing more was changed. "
                f"Tell the platform team, quoting log reference {ref}."
            ),
            exc=exc,
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
    exc: BaseException | None = None,
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
        run.error = error_short(error)
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
    _monitoring_finished(run, exc)
    _lineage("finished", run)
    return run


def _lineage(step: str, run: JobRun) -> None:
    """OpenLineage START / COMPLETE-FAIL for the run (issue 13); lineage never fails or blocks the job."""
    from lineage.services import lineage_job_run_finished, lineage_job_run_started

    try:
        (lineage_job_run_started if step == "started" else lineage_job_run_finished)(job_run=run)
    except Exception:  # noqa: BLE001 - the services catch their own errors; this guards an import or bug
        logger.exception("lineage could not follow %s", run)


def _monitoring_finished(run: JobRun, exc: BaseException | None) -> None:
    """Tell monitoring (metrics, incidents); its failure is logged and never changes the run's outcome."""
    from monitoring.services import job_run_finished

    try:
        job_run_finished(job_run=run, exc=exc)
    except Exception:  # noqa: BLE001 - monitoring must not fail the job it watches
        logger.exception("monitoring could not follow up %s", run)

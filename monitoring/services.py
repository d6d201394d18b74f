"""Monitoring services: the job-run hooks, incidents (classify, retry, fall back, escalate, acknowledge, verify and
resume), notifications (e-mail and webhook), SLA checks, host samples, feedback and the weekly report.

Every state change is one transaction that writes its audit event. Network calls (mail, webhooks, a resumed
publish) happen outside transactions: a notification is planned as a row in the escalation's transaction, sent
after the commit, and its outcome recorded in a new one; the tick retries those that failed.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.mail import send_mail
from django.db import IntegrityError, models, transaction
from django.db.models import Max, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from audit.services import audit_log
from orchestration.models import JobRun
from privacy.pseudonym import EMAIL, pseudonymise_many

from .classify import failure_classify, failure_classify_text
from .constants import (
    ESCALATING,
    FAILURE_HANDLING,
    UNRESOLVED,
    EventKind,
    FailureClass,
    Handling,
    IncidentKind,
    IncidentStatus,
    SlaKind,
)
from .logs import log_context
from .models import (
    Feedback,
    HostSample,
    Incident,
    IncidentEvent,
    Notification,
    PerformanceReport,
    RunRecord,
    Sla,
    SlaCheck,
)
from .selectors import audience_emails, escalation_ladder, fallback_note, host_figures, performance_figures
from .usage import usage_flush_safely

logger = logging.getLogger(__name__)
SYSTEM_LABEL = "monitoring"


class IncidentError(Exception):
    """An incident action that does not fit its state (acknowledging a resolved incident...)."""


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


# --------------------------------------------------------------------------------------------------------------
# The job-run hooks (called by orchestration.services)
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Observation:
    """Resource use of one job run in this process."""

    cpu_start: float
    cpu_s: float | None = None
    peak_rss_bytes: int | None = None


_observations: dict[int, Observation] = {}
_observations_lock = threading.Lock()


def _cpu_seconds() -> float:
    import psutil  # the job-run hooks import psutil and the metrics when a job runs, not at start-up (issue 15)

    try:
        times = psutil.Process().cpu_times()
        return float(times.user + times.system)
    except psutil.Error:
        return 0.0


@contextlib.contextmanager
def job_run_observed(*, job_run: JobRun) -> Iterator[None]:
    """Around a job's execution: its log context (run id, job, actor, DAG run) and its CPU and memory use."""
    actor = job_run.actor.get_username() if job_run.actor_id else str(job_run.trigger)
    observation = Observation(cpu_start=_cpu_seconds())
    with _observations_lock:
        _observations[job_run.pk] = observation
    try:
        with log_context(
            run_id=job_run.pk, job=job_run.job, actor=actor, dag_id=job_run.dag_id, dag_run_id=job_run.dag_run_id
        ):
            yield
    finally:
        observation.cpu_s = max(_cpu_seconds() - observation.cpu_start, 0.0)
        import psutil

        try:
            observation.peak_rss_bytes = int(psutil.Process().memory_info().rss)
        except psutil.Error:
            pass


def job_run_finished(*, job_run: JobRun, exc: BaseException | None = None, now: datetime | None = None) -> RunRecord:
    """The finish hook: write the process's API usage, the run's record, and follow up with incidents.

    A failure is classified and opens (or counts on) the job's incident; a success resolves the job's open
    incidents (it verifies whatever fixed them). Safe to call twice for one run (the record is kept once).
    """
    from .metrics import process_stats_update

    now = _now(now)
    usage_flush_safely()
    process_stats_update()
    with _observations_lock:
        observation = _observations.pop(job_run.pk, None)
    record = run_record_save(job_run=job_run, exc=exc, observation=observation)
    if record.dry_run:
        return record
    if record.status == JobRun.Status.SUCCEEDED:
        incidents_resolve_after_success(job_run=job_run, now=now)
    elif not _failure_delegated(job_run):
        incident_failure_report(job_run=job_run, failure_class=record.failure_class, exc=exc, now=now)
    if job_run.job == "sheets_sync":
        sync_target_incidents_refresh(now=now, job_run=job_run)
    return record


# Failures a job escalates at a finer grain itself: a sync cycle whose every target failed ("N targets: ...") is
# followed by one incident per target (sync_target_incident_raise), so the run opens no job-level incident too.
_DELEGATED_FAILURES = {"sheets_sync": re.compile(r"^(DRY RUN: )?\d+ targets: ")}


def _failure_delegated(job_run: JobRun) -> bool:
    pattern = _DELEGATED_FAILURES.get(job_run.job)
    return bool(pattern and pattern.match(job_run.error or ""))


# Counters that measure a run's volume, per figure (summed when a job reports several).
_VOLUME_KEYS = {
    "rows": ("rows", "rows_added", "rows_removed", "dashboards_active", "dashboards_in_trash"),
    "cells": ("cells_written", "cells"),
    "api_calls": ("looker_requests", "sheets_requests", "publish_requests", "api_requests"),
    "bytes_billed": ("bytes_billed",),
}


def _counter_sum(counters: dict[str, Any], keys: tuple[str, ...]) -> int:
    total = 0
    for key in keys:
        try:
            total += max(int(counters.get(key) or 0), 0)
        except (TypeError, ValueError):
            continue
    return total


def run_record_save(
    *, job_run: JobRun, exc: BaseException | None = None, observation: Observation | None = None
) -> RunRecord:
    """Record a finished run for monitoring (outcome, duration, volume, quality, failure class), once."""
    existing = RunRecord.objects.filter(job_run=job_run).first()
    if existing is not None:
        return existing
    counters = job_run.counters or {}
    failed = job_run.status != JobRun.Status.SUCCEEDED
    score = counters.get("quality_score")
    if score is None:
        from quality.models import QualityRun

        score = QualityRun.objects.filter(job_run=job_run).order_by("-pk").values_list("score", flat=True).first()
    finished_at = job_run.finished_at or timezone.now()
    started = job_run.started_at
    record = RunRecord(
        job_run=job_run,
        job=job_run.job,
        status=job_run.status,
        dry_run=job_run.dry_run,
        trigger=job_run.trigger,
        requested_at=job_run.created_at,
        finished_at=finished_at,
        duration_s=(finished_at - started).total_seconds() if started else None,
        queue_wait_s=(started - job_run.created_at).total_seconds() if started else None,
        quality_score=float(score) if score is not None else None,
        failure_class=failure_classify(exc=exc, error=job_run.error) if failed else "",
        cpu_s=observation.cpu_s if observation else None,
        peak_rss_bytes=observation.peak_rss_bytes if observation else None,
        **{field: _counter_sum(counters, keys) for field, keys in _VOLUME_KEYS.items()},
    )
    with transaction.atomic():
        if RunRecord.objects.filter(job_run=job_run).exists():  # a concurrent hook (tick and finish) was first
            return RunRecord.objects.get(job_run=job_run)
        record.save()
    return record


def run_records_catch_up(*, now: datetime | None = None, limit: int = 500) -> int:
    """Record runs that finished without the hook (failed to trigger, failed in Airflow, a crashed process)."""
    now = _now(now)
    missing = (
        JobRun.objects.filter(
            status__in=[JobRun.Status.SUCCEEDED, JobRun.Status.FAILED, JobRun.Status.FAILED_TO_TRIGGER],
            finished_at__gte=now - timedelta(days=2),
            monitoring_record__isnull=True,
        )
        .select_related("actor")
        .order_by("pk")[:limit]
    )
    count = 0
    for run in missing:
        job_run_finished(job_run=run, now=now)
        count += 1
    return count


# --------------------------------------------------------------------------------------------------------------
# Incidents: timeline helpers
# --------------------------------------------------------------------------------------------------------------


def _event(
    incident: Incident,
    kind: str,
    *,
    now: datetime,
    message: str = "",
    actor: Any = None,
    data: dict[str, Any] | None = None,
) -> IncidentEvent:
    return IncidentEvent.objects.create(
        incident=incident,
        kind=kind,
        at=now,
        actor=actor,
        actor_label=actor.get_username() if actor is not None else SYSTEM_LABEL,
        message=message[:5000],
        data=data or {},
    )


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0][:250] if (text or "").strip() else ""


def _retry_budget(job_run: JobRun) -> int:
    if job_run.follows_airflow:
        return int(settings.MONITORING_AIRFLOW_TASK_RETRIES) + 1  # tries in all: Airflow re-executes the same run
    return int(settings.MONITORING_RETRY_MAX)


def _retry_delay(*, failure_class: str, retries: int, exc: BaseException | None) -> float:
    base = (
        settings.MONITORING_QUOTA_RETRY_DELAY_S
        if failure_class == FailureClass.QUOTA
        else settings.MONITORING_RETRY_DELAY_S
    )
    delay = min(float(settings.MONITORING_RETRY_MAX_DELAY_S), float(base) * 2**retries)
    item = exc
    while item is not None:  # honour the server's Retry-After when it asked for longer
        retry_after = getattr(item, "retry_after", None)
        if retry_after:
            delay = max(delay, float(retry_after))
        item = item.__cause__
    return delay


def _hold_escalation(incident: Incident) -> bool:
    """While a retry may still fix it, a retried incident does not page anybody."""
    return incident.handling == Handling.RETRY and (
        incident.next_retry_at is not None or incident.retries < incident_retry_budget(incident)
    )


def incident_retry_budget(incident: Incident) -> int:
    """How many retries (own, or Airflow tries) this incident's handling allows."""
    run = incident.last_job_run
    if run is not None and run.follows_airflow:
        return int(settings.MONITORING_AIRFLOW_TASK_RETRIES) + 1
    return int(settings.MONITORING_RETRY_MAX)


# --------------------------------------------------------------------------------------------------------------
# Incidents: detection and handling
# --------------------------------------------------------------------------------------------------------------


def incident_failure_report(
    *, job_run: JobRun, failure_class: str, exc: BaseException | None = None, now: datetime | None = None
) -> Incident:
    """Open the job's incident for a failed run (or count on the open one) and handle it by its class.

    Transient and quota failures are retried with backoff (by Airflow for runs it executes, else by the tick), bad
    data keeps the last good output, and the rest (and retries used up) go up the escalation ladder.
    """
    try:
        return _incident_failure_report(job_run=job_run, failure_class=failure_class, exc=exc, now=now)
    except IntegrityError:  # a concurrent failure of the same job opened the incident first: count on it
        return _incident_failure_report(job_run=job_run, failure_class=failure_class, exc=exc, now=now)


def _incident_failure_report(
    *, job_run: JobRun, failure_class: str, exc: BaseException | None, now: datetime | None
) -> Incident:
    now = _now(now)
    failure_class = failure_class or failure_classify_text(job_run.error)
    handling = FAILURE_HANDLING.get(failure_class, Handling.ESCALATE)
    key = f"job:{job_run.job}"
    error = job_run.error.split("\n\n")[0][:4000]
    with transaction.atomic():
        incident = Incident.objects.select_for_update().filter(key=key, status__in=UNRESOLVED).first()
        if incident is None:
            incident = Incident.objects.create(
                key=key,
                kind=IncidentKind.FAILURE,
                failure_class=failure_class,
                handling=handling,
                title=f"{job_run.job} failed ({FailureClass(failure_class).label}): {_first_line(error)}"[:300],
                job=job_run.job,
                subject_type="orchestration.jobrun",
                subject_id=str(job_run.pk),
                job_run=job_run,
                last_job_run=job_run,
                owner=job_run.actor,
                detected_at=now,
                last_error=error,
            )
            _event(
                incident,
                EventKind.DETECTED,
                now=now,
                message=f"run #{job_run.pk} failed: {_first_line(error)}",
                data={"job_run": job_run.pk, "class": failure_class, "handling": handling},
            )
            audit_log(
                action="incident.opened",
                obj=incident,
                job_run_id=job_run.pk,
                data={"key": key, "class": failure_class, "handling": handling, "job_run": job_run.pk},
            )
        else:
            verifying = incident.resume_job_run_id == job_run.pk
            if verifying:
                incident.status = IncidentStatus.ACKNOWLEDGED if incident.acknowledged_at else IncidentStatus.OPEN
                incident.verified_at = None
                kind, action = EventKind.VERIFICATION_FAILED, "incident.verification_failed"
                message = f"the verification run #{job_run.pk} failed: {_first_line(error)}"
            else:
                incident.occurrences += 1
                kind, action = EventKind.RECURRED, "incident.recurred"
                message = f"run #{job_run.pk} failed again ({incident.occurrences} failures): {_first_line(error)}"
            incident.failure_class = failure_class
            incident.handling = handling
            incident.last_job_run = job_run
            incident.last_error = error
            incident.save()
            _event(incident, kind, now=now, message=message, data={"job_run": job_run.pk, "class": failure_class})
            audit_log(
                action=action, obj=incident, job_run_id=job_run.pk, data={"job_run": job_run.pk, "class": failure_class}
            )
        _handle(incident, job_run=job_run, exc=exc, now=now)
    incident_escalate_check(incident_id=incident.pk, now=now)
    incident.refresh_from_db()
    return incident


def _handle(incident: Incident, *, job_run: JobRun, exc: BaseException | None, now: datetime) -> None:
    """Apply the class's handling inside the report's transaction (retry plan, fallback note)."""
    if incident.status not in (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED):
        return
    if incident.handling == Handling.RETRY:
        budget = _retry_budget(job_run)
        if job_run.follows_airflow:
            incident.retries = job_run.attempts
            if job_run.attempts < budget:
                _event(
                    incident,
                    EventKind.RETRY_SCHEDULED,
                    now=now,
                    message=f"Airflow retries the task with backoff (try {job_run.attempts} of {budget} failed)",
                    data={"job_run": job_run.pk, "attempt": job_run.attempts, "by": "airflow"},
                )
            incident.save(update_fields=["retries", "updated_at"])
        elif incident.retries < budget:
            delay = _retry_delay(failure_class=incident.failure_class, retries=incident.retries, exc=exc)
            incident.next_retry_at = now + timedelta(seconds=delay)
            incident.save(update_fields=["next_retry_at", "updated_at"])
            _event(
                incident,
                EventKind.RETRY_SCHEDULED,
                now=now,
                message=f"retry {incident.retries + 1} of {budget} in {delay:.0f}s",
                data={"delay_s": delay, "retry": incident.retries + 1},
            )
            audit_log(
                action="incident.retry_scheduled",
                obj=incident,
                data={"at": incident.next_retry_at.isoformat(), "retry": incident.retries + 1},
            )
        else:
            _event(incident, EventKind.ESCALATED, now=now, message=f"{budget} retries failed: escalating")
    elif incident.handling == Handling.FALLBACK:
        note = fallback_note(job=job_run.job)
        _event(incident, EventKind.FALLBACK, now=now, message=note, data={"job_run": job_run.pk})
        audit_log(action="incident.fallback", obj=incident, job_run_id=job_run.pk, data={"note": note})


def incident_retries_due(*, now: datetime | None = None) -> int:
    """Start the retries whose backoff has passed (the tick): a new run of the job with the same parameters."""
    from orchestration.registry import JobError
    from orchestration.services import job_run_request

    now = _now(now)
    started = 0
    due = Incident.objects.filter(status__in=UNRESOLVED, next_retry_at__lte=now).order_by("next_retry_at", "pk")
    for incident_id in list(due.values_list("pk", flat=True)):
        with transaction.atomic():
            incident = (
                Incident.objects.select_for_update(of=("self",)).select_related("last_job_run").get(pk=incident_id)
            )
            if incident.next_retry_at is None or incident.next_retry_at > now or incident.is_resolved:
                continue
            failed = incident.last_job_run
            incident.next_retry_at = None
            incident.retries += 1
            try:
                run = job_run_request(
                    job=incident.job,
                    params=dict(failed.params) if failed else {},
                    trigger=JobRun.Trigger.SCHEDULE,
                )
            except JobError as exc:
                incident.save(update_fields=["next_retry_at", "retries", "updated_at"])
                _event(incident, EventKind.RETRIED, now=now, message=f"the retry could not start: {exc}")
                continue
            incident.save(update_fields=["next_retry_at", "retries", "updated_at"])
            _event(
                incident,
                EventKind.RETRIED,
                now=now,
                message=f"retry {incident.retries} started as run #{run.pk}",
                data={"job_run": run.pk},
            )
            audit_log(action="incident.retried", obj=incident, job_run_id=run.pk, data={"job_run": run.pk})
            started += 1
    return started


def _resolve(
    incident: Incident, *, now: datetime, message: str, job_run: JobRun | None = None, actor: Any = None
) -> None:
    """Close an incident (inside the caller's transaction, incident locked): fixed, verified, resumed, resolved."""
    data = {"job_run": job_run.pk if job_run else None}
    if incident.fixed_at is None:
        incident.fixed_at = now
        _event(incident, EventKind.FIXED, now=now, actor=actor, message="the failure stopped", data=data)
    incident.verified_at = now
    _event(incident, EventKind.VERIFIED, now=now, actor=actor, message=message, data=data)
    incident.resumed_at = now
    _event(
        incident,
        EventKind.RESUMED,
        now=now,
        actor=actor,
        message=f"{incident.job or 'the job'} runs normally again" + (f" (run #{job_run.pk})" if job_run else ""),
        data=data,
    )
    incident.status = IncidentStatus.RESOLVED
    incident.resolved_at = now
    incident.next_retry_at = None
    incident.save()
    _event(incident, EventKind.RESOLVED, now=now, actor=actor, message="closed", data=data)
    audit_log(
        action="incident.resolved",
        obj=incident,
        actor=actor,
        job_run_id=job_run.pk if job_run else None,
        data={
            **data,
            "time_to_acknowledge_s": incident.time_to_acknowledge_s,
            "time_to_resolve_s": incident.time_to_resolve_s,
            "how": message,
        },
    )


def incidents_resolve_after_success(*, job_run: JobRun, now: datetime | None = None) -> int:
    """A successful run verifies and closes the job's open failure incidents and the one it was resuming."""
    now = _now(now)
    ids = list(
        Incident.objects.filter(status__in=UNRESOLVED)
        .filter(Q(key=f"job:{job_run.job}") | Q(resume_job_run=job_run))
        .exclude(kind=IncidentKind.SYNC_TARGET)
        .values_list("pk", flat=True)
    )
    closed = 0
    for incident_id in ids:
        with transaction.atomic():
            incident = Incident.objects.select_for_update().get(pk=incident_id)
            if incident.is_resolved:
                continue
            if incident.kind == IncidentKind.SLA_BREACH and incident.resume_job_run_id != job_run.pk:
                continue  # an SLA breach closes when its SLA is met again or its own rerun passes
            how = (
                f"the verify-and-resume run #{job_run.pk} succeeded"
                if incident.resume_job_run_id == job_run.pk
                else f"run #{job_run.pk} succeeded"
            )
            _resolve(incident, now=now, message=how, job_run=job_run)
            closed += 1
    return closed


# --------------------------------------------------------------------------------------------------------------
# Incidents: Sheets sync targets (the sync's escalation is a client of this mechanism)
# --------------------------------------------------------------------------------------------------------------


def sync_target_incident_raise(*, target_id: int, kind: str, now: datetime | None = None) -> Incident | None:
    """A sync target keeps failing (``kind="escalation"``) or is broken (``"broken"``): open or update its
    incident and start its escalation (owner, then Data Stewards, then Platform Admins)."""
    from sheetsync.models import SyncTarget

    now = _now(now)
    target = SyncTarget.objects.select_related("owner").filter(pk=target_id).first()
    if target is None:
        return None
    error = target.broken_reason if kind == "broken" else target.last_error
    failure_class = failure_classify_text(error)
    if kind == "broken" and failure_class == FailureClass.BAD_DATA:
        failure_class = FailureClass.NOT_FOUND
    key = f"sync_target:{target.pk}"
    what = (
        "is broken and no longer synced"
        if kind == "broken"
        else f"failed {target.consecutive_failures} cycles in a row"
    )
    with transaction.atomic():
        incident = Incident.objects.select_for_update().filter(key=key, status__in=UNRESOLVED).first()
        if incident is None:
            incident = Incident.objects.create(
                key=key,
                kind=IncidentKind.SYNC_TARGET,
                failure_class=failure_class,
                handling=Handling.ESCALATE,
                title=f"Sheets sync target {target.name} {what}"[:300],
                job="sheets_sync",
                subject_type="sheetsync.synctarget",
                subject_id=str(target.pk),
                owner=target.owner,
                detected_at=now,
                last_error=error[:4000],
            )
            _event(
                incident,
                EventKind.DETECTED,
                now=now,
                message=f"target {target.name} {what}: {_first_line(error)}",
                data={"target": target.pk, "failures": target.consecutive_failures, "kind": kind},
            )
            note = "the sheet keeps its last good values; the sync tries again every cycle"
            _event(incident, EventKind.FALLBACK, now=now, message=note)
            audit_log(
                action="incident.opened",
                obj=incident,
                data={"key": key, "class": failure_class, "target": target.pk, "kind": kind},
            )
        else:
            incident.occurrences += 1
            incident.last_error = error[:4000]
            incident.failure_class = failure_class
            incident.title = f"Sheets sync target {target.name} {what}"[:300]
            incident.save()
            _event(incident, EventKind.RECURRED, now=now, message=f"target {target.name} {what}", data={"kind": kind})
            audit_log(action="incident.recurred", obj=incident, data={"target": target.pk, "kind": kind})
    incident_escalate_check(incident_id=incident.pk, now=now)
    incident.refresh_from_db()
    return incident


def sync_target_incidents_refresh(*, now: datetime | None = None, job_run: JobRun | None = None) -> int:
    """Close the sync-target incidents whose target syncs again (or is gone); count further failures."""
    from sheetsync.models import SyncOutcome, SyncTarget

    now = _now(now)
    closed = 0
    threshold = max(1, int(settings.SHEETS_SYNC_FAILURE_ESCALATION))
    for incident_id in list(
        Incident.objects.filter(status__in=UNRESOLVED, kind=IncidentKind.SYNC_TARGET).values_list("pk", flat=True)
    ):
        with transaction.atomic():
            incident = Incident.objects.select_for_update().get(pk=incident_id)
            target = SyncTarget.objects.filter(pk=incident.subject_id).first()
            if target is None:
                _resolve(incident, now=now, message="the target was deleted")
                closed += 1
                continue
            healthy = (
                not target.broken
                and target.consecutive_failures == 0
                and target.last_outcome in (SyncOutcome.CHANGED, SyncOutcome.NO_CHANGES)
            )
            if healthy:
                run = job_run if job_run is not None else None
                how = f"target {target.name} synced again" + (f" in run #{run.pk}" if run else "")
                if run is not None and incident.resume_job_run_id == run.pk:
                    how = f"the verify-and-resume run #{run.pk} synced target {target.name}"
                _resolve(incident, now=now, message=how, job_run=run)
                closed += 1
                continue
            if job_run is not None and incident.resume_job_run_id == job_run.pk:
                incident.status = IncidentStatus.ACKNOWLEDGED if incident.acknowledged_at else IncidentStatus.OPEN
                incident.save()
                _event(
                    incident,
                    EventKind.VERIFICATION_FAILED,
                    now=now,
                    message=f"run #{job_run.pk} did not sync target {target.name}: {_first_line(target.last_error)}",
                )
                audit_log(action="incident.verification_failed", obj=incident, data={"job_run": job_run.pk})
            failures = max(target.consecutive_failures - threshold + 1, 1)
            if failures > incident.occurrences:
                incident.occurrences = failures
                incident.save(update_fields=["occurrences", "updated_at"])
    return closed


# --------------------------------------------------------------------------------------------------------------
# Escalation and notifications
# --------------------------------------------------------------------------------------------------------------


def incident_url(incident: Incident) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("admin:monitoring_incident_change", args=[incident.pk])


def _message(incident: Incident, *, level: int, audience: str) -> tuple[str, str]:
    subject = f"[DataOps incident #{incident.pk}] level {level}: {incident.title}"[:300]
    body = render_to_string(
        "monitoring/email/incident.txt",
        {"incident": incident, "level": level, "audience": audience, "url": incident_url(incident)},
    )
    return subject, body


def incident_escalate_check(*, incident_id: int, now: datetime | None = None) -> int:
    """Climb the ladder as far as its rungs are due; plan each rung's e-mail and webhook posts. Returns rungs fired.

    A rung is due, while nobody acknowledged the incident, once it failed ``after_occurrences`` times or
    ``after_minutes`` passed since detection. A rung with nobody to notify hands over to the next one at once.
    """
    now = _now(now)
    planned: list[int] = []
    fired = 0
    with transaction.atomic():
        incident = (
            Incident.objects.select_for_update(of=("self",)).select_related("owner", "last_job_run").get(pk=incident_id)
        )
        if incident.status not in ESCALATING or _hold_escalation(incident):
            return 0
        age_min = (now - incident.detected_at).total_seconds() / 60
        hand_over = False
        for step in escalation_ladder(job=incident.job):
            if step.level <= incident.level:
                continue
            thresholds = [step.after_occurrences, step.after_minutes]
            due = (
                hand_over
                or all(t is None for t in thresholds)
                or (step.after_occurrences is not None and incident.occurrences >= step.after_occurrences)
                or (step.after_minutes is not None and age_min >= step.after_minutes)
            )
            if not due:
                break
            incident.level = step.level
            recipients = audience_emails(audience=step.audience, incident=incident)
            first = incident.alerted_at is None
            kind = EventKind.ALERTED if first else EventKind.ESCALATED
            audience = step.get_audience_display()
            if not recipients:
                hand_over = True
                _event(incident, kind, now=now, message=f"level {step.level}: nobody to tell ({audience}); next level")
                continue
            hand_over = False
            incident.alerted_at = incident.alerted_at or now
            subject, body = _message(incident, level=step.level, audience=audience)
            notes = [
                Notification.objects.create(
                    incident=incident,
                    level=step.level,
                    channel=Notification.Channel.EMAIL,
                    recipients=recipients,
                    subject=subject,
                    body=body,
                )
            ]
            for url in settings.MONITORING_WEBHOOK_URLS:
                notes.append(
                    Notification.objects.create(
                        incident=incident,
                        level=step.level,
                        channel=Notification.Channel.WEBHOOK,
                        recipients=[url],
                        subject=subject,
                        body=body,
                    )
                )
            planned += [n.pk for n in notes]
            _event(
                incident,
                kind,
                now=now,
                message=f"level {step.level}: {audience} ({', '.join(recipients)})",
                data={"level": step.level, "audience": step.audience, "recipients": recipients},
            )
            audit_log(
                action="incident.escalated",
                obj=incident,
                data={"level": step.level, "audience": step.audience,
                      "recipients": pseudonymise_many(recipients, domain=EMAIL)},  # fmt: skip
            )
            fired += 1
        incident.save()
        for pk in planned:
            transaction.on_commit(lambda pk=pk: _notification_queue(pk))
    return fired


def _notification_queue(notification_id: int) -> None:
    from .tasks import notification_send_task

    try:
        notification_send_task.delay(notification_id)
    except Exception:  # noqa: BLE001 - the broker is down: the tick sends pending notifications later
        logger.warning("could not queue notification %s; the monitoring tick will send it", notification_id)


def _webhook_payload(notification: Notification) -> dict[str, Any]:
    incident = notification.incident
    url = incident_url(incident)
    error = incident.last_error.splitlines()[0] if incident.last_error else ""
    text = f"*{notification.subject}*\n{error}\n<{url}|Open the incident>"
    return {
        "text": f"{notification.subject} {url}",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        "incident": {
            "id": incident.pk,
            "key": incident.key,
            "status": incident.status,
            "class": incident.failure_class,
            "level": notification.level,
            "job": incident.job,
            "occurrences": incident.occurrences,
            "url": url,
        },
    }


def notification_send(*, notification_id: int, now: datetime | None = None) -> str:
    """Deliver one planned notification (no transaction held during the call), then record the outcome."""
    from connectors.errors import ConnectorError
    from connectors.webhook import webhook_post

    notification = Notification.objects.select_related("incident").get(pk=notification_id)
    if notification.status == Notification.Status.SENT:
        return notification.status
    error = ""
    try:
        if notification.channel == Notification.Channel.EMAIL:
            send_mail(notification.subject, notification.body, settings.DEFAULT_FROM_EMAIL, notification.recipients)
        else:
            webhook_post(
                url=notification.recipients[0],
                payload=_webhook_payload(notification),
                timeout=float(settings.MONITORING_WEBHOOK_TIMEOUT_S),
            )
    except (ConnectorError, OSError, ValueError) as exc:
        error = str(exc)[:2000]
    now = _now(now)
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=notification_id)
        notification.attempts += 1
        notification.status = Notification.Status.FAILED if error else Notification.Status.SENT
        notification.error = error
        notification.sent_at = None if error else now
        notification.save(update_fields=["attempts", "status", "error", "sent_at"])
        where = ", ".join(notification.recipients)
        _event(
            notification.incident,
            EventKind.NOTIFY_FAILED if error else EventKind.NOTIFIED,
            now=now,
            message=f"{notification.get_channel_display()} to {where}" + (f" failed: {error}" if error else ""),
            data={"notification": notification.pk, "level": notification.level},
        )
        audit_log(
            action="incident.notify_failed" if error else "incident.notified",
            obj=notification.incident,
            data={"notification": notification.pk, "channel": notification.channel, "error": error[:300]},
        )
    if error:
        logger.warning("notification %s for incident %s failed: %s", notification.pk, notification.incident_id, error)
    return notification.status


def notifications_retry(*, now: datetime | None = None) -> int:
    """Send pending notifications older than a minute and retry failed ones (up to MONITORING_NOTIFY_ATTEMPTS)."""
    now = _now(now)
    due = Notification.objects.filter(
        Q(status=Notification.Status.PENDING, created_at__lte=now - timedelta(minutes=1))
        | Q(status=Notification.Status.FAILED, attempts__lt=settings.MONITORING_NOTIFY_ATTEMPTS)
    ).order_by("pk")
    count = 0
    for pk in list(due.values_list("pk", flat=True)[:200]):
        notification_send(notification_id=pk, now=now)
        count += 1
    return count


# --------------------------------------------------------------------------------------------------------------
# Incidents: people's actions
# --------------------------------------------------------------------------------------------------------------


def incident_acknowledge(*, incident: Incident, actor: Any, note: str = "", now: datetime | None = None) -> Incident:
    """Someone takes the incident: escalation stops here. Time to acknowledge is measured from detection."""
    now = _now(now)
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if incident.status != IncidentStatus.OPEN:
            raise IncidentError(
                f"incident #{incident.pk} is {incident.get_status_display().lower()}: nothing to acknowledge"
            )
        incident.status = IncidentStatus.ACKNOWLEDGED
        incident.acknowledged_at = now
        incident.acknowledged_by = actor
        incident.save()
        _event(incident, EventKind.ACKNOWLEDGED, now=now, actor=actor, message=note or "acknowledged")
        audit_log(
            action="incident.acknowledged",
            obj=incident,
            actor=actor,
            data={"note": note, "time_to_acknowledge_s": incident.time_to_acknowledge_s, "level": incident.level},
        )
    return incident


def incident_mark_fixed(*, incident: Incident, actor: Any, note: str = "", now: datetime | None = None) -> Incident:
    """A person says the cause is fixed (acknowledging it too); "verify and resume" then proves it."""
    now = _now(now)
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if incident.status not in (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED):
            raise IncidentError(f"incident #{incident.pk} is {incident.get_status_display().lower()}")
        _fixed(incident, actor=actor, note=note, now=now)
        incident.save()
    return incident


def _fixed(incident: Incident, *, actor: Any, note: str, now: datetime) -> None:
    if incident.acknowledged_at is None:
        incident.acknowledged_at, incident.acknowledged_by = now, actor
        _event(incident, EventKind.ACKNOWLEDGED, now=now, actor=actor, message="acknowledged")
        audit_log(action="incident.acknowledged", obj=incident, actor=actor, data={"note": note})
    incident.fixed_at = now
    incident.status = IncidentStatus.FIXED
    incident.next_retry_at = None
    _event(incident, EventKind.FIXED, now=now, actor=actor, message=note or "marked fixed")
    audit_log(action="incident.fixed", obj=incident, actor=actor, data={"note": note})


def incident_verify_and_resume(*, incident: Incident, actor: Any, now: datetime | None = None) -> Incident:
    """Rerun the failed step; the incident closes when it passes (and goes back to open when it does not).

    A failed job reruns with the failed run's parameters; a sales report whose publish failed is published again
    (the failed step, not the query); a sync target is repaired and synced now. Runs that go through Celery or
    Airflow finish later: the finish hook then verifies and closes the incident.
    """
    from orchestration.services import job_run_request

    now = _now(now)
    publish_report_id = None
    with transaction.atomic():
        incident = Incident.objects.select_for_update(of=("self",)).select_related("last_job_run").get(pk=incident.pk)
        if incident.status not in (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED, IncidentStatus.FIXED):
            raise IncidentError(f"incident #{incident.pk} is {incident.get_status_display().lower()}")
        if incident.status != IncidentStatus.FIXED:
            _fixed(incident, actor=actor, note="marked fixed to verify and resume", now=now)
        incident.status = IncidentStatus.VERIFYING
        publish_report_id = _failed_publish(incident)
        run = None
        if publish_report_id is not None:
            what = f"publish sales report #{publish_report_id} again"
        elif incident.kind == IncidentKind.SYNC_TARGET:
            from sheetsync.models import SyncTarget
            from sheetsync.services import sync_targets_repair, sync_targets_sync_now

            target = SyncTarget.objects.get(pk=incident.subject_id)
            sync_targets_repair(targets=[target], actor=actor)
            run = sync_targets_sync_now(targets=[target], actor=actor)
            what = f"repair target {target.name} and sync it now (run #{run.pk})"
        else:
            failed = incident.last_job_run
            run = job_run_request(
                job=incident.job,
                params=dict(failed.params) if failed else {},
                trigger=JobRun.Trigger.ADMIN,
                actor=actor,
            )
            what = f"rerun {incident.job} (run #{run.pk})"
        incident.resume_job_run = run
        incident.save()
        _event(
            incident,
            EventKind.RESUME_REQUESTED,
            now=now,
            actor=actor,
            message=what,
            data={"job_run": run.pk if run else None, "report": publish_report_id},
        )
        audit_log(
            action="incident.resume_requested",
            obj=incident,
            actor=actor,
            data={"job_run": run.pk if run else None, "report": publish_report_id},
        )
    if publish_report_id is not None:
        _republish(incident, report_id=publish_report_id, actor=actor)
    incident.refresh_from_db()
    return incident


def _failed_publish(incident: Incident) -> int | None:
    """The sales report whose publish failed in the incident's last run (re-publishing is the failed step)."""
    if incident.job != "sales_report" or incident.last_job_run_id is None:
        return None
    from sales.models import SalesReport

    report = (
        SalesReport.objects.filter(
            query_run__job_run_id=incident.last_job_run_id, status=SalesReport.Status.PUBLISH_FAILED
        )
        .order_by("-pk")
        .first()
    )
    return report.pk if report else None


def _republish(incident: Incident, *, report_id: int, actor: Any) -> None:
    from sales.models import SalesReport
    from sales.services import sales_report_publish_resume

    outcome = sales_report_publish_resume(report_id=report_id, approved_by=actor)  # network: outside a transaction
    now = timezone.now()
    published = SalesReport.objects.filter(pk=report_id, status=SalesReport.Status.PUBLISHED).exists()
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        if published:
            _resolve(locked, now=now, message=f"sales report #{report_id} published: {outcome}", actor=actor)
        else:
            locked.status = IncidentStatus.ACKNOWLEDGED
            locked.save()
            _event(locked, EventKind.VERIFICATION_FAILED, now=now, actor=actor, message=outcome)
            audit_log(action="incident.verification_failed", obj=locked, actor=actor, data={"outcome": outcome[:500]})


# --------------------------------------------------------------------------------------------------------------
# SLAs
# --------------------------------------------------------------------------------------------------------------


def _month_start(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _add_month(when: datetime) -> datetime:
    return when.replace(year=when.year + 1, month=1) if when.month == 12 else when.replace(month=when.month + 1)


def _done_at(run: JobRun) -> datetime | None:
    """When a requested run delivered: a sales report when it was published, any other job when it succeeded."""
    if run.status != JobRun.Status.SUCCEEDED:
        return None
    if run.job == "sales_report" and not run.dry_run:
        from sales.models import SalesReport

        return (
            SalesReport.objects.filter(query_run__job_run=run, status=SalesReport.Status.PUBLISHED)
            .values_list("published_at", flat=True)
            .first()
        )
    return run.finished_at


def sla_evaluate(*, sla: Sla, now: datetime | None = None) -> list[SlaCheck]:
    """Check one SLA's periods that are due; record each as met or breached (a breach raises an incident)."""
    now = _now(now)
    found: list[tuple[str, datetime, bool, float | None, str, JobRun | None]] = []
    existing = set(sla.checks.values_list("subject", flat=True))
    if sla.kind == SlaKind.DEADLINE:
        month = max(_month_start(sla.created_at), _month_start(now - timedelta(days=366)))
        while month <= now:
            subject = f"{month:%Y-%m}"
            due = month + timedelta(days=int(sla.day_of_month or 1))
            if subject not in existing and due > sla.created_at:
                done = (
                    JobRun.objects.filter(
                        job=sla.job,
                        dry_run=False,
                        status=JobRun.Status.SUCCEEDED,
                        finished_at__gte=month,
                        finished_at__lt=due,
                    )
                    .order_by("finished_at")
                    .first()
                )
                if done is not None:
                    taken = (done.finished_at - month).total_seconds() / 60
                    found.append(
                        (subject, due, True, taken, f"run #{done.pk} succeeded {done.finished_at:%Y-%m-%d %H:%M}", done)
                    )
                elif now >= due:
                    detail = f"no successful {sla.job} run between {month:%Y-%m-%d} and {due:%Y-%m-%d %H:%M} UTC"
                    found.append((subject, due, False, None, detail, None))
            month = _add_month(month)
    elif sla.kind == SlaKind.LATENCY:
        minutes = int(sla.within_minutes or 0)
        runs = JobRun.objects.filter(
            job=sla.job, dry_run=False, created_at__gte=max(sla.created_at, now - timedelta(days=7))
        ).order_by("pk")
        for run in runs:
            subject = f"run:{run.pk}"
            if subject in existing:
                continue
            due = run.created_at + timedelta(minutes=minutes)
            done = _done_at(run)
            if done is not None:
                taken = (done - run.created_at).total_seconds() / 60
                verdict = "within" if done <= due else "later than"
                found.append(
                    (subject, due, done <= due, taken, f"done in {taken:.1f} min, {verdict} {minutes} min", run)
                )
            elif now >= due:
                state = run.get_status_display().lower()
                found.append(
                    (subject, due, False, None, f"not done {minutes} min after the request (run is {state})", run)
                )
    elif sla.kind == SlaKind.FRESHNESS:
        found += _freshness(sla, now=now, existing=existing)
    checks = []
    for subject, due, met, measured, detail, run in found:
        checks.append(
            _sla_check_record(
                sla=sla, subject=subject, due=due, met=met, measured=measured, detail=detail, run=run, now=now
            )
        )
    return [c for c in checks if c is not None]


def _freshness(sla: Sla, *, now: datetime, existing: set[str]) -> list[tuple]:
    from sheetsync.models import SyncEvent, SyncOutcome, SyncTarget

    minutes = int(sla.within_minutes or 10)
    step = timedelta(minutes=minutes)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    slot = epoch + ((now - epoch) // step) * step
    subject = slot.strftime("%Y-%m-%dT%H:%M")
    if subject in existing:
        return []
    targets = list(SyncTarget.objects.filter(enabled=True).values_list("pk", "name", "created_at"))
    if not targets:
        return []
    last_good = dict(
        SyncEvent.objects.filter(
            target_id__in=[t[0] for t in targets], outcome__in=[SyncOutcome.CHANGED, SyncOutcome.NO_CHANGES]
        )
        .values("target")
        .annotate(last=Max("last_seen_at"))
        .values_list("target", "last")
    )
    limit = now - step
    stale = [(name, last_good.get(pk)) for pk, name, created_at in targets if (last_good.get(pk) or created_at) < limit]
    if stale:
        listed = ", ".join(
            f"{name} (last synced {when:%Y-%m-%d %H:%M})" if when else f"{name} (never synced)"
            for name, when in stale[:20]
        )
        detail = f"{len(stale)} of {len(targets)} targets older than {minutes} min: {listed}"
    else:
        detail = f"all {len(targets)} targets synced within {minutes} min"
    return [(subject, slot, not stale, float(len(stale)), detail, None)]


def _sla_check_record(
    *,
    sla: Sla,
    subject: str,
    due: datetime,
    met: bool,
    measured: float | None,
    detail: str,
    run: JobRun | None,
    now: datetime,
) -> SlaCheck | None:
    incident_id = None
    with transaction.atomic():
        check, created = SlaCheck.objects.get_or_create(
            sla=sla,
            subject=subject,
            defaults={"due_at": due, "met": met, "measured": measured, "detail": detail[:4000], "job_run": run},
        )
        if not created:
            return None
        key = f"sla:{sla.pk}"
        open_incident = Incident.objects.select_for_update().filter(key=key, status__in=UNRESOLVED).first()
        if met:
            if open_incident is not None:
                _resolve(open_incident, now=now, message=f"SLA {sla.name} met again ({subject}: {detail})", job_run=run)
            return check
        audit_log(action="sla.breached", obj=check, data={"sla": sla.name, "subject": subject, "detail": detail[:500]})
        if open_incident is None:
            open_incident = Incident.objects.create(
                key=key,
                kind=IncidentKind.SLA_BREACH,
                handling=Handling.ESCALATE,
                title=f"SLA {sla.name} breached ({subject}): {detail}"[:300],
                job=sla.job,
                subject_type="monitoring.sla",
                subject_id=str(sla.pk),
                job_run=run,
                last_job_run=run,
                owner=run.actor if run is not None else None,
                detected_at=now,
                last_error=detail[:4000],
            )
            _event(
                open_incident, EventKind.DETECTED, now=now, message=f"SLA {sla.name} breached for {subject}: {detail}"
            )
            audit_log(
                action="incident.opened", obj=open_incident, data={"key": key, "sla": sla.name, "subject": subject}
            )
        else:
            open_incident.occurrences += 1
            open_incident.last_error = detail[:4000]
            open_incident.save()
            _event(open_incident, EventKind.RECURRED, now=now, message=f"breached again for {subject}: {detail}")
            audit_log(action="incident.recurred", obj=open_incident, data={"sla": sla.name, "subject": subject})
        incident_id = open_incident.pk
    if incident_id is not None:
        incident_escalate_check(incident_id=incident_id, now=now)
    return check


def sla_evaluate_all(*, now: datetime | None = None) -> dict[str, int]:
    """Check every enabled SLA (the tick); returns checks met and breached."""
    counts = {"met": 0, "breached": 0}
    for sla in Sla.objects.filter(enabled=True).order_by("pk"):
        for check in sla_evaluate(sla=sla, now=now):
            counts["met" if check.met else "breached"] += 1
    return counts


def sla_save(*, sla: Sla, actor: Any, created: bool) -> Sla:
    """Create or change an SLA (validated by the caller's form), audited."""
    with transaction.atomic():
        sla.save()
        audit_log(
            action="sla.created" if created else "sla.changed",
            obj=sla,
            actor=actor,
            data={
                "job": sla.job,
                "kind": sla.kind,
                "day_of_month": sla.day_of_month,
                "within_minutes": sla.within_minutes,
                "objective_percent": sla.objective_percent,
                "enabled": sla.enabled,
            },
        )
    return sla


def escalation_step_save(*, step: Any, actor: Any, created: bool) -> Any:
    """Create or change a rung of an escalation ladder, audited."""
    with transaction.atomic():
        step.save()
        audit_log(
            action="escalation.step_created" if created else "escalation.step_changed",
            obj=step,
            actor=actor,
            data={"job": step.job, "level": step.level, "audience": step.audience,
                  "after_occurrences": step.after_occurrences, "after_minutes": step.after_minutes},
        )  # fmt: skip
    return step


def escalation_step_delete(*, step: Any, actor: Any) -> None:
    """Remove a rung of an escalation ladder, audited with what it was (who would no longer be told)."""
    with transaction.atomic():
        audit_log(
            action="escalation.step_deleted",
            obj=step,
            actor=actor,
            data={"job": step.job, "level": step.level, "audience": step.audience,
                  "after_occurrences": step.after_occurrences, "after_minutes": step.after_minutes},
        )  # fmt: skip
        step.delete()


# --------------------------------------------------------------------------------------------------------------
# Host samples, retention, the tick
# --------------------------------------------------------------------------------------------------------------


def host_sample_take(*, now: datetime | None = None) -> HostSample:
    """Record this host's CPU, memory, disk and network (one row; the operations page charts them)."""
    figures = host_figures(disk_path=str(settings.VAR_DIR))
    return HostSample.objects.create(
        host=socket.gethostname()[:100],
        taken_at=_now(now),
        cpu_percent=figures["cpu_percent"],
        memory_percent=figures["memory_percent"],
        memory_used_bytes=int(figures["memory_used_bytes"]),
        disk_percent=figures["disk_percent"],
        disk_used_bytes=int(figures["disk_used_bytes"]),
        net_sent_bytes=int(figures["net_sent_bytes"]),
        net_recv_bytes=int(figures["net_recv_bytes"]),
        load1=figures["load1"],
    )


def monitoring_prune(*, now: datetime | None = None) -> int:
    """Drop samples and per-minute usage older than MONITORING_RETENTION_DAYS (records and incidents stay)."""
    from .models import ApiUsage

    cutoff = _now(now) - timedelta(days=int(settings.MONITORING_RETENTION_DAYS))
    deleted = HostSample.objects.filter(taken_at__lt=cutoff).delete()[0]
    deleted += ApiUsage.objects.filter(minute__lt=cutoff).delete()[0]
    return deleted


def monitoring_tick(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic pass (Celery beat every MONITORING_TICK_INTERVAL_S, or ``manage.py monitoring_tick``): usage,
    missed run records, due retries, sync-target incidents, escalations, SLAs, a host sample, notifications."""
    now = _now(now)
    started = time.monotonic()
    usage_flush_safely()
    counts = {"records": run_records_catch_up(now=now), "retries": incident_retries_due(now=now)}
    counts["sync_target_closed"] = sync_target_incidents_refresh(now=now)
    escalated = 0
    for incident_id in list(Incident.objects.filter(status__in=ESCALATING).values_list("pk", flat=True)):
        escalated += incident_escalate_check(incident_id=incident_id, now=now)
    counts["escalations"] = escalated
    sla = sla_evaluate_all(now=now)
    counts["sla_met"], counts["sla_breached"] = sla["met"], sla["breached"]
    host_sample_take(now=now)
    counts["notifications"] = notifications_retry(now=now)
    counts["pruned"] = monitoring_prune(now=now)
    logger.info("monitoring tick in %.2fs: %s", time.monotonic() - started, counts)
    return counts


# --------------------------------------------------------------------------------------------------------------
# Feedback and the weekly report
# --------------------------------------------------------------------------------------------------------------

FEEDBACK_MODELS = ("sales.salesreport", "quality.reviewitem")


def feedback_record(*, target: models.Model, user: Any, useful: bool, comment: str = "") -> Feedback:
    """ "Was this useful?" on a report or review: the person's latest answer replaces their earlier one (audited)."""
    label = target._meta.label_lower
    if label not in FEEDBACK_MODELS:
        raise ValueError(f"feedback is taken on {', '.join(FEEDBACK_MODELS)}, not {label}")
    content_type = ContentType.objects.get_for_model(target)
    with transaction.atomic():
        feedback, created = Feedback.objects.update_or_create(
            content_type=content_type,
            object_id=str(target.pk),
            user=user,
            defaults={"useful": bool(useful), "comment": comment.strip()[:2000]},
        )
        audit_log(
            action="feedback.recorded",
            obj=target,
            actor=user,
            data={"useful": bool(useful), "comment": comment.strip()[:500], "changed": not created},
        )
    return feedback


def performance_report_create(
    *, job_run: JobRun | None, end: datetime | None = None, days: int = 7
) -> PerformanceReport:
    """Build the report over the last ``days`` days, keep it, and mail it to the Platform Admins."""
    from accounts.roles import PLATFORM_ADMIN

    end = _now(end)
    start = end - timedelta(days=days)
    figures = performance_figures(start=start, end=end)
    admins = get_user_model().objects.filter(groups__name=PLATFORM_ADMIN, is_active=True).exclude(email="")
    recipients = sorted(set(admins.values_list("email", flat=True)))
    body = render_to_string("monitoring/email/weekly_report.txt", {"figures": figures, "start": start, "end": end})
    with transaction.atomic():
        report = PerformanceReport.objects.create(
            period_start=start, period_end=end, job_run=job_run, figures=figures, body=body, recipients=recipients
        )
        audit_log(
            action="monitoring.report_created",
            obj=report,
            data={"start": start.isoformat(), "end": end.isoformat(),
                  "recipients": pseudonymise_many(recipients, domain=EMAIL)},  # fmt: skip
        )
    if recipients:
        subject = f"DataOps weekly performance report {start:%Y-%m-%d} to {end:%Y-%m-%d}"
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
        with transaction.atomic():
            report.sent_at = timezone.now()
            report.save(update_fields=["sent_at"])
            audit_log(
                action="monitoring.report_sent",
                obj=report,
                data={"recipients": pseudonymise_many(recipients, domain=EMAIL)},
            )
    return report


def weekly_report_run(*, job_run: JobRun, params: dict[str, Any], dry_run: bool) -> Any:
    """The ``monitoring_weekly_report`` job (registry runner)."""
    from orchestration.registry import JobResult

    days = int(params.get("days") or 7)
    if dry_run:
        figures = performance_figures(start=timezone.now() - timedelta(days=days), end=timezone.now())
        return JobResult(summary=f"DRY RUN: would report {len(figures['jobs'])} jobs over {days} days")
    report = performance_report_create(job_run=job_run, days=days)
    jobs = report.figures["jobs"]
    return JobResult(
        summary=f"performance report #{report.pk} for {days} days: {len(jobs)} jobs, "
        f"{report.figures['incidents']['opened']} incidents; mailed to {len(report.recipients)} Platform Admins",
        counters={"jobs": len(jobs), "recipients": len(report.recipients)},
    )

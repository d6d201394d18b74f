"""Retention: how long each kind of record that may hold personal data is kept, and the daily purge.

Periods (days, settings ``RETENTION_*``):

- quarantined rows (``QuarantinedRow``: whole order lines, customer e-mail and id included): deleted after
  ``RETENTION_QUARANTINE_DAYS``;
- failing samples (``CheckResult.sample_keys``): emptied after ``RETENTION_SAMPLES_DAYS`` (the counts stay);
- sync-event details (``SyncEvent.details``: per-cycle diagnostics that may quote cells): emptied after
  ``RETENTION_SYNC_EVENT_DETAILS_DAYS`` (outcome, counts and timings stay);
- access records (``security.record_read`` audit events) and every other audit event: never deleted. The chain
  is evidence: removing an event would break every later hash. ``RETENTION_ACCESS_RECORDS_DAYS`` is the legal
  period they must at least be kept; beyond it they are still kept, which is acceptable because their payloads
  hold no personal data (pseudonyms, usernames of staff, object ids; never the values read). The purge reports
  how many are beyond the period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_log
from quality.models import CheckResult, QuarantinedRow
from sheetsync.models import SyncEvent

ACCESS_ACTION = "security.record_read"


@dataclass(frozen=True)
class RetentionPolicy:
    """One kind of record, where it lives, how long it is kept and what happens after."""

    key: str
    model: str
    days: int
    after: str  # what the purge does
    why: str  # what the record is for


def retention_policies() -> list[RetentionPolicy]:
    """The configured periods (read per call: settings may change)."""
    return [
        RetentionPolicy("quarantine", "quality.QuarantinedRow", settings.RETENTION_QUARANTINE_DAYS, "deleted",
                        "failing order lines kept for review and re-processing"),
        RetentionPolicy("samples", "quality.CheckResult.sample_keys", settings.RETENTION_SAMPLES_DAYS, "emptied",
                        "keys of failing rows shown as evidence of a check"),
        RetentionPolicy("sync_event_details", "sheetsync.SyncEvent.details",
                        settings.RETENTION_SYNC_EVENT_DETAILS_DAYS, "emptied", "diagnostics of one sync cycle"),
        RetentionPolicy("access_records", "audit.AuditEvent (security.record_read)",
                        settings.RETENTION_ACCESS_RECORDS_DAYS, "kept (the chain is never cut; no personal data)",
                        "who read restricted records, when (access audit)"),
    ]  # fmt: skip


def _cutoffs(now: datetime) -> dict[str, datetime]:
    return {p.key: now - timedelta(days=p.days) for p in retention_policies()}


def retention_purge(*, dry_run: bool, now: datetime | None = None) -> dict[str, Any]:
    """Delete or empty what is past its period; counts per kind. Audited (counts only) unless ``dry_run``."""
    for policy in retention_policies():
        if policy.days < 1:
            raise ValueError(f"RETENTION period for {policy.key} must be at least 1 day, got {policy.days}")
    now = now or timezone.now()
    cut = _cutoffs(now)
    quarantine = QuarantinedRow.objects.filter(created_at__lt=cut["quarantine"])
    # Compared in Python: sample keys may be encrypted at rest (issue 12, security), so not filterable in SQL.
    samples = [
        pk
        for pk, keys in CheckResult.objects.filter(quality_run__created_at__lt=cut["samples"]).values_list(
            "pk", "sample_keys"
        )
        if keys
    ]
    details = SyncEvent.objects.filter(last_seen_at__lt=cut["sync_event_details"]).exclude(details={})
    counts: dict[str, Any] = {
        "quarantined_rows_deleted": quarantine.count(),
        "samples_emptied": len(samples),
        "sync_event_details_emptied": details.count(),
        "access_records_beyond_period_kept": AuditEvent.objects.filter(
            action=ACCESS_ACTION, created_at__lt=cut["access_records"]
        ).count(),
    }
    if dry_run:
        return counts
    with transaction.atomic():
        QuarantinedRow.objects.filter(pk__in=list(quarantine.values_list("pk", flat=True))).delete()
        for result in CheckResult.objects.filter(pk__in=samples):
            result.sample_keys = []
            result.save(update_fields=["sample_keys"])
        SyncEvent.objects.filter(pk__in=list(details.values_list("pk", flat=True))).update(details={})
        audit_log(
            action="privacy.retention_purged",
            object_type="privacy.retention",
            object_id=now.date().isoformat(),
            data={**counts, "periods_days": {p.key: p.days for p in retention_policies()}},
        )
    return counts


def retention_purge_run(*, job_run: Any, params: dict[str, Any], dry_run: bool) -> Any:
    """The ``privacy_retention_purge`` job (registry runner): the purge, its counts as the run's counters."""
    from orchestration.registry import JobFailed, JobResult

    try:
        counts = retention_purge(dry_run=dry_run)
    except ValueError as exc:
        raise JobFailed(str(exc)) from exc
    text = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items())
    return JobResult(summary=("DRY RUN: would purge: " if dry_run else "retention purge: ") + text, counters=counts)

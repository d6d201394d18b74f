"""Services of the Sheets sync: the job's entry point, the Sheets client with its quotas, the admin's operations on
targets (audited edits, pause, resume, repair, sync now) and the alert emails.

How a cycle works (change detection, the diff, the no-lost-edits protocol) is in :mod:`sheetsync.cycle`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from approvals.services import destination_register, destination_release
from audit.services import audit_log
from connectors.embedded import embedded_sheets_client
from connectors.sheets import QUOTA_WINDOW_S, SheetsClient, SheetsRateLimiter
from orchestration.models import JobRun
from orchestration.registry import JobResult
from orchestration.services import job_run_request
from security.governance import sheet_export_hold

from .cycle import SyncCycle
from .models import SyncSpreadsheet, SyncTarget, target_writer

logger = logging.getLogger(__name__)

_TARGET_FIELDS = ("name", "spreadsheet_id", "range", "source_kind", "source_query", "source_database",
                  "source_file", "key_columns", "protected_columns", "row_order", "principal", "owner_id",
                  "enabled", "quality_suite")  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# The Sheets client and its quotas
# --------------------------------------------------------------------------------------------------------------


class ChainedRateLimiter(SheetsRateLimiter):
    """One slot from each budget: the first is the shared one (the project's, fair between the principals waiting
    for it), the others are the principal's own (its per-user quota)."""

    def __init__(self, *limiters: SheetsRateLimiter) -> None:
        if not limiters:
            raise ValueError("at least one limiter")
        super().__init__(per_minute=min(limiter.per_minute for limiter in limiters))
        self.limiters = limiters

    def acquire(self, kind: str = "read") -> float:
        """Wait until every budget has room, then take a slot of each at once; the seconds waited in all.

        The principal's own budget is waited for first without taking its slot, then the shared one is taken (in
        turn), then the own one: a principal over its per-user quota never holds a project slot while it waits.
        """
        shared, own = self.limiters[0], self.limiters[1:]
        waited = sum(limiter.wait_for_room(kind) for limiter in own)
        waited += shared.acquire(kind)
        return waited + sum(limiter.acquire(kind) for limiter in own)

    def touch(self, kind: str = "read") -> None:
        """Move this thread's last slots of ``kind`` to now, in every budget."""
        for limiter in self.limiters:
            limiter.touch(kind)


_project_lock = threading.Lock()
_project_limiters: dict[int, SheetsRateLimiter] = {}
_user_limiters: dict[tuple[str, int], SheetsRateLimiter] = {}


def _project_limiter(per_minute: int) -> SheetsRateLimiter:
    """The process-wide project budget (one per configured size, shared by every client of this process)."""
    with _project_lock:
        if per_minute not in _project_limiters:
            _project_limiters[per_minute] = SheetsRateLimiter(per_minute=per_minute, window_s=QUOTA_WINDOW_S)
        return _project_limiters[per_minute]


def _user_limiter(principal: str, per_minute: int) -> SheetsRateLimiter:
    """A principal's own budget, kept by the process: a cycle right after another (a worker running them back to
    back) still counts the requests the last one made in the same minute."""
    with _project_lock:
        key = (principal, per_minute)
        if key not in _user_limiters:
            _user_limiters[key] = SheetsRateLimiter(per_minute=per_minute, window_s=QUOTA_WINDOW_S)
        return _user_limiters[key]


def sync_sheets_client(*, principal: str = "") -> SheetsClient:
    """The Sheets client of the sync for one principal (``SHEETS_PRINCIPALS``; "" is the default credentials): its
    own per-user limiter (``SHEETS_RATE_LIMIT_PER_MINUTE``) chained with the process-wide project one
    (``SHEETS_SYNC_PROJECT_RATE_LIMIT_PER_MINUTE``; 0 disables either), shared by every principal."""
    client = embedded_sheets_client(principal=principal)
    project = int(settings.SHEETS_SYNC_PROJECT_RATE_LIMIT_PER_MINUTE or 0)
    limiters = [_project_limiter(project)] if project > 0 else []
    if client.limiter is not None:
        limiters.append(_user_limiter(principal, client.limiter.per_minute))
    client.limiter = ChainedRateLimiter(*limiters) if limiters else None
    return client


# --------------------------------------------------------------------------------------------------------------
# Admin-side services: edits, pause, resume, repair, sync now
# --------------------------------------------------------------------------------------------------------------


def _target_snapshot(target: SyncTarget) -> dict[str, Any]:
    return {name: getattr(target, name) for name in _TARGET_FIELDS}


def sync_target_save(
    *, target: SyncTarget, actor: Any, created: bool, changed_fields: Sequence[str] = ()
) -> SyncTarget:
    """Create or update a target (validated by the caller's form or ``full_clean``), audited; the target becomes
    the registered writer of its sheet (a sheet another writer holds is refused with that writer's name)."""
    previous = SyncTarget.objects.filter(pk=target.pk).values_list("name", flat=True).first() if target.pk else None
    with transaction.atomic():
        target.save()
        # Issue 12: confidential or restricted columns sent unmasked wait for an approval (the target is paused).
        sheet_export_hold(target=target, actor=actor)
        if previous and previous != target.name:
            destination_release(writer=f"sync target {previous}", actor=actor)
        writer = target_writer(target)
        sheet = target.anchor.sheet
        destination_register(spreadsheet_id=target.spreadsheet_id, sheet=sheet, writer=writer, actor=actor)
        destination_release(writer=writer, actor=actor, keep=[(target.spreadsheet_id, sheet)])
        audit_log(
            action="sheetsync.target_created" if created else "sheetsync.target_changed",
            obj=target,
            actor=actor,
            data={"changed": sorted(changed_fields), "target": _target_snapshot(target)},
        )
    return target


def sync_target_delete(*, target: SyncTarget, actor: Any) -> None:
    """Delete a target (its events stay, under its name), audited. The sheet's cells are left as they are."""
    with transaction.atomic():
        audit_log(action="sheetsync.target_deleted", obj=target, actor=actor, data=_target_snapshot(target))
        destination_release(writer=target_writer(target), actor=actor)
        target.delete()


def _locked(targets: Iterable[SyncTarget] | QuerySet[SyncTarget]) -> list[SyncTarget]:
    ids = sorted({t.pk for t in targets})
    return list(SyncTarget.objects.select_for_update().filter(pk__in=ids).order_by("pk"))


def sync_targets_pause(*, targets: Iterable[SyncTarget], actor: Any, reason: str = "") -> int:
    """Leave these targets out of every cycle until resumed; returns how many were running."""
    count = 0
    with transaction.atomic():
        for target in _locked(targets):
            if not target.enabled:
                continue
            target.enabled = False
            target.save(update_fields=["enabled", "updated_at"])
            audit_log(action="sheetsync.target_paused", obj=target, actor=actor, data={"reason": reason})
            count += 1
    return count


def sync_targets_resume(*, targets: Iterable[SyncTarget], actor: Any) -> int:
    """Put paused targets back into the cycles; returns how many were paused."""
    count = 0
    with transaction.atomic():
        for target in _locked(targets):
            if target.enabled:
                continue
            target.enabled = True
            target.save(update_fields=["enabled", "updated_at"])
            audit_log(action="sheetsync.target_resumed", obj=target, actor=actor)
            count += 1
    return count


def sync_targets_repair(*, targets: Iterable[SyncTarget], actor: Any) -> int:
    """Clear the broken flag and the failure streak after a person fixed the cause; the next cycle checks the
    spreadsheet afresh and re-reads the range. Returns how many were broken or failing."""
    count = 0
    with transaction.atomic():
        locked = _locked(targets)
        SyncSpreadsheet.objects.filter(spreadsheet_id__in={t.spreadsheet_id for t in locked}).update(
            deleted_at=None, trashed=False, drive_version=None
        )
        for target in locked:
            if not (target.broken or target.consecutive_failures):
                continue
            audit_log(
                action="sheetsync.target_repaired",
                obj=target,
                actor=actor,
                data={
                    "was_broken": target.broken,
                    "reason": target.broken_reason,
                    "failures": target.consecutive_failures,
                },
            )
            target.broken = False
            target.broken_reason = ""
            target.broken_at = None
            target.consecutive_failures = 0
            target.escalated_at = None
            target.synced_version = None
            target.save(
                update_fields=[
                    "broken",
                    "broken_reason",
                    "broken_at",
                    "consecutive_failures",
                    "escalated_at",
                    "synced_version",
                    "updated_at",
                ]
            )
            count += 1
    return count


def sync_targets_sync_now(*, targets: Iterable[SyncTarget], actor: Any) -> JobRun:
    """Queue a ``sheets_sync`` run limited to these targets that reads their sheets even if nothing changed."""
    names = sorted({t.name for t in targets})
    return job_run_request(
        job="sheets_sync", params={"targets": names, "force": True}, trigger=str(JobRun.Trigger.ADMIN), actor=actor
    )


# --------------------------------------------------------------------------------------------------------------
# Alerts
# --------------------------------------------------------------------------------------------------------------


def sync_target_alert_send(*, target_id: int, kind: str) -> int:
    """A target keeps failing (``kind="escalation"``) or is broken (``kind="broken"``): open or update its incident.

    The incident mechanism (:mod:`monitoring.services`) does the telling: its escalation ladder e-mails the
    target's owner first, then the Data Stewards, then the Platform Admins until someone acknowledges, and posts
    to the configured webhooks. Returns the incident's escalation level (0: nobody told yet).
    """
    from monitoring.services import sync_target_incident_raise

    incident = sync_target_incident_raise(target_id=target_id, kind=kind)
    if incident is None:
        return 0
    logger.info("sync target %s (%s): incident #%s at level %s", target_id, kind, incident.pk, incident.level)
    return incident.level


def sheets_sync_run(*, job_run: JobRun | None, params: dict[str, Any], dry_run: bool) -> JobResult:
    """One sync cycle over every enabled target (or those in ``params["targets"]``); see :mod:`sheetsync.cycle`.

    ``force`` reads the targets' sheets even when neither side changed. One failing target never stops the
    others; the run fails only when the changes feed cannot be read or every target failed.
    """
    cycle = SyncCycle(job_run=job_run, dry_run=dry_run, force=bool(params.get("force")), clients=sync_sheets_client)
    try:
        return cycle.run(params.get("targets") or None)
    finally:
        cycle.close()

"""The Looker cleanup job and dashboard restores.

Every irreversible Looker call follows the same three steps: the plan row is committed first, then the
call is made (outside any transaction), then its outcome is recorded with its audit event in a new
transaction. A rerun reads the plan rows of earlier runs and finishes what they left, so nothing is
deleted without a verified backup and nothing is done twice.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.services import audit_log
from connectors.errors import ConnectorError, ConnectorNotFound, ConnectorRateLimited, ConnectorTransientError
from connectors.looker import LookerClient, LookerDashboardSummary, dashboard_json_normalized, looker_client
from lineage.naming import looker_dashboard
from lineage.services import lineage_governance
from orchestration.models import JobRun
from orchestration.registry import JobFailed, JobResult
from orchestration.services import job_run_heartbeat
from privacy.pseudonym import EMAIL, pseudonymise

from .backups import BackupStoreError, StoredBackup, backup_read_verified, backup_write_verified
from .constants import CLEANUP_RUN_ACTION  # noqa: F401 - its home before issue 15
from .models import CleanupAction, DashboardBackup, DashboardPin, DashboardRestore, LookerDashboard
from .notifications import completion_report_send, owner_notices_send, owner_restore_notice_send
from .policy import CleanupPlan, cleanup_plan_build

logger = logging.getLogger(__name__)

_INVENTORY_FIELDS = [
    "title",
    "folder_id",
    "folder_name",
    "owner_id",
    "owner_name",
    "owner_email",
    "created_at",
    "updated_at",
    "last_viewed_at",
    "last_accessed_at",
    "last_activity_at",
    "view_count",
    "favorite_count",
    "has_active_schedule",
    "is_lookml",
    "deleted",
    "deleted_at",
    "missing_in_looker",
    "changed_at",
]


# --- inventory ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InventoryStats:
    active: int
    trashed: int
    new: int
    vanished: int
    owners_unknown: int
    changed: int = 0


def _last_activity(s: LookerDashboardSummary) -> datetime | None:
    seen = [t for t in (s.last_viewed_at, s.last_accessed_at) if t is not None]
    return max(seen) if seen else s.created_at


# The facts compared between a scan and the mirror (everything the refresh writes but its own timestamp), in the
# order inventory_refresh builds each row's tuple.
_COMPARED = [f for f in _INVENTORY_FIELDS if f != "changed_at"]
assert _COMPARED[:6] == ["title", "folder_id", "folder_name", "owner_id", "owner_name", "owner_email"]
assert _COMPARED[6:] == ["created_at", "updated_at", "last_viewed_at", "last_accessed_at", "last_activity_at",
                         "view_count", "favorite_count", "has_active_schedule", "is_lookml", "deleted", "deleted_at",
                         "missing_in_looker"]  # fmt: skip
_MISSING_AT = _COMPARED.index("missing_in_looker")
_MIRROR_CHUNK = 2000


def inventory_refresh(*, looker: LookerClient, now: datetime | None = None) -> InventoryStats:
    """Mirror every Looker dashboard (active and in the trash) with owner, folder and schedule facts.

    Costs one request per page of dashboards, one for the LookML dashboards, the schedules, and the owners seen
    (one or two by id, or a few pages of users in a large estate: ``LookerClient.users_by_id``), whatever the
    number of dashboards; folders only when a dashboard came without its folder's name. The per-dashboard details
    are only fetched for the ones being backed up. The mirror is compared as it is read (a chunk at a time) and
    only new or changed rows are written, in one statement run for all of them.
    """
    now = now or timezone.now()
    page_size = settings.CLEANUP_PAGE_SIZE
    summaries = looker.dashboards_search(deleted=False, page_size=page_size)
    n_active = len(summaries)
    summaries += looker.dashboards_search(deleted=True, page_size=page_size)
    users = looker.users_by_id(
        ids={s.user_id for s in summaries if s.user_id},
        ids_per_request=settings.CLEANUP_USER_IDS_PER_REQUEST,
        page_size=settings.CLEANUP_USER_PAGE_SIZE,
    )
    folder_names: dict[str, str] = {}
    if any(s.folder_id and not s.folder_name for s in summaries):
        folder_names = {f.id: f.name for f in looker.folders_all()}
    scheduled = {p.dashboard_id for p in looker.scheduled_plans_all() if p.enabled and p.dashboard_id}

    # looker_id -> the row's facts in _COMPARED order, as the database stores them (datetimes adapted), so they
    # compare with raw rows and go straight into the upsert. Plain tuples: 100k model instances would cost ~1 GB.
    adapt = _datetime_parameter()
    rows: dict[str, tuple[Any, ...]] = {}
    owners_unknown = 0
    for s in summaries:
        owner = users.get(s.user_id or "")
        if owner is None:
            owners_unknown += 1
        rows[s.id] = (
            (s.title or "")[:500],
            s.folder_id or "",
            s.folder_name or folder_names.get(s.folder_id or "", ""),
            s.user_id or "",
            (owner.display_name or "") if owner else "",
            (owner.email or "") if owner else "",
            adapt(s.created_at),
            adapt(s.updated_at),
            adapt(s.last_viewed_at),
            adapt(s.last_accessed_at),
            adapt(_last_activity(s)),
            s.view_count or 0,
            s.favorite_count or 0,
            s.id in scheduled,
            s.is_lookml,
            s.deleted,
            adapt(s.deleted_at),
            False,  # missing_in_looker
        )
    n_trashed = len(summaries) - n_active
    del summaries, users

    # Write only what changed: a monthly scan of a large estate mostly finds the same facts again. The mirror is
    # read raw (no per-value conversion) a chunk at a time, never held whole.
    known: set[str] = set()
    changed: set[str] = set()
    gone: list[int] = []
    for pk, looker_id, *facts in _mirror_rows():
        fresh = rows.get(looker_id)
        if fresh is None:
            if not facts[_MISSING_AT]:
                gone.append(pk)
            continue
        known.add(looker_id)
        if tuple(facts) != fresh:  # bools come back as 0/1 from SQLite: equal to False/True
            changed.add(looker_id)
    todo = [looker_id for looker_id in rows if looker_id in changed or looker_id not in known]  # in Looker's order
    with transaction.atomic():
        _mirror_upsert(todo, rows, now=adapt(now))
        for start in range(0, len(gone), 500):
            LookerDashboard.objects.filter(pk__in=gone[start : start + 500]).update(
                missing_in_looker=True, changed_at=now
            )
    return InventoryStats(
        active=n_active,
        trashed=n_trashed,
        new=len(rows) - len(known),
        vanished=len(gone),
        owners_unknown=owners_unknown,
        changed=len(changed),
    )


def _datetime_parameter() -> Callable[[datetime | None], Any]:
    """A datetime as a raw SELECT on this database returns it (and raw SQL takes it), without the ORM's per-value
    conversions (a scan of 100k dashboards has 500k timestamps).

    SQLite: naive UTC, which Django's sqlite3 adapter stores as the same text the ORM writes and its converter reads
    back as a naive datetime. PostgreSQL: aware datetimes both ways (timestamptz compares by instant).
    """
    if connection.vendor == "sqlite" and connection.timezone is UTC:

        def to_sqlite(value: datetime | None) -> datetime | None:
            if value is None or value.tzinfo is None:
                return value
            return value.astimezone(UTC).replace(tzinfo=None)

        return to_sqlite
    if connection.vendor == "postgresql":
        return lambda value: value
    raise NotImplementedError(f"the Looker mirror supports SQLite and PostgreSQL, not {connection.vendor}")


def _mirror_sql() -> tuple[str, list[str], str]:
    """The mirror's table and the columns of ``looker_id`` + ``_COMPARED``, quoted for raw SQL."""
    meta, quote = LookerDashboard._meta, connection.ops.quote_name
    columns = [quote(meta.get_field(name).column) for name in ["looker_id", *_COMPARED]]
    return quote(meta.db_table), columns, quote(meta.pk.column)


def _mirror_rows() -> Iterator[tuple[Any, ...]]:
    """Every mirror row as ``(pk, looker_id, *facts)`` in the database's own representation, a chunk at a time
    (a server-side cursor on PostgreSQL)."""
    table, columns, pk = _mirror_sql()
    with connection.chunked_cursor() as cursor:
        cursor.execute(f"SELECT {pk}, {', '.join(columns)} FROM {table}")  # noqa: S608 - quoted model identifiers
        while chunk := cursor.fetchmany(_MIRROR_CHUNK):
            yield from chunk


def _mirror_upsert(looker_ids: list[str], rows: dict[str, tuple[Any, ...]], *, now: Any) -> None:
    """Insert-or-update these mirror rows with one prepared statement run once per row (``executemany``).

    The ORM's ``bulk_create`` builds a fresh multi-row statement per batch, and SQLite's 999-parameter limit makes
    that ~47 rows each: 2,000+ statements to parse (and 100k model instances to build) for a first scan of 100k
    dashboards. One ``INSERT ... ON CONFLICT (looker_id) DO UPDATE`` (SQLite 3.24+ and PostgreSQL, the project's
    two databases) prepared once does the same work in a fraction of the time; new rows get ``first_seen_at``,
    existing ones keep it. ``rows`` hold database-ready values (see :func:`_datetime_parameter`), as does ``now``.
    """
    if not looker_ids:
        return
    table, columns, _pk = _mirror_sql()
    quote = connection.ops.quote_name
    stamps = [quote(LookerDashboard._meta.get_field(name).column) for name in ("changed_at", "first_seen_at")]
    names, marks = ", ".join([*columns, *stamps]), ", ".join(["%s"] * (len(columns) + 2))
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in [*columns[1:], stamps[0]])  # not looker_id, first_seen
    # Identifiers come from the model and are quoted; every value is a parameter.
    sql = f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT ({columns[0]}) DO UPDATE SET {assignments}"  # noqa: S608
    with connection.cursor() as cursor:
        for start in range(0, len(looker_ids), _MIRROR_CHUNK):
            chunk = looker_ids[start : start + _MIRROR_CHUNK]
            cursor.executemany(sql, [(looker_id, *rows[looker_id], now, now) for looker_id in chunk])


# --- reconciling earlier runs --------------------------------------------------------------------------------


def cleanup_reconcile(*, job_run: JobRun) -> dict[str, int]:
    """Settle the unfinished actions of earlier runs against what Looker now says.

    An action that was backed up and whose dashboard Looker now shows as deleted was deleted by a run that
    died before recording it: record it now (no second delete). Anything else unfinished is superseded; the
    new plan picks the dashboard up again if it is still inactive and reuses its stored backup. This covers
    earlier attempts of the same run too (an Airflow retry or a redelivered Celery task).
    """
    settled: Counter = Counter()
    open_statuses = [CleanupAction.Status.PLANNED, CleanupAction.Status.BACKED_UP, CleanupAction.Status.FAILED]
    stale = (
        CleanupAction.objects.filter(status__in=open_statuses, kind=CleanupAction.Kind.SOFT_DELETE)
        .select_related("dashboard", "backup")
        .order_by("pk")
    )
    for action in stale:
        d = action.dashboard
        restored_since = d.restores.filter(requested_at__gt=action.updated_at).exists()
        with transaction.atomic():
            if action.backup_id and d.deleted and not restored_since:
                action.status = CleanupAction.Status.DELETED
                action.deleted_at = d.deleted_at or timezone.now()
                action.error = ""
                action.save(update_fields=["status", "deleted_at", "error", "updated_at"])
                audit_log(
                    action="cleanup.dashboard_soft_deleted",
                    obj=d,
                    data={
                        "looker_id": d.looker_id,
                        "backup_sha256": action.backup.sha256,
                        "reconciled": True,
                        "planned_by_run": action.job_run_id,
                    },
                )
                settled["reconciled_deleted"] += 1
            elif action.status != CleanupAction.Status.FAILED:
                previous = action.status
                action.status = CleanupAction.Status.SUPERSEDED
                action.save(update_fields=["status", "updated_at"])
                audit_log(
                    action="cleanup.action_superseded",
                    obj=d,
                    data={
                        "looker_id": d.looker_id,
                        "planned_by_run": action.job_run_id,
                        "taken_over_by": job_run.pk,
                        "previous_status": previous,
                    },
                )
                settled["superseded"] += 1
    return dict(settled)


# --- the plan -------------------------------------------------------------------------------------------------


def _plan_changes(*, plan: CleanupPlan, job_run: JobRun) -> dict[str, Any]:
    previous = (
        JobRun.objects.filter(job="looker_cleanup", details__has_key="plan_ids")
        .exclude(pk=job_run.pk)
        .order_by("-pk")
        .first()
    )
    now_ids = set(plan.looker_ids)
    if previous is None:
        return {"previous_run": None, "added": sorted(now_ids), "dropped": []}
    before = set(previous.details.get("plan_ids", []))
    return {"previous_run": previous.pk, "added": sorted(now_ids - before), "dropped": sorted(before - now_ids)}


def cleanup_plan_text(*, plan: CleanupPlan, changes: dict[str, Any], inventory: InventoryStats | None) -> str:
    """The plan as people read it: the dry-run output and the run summary's first part."""
    lines = []
    if inventory:
        lines.append(
            f"inventory: {inventory.active} active, {inventory.trashed} in trash, {inventory.new} new, "
            f"{inventory.changed} changed, {inventory.vanished} gone from Looker, "
            f"{inventory.owners_unknown} without a known owner"
        )
    lines.append(
        f"plan: {len(plan.deletions)} to soft-delete (inactive > {plan.inactive_days} days, before "
        f"{plan.cutoff:%Y-%m-%d}), {len(plan.lookml_reports)} LookML dashboards to report"
    )
    for reason, count in sorted(plan.kept.items()):
        lines.append(f"  kept {count}: {reason}")
    prev = changes.get("previous_run")
    since = f"since run #{prev}" if prev else "(no earlier run)"
    lines.append(
        f"changes {since}: +{len(changes['added'])} newly inactive, -{len(changes['dropped'])} no longer planned"
    )
    for entry in plan.deletions[:15]:
        owner = entry.owner_email or "(no owner)"
        lines.append(f"  - {entry.looker_id:>8}  {entry.title[:40]:40}  {entry.inactive_days:>4}d  {owner}")
    if len(plan.deletions) > 15:
        lines.append(f"  ... and {len(plan.deletions) - 15} more")
    for entry in plan.lookml_reports[:5]:
        lines.append(f"  ! LookML {entry.looker_id} ({entry.title[:40]}): cannot be soft-deleted, remove it in LookML")
    return "\n".join(lines)


def _plan_details(plan: CleanupPlan, changes: dict[str, Any]) -> dict[str, Any]:
    return {
        "plan_ids": plan.looker_ids,
        "plan": [e.as_dict() for e in plan.deletions[:2000]],
        "lookml_reports": [e.as_dict() for e in plan.lookml_reports],
        "kept": dict(plan.kept),
        "kept_examples": plan.kept_examples,
        "changes": {**changes, "added": changes["added"][:500], "dropped": changes["dropped"][:500]},
        "inactive_days": plan.inactive_days,
        "cutoff": plan.cutoff.isoformat(),
    }


def cleanup_actions_commit(*, job_run: JobRun, plan: CleanupPlan) -> list[CleanupAction]:
    """Commit the plan rows before any Looker call, so a crash leaves a record of where to resume.

    Returns the soft-delete actions to execute: the planned dashboards only, so a retried run follows
    the fresh plan (a dashboard pinned or viewed since is left alone) and never redoes finished work.
    """
    entries = [*plan.deletions, *plan.lookml_reports]
    with transaction.atomic():
        existing = {
            a.dashboard_id: a for a in CleanupAction.objects.select_for_update().filter(job_run=job_run).order_by("pk")
        }
        CleanupAction.objects.bulk_create(
            [
                CleanupAction(
                    job_run=job_run,
                    dashboard_id=e.dashboard_pk,
                    kind=e.kind,
                    inactive_days=e.inactive_days,
                    status=CleanupAction.Status.REPORTED
                    if e.kind == CleanupAction.Kind.REPORT_LOOKML
                    else CleanupAction.Status.PLANNED,
                )
                for e in entries
                if e.dashboard_pk not in existing
            ],
            batch_size=500,
        )
        reopen = [
            existing[e.dashboard_pk].pk
            for e in plan.deletions
            if e.dashboard_pk in existing
            and existing[e.dashboard_pk].status in (CleanupAction.Status.SUPERSEDED, CleanupAction.Status.FAILED)
        ]
        CleanupAction.objects.filter(pk__in=reopen).update(status=CleanupAction.Status.PLANNED, error="")
        audit_log(
            action="cleanup.plan_committed",
            obj=job_run,
            data={
                "soft_delete": len(plan.deletions),
                "lookml_reports": len(plan.lookml_reports),
                "reopened": len(reopen),
            },
        )
    return list(
        CleanupAction.objects.filter(
            job_run=job_run,
            kind=CleanupAction.Kind.SOFT_DELETE,
            status=CleanupAction.Status.PLANNED,
            dashboard_id__in=[e.dashboard_pk for e in plan.deletions],
        )
        .select_related("dashboard", "job_run")
        .order_by("dashboard__looker_id")
    )


# --- executing the plan ---------------------------------------------------------------------------------------


def _backup_step(looker: LookerClient, looker_id: str) -> tuple[StoredBackup, dict[str, Any]]:
    """Export, store and verify; also return the dashboard's current activity facts for the last check."""
    export = looker.dashboard_export(dashboard_id=looker_id)
    stored = backup_write_verified(looker_id=looker_id, dashboard_json=export.dashboard_json, lookml=export.lookml)
    doc = json.loads(export.dashboard_json)
    facts = {k: doc.get(k) for k in ("favorite_count", "last_viewed_at", "last_accessed_at", "deleted")}
    return stored, facts


def _keep_reason_now(action: CleanupAction, facts: dict[str, Any], cutoff: datetime) -> str:
    """Re-check the policy just before the delete: the plan may be minutes (or a crash) old."""
    if DashboardPin.objects.filter(dashboard_id=action.dashboard_id, expires_at__gt=timezone.now()).exists():
        return "pinned after the plan was built"
    if (facts.get("favorite_count") or 0) > 0:
        return "favourited after the plan was built"
    seen = [parse_datetime(v) for v in (facts.get("last_viewed_at"), facts.get("last_accessed_at")) if v]
    if any(t is not None and t >= cutoff for t in seen):
        return "viewed after the plan was built"
    return ""


def _record_skipped(action: CleanupAction, reason: str) -> None:
    with transaction.atomic():
        action.status = CleanupAction.Status.SKIPPED
        action.error = reason
        action.save(update_fields=["status", "error", "updated_at"])
        audit_log(
            action="cleanup.dashboard_kept",
            obj=action.dashboard,
            data={"looker_id": action.dashboard.looker_id, "reason": reason},
        )


def _record_backup(action: CleanupAction, stored: StoredBackup) -> None:
    with transaction.atomic():
        backup, _ = DashboardBackup.objects.get_or_create(
            dashboard=action.dashboard,
            sha256=stored.sha256,
            defaults={
                "job_run": action.job_run,
                "storage_name": stored.storage_name,
                "size_bytes": stored.size_bytes,
                "has_lookml": stored.has_lookml,
                "verified_at": timezone.now(),
            },
        )
        action.backup = backup
        action.status = CleanupAction.Status.BACKED_UP
        action.attempts += 1
        action.save(update_fields=["backup", "status", "attempts", "updated_at"])
        audit_log(
            action="cleanup.dashboard_backed_up",
            obj=action.dashboard,
            data={
                "looker_id": action.dashboard.looker_id,
                "storage_name": stored.storage_name,
                "sha256": stored.sha256,
                "size_bytes": stored.size_bytes,
                "has_lookml": stored.has_lookml,
            },
        )


def _record_deleted(action: CleanupAction, summary: LookerDashboardSummary) -> None:
    now = timezone.now()
    with transaction.atomic():
        action.status = CleanupAction.Status.DELETED
        action.deleted_at = now
        action.error = ""
        action.save(update_fields=["status", "deleted_at", "error", "updated_at"])
        d = action.dashboard
        d.deleted = True
        d.deleted_at = summary.deleted_at or now
        d.save(update_fields=["deleted", "deleted_at"])
        audit_log(
            action="cleanup.dashboard_soft_deleted",
            obj=d,
            data={
                "looker_id": d.looker_id,
                "backup_sha256": action.backup.sha256,
                "owner_email": pseudonymise(d.owner_email, domain=EMAIL),
                "inactive_days": action.inactive_days,
            },
        )
        lineage_governance(
            action="soft_delete", dataset=looker_dashboard(d.looker_id), job_run=action.job_run, obj=d,
            details={"backup": action.backup.storage_name, "owner_email": d.owner_email},
        )  # fmt: skip


def _record_failed(action: CleanupAction, step: str, exc: Exception) -> None:
    with transaction.atomic():
        action.status = CleanupAction.Status.FAILED
        action.error = f"{step}: {exc}"
        action.save(update_fields=["status", "error", "updated_at"])
        audit_log(
            action="cleanup.dashboard_failed",
            obj=action.dashboard,
            data={"looker_id": action.dashboard.looker_id, "step": step, "error": str(exc)[:1000]},
        )


class _Throttle:
    """A pool-wide pause after Looker says 429: every worker waits, not just the one that was refused.

    Honours Retry-After when Looker gives one, else backs off exponentially (with jitter) while 429s keep
    coming; the first success resets it.
    """

    def __init__(self, *, base: float, cap: float) -> None:
        self.base, self.cap = base, cap
        self.consecutive = 0
        self.not_before = 0.0

    def remaining(self) -> float:
        return max(0.0, self.not_before - time.monotonic())

    def slow_down(self, retry_after: float | None) -> None:
        self.consecutive += 1
        backoff = min(self.cap, self.base * 2 ** (self.consecutive - 1)) * random.uniform(0.5, 1.0)  # noqa: S311
        delay = max(backoff, min(self.cap, retry_after or 0.0))
        self.not_before = max(self.not_before, time.monotonic() + delay)

    def ok(self) -> None:
        self.consecutive = 0


HEARTBEAT_EVERY_S = 15.0


def cleanup_actions_execute(
    *,
    looker: LookerClient,
    actions: list[CleanupAction],
    concurrency: int,
    cutoff: datetime,
    heartbeat: Callable[[Counter], None] | None = None,
    rate_limit_requeues: int = 10,
) -> Counter:
    """Back up, verify, re-check, then soft-delete each planned dashboard, ``concurrency`` Looker calls at once.

    Network work runs in a thread pool; every database write happens here, in the calling thread, so each
    outcome is committed before the next step for that dashboard starts. Just before a delete the policy is
    checked again on the fresh export (a pin, a favourite or a view since the plan keeps the dashboard).
    When Looker keeps answering 429 after the connector's own retries, the step goes back in the queue and
    the whole pool pauses (``_Throttle``), up to ``rate_limit_requeues`` times per dashboard. ``heartbeat``
    is called at least every ``HEARTBEAT_EVERY_S`` seconds, even while calls hang; it may raise to stop.
    """
    outcome: Counter = Counter()
    todo: deque[tuple[str, CleanupAction]] = deque(("backup", a) for a in actions)
    pending: dict[Future, tuple[str, CleanupAction]] = {}
    requeues: Counter = Counter()
    throttle = _Throttle(base=settings.LOOKER_BACKOFF_BASE, cap=settings.LOOKER_BACKOFF_MAX)
    steps = {
        "backup": lambda action: _backup_step(looker, action.dashboard.looker_id),
        "soft_delete": lambda action: looker.dashboard_soft_delete(dashboard_id=action.dashboard.looker_id),
    }
    last_beat = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="cleanup") as pool:
        try:
            while todo or pending:
                if heartbeat and time.monotonic() - last_beat >= HEARTBEAT_EVERY_S:
                    heartbeat(outcome)
                    last_beat = time.monotonic()
                pause = throttle.remaining()
                while todo and len(pending) < concurrency and pause == 0:
                    step, action = todo.popleft()
                    pending[pool.submit(steps[step], action)] = (step, action)
                if not pending:
                    time.sleep(min(pause, HEARTBEAT_EVERY_S))
                    continue
                done, _ = wait(
                    list(pending),
                    timeout=min(pause or HEARTBEAT_EVERY_S, HEARTBEAT_EVERY_S),
                    return_when=FIRST_COMPLETED,
                )
                for future in done:
                    step, action = pending.pop(future)
                    try:
                        result = future.result()
                    except ConnectorRateLimited as exc:
                        if requeues[action.pk] < rate_limit_requeues:
                            requeues[action.pk] += 1
                            outcome["rate_limited_requeues"] += 1
                            throttle.slow_down(exc.retry_after)
                            todo.appendleft((step, action))
                            continue
                        _record_failed(action, step, exc)
                        outcome[f"failed_{step}"] += 1
                        continue
                    except (ConnectorError, BackupStoreError) as exc:
                        _record_failed(action, step, exc)
                        outcome[f"failed_{step}"] += 1
                        continue
                    throttle.ok()
                    if step == "backup":
                        stored, facts = result
                        _record_backup(action, stored)
                        outcome["backed_up"] += 1
                        reason = _keep_reason_now(action, facts, cutoff)
                        if reason:
                            _record_skipped(action, reason)
                            outcome["kept_at_last_check"] += 1
                        else:
                            todo.appendleft(("soft_delete", action))  # delete soon after its backup
                    else:
                        _record_deleted(action, result)
                        outcome["deleted"] += 1
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return outcome


# --- the job --------------------------------------------------------------------------------------------------


def looker_cleanup_run(*, job_run: JobRun, params: dict[str, Any], dry_run: bool) -> JobResult:
    """The monthly cleanup: refresh the inventory, plan, back up and soft-delete, notify, report."""
    inactive_days = params.get("inactive_days", settings.CLEANUP_INACTIVE_DAYS)
    max_deletions = params.get("max_deletions", settings.CLEANUP_MAX_DELETIONS)
    now = timezone.now()
    try:
        looker = looker_client()
    except ValueError as exc:  # misconfiguration: a base URL with a path, empty credentials
        raise JobFailed(f"Looker is misconfigured: {exc}") from exc
    try:
        job_run_heartbeat(job_run=job_run, progress="refreshing the Looker inventory")
        inventory = inventory_refresh(looker=looker, now=now)
    except ConnectorError as exc:
        raise JobFailed(f"could not read the Looker inventory: {exc}") from exc

    settled = {} if dry_run else cleanup_reconcile(job_run=job_run)
    plan = cleanup_plan_build(inactive_days=inactive_days, now=now)
    changes = _plan_changes(plan=plan, job_run=job_run)
    plan_text = cleanup_plan_text(plan=plan, changes=changes, inventory=inventory)
    counters: dict[str, Any] = {
        "dashboards_active": inventory.active,
        "dashboards_in_trash": inventory.trashed,
        "planned": len(plan.deletions),
        "lookml_reported": len(plan.lookml_reports),
        **settled,
    }
    details = _plan_details(plan, changes)
    job_run_heartbeat(job_run=job_run, progress="plan built", counters=counters)
    JobRun.objects.filter(pk=job_run.pk).update(details=details, summary=plan_text)

    if dry_run:
        counters["looker_requests"] = looker.request_count
        return JobResult(summary="DRY RUN: nothing changed\n" + plan_text, counters=counters, details=details)

    guard = cleanup_guard_reasons(planned=len(plan.deletions), max_deletions=max_deletions)
    if guard and job_run.approval is None:
        request = cleanup_approval_request(job_run=job_run, plan=plan, reasons=guard)
        counters["approval_request"] = request.pk
        counters["looker_requests"] = looker.request_count
        return JobResult(
            summary=f"NOT RUN: {'; '.join(guard)}. Approval #{request.pk} was requested from a second Content Admin; "
            f"nothing was deleted. Once approved, exactly the planned dashboards still inactive are cleaned up.\n"
            + plan_text,
            counters=counters,
            details=details,
        )
    if job_run.approval is not None:
        plan = _plan_as_approved(plan=plan, job_run=job_run)
        counters["planned"] = len(plan.deletions)

    if len(plan.deletions) > max_deletions:
        raise JobFailed(
            f"the plan has {len(plan.deletions)} dashboards to soft-delete, above the cap of {max_deletions} per run; "
            f"nothing was deleted. Review the plan (run_job looker_cleanup --dry-run), then raise the cap with "
            f"--param max_deletions={len(plan.deletions)} or CLEANUP_MAX_DELETIONS."
        )

    actions = cleanup_actions_commit(job_run=job_run, plan=plan)
    outcome = cleanup_actions_execute(
        looker=looker,
        actions=actions,
        concurrency=settings.CLEANUP_CONCURRENCY,
        cutoff=plan.cutoff,
        heartbeat=lambda c: job_run_heartbeat(
            job_run=job_run, progress=f"{c['deleted']} of {len(actions)} soft-deleted, {c['backed_up']} backed up"
        ),
    )
    notices = owner_notices_send(job_run=job_run)
    counters.update(outcome)
    counters.update(notices)
    counters["looker_requests"] = looker.request_count
    failed = outcome["failed_backup"] + outcome["failed_soft_delete"]
    summary = (
        f"{outcome['deleted']} soft-deleted with verified backups, {failed} failed, "
        f"{outcome['kept_at_last_check']} kept at the last check, "
        f"{settled.get('reconciled_deleted', 0)} finished from an earlier run; "
        f"{notices.get('owners_notified', 0)} owners notified\n" + plan_text
    )
    completion_report_send(job_run=job_run, summary=summary, counters=counters)
    if failed:
        raise JobFailed(
            f"{failed} of {len(actions)} dashboards failed (see the run's actions); they were not deleted and the "
            f"next run retries them. {summary}"
        )
    return JobResult(summary=summary, counters=counters, details=details)


# --- guarded runs -------------------------------------------------------------------------------------------


def cleanup_guard_reasons(*, planned: int, max_deletions: int) -> list[str]:
    """Why a real run needs a second Content Admin's approval first ([] when it does not)."""
    reasons = []
    if planned > settings.CLEANUP_APPROVAL_THRESHOLD:
        reasons.append(
            f"the plan soft-deletes {planned} dashboards, above CLEANUP_APPROVAL_THRESHOLD "
            f"({settings.CLEANUP_APPROVAL_THRESHOLD})"
        )
    if max_deletions > settings.CLEANUP_MAX_DELETIONS:
        cap = settings.CLEANUP_MAX_DELETIONS
        reasons.append(f"max_deletions={max_deletions} raises the per-run cap CLEANUP_MAX_DELETIONS ({cap})")
    return reasons


def cleanup_approval_request(*, job_run: JobRun, plan: CleanupPlan, reasons: list[str]) -> Any:
    """Ask a second Content Admin to approve this run's parameters and exact plan (the dashboards to delete)."""
    from approvals.services import approval_request_create

    return approval_request_create(
        action=CLEANUP_RUN_ACTION,
        inputs={"job": "looker_cleanup", "params": job_run.params, "plan_ids": sorted(plan.looker_ids)},
        reason="; ".join(reasons),
        requested_by=job_run.principal,
        requested_by_label=job_run.principal_label or str(job_run.trigger),
        shapers=[u for u in (job_run.actor, job_run.principal) if u is not None],
        title=f"Looker cleanup: soft-delete {len(plan.deletions)} dashboards (run #{job_run.pk})",
        obj=job_run,
    )


def _plan_as_approved(*, plan: CleanupPlan, job_run: JobRun) -> CleanupPlan:
    """The fresh plan limited to what the approval pinned: nothing the approver did not see is deleted."""
    approval = job_run.approval
    if approval.action != CLEANUP_RUN_ACTION or approval.status != "approved":
        raise JobFailed(f"{job_run} carries approval #{approval.pk}, which does not approve a cleanup run")
    if approval.inputs.get("params") != job_run.params:
        raise JobFailed(f"approval #{approval.pk} was for other parameters: nothing was deleted")
    approved = set(approval.inputs.get("plan_ids") or [])
    return replace(plan, deletions=[e for e in plan.deletions if e.looker_id in approved])


@dataclass(frozen=True)
class PlanPreview:
    text: str
    planned: int
    plan_sha256: str
    needs_approval: list[str]
    owners: int = 0  # distinct owners the run would mail (the confirmation names the number)


def cleanup_plan_preview(*, params: dict[str, Any]) -> PlanPreview:
    """Refresh the inventory and build the plan a real run would follow, for the confirmation page."""
    import hashlib

    inactive_days = params.get("inactive_days", settings.CLEANUP_INACTIVE_DAYS)
    try:
        inventory = inventory_refresh(looker=looker_client())
    except (ConnectorError, ValueError) as exc:
        raise JobFailed(f"could not read the Looker inventory: {exc}") from exc
    plan = cleanup_plan_build(inactive_days=inactive_days, now=timezone.now())
    text = cleanup_plan_text(plan=plan, changes={"previous_run": None, "added": [], "dropped": []}, inventory=inventory)
    return PlanPreview(
        text=text,
        planned=len(plan.deletions),
        owners=len({e.owner_email.lower() for e in plan.deletions if e.owner_email}),
        plan_sha256=hashlib.sha256(",".join(sorted(plan.looker_ids)).encode()).hexdigest(),
        needs_approval=cleanup_guard_reasons(
            planned=len(plan.deletions), max_deletions=params.get("max_deletions", settings.CLEANUP_MAX_DELETIONS)
        ),
    )


# --- restore --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreRequestResult:
    requested: list[DashboardRestore]
    refused: list[tuple[str, str]]


def restore_backup_for(dashboard: LookerDashboard) -> DashboardBackup | None:
    """The backup the dashboard's last deletion was made from; else its newest backup."""
    action = (
        dashboard.cleanup_actions.filter(status=CleanupAction.Status.DELETED, backup__isnull=False)
        .select_related("backup")
        .order_by("-deleted_at", "-pk")
        .first()
    )
    return action.backup if action else dashboard.backups.order_by("-created_at", "-pk").first()


def cleanup_restore_request(*, dashboards: Iterable[LookerDashboard], actor: Any) -> RestoreRequestResult:
    """Open a restore for each dashboard that can be restored and queue it; say why the others cannot."""
    from .tasks import dashboard_restore_task

    requested: list[DashboardRestore] = []
    refused: list[tuple[str, str]] = []
    for d in dashboards:
        if not (d.deleted or d.missing_in_looker):
            refused.append((d.looker_id, "it is not deleted"))
            continue
        backup = restore_backup_for(d)
        if backup is None and d.missing_in_looker:
            refused.append((d.looker_id, "it is gone from Looker and there is no backup to re-create it from"))
            continue
        try:
            with transaction.atomic():
                # A failed earlier restore may have re-created a copy already: start from it, never make two.
                earlier = d.restores.filter(status=DashboardRestore.Status.FAILED).exclude(new_looker_id="").first()
                restore = DashboardRestore.objects.create(
                    dashboard=d,
                    backup=backup,
                    requested_by=actor,
                    new_looker_id=earlier.new_looker_id if earlier else "",
                )
                audit_log(
                    action="cleanup.restore_requested",
                    obj=d,
                    actor=actor,
                    data={
                        "looker_id": d.looker_id,
                        "restore_id": restore.pk,
                        "backup_sha256": backup.sha256 if backup else None,
                    },
                )
                transaction.on_commit(lambda pk=restore.pk: dashboard_restore_task.delay(pk))
        except IntegrityError:
            refused.append((d.looker_id, "a restore is already in progress"))
            continue
        requested.append(restore)
    return RestoreRequestResult(requested, refused)


def dashboard_restore_execute(*, restore_id: int) -> DashboardRestore:
    """Bring the dashboard back: undelete it in Looker, or re-create it from its backup if Looker lost it.

    Then compare what Looker now has with the backup, record and audit the outcome, pin the dashboard for
    a while (so the next cleanup does not take it again), and tell the owner. Transient Looker errors
    propagate (the task retries; a retry reuses a copy already re-created); anything else marks the
    restore failed, so it never stays "requested".
    """
    restore = DashboardRestore.objects.select_related("dashboard", "backup", "requested_by").get(pk=restore_id)
    if restore.status != DashboardRestore.Status.REQUESTED:
        return restore
    try:
        return _restore_run(restore)
    except ConnectorTransientError:
        raise
    except (ConnectorError, BackupStoreError, ValueError) as exc:
        return dashboard_restore_fail(restore, str(exc))
    except Exception as exc:  # a bug: still close the restore so it can be requested again
        logger.exception("restore %s crashed", restore.pk)
        return dashboard_restore_fail(restore, f"{type(exc).__name__}: {exc}")


def _restore_run(restore: DashboardRestore) -> DashboardRestore:
    d = restore.dashboard
    looker = looker_client()
    backup_doc: dict[str, Any] | None = None

    def backup_dashboard_json() -> str:
        nonlocal backup_doc
        if restore.backup is None:
            raise BackupStoreError(f"dashboard {d.looker_id} has no backup")
        if backup_doc is None:
            backup_doc = backup_read_verified(storage_name=restore.backup.storage_name, sha256=restore.backup.sha256)
        return json.dumps(backup_doc["dashboard"])

    def differences(current_json: str, *, recreated: bool) -> list[str]:
        before = dashboard_json_normalized(backup_dashboard_json(), ignore_identity=recreated)
        after = dashboard_json_normalized(current_json, ignore_identity=recreated)
        return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))

    def remember_copy(new_id: str) -> None:
        with transaction.atomic():
            DashboardRestore.objects.filter(pk=restore.pk).update(new_looker_id=new_id)
            restore.new_looker_id = new_id
            audit_log(
                action="cleanup.restore_copy_created",
                obj=d,
                actor=restore.requested_by,
                data={"restore_id": restore.pk, "looker_id": new_id},
            )

    restored_json: str | None = None
    if restore.new_looker_id:
        # An earlier attempt of this restore re-created the dashboard: use that copy if it is complete.
        try:
            restored_json = looker.dashboard_get_json(dashboard_id=restore.new_looker_id)
        except ConnectorNotFound:
            restored_json = None
        if restored_json is not None and differences(restored_json, recreated=True):
            looker.dashboard_hard_delete(dashboard_id=restore.new_looker_id)  # a partial copy: start again
            restored_json = None
        method, looker_id = DashboardRestore.Method.RECREATE, restore.new_looker_id
    if restored_json is None:
        try:
            looker.dashboard_get_json(dashboard_id=d.looker_id)
            in_looker = True
        except ConnectorNotFound:
            in_looker = False
        if in_looker:
            looker.dashboard_undelete(dashboard_id=d.looker_id)
            method, looker_id = DashboardRestore.Method.UNDELETE, d.looker_id
        else:
            looker_id = looker.dashboard_recreate(dashboard_json=backup_dashboard_json(), on_created=remember_copy)
            method = DashboardRestore.Method.RECREATE
        restored_json = looker.dashboard_get_json(dashboard_id=looker_id)

    try:
        diff = differences(restored_json, recreated=method == DashboardRestore.Method.RECREATE)
        note = f"restored, but differs from the backup in: {', '.join(diff)}" if diff else ""
    except BackupStoreError as exc:  # undeleted fine, but there is nothing (readable) to compare with
        diff, note = ["(not compared)"], f"restored, not verified: {exc}"
    return _restore_record(restore, method=method, looker_id=looker_id, differences=diff, note=note)


def _restore_record(
    restore: DashboardRestore, *, method: str, looker_id: str, differences: list[str], note: str
) -> DashboardRestore:
    d = restore.dashboard
    now = timezone.now()
    with transaction.atomic():
        restore.status = DashboardRestore.Status.RESTORED
        restore.method = method
        restore.new_looker_id = looker_id if looker_id != d.looker_id else ""
        restore.verified = not differences
        restore.error = note
        restore.finished_at = now
        restore.save(update_fields=["status", "method", "new_looker_id", "verified", "error", "finished_at"])
        old_id = d.looker_id
        if looker_id != d.looker_id:
            # Re-created under a new id: the row follows the dashboard. If an inventory already mirrored the
            # new id, retire that row's id (it has history of its own to keep).
            for twin in LookerDashboard.objects.filter(looker_id=looker_id).exclude(pk=d.pk):
                twin.looker_id = f"{looker_id}~replaced-{twin.pk}"
                twin.missing_in_looker = True
                twin.save(update_fields=["looker_id", "missing_in_looker"])
            d.looker_id = looker_id
        d.deleted = False
        d.deleted_at = None
        d.missing_in_looker = False
        d.save(update_fields=["looker_id", "deleted", "deleted_at", "missing_in_looker"])
        who = restore.requested_by.get_username() if restore.requested_by else "an admin"
        pin = DashboardPin.objects.create(
            dashboard=d,
            reason=f"restored by {who} on {now:%Y-%m-%d}; kept out of the cleanup for a while",
            expires_at=now + timedelta(days=settings.CLEANUP_INACTIVE_DAYS),
            created_by=restore.requested_by,
        )
        audit_log(
            action="cleanup.dashboard_restored",
            obj=d,
            actor=restore.requested_by,
            data={
                "restore_id": restore.pk,
                "method": method,
                "old_looker_id": old_id,
                "looker_id": looker_id,
                "verified": restore.verified,
                "differences": differences,
                "pinned_until": pin.expires_at,
            },
        )
        lineage_governance(
            action="restore", dataset=looker_dashboard(looker_id), actor=restore.requested_by, obj=d,
            details={"restore_id": restore.pk, "method": method, "old_looker_id": old_id},
        )  # fmt: skip
    owner_restore_notice_send(restore=restore)
    return restore


def dashboard_restore_fail(restore: DashboardRestore, error: str) -> DashboardRestore:
    """Record a restore that cannot succeed, with its audit event."""
    with transaction.atomic():
        restore.status = DashboardRestore.Status.FAILED
        restore.error = error
        restore.finished_at = timezone.now()
        restore.save(update_fields=["status", "error", "finished_at"])
        audit_log(
            action="cleanup.restore_failed",
            obj=restore.dashboard,
            actor=restore.requested_by,
            data={"restore_id": restore.pk, "error": error[:1000]},
        )
    return restore


# --- pins and protected folders (admin edits, audited) ------------------------------------------------------


def dashboard_pin_save(*, pin: Any, actor: Any, created: bool) -> None:
    """Save a pin (or protected folder) edited in the admin, with its audit event."""
    with transaction.atomic():
        if created and hasattr(pin, "created_by_id") and not pin.created_by_id:
            pin.created_by = actor
        pin.save()
        audit_log(
            action=f"cleanup.{pin._meta.model_name}_{'created' if created else 'changed'}",
            obj=pin,
            actor=actor,
            data={"reason": getattr(pin, "reason", ""), "expires_at": getattr(pin, "expires_at", None)},
        )


def dashboard_pin_delete(*, pin: Any, actor: Any) -> None:
    """Remove a pin (or protected folder), with its audit event."""
    with transaction.atomic():
        audit_log(action=f"cleanup.{pin._meta.model_name}_deleted", obj=pin, actor=actor, data={})
        pin.delete()

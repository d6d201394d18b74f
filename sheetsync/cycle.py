"""One Sheets sync cycle over every enabled target, writing only the cells that changed.

A cycle, cheapest first:

1. **One Drive changes-feed call per principal** (the service account a target writes as, ``SHEETS_PRINCIPALS``;
   its page token is kept in :class:`SyncCursor`) names the spreadsheets that changed since the last cycle, with
   their Drive versions. Our own writes appear there too: a spreadsheet still at the version our last write left
   is not "changed".
2. Each target's **source** is read and fingerprinted (sha256 of the target's layout and the converted rows).
3. A target whose fingerprint and spreadsheet version both match what it was last synced at is logged
   "no changes", **without reading the sheet**. A no-change cycle therefore costs one request per principal.
4. For each spreadsheet with targets left, in **fair turns between principals** (one spreadsheet per principal at
   a time, ``SHEETS_SYNC_CONCURRENCY`` principals at once, every request under the principal's own per-user quota
   and the project's, which serves waiting principals first come, first served):

   * a target whose sheet did not change since our last write or read is **diffed against the copy kept of it**
     (:class:`SyncTargetCopy`), with no read; the Drive changes feed, read again when the last look is older than
     ``SHEETS_SYNC_RECHECK_AFTER_S`` (one call covers every spreadsheet of the principal), confirms it still has
     not changed right before the write. A changed source on an unchanged sheet thus costs one write;
   * the others are **read** (one values batchGet for all of them), **diffed** by key (:mod:`sheetsync.diff`), and
     their version **checked** (files.get): moved since the read (a person edited), they are re-read and re-diffed
     (at most ``SHEETS_SYNC_MAX_REREADS`` times) so the edit is never overwritten with stale values;
   * the changed cells of all its targets go in **one** values batchUpdate, which also returns what Sheets stored:
     that is the verification. If the write fails or does not verify, the previous values are put back.

   So a changed spreadsheet costs one request when its sheet did not change, three when it did (plus one Drive
   files.get the first time it is seen, and two when its grid must grow).

After our write the spreadsheet's version is recorded as "version at the check + our own changes", and the copy of
each target's range as it now stands. Drive only promises that versions increase, so if a real write moves it
further the next cycle re-reads that sheet once (and writes nothing); it can never hide a person's edit, which
always moves the version past our guess.

Quotas: every Sheets request passes the principal's per-user limiter and the process-wide project limiter; a 429
that outlasts the client's own retries pauses that principal and retries the same step, so no work is lost.

State changes are audited: writes to a sheet, a target marked broken, escalations, admin edits, pause, resume
and repair. Network calls never run inside a transaction, and never in the job's own thread's database work: the
spreadsheets' turns run in worker threads, each target's outcome is recorded by the job's thread in its own
transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from approvals.services import destination_writers_map
from audit.services import audit_log
from connectors.bigquery import BigQueryClient
from connectors.embedded import embedded_bigquery_client
from connectors.errors import (
    ConnectorAuthError,
    ConnectorError,
    ConnectorNotFound,
    ConnectorRateLimited,
    ConnectorRequestError,
)
from connectors.sheets import DriveChanges, SheetsClient, ValueRange, a1_to_grid, grid_to_a1
from orchestration.models import JobRun
from orchestration.registry import JobFailed, JobResult
from orchestration.services import job_run_heartbeat

from .diff import (
    SAMPLE_LIMIT,
    SourceTable,
    TableError,
    TablePlan,
    cells_pack,
    cells_unpack,
    grids_match,
    output_columns,
    sheet_after,
    source_table_prepare,
    table_plan,
    write_ranges,
)
from .models import (
    COMPACT_OUTCOMES,
    SyncCursor,
    SyncEvent,
    SyncOutcome,
    SyncSpreadsheet,
    SyncTarget,
    SyncTargetCopy,
    target_writer,
)
from .selectors import sync_targets_for_cycle
from .sources import SourceError, source_load, source_stamp, source_validate

__all__ = ["CURSOR_NAME", "SyncCycle", "cursor_name", "target_fingerprint"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

CURSOR_NAME = "drive_changes"
# Outcomes as plain strings (the SyncOutcome values) for the engine's bookkeeping.
CHANGED, NO_CHANGES, FAILED, SKIPPED = "changed", "no_changes", "failed", "skipped"
assert {CHANGED, NO_CHANGES, FAILED, SKIPPED} == set(SyncOutcome.values)
FINGERPRINT_VERSION = 1  # bump when the fingerprint's inputs change: every target then re-reads once
GRID_HEADROOM_ROWS = 100
HEARTBEAT_EVERY_S = 5.0


def _layout(target: SyncTarget, *, with_suite: bool = True) -> bytes:
    layout = [FINGERPRINT_VERSION, target.range, target.key_list, target.protected_list, target.row_order]
    if with_suite and target.quality_suite:  # a suite decides which rows are written: a new one re-reads the source
        layout.append(target.quality_suite)
    return json.dumps(layout, separators=(",", ":")).encode() + b"\n"


def target_fingerprint(*, target: SyncTarget, table: SourceTable) -> str:
    """sha256 of what the sheet should hold: the target's layout settings and the converted source rows."""
    return hashlib.sha256(_layout(target) + table.fingerprint_payload()).hexdigest()


def target_stamp(*, target: SyncTarget, raw_sha256: str) -> str:
    """The cheap first check for file sources: the layout and the file's bytes ("" when there is no file)."""
    return hashlib.sha256(_layout(target) + raw_sha256.encode()).hexdigest() if raw_sha256 else ""


def layout_key(target: SyncTarget) -> str:
    """What a stored copy of the target's range depends on besides the Drive version: range, keys, order.

    Not the quality suite: it decides which source rows are written, not how the sheet's cells are laid out, so a
    copy kept before a suite was named still stands for the sheet.
    """
    return hashlib.sha256(_layout(target, with_suite=False)).hexdigest()


def cursor_name(principal: str) -> str:
    """The :class:`SyncCursor` of a principal's changes feed (the default principal keeps the original name)."""
    return f"{CURSOR_NAME}:{principal}" if principal else CURSOR_NAME


def _principal_label(principal: str) -> str:
    return f"principal {principal!r}" if principal else "the default principal"


class _Trashed(Exception):
    """The spreadsheet is in the Drive trash."""


class _Removed(Exception):
    """The changes feed says the spreadsheet was deleted, or is no longer shared with the principal."""


class _Refused(Exception):
    """Sheets refused a write as a whole (4xx): nothing was written."""


class _WriteFailed(Exception):
    """A write failed or did not verify; the message says whether the previous values were put back."""


class _Moved(Exception):
    """The spreadsheet changed while the write waited (a quota pause, a resize): nothing was written."""


class _Stop(Exception):
    """The job's thread asked the workers to stop (the run was taken over)."""


@dataclass(frozen=True)
class _Copy:
    """A loaded :class:`SyncTargetCopy`: the range's cells at ``drive_version``."""

    drive_version: int
    layout: str
    width: int
    grid_rows: int
    values: bytes


@dataclass(eq=False)
class _Work:
    """One target's way through a cycle."""

    target: SyncTarget
    started: float
    table: SourceTable | None = None
    source_label: str = ""
    source_ms: int = 0
    fingerprint: str = ""
    stamp: str = ""
    source_changed: bool = False
    sheet_changed: bool = False
    copy: _Copy | None = None
    from_copy: bool = False
    read: ValueRange | None = None
    plan: TablePlan | None = None
    ranges: list[tuple[str, list[list[Any]]]] = field(default_factory=list)
    outcome: str = ""
    error: str = ""
    broken: bool = False
    synced_version: int | None = None
    # What the range holds after this cycle, to keep as its copy: (cells, grid rows, columns covered).
    copy_out: tuple[list[list[Any]], int, int] | None = None

    @property
    def width(self) -> int:
        assert self.table is not None
        return len(output_columns(self.table.columns, self.target.protected_list))

    @property
    def read_width(self) -> int:
        return max(self.width, self.target.written_width)

    @property
    def read_range(self) -> str:
        anchor = self.target.anchor
        assert anchor.row is not None and anchor.col is not None
        return grid_to_a1(anchor.sheet, anchor.row, anchor.col, None, anchor.col + self.read_width - 1)

    def copy_usable(self, version: int | None) -> bool:
        """Whether the kept copy stands for the range at ``version`` (same layout, wide enough)."""
        copy = self.copy
        return (
            copy is not None
            and version is not None
            and copy.drive_version == version == self.target.synced_version
            and copy.layout == layout_key(self.target)
            and copy.width >= self.read_width
        )

    def copy_read(self) -> ValueRange:
        """The kept copy as if it had just been read (the range resolved to the grid's last row)."""
        assert self.copy is not None
        anchor = self.target.anchor
        assert anchor.row is not None and anchor.col is not None
        last_row = max(self.copy.grid_rows, anchor.row)
        a1 = grid_to_a1(anchor.sheet, anchor.row, anchor.col, last_row, anchor.col + self.read_width - 1)
        return ValueRange(range=a1, values=cells_unpack(self.copy.values))

    def fail(self, message: str, *, broken: bool = False) -> None:
        self.outcome = FAILED
        self.error = message
        self.broken = broken

    @property
    def quarantine_note(self) -> str:
        if self.table is None or not self.table.quarantined:
            return ""
        first = self.table.quarantined[0]
        return (
            f"{len(self.table.quarantined)} source row(s) quarantined (not in the sheet); first: row {first.row}: "
            f"{first.reason}"
        )


@dataclass
class _Group:
    """Bookkeeping of one spreadsheet's turn."""

    spreadsheet_id: str
    started: float
    requests_before: int
    version_before: int | None = None
    version_after: int | None = None
    rereads: int = 0
    requests: int = 0
    duration_ms: int = 0
    grown: bool = False
    read_sheet: bool = False  # something was read from the sheet in this turn (else planned from copies only)
    grids: dict[str, int] = field(default_factory=dict)  # tab -> grid rows, when this turn learned or grew them
    # After our write: targets that matched the sheet at the first version still match at the second.
    bump: tuple[int, int] | None = None


@dataclass(eq=False)
class _Watch:
    """A Drive changes feed and what it said since the cycle started: one per principal, or one for all of them
    (``SHEETS_SYNC_FEED_PRINCIPAL``). The workers of the principals it serves poll it under its lock."""

    principal: str
    client: SheetsClient | None = None
    error: str = ""
    token: str = ""
    token_moved: bool = False  # polled during the cycle: the new token must be saved
    checked_at: float = float("-inf")  # time.monotonic() of the last feed read
    # spreadsheet -> (version or None, trashed, removed), the latest a mid-cycle poll saw
    seen: dict[str, tuple[int | None, bool, bool]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def label(self) -> str:
        return _principal_label(self.principal)


@dataclass(eq=False)
class _Lane:
    """One principal's share of the cycle: its client, its changes feed, its turns (only the worker serving the
    principal touches it, one at a time)."""

    principal: str
    client: SheetsClient | None = None
    error: str = ""
    watch: _Watch | None = None
    counters: Counter[str] = field(default_factory=Counter)
    groups: deque[tuple[SyncSpreadsheet, list[_Work]]] = field(default_factory=deque)

    @property
    def label(self) -> str:
        return _principal_label(self.principal)


class _FairScheduler:
    """Hands spreadsheets to the workers in round-robin turns over the principals, one spreadsheet per principal at
    a time (a principal's requests then follow one another, under its own quota); ``take()`` returns None when
    nothing is left or the run is stopping."""

    def __init__(self, lanes: Sequence[_Lane], stop: threading.Event) -> None:
        self._turns = deque(lane for lane in lanes if lane.groups)
        self._busy: set[str] = set()
        self._cond = threading.Condition()
        self._stop = stop

    def take(self) -> tuple[_Lane, SyncSpreadsheet, list[_Work]] | None:
        with self._cond:
            while True:
                if self._stop.is_set() or not any(lane.groups for lane in self._turns):
                    return None
                for _ in range(len(self._turns)):
                    lane = self._turns[0]
                    self._turns.rotate(-1)
                    if lane.principal not in self._busy and lane.groups:
                        self._busy.add(lane.principal)
                        state, works = lane.groups.popleft()
                        return lane, state, works
                self._cond.wait(timeout=1.0)  # every principal with work left is being served

    def done(self, lane: _Lane) -> None:
        with self._cond:
            self._busy.discard(lane.principal)
            self._cond.notify_all()


class SyncCycle:
    """One cycle (see the module docstring); ``run()`` once, then ``close()``.

    ``clients(principal=...)`` makes the Sheets client of a principal ("" is the default credentials), once per
    principal with targets in the cycle.
    """

    def __init__(
        self,
        *,
        job_run: JobRun | None,
        dry_run: bool,
        force: bool,
        clients: Callable[..., SheetsClient],
        bigquery: Callable[[], BigQueryClient] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.job_run = job_run
        self.dry_run = dry_run
        self.force = force
        self._client_factory = clients
        self._bigquery_factory = bigquery or embedded_bigquery_client
        self._bigquery: BigQueryClient | None = None
        self._sleep = sleep
        self.counters: Counter[str] = Counter()
        self.spreadsheets: dict[str, SyncSpreadsheet] = {}
        self.lanes: dict[str, _Lane] = {}
        self.watches: dict[str, _Watch] = {}
        self.failures: list[str] = []
        self.plan_lines: list[str] = []
        self.now = timezone.now()
        # Who writes each registered sheet: a target on a sheet another writer holds is refused.
        self.destinations = destination_writers_map()
        self._stop = threading.Event()
        self._last_heartbeat = 0.0

    def clients(self) -> list[SheetsClient]:
        """Every Sheets client of the cycle, once each."""
        found = {
            id(c): c for c in [*(x.client for x in self.lanes.values()), *(w.client for w in self.watches.values())]
        }
        return [c for c in found.values() if c is not None]

    def close(self) -> None:
        """Release the clients' connections."""
        for client in self.clients():
            client.close()
        if self._bigquery is not None:
            self._bigquery.close()

    # ---- plumbing -----------------------------------------------------------------------------------------

    def bigquery(self) -> BigQueryClient:
        """The BigQuery client, made on first use (most cycles have no BigQuery source)."""
        if self._bigquery is None:
            self._bigquery = self._bigquery_factory()
        return self._bigquery

    def call(self, lane: _Lane, fn: Callable[[], T]) -> T:
        """One Sheets/Drive step; when the client's own retries end on a 429, pause (doubling) and retry the
        same step, up to ``SHEETS_SYNC_RATE_LIMIT_ROUNDS`` rounds."""
        rounds = max(1, int(settings.SHEETS_SYNC_RATE_LIMIT_ROUNDS))
        for attempt in range(1, rounds + 1):
            try:
                return fn()
            except ConnectorRateLimited as exc:
                if attempt == rounds:
                    raise
                wait = max(float(settings.SHEETS_SYNC_RATE_LIMIT_PAUSE_S) * 2 ** (attempt - 1), exc.retry_after or 0)
                lane.counters["rate_limit_pauses"] += 1
                logger.warning("Sheets quota exhausted (%s); pausing %.1fs, then retrying the same step", exc, wait)
                self._sleep(wait)
        raise AssertionError("unreachable")

    def heartbeat(self, progress: str, *, every_s: float = 0.0) -> None:
        """Tell the job framework this run is alive (it raises if another run took over). Job thread only."""
        now = time.monotonic()
        if every_s and now - self._last_heartbeat < every_s:
            return
        self._last_heartbeat = now
        if self.job_run is not None and self.job_run.status == JobRun.Status.RUNNING:
            job_run_heartbeat(job_run=self.job_run, progress=progress)

    def version(self, lane: _Lane, spreadsheet_id: str) -> int:
        """The spreadsheet's Drive version now (one files.get); ``_Trashed`` when it is in the trash."""
        assert lane.client is not None
        client = lane.client
        found = self.call(lane, lambda: client.drive_version(spreadsheet_id=spreadsheet_id))
        if found.trashed:
            raise _Trashed(spreadsheet_id)
        return found.version

    def feed_version(self, lane: _Lane, spreadsheet_id: str, known: int | None) -> int | None:
        """The spreadsheet's Drive version per the changes feed, read again first when the last look is older than
        ``SHEETS_SYNC_RECHECK_AFTER_S`` (one call covers every spreadsheet the feed watches, for every principal it
        serves). ``known`` is the version the cycle knew; ``_Trashed``/``_Removed`` when the feed says so."""
        watch = lane.watch
        assert watch is not None
        with watch.lock:
            if time.monotonic() - watch.checked_at > float(settings.SHEETS_SYNC_RECHECK_AFTER_S):
                self.poll(lane, watch)
            version, trashed, removed = watch.seen.get(spreadsheet_id, (known, False, False))
        if removed:
            raise _Removed(spreadsheet_id)
        if trashed:
            raise _Trashed(spreadsheet_id)
        return version

    def poll(self, lane: _Lane, watch: _Watch) -> None:
        """Read the changes feed from its current token (its lock held); remember what changed (applied to the
        spreadsheets' state by the job's thread at the end, before the new token is saved)."""
        assert watch.client is not None
        client, token = watch.client, watch.token
        changes = self.call(lane, lambda: client.drive_changes(token=token))
        lane.counters["feed_polls"] += 1
        watch.checked_at = time.monotonic()
        watch.token, watch.token_moved = changes.new_token, True
        for sid in changes.changed_ids:
            watch.seen[sid] = (changes.versions.get(sid), sid in changes.trashed_ids, sid in changes.removed_ids)

    # ---- the run ------------------------------------------------------------------------------------------

    def run(self, refs: Sequence[str] | None) -> JobResult:
        """The whole cycle over the enabled targets (or those named in ``refs``); see the module docstring."""
        targets = list(sync_targets_for_cycle(refs=refs))
        if not targets:
            which = f" among {', '.join(refs)}" if refs else ""
            return JobResult(summary=f"no enabled sync targets{which}: nothing to do", counters={"targets": 0})
        feed_principal = settings.SHEETS_SYNC_FEED_PRINCIPAL
        for principal in sorted({t.principal for t in targets}):
            lane = self.lanes[principal] = _Lane(principal)
            try:
                lane.client = self._client_factory(principal=principal)
            except (ValueError, ConnectorError) as exc:
                lane.error = f"no Sheets client for {lane.label}: {exc}"
            watched_by = principal if feed_principal is None else feed_principal
            if watched_by not in self.watches:
                watch = self.watches[watched_by] = _Watch(watched_by)
                its_lane = self.lanes.get(watched_by)
                try:
                    watch.client = (
                        its_lane.client if its_lane is not None else self._client_factory(principal=watched_by)
                    )
                except (ValueError, ConnectorError) as exc:
                    watch.error = f"no Sheets client for the changes feed of {watch.label}: {exc}"
                if watch.client is None and not watch.error:
                    watch.error = its_lane.error if its_lane is not None else f"no Sheets client for {watch.label}"
            lane.watch = self.watches[watched_by]
        requests_before = self.requests()
        self.heartbeat("reading the Drive changes feed")
        self.changes_feed(targets)
        self.counters["feed_requests"] = self.requests() - requests_before

        quiet: list[_Work] = []
        skipped: list[_Work] = []
        dirty: dict[str, list[_Work]] = {}
        writer: dict[str, str] = {}  # spreadsheet -> the principal of its first target
        for index, target in enumerate(targets, start=1):
            if index % 50 == 0:
                self.heartbeat(f"reading sources: {index}/{len(targets)}", every_s=HEARTBEAT_EVERY_S)
            work = _Work(target=target, started=time.monotonic())
            lane = self.lanes[target.principal]
            owner = writer.setdefault(target.spreadsheet_id, target.principal)
            try:
                if lane.error:
                    work.fail(lane.error)
                elif owner != target.principal:
                    work.fail(
                        f"spreadsheet {target.spreadsheet_id} is written as {_principal_label(owner)} by another "
                        f"target, and this one is {lane.label}: every target on one spreadsheet must use the same "
                        "principal"
                    )
                if work.outcome or not self.triage(work):
                    if work.outcome == SKIPPED:
                        skipped.append(work)
                    else:
                        self.record(work, None)
                    continue
            except Exception as exc:  # noqa: BLE001 - one target's bug must not stop the others
                logger.exception("sync target %s: unexpected error while reading its source", target)
                work.fail(f"internal error while reading the source: {type(exc).__name__}: {exc}")
                self.record(work, None)
                continue
            if work.source_changed or work.sheet_changed or self.force:
                dirty.setdefault(target.spreadsheet_id, []).append(work)
            else:
                quiet.append(work)
        self.record_compact(quiet, NO_CHANGES)
        self.record_compact(skipped, SKIPPED)

        self.load_copies([w for works in dirty.values() for w in works])
        for spreadsheet_id, works in dirty.items():
            lane = self.lanes[works[0].target.principal]
            lane.groups.append((self.spreadsheets[spreadsheet_id], works))
        self.run_turns(len(dirty))
        self.record_polls()
        for lane in self.lanes.values():
            self.counters.update(lane.counters)
        self.counters["sheets_requests"] = self.requests() - requests_before
        self.counters["targets"] = len(targets)
        self.counters["spreadsheets_dirty"] = len(dirty)
        self.counters["principals"] = len(self.lanes)
        return self.result()

    def requests(self) -> int:
        """Sheets and Drive requests so far, every principal's."""
        return sum(client.request_count for client in self.clients())

    def changes_feed(self, targets: list[SyncTarget]) -> None:
        """One changes-feed call per feed (per principal, or one for all); apply them to every spreadsheet the sync
        tracks and keep the new tokens. ``JobFailed`` when no feed could be read (a feed that fails fails the
        targets of the principals it serves only)."""
        feeds: list[tuple[_Watch, DriveChanges | None, bool]] = []
        lane = _Lane("")  # the feed's own bookkeeping (rate-limit pauses) before the turns
        for watch in self.watches.values():
            if watch.error:
                continue
            client = watch.client
            assert client is not None
            cursor = SyncCursor.objects.filter(name=cursor_name(watch.principal)).first()
            changes = None
            reset = False
            try:
                if cursor is not None:
                    try:
                        changes = self.call(lane, partial(client.drive_changes, token=cursor.token))
                    except ConnectorRequestError as exc:
                        logger.warning(
                            "Drive refused the changes-feed token of %s (%s): every sheet is checked afresh",
                            watch.label,
                            exc,
                        )
                        reset = True
                token = changes.new_token if changes is not None else self.call(lane, client.drive_changes_start_token)
            except ConnectorError as exc:
                watch.error = (
                    f"the Drive changes feed of {watch.label} could not be read, so its targets were not synced: {exc}"
                )
                continue
            watch.token, watch.checked_at = token, time.monotonic()
            feeds.append((watch, changes, reset))
        self.counters.update(lane.counters)
        for principal_lane in self.lanes.values():
            if principal_lane.watch is not None and principal_lane.watch.error and not principal_lane.error:
                principal_lane.error = principal_lane.watch.error
        if not feeds:
            first = next((w.error for w in self.watches.values() if w.error), "no changes feed")
            raise JobFailed(first.replace("its targets were", "no target was"))

        selected = {t.spreadsheet_id for t in targets}
        changed = {sid for _, changes, _ in feeds if changes is not None for sid in changes.changed_ids}
        tracked = selected | (changed & set(SyncTarget.objects.values_list("spreadsheet_id", flat=True)))
        states = {s.spreadsheet_id: s for s in SyncSpreadsheet.objects.filter(spreadsheet_id__in=tracked)}
        new = [SyncSpreadsheet(spreadsheet_id=sid) for sid in sorted(tracked - set(states))]
        states.update({s.spreadsheet_id: s for s in new})
        touched: dict[str, SyncSpreadsheet] = {}
        reset = any(reset for _, _, reset in feeds)
        if reset:
            for state in states.values():
                state.drive_version = None  # every known version is unreliable now: each sheet is checked afresh
            self.counters["feed_resets"] += 1
        for _lane, changes, _reset in feeds:
            if changes is None or reset:
                continue
            for sid in sorted(changes.changed_ids & set(states)):
                state = states[sid]
                if state.drive_version is None or changes.versions.get(sid) != state.drive_version:
                    self.counters["spreadsheets_changed"] += 1  # not just our own last write
                if sid in changes.removed_ids:
                    state.deleted_at = state.deleted_at or self.now
                    state.drive_version = None
                else:
                    state.drive_version = changes.versions.get(sid)
                    state.trashed = sid in changes.trashed_ids
                    state.deleted_at = None
                if state.pk is not None:
                    state.updated_at = self.now  # bulk_update does not apply auto_now
                    touched[sid] = state
        self.spreadsheets = states
        if self.dry_run:
            return
        with transaction.atomic():
            if reset:
                SyncSpreadsheet.objects.update(drive_version=None)
            for state in new:
                saved, _ = SyncSpreadsheet.objects.get_or_create(
                    spreadsheet_id=state.spreadsheet_id,
                    defaults={
                        "drive_version": state.drive_version,
                        "trashed": state.trashed,
                        "deleted_at": state.deleted_at,
                    },
                )
                self.spreadsheets[state.spreadsheet_id] = saved
            if touched:
                SyncSpreadsheet.objects.bulk_update(
                    list(touched.values()), ["drive_version", "trashed", "deleted_at", "updated_at"]
                )
            for watch, _changes, _reset in feeds:
                SyncCursor.objects.update_or_create(name=cursor_name(watch.principal), defaults={"token": watch.token})

    def load_copies(self, works: list[_Work]) -> None:
        """Attach the kept copy of each of these targets' ranges (whether it may stand for the sheet is decided
        in the spreadsheet's turn, against the version then known)."""
        if self.force or not works:
            return
        by_target = {w.target.pk: w for w in works}
        rows = SyncTargetCopy.objects.filter(target_id__in=list(by_target)).values_list(
            "target_id", "drive_version", "layout", "width", "grid_rows", "values"
        )
        for target_id, version, layout, width, grid_rows, values in rows.iterator(chunk_size=200):
            by_target[target_id].copy = _Copy(version, layout, width, grid_rows, bytes(values))

    def triage(self, work: _Work) -> bool:
        """Decide whether a target goes to its spreadsheet's turn; False when its outcome is already known."""
        target = work.target
        if target.broken:
            work.outcome = SKIPPED
            work.error = f"broken: {target.broken_reason}"
            return False
        state = self.spreadsheets[target.spreadsheet_id]
        if state.deleted_at is not None:
            work.fail(
                f"spreadsheet {target.spreadsheet_id} was deleted (or is no longer shared with the sync's account)",
                broken=True,
            )
            return False
        if state.trashed:
            work.fail(f"spreadsheet {target.spreadsheet_id} is in the Drive trash: restore it or pause this target")
            return False
        try:
            target.anchor  # noqa: B018 - validates the range before any request
        except ValueError as exc:
            work.fail(f"the target's range {target.range!r} is not usable: {exc}")
            return False
        writer = self.destinations.get((target.spreadsheet_id, target.anchor.sheet))
        if writer and writer != target_writer(target):  # one sheet, one writer (e.g. the sales dashboard)
            work.fail(f"sheet {target.anchor.sheet!r} of spreadsheet {target.spreadsheet_id} is written by {writer}")
            return False
        work.sheet_changed = (
            target.synced_version is None or state.drive_version is None or target.synced_version != state.drive_version
        )
        started = time.monotonic()
        try:
            if not (work.sheet_changed or self.force) and target.source_stamp:
                stamp = target_stamp(target=target, raw_sha256=source_stamp(target=target))
                if stamp == target.source_stamp:  # the very same file: same rows, nothing to convert
                    work.fingerprint, work.stamp = target.source_fingerprint, stamp
                    return True
            loaded = source_validate(target=target, loaded=source_load(target=target, bigquery=self.bigquery))
            table = source_table_prepare(columns=loaded.columns, rows=loaded.rows, key_columns=target.key_list)
        except (SourceError, TableError) as exc:
            work.fail(str(exc))
            return False
        work.source_ms = int((time.monotonic() - started) * 1000)
        work.table = table
        work.source_label = loaded.label
        work.fingerprint = target_fingerprint(target=target, table=table)
        work.stamp = target_stamp(target=target, raw_sha256=loaded.raw_sha256)
        work.source_changed = work.fingerprint != target.source_fingerprint
        return True

    # ---- the spreadsheets' turns ------------------------------------------------------------------------------

    def run_turns(self, total: int) -> None:
        """Every dirty spreadsheet's turn, in fair turns between principals on worker threads; the outcomes are
        recorded here, in the job's thread, as the turns finish."""
        if not total:
            return
        lanes = [lane for lane in self.lanes.values() if lane.groups]
        workers = max(1, min(int(settings.SHEETS_SYNC_CONCURRENCY), len(lanes)))
        scheduler = _FairScheduler(lanes, self._stop)
        finished: queue.Queue[tuple[_Lane, SyncSpreadsheet, list[_Work], _Group]] = queue.Queue()

        def worker() -> None:
            while (turn := scheduler.take()) is not None:
                lane, state, works = turn
                try:
                    group = self.sync_spreadsheet(lane, state, works)
                finally:
                    scheduler.done(lane)
                finished.put((lane, state, works, group))

        done = 0
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sheets-sync") as pool:
            futures = [pool.submit(worker) for _ in range(workers)]
            try:
                while done < total:
                    try:
                        lane, state, works, group = finished.get(timeout=1.0)
                    except queue.Empty:
                        if all(f.done() for f in futures) and finished.empty():
                            break
                        self.heartbeat(f"spreadsheets: {done}/{total} done", every_s=HEARTBEAT_EVERY_S)
                        continue
                    done += 1
                    self.finish_spreadsheet(state, works, group)
                    self.heartbeat(f"spreadsheets: {done}/{total} done", every_s=HEARTBEAT_EVERY_S)
            except BaseException:
                self._stop.set()  # e.g. another run took over: let the workers end after their current turn
                raise
        for future in futures:
            future.result()  # a worker's own bug surfaces here
        if done < total:
            raise RuntimeError(f"only {done} of {total} spreadsheets were handled")

    def sync_spreadsheet(self, lane: _Lane, state: SyncSpreadsheet, works: list[_Work]) -> _Group:
        """Read (or take the copies), diff, check, write and verify the targets of one spreadsheet. Network only
        (a worker thread): the outcome is recorded by :meth:`finish_spreadsheet`."""
        assert lane.client is not None
        spreadsheet_id = state.spreadsheet_id
        group = _Group(spreadsheet_id, started=time.monotonic(), requests_before=lane.client.request_count)
        try:
            self.sync_group(lane, state, works, group)
        except (ConnectorNotFound, _Removed) as exc:
            detail = f" ({exc})" if isinstance(exc, ConnectorNotFound) else ""
            for work in works:
                if not work.outcome:
                    work.fail(
                        f"spreadsheet {spreadsheet_id} was not found: deleted, or no longer shared with the sync's "
                        f"account{detail}",
                        broken=True,
                    )
            state.deleted_at = self.now
            state.drive_version = None
        except _Trashed:
            state.trashed = True
            for work in works:
                if not work.outcome:
                    work.fail(f"spreadsheet {spreadsheet_id} is in the Drive trash: restore it or pause this target")
        except ConnectorError as exc:
            for work in works:
                if not work.outcome:
                    work.fail(f"Sheets: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug on one spreadsheet must not stop the others
            logger.exception("sheets sync: unexpected error on spreadsheet %s", spreadsheet_id)
            for work in works:
                if not work.outcome:
                    work.fail(f"internal error: {type(exc).__name__}: {exc}")
        group.requests = lane.client.request_count - group.requests_before
        group.duration_ms = int((time.monotonic() - group.started) * 1000)
        return group

    def finish_spreadsheet(self, state: SyncSpreadsheet, works: list[_Work], group: _Group) -> None:
        """Record one spreadsheet's turn: its state, then every target's outcome (the job's thread)."""
        if group.read_sheet:
            self.counters["spreadsheets_read"] += 1
        self.counters["targets_diffed_without_reading"] += sum(1 for w in works if w.from_copy)
        if not self.dry_run:
            self.record_group_state(state, works, group)
        for work in works:
            self.record(work, group)

    def record_polls(self) -> None:
        """After the turns: what the mid-cycle polls of the changes feed saw goes into the spreadsheets' state (a
        person's edit after our write must make the next cycle read), then the principals' new tokens are saved."""
        watches = [watch for watch in self.watches.values() if watch.token_moved]
        if self.dry_run or not watches:
            return
        seen: dict[str, tuple[int | None, bool, bool]] = {}
        for watch in watches:
            seen.update(watch.seen)
        known = set(SyncTarget.objects.filter(spreadsheet_id__in=list(seen)).values_list("spreadsheet_id", flat=True))
        with transaction.atomic():
            states = {
                s.spreadsheet_id: s
                for s in SyncSpreadsheet.objects.select_for_update().filter(spreadsheet_id__in=sorted(known))
            }
            for sid in sorted(known):
                version, trashed, removed = seen[sid]
                state = states.get(sid) or SyncSpreadsheet(spreadsheet_id=sid)
                if removed:
                    state.deleted_at, state.drive_version = state.deleted_at or self.now, None
                else:
                    state.trashed = trashed
                    # Only forward: our own write, recorded after the poll that saw the sheet before it, is newer.
                    if version is not None and state.drive_version is not None and version > state.drive_version:
                        state.drive_version = version
                        self.counters["spreadsheets_changed_during_the_cycle"] += 1
                state.save()
            for watch in watches:
                SyncCursor.objects.update_or_create(name=cursor_name(watch.principal), defaults={"token": watch.token})

    def sync_group(self, lane: _Lane, state: SyncSpreadsheet, works: list[_Work], group: _Group) -> None:
        """Plan (from the copies, else a read) -> diff -> version check (re-read while it moved) -> grow grids ->
        one write -> bookkeeping."""
        spreadsheet_id = state.spreadsheet_id
        if self._stop.is_set():
            raise _Stop
        if state.drive_version is None:
            state.drive_version = self.version(lane, spreadsheet_id)
        # A poll of the changes feed (for an earlier spreadsheet of this principal) may have seen this one move.
        assert lane.watch is not None
        with lane.watch.lock:
            polled = spreadsheet_id in lane.watch.seen
        seen = self.feed_version(lane, spreadsheet_id, state.drive_version) if polled else None
        copies = not self.force
        if seen is not None and seen != state.drive_version:
            state.drive_version, copies = seen, False
            for work in works:
                work.sheet_changed = True
        expected = state.drive_version
        group.version_before = expected
        live = list(works)
        while True:
            live, resized = self.read_and_plan(lane, spreadsheet_id, live, group, copies=copies, version=expected)
            if resized:  # our own resize moved the version: start again from the new one
                expected = state.drive_version = self.version(lane, spreadsheet_id)
                group.version_before = expected
                copies = False
                continue
            if not live:
                return
            writers = [w for w in live if w.plan is not None and w.plan.writes]
            if not writers or self.dry_run:
                for work in live:
                    work.outcome = CHANGED if work in writers else NO_CHANGES
                    work.synced_version = expected
                    if work not in writers:
                        self.keep_copy(work, group, written=False)
                group.version_after = expected
                return
            assert lane.client is not None
            lane.client.prepay("write")  # any quota wait before the check, none between the check and the write
            seen = None if group.read_sheet else self.feed_version(lane, spreadsheet_id, expected)
            if seen is None:  # something was read in this turn (or the feed gave no version): ask for it now
                check = self.version(lane, spreadsheet_id)
                checked_at = time.monotonic()
            else:  # planned from the copies only: the changes feed says whether the sheet is still as we left it
                check, checked_at = seen, lane.watch.checked_at
            if check == expected:
                break
            # A person (or another program) changed the spreadsheet after our read (or our last write): diff again
            # from fresh values, so their edit is kept rather than overwritten.
            group.rereads += 1
            state.drive_version = check
            copies = False
            for work in live:
                work.sheet_changed = True
            if group.rereads > int(settings.SHEETS_SYNC_MAX_REREADS):
                for work in live:
                    work.outcome = SKIPPED
                    work.error = (
                        f"the sheet kept changing while it was read ({group.rereads} reads): left for the next cycle"
                    )
                return
            expected = check
            group.version_before = expected

        own_changes = self.grow_grids(lane, spreadsheet_id, writers, group)
        writers = [w for w in writers if not w.outcome]  # a tab may have turned out to be missing
        if not writers:
            for work in live:
                if not work.outcome:
                    work.outcome = NO_CHANGES
                    work.synced_version = expected + own_changes
                    self.keep_copy(work, group, written=False)
            state.drive_version = group.version_after = expected + own_changes
            if own_changes:
                group.bump = (expected, expected + own_changes)
            return
        for work in writers:
            anchor = work.target.anchor
            assert work.plan is not None and anchor.row is not None and anchor.col is not None and anchor.sheet
            work.ranges = write_ranges(work.plan.writes, sheet=anchor.sheet, row0=anchor.row, col0=anchor.col)
        unknown = False
        try:
            self.write(
                lane,
                spreadsheet_id,
                writers,
                expected=expected + own_changes,
                checked_at=checked_at,
                recheck=own_changes > 0,
            )
            own_changes += 1
            written = list(writers)
        except _Refused as exc:
            written = []
            if len(writers) == 1:
                writers[0].fail(f"Sheets refused the write (nothing was written): {exc}")
            else:
                # The batch was refused as a whole: write each target on its own so one bad range cannot hold
                # back the others.
                for work in writers:
                    try:
                        self.write(lane, spreadsheet_id, [work], expected=expected + own_changes, checked_at=checked_at)
                        own_changes += 1
                        written.append(work)
                    except _Refused as solo:
                        work.fail(f"Sheets refused the write (nothing was written): {solo}")
                    except _WriteFailed as solo:
                        work.fail(str(solo))
                        unknown = True  # a write and its restore moved the version by an unknown amount
                    except _Moved as solo:
                        work.outcome, work.error = SKIPPED, str(solo)
                        unknown = True
        except _Moved as exc:
            # A person edited while the write waited: write nothing over it; the next cycle re-reads and re-diffs.
            for work in live:
                if not work.outcome:
                    work.outcome, work.error = SKIPPED, str(exc)
            state.drive_version = None
            group.version_after = None
            return
        except _WriteFailed as exc:
            for work in writers:
                work.fail(str(exc))
            for work in live:
                if not work.outcome:
                    work.outcome = NO_CHANGES
                    work.synced_version = expected
            state.drive_version = None  # our write and restore moved it by an unknown amount: the feed will say
            group.version_after = None
            return
        new_version = expected + own_changes
        for work in live:
            if work.outcome == FAILED:
                continue
            work.outcome = CHANGED if work in written else NO_CHANGES
            work.synced_version = new_version
            self.keep_copy(work, group, written=work in written)
        if unknown:
            state.drive_version = None  # the next changes feed tells the real version
            for work in live:
                work.copy_out = None
            return
        state.drive_version = new_version
        group.version_after = new_version
        if new_version != expected:
            group.bump = (expected, new_version)

    def keep_copy(self, work: _Work, group: _Group, *, written: bool) -> None:
        """What the target's range holds now (what was read or copied, plus what was written and verified): the
        copy the next cycle diffs against if the sheet has not changed by then."""
        if work.read is None or work.plan is None or self.dry_run:
            return
        anchor = work.target.anchor
        assert anchor.sheet is not None and anchor.row is not None
        grid_rows: int | None = group.grids.get(anchor.sheet)
        if grid_rows is None:
            try:
                grid_rows = a1_to_grid(work.read.range).row2
            except ValueError:
                grid_rows = None
        if grid_rows is None:
            return  # not known: the next cycle reads
        values = sheet_after(work.read.values, work.plan.writes) if written else [list(r) for r in work.read.values]
        work.copy_out = (values, grid_rows, work.read_width)

    def read_and_plan(
        self, lane: _Lane, spreadsheet_id: str, works: list[_Work], group: _Group, *, copies: bool, version: int | None
    ) -> tuple[list[_Work], bool]:
        """Plan each work against its kept copy when that stands for the sheet at ``version`` (``copies``), else
        against a read (one batchGet for all of them) and diff; returns the works with a plan, and whether a grid
        had to grow first (then nothing was planned)."""
        assert lane.client is not None
        client = lane.client
        live = [w for w in works if not w.outcome]
        if not live:
            return [], False
        reads: list[tuple[_Work, ValueRange]] = []
        to_read: list[_Work] = []
        for work in live:
            work.from_copy = False
            if copies and work.copy_usable(version):
                try:
                    reads.append((work, work.copy_read()))
                    work.from_copy = True
                    continue
                except ValueError:
                    logger.warning("sync target %s: its stored copy is unreadable; reading the sheet", work.target)
            to_read.append(work)
        if to_read:
            group.read_sheet = True
            try:
                found = self.call(
                    lane,
                    lambda: client.values_batch_get(
                        spreadsheet_id=spreadsheet_id,
                        ranges=[w.read_range for w in to_read],
                        value_render_option="UNFORMATTED_VALUE",
                    ),
                )
                reads.extend(zip(to_read, found, strict=True))
            except ConnectorRequestError as exc:
                if "exceeds grid limits" in str(exc) and not group.grown:
                    group.grown = True
                    if self.grow_for_read(lane, spreadsheet_id, to_read, group):
                        return [w for w in live if not w.outcome], True
                if "exceeds grid limits" in str(exc):
                    for work in to_read:
                        if not work.outcome:
                            work.fail(self._read_error(work, exc))
                    return [w for w, _ in reads], False
                if len(to_read) == 1:
                    to_read[0].fail(self._read_error(to_read[0], exc))
                else:
                    for work in to_read:  # one bad range (a missing tab) must not hold back the others
                        try:
                            one = self.call(
                                lane,
                                partial(
                                    client.values_get,
                                    spreadsheet_id=spreadsheet_id,
                                    range=work.read_range,
                                    value_render_option="UNFORMATTED_VALUE",
                                ),
                            )
                            reads.append((work, one))
                        except ConnectorRequestError as solo:
                            work.fail(self._read_error(work, solo))
        planned: list[_Work] = []
        for work, value_range in reads:
            assert work.table is not None
            work.read = value_range
            try:
                work.plan = table_plan(
                    source=work.table,
                    protected=work.target.protected_list,
                    current=value_range.values,
                    read_width=work.read_width,
                    order=work.target.row_order,
                )
            except TableError as exc:
                work.fail(f"{work.target.range}: {exc}")
                continue
            planned.append(work)
        return planned, False

    @staticmethod
    def _read_error(work: _Work, exc: ConnectorError) -> str:
        sheet = work.target.anchor.sheet
        return f"could not read {work.read_range} (is there a sheet named {sheet!r}?): {exc}"

    def grow_for_read(self, lane: _Lane, spreadsheet_id: str, works: list[_Work], group: _Group) -> bool:
        """The read range runs past a grid: grow the grids to fit the tables (True when one grew)."""
        needs: dict[str, tuple[int, int]] = {}
        for work in works:
            anchor = work.target.anchor
            assert anchor.sheet and anchor.row is not None and anchor.col is not None and work.table is not None
            rows = anchor.row + len(work.table.rows) + GRID_HEADROOM_ROWS
            cols = anchor.col + work.read_width - 1
            have = needs.get(anchor.sheet, (0, 0))
            needs[anchor.sheet] = (max(have[0], rows), max(have[1], cols))
        return self.ensure_grids(lane, spreadsheet_id, needs, works, group) > 0

    def grow_grids(self, lane: _Lane, spreadsheet_id: str, writers: list[_Work], group: _Group) -> int:
        """Grow grids the writes would run past (known from the read's resolved range); our changes count."""
        needs: dict[str, tuple[int, int]] = {}
        for work in writers:
            assert work.plan is not None and work.read is not None
            anchor = work.target.anchor
            assert anchor.sheet and anchor.row is not None
            try:
                grid_rows = a1_to_grid(work.read.range).row2
            except ValueError:
                grid_rows = None
            last_row = anchor.row + max(r for r, _, _ in work.plan.writes)
            if grid_rows is not None and last_row > grid_rows:
                have = needs.get(anchor.sheet, (0, 0))
                needs[anchor.sheet] = (max(have[0], last_row + GRID_HEADROOM_ROWS), have[1])
        return self.ensure_grids(lane, spreadsheet_id, needs, writers, group) if needs else 0

    def ensure_grids(
        self,
        lane: _Lane,
        spreadsheet_id: str,
        needs: dict[str, tuple[int, int]],
        works: list[_Work],
        group: _Group,
    ) -> int:
        """Resize tabs to at least (rows, cols); returns how many resizes were made (each moves the version)."""
        assert lane.client is not None
        client = lane.client
        meta = self.call(lane, lambda: client.spreadsheet_meta(spreadsheet_id=spreadsheet_id))
        resized = 0
        for title, (rows, cols) in needs.items():
            tab = meta.sheet(title)
            if tab is None:
                for work in works:
                    if work.target.anchor.sheet == title:
                        work.fail(f"spreadsheet {spreadsheet_id} has no sheet named {title!r}")
                continue
            group.grids[title] = tab.rows
            if tab.rows >= rows and tab.cols >= cols:
                continue
            self.call(
                lane,
                partial(
                    client.sheet_resize,
                    spreadsheet_id=spreadsheet_id,
                    sheet_id=tab.sheet_id,
                    rows=max(tab.rows, rows),
                    cols=max(tab.cols, cols),
                ),
            )
            group.grids[title] = max(tab.rows, rows)
            resized += 1
        return resized

    def write(
        self,
        lane: _Lane,
        spreadsheet_id: str,
        writers: list[_Work],
        *,
        expected: int,
        checked_at: float,
        recheck: bool = False,
    ) -> None:
        """ONE values batchUpdate for these targets, verified from the stored values it returns; the previous
        values are put back when it fails or does not verify.

        ``expected`` is the Drive version the plan was made for. After a grid resize (``recheck``), after a quota
        pause, or when the write starts more than ``SHEETS_SYNC_RECHECK_AFTER_S`` after the last check, the version
        is checked again first, so a person's edit made in the meantime is never written over (``_Moved``). A 429
        that outlasts every retry means nothing was written (``_Refused``): nothing to put back.
        """
        assert lane.client is not None
        client = lane.client
        data = [item for work in writers for item in work.ranges]
        rounds = max(1, int(settings.SHEETS_SYNC_RATE_LIMIT_ROUNDS))
        recheck_after = float(settings.SHEETS_SYNC_RECHECK_AFTER_S)
        for attempt in range(1, rounds + 1):
            if recheck or attempt > 1 or time.monotonic() - checked_at > recheck_after:
                client.prepay("write")
                now = self.version(lane, spreadsheet_id)
                checked_at = time.monotonic()
                if now != expected:
                    raise _Moved(
                        f"the sheet changed (Drive version {expected} -> {now}) while the write waited: nothing "
                        "was written; the next cycle re-reads it"
                    )
            try:
                result = client.values_batch_update(
                    spreadsheet_id=spreadsheet_id,
                    data=data,
                    value_input_option="RAW",
                    include_values_in_response=True,
                    response_value_render_option="UNFORMATTED_VALUE",
                )
                break
            except ConnectorRateLimited as exc:
                if attempt == rounds:
                    raise _Refused(f"the Sheets quota stayed exhausted: {exc}") from exc
                wait = max(float(settings.SHEETS_SYNC_RATE_LIMIT_PAUSE_S) * 2 ** (attempt - 1), exc.retry_after or 0)
                lane.counters["rate_limit_pauses"] += 1
                logger.warning("Sheets quota exhausted (%s); pausing %.1fs before writing again", exc, wait)
                self._sleep(wait)
            except ConnectorNotFound:
                raise
            except (ConnectorRequestError, ConnectorAuthError) as exc:
                raise _Refused(str(exc)) from exc
            except ConnectorError as exc:
                # A timeout or 5xx: the write may or may not have landed. Put the previous values back to be sure.
                raise _WriteFailed(self.restore(lane, spreadsheet_id, writers, f"the write failed: {exc}")) from exc
        stored = list(result.values or ())
        if len(stored) != len(data) or not all(
            grids_match(values, got.values) for (_, values), got in zip(data, stored, strict=True)
        ):
            raise _WriteFailed(
                self.restore(
                    lane, spreadsheet_id, writers, "the sheet did not hold what was written (verification failed)"
                )
            )
        lane.counters["batch_updates"] += 1

    def restore(self, lane: _Lane, spreadsheet_id: str, writers: list[_Work], reason: str) -> str:
        """Write back the values read (or kept) before the failed write, in one batch; the message says how it
        went."""
        assert lane.client is not None
        client = lane.client
        data: list[tuple[str, list[list[Any]]]] = []
        for work in writers:
            anchor = work.target.anchor
            assert work.plan is not None and anchor.sheet and anchor.row is not None and anchor.col is not None
            previous = [(r, c, work.plan.previous.get((r, c), "")) for r, c, _ in work.plan.writes]
            data.extend(write_ranges(previous, sheet=anchor.sheet, row0=anchor.row, col0=anchor.col))
        try:
            self.call(
                lane,
                lambda: client.values_batch_update(spreadsheet_id=spreadsheet_id, data=data, value_input_option="RAW"),
            )
        except ConnectorError as exc:
            logger.error("sheets sync: putting back the values of %s failed too: %s", spreadsheet_id, exc)
            lane.counters["restores_failed"] += 1
            return f"{reason}; PUTTING THE PREVIOUS VALUES BACK ALSO FAILED ({exc}): check the sheet"
        lane.counters["restores"] += 1
        return f"{reason}; the previous values were put back"

    # ---- recording ----------------------------------------------------------------------------------------

    def record_group_state(self, state: SyncSpreadsheet, works: list[_Work], group: _Group) -> None:
        """Save the spreadsheet's known version; after our write, targets that matched the sheet before it
        still match (it touched only other ranges): move them to the new version too."""
        with transaction.atomic():
            if state.pk is not None:
                state.save(update_fields=["drive_version", "trashed", "deleted_at", "updated_at"])
            if group.bump is not None:
                before, after = group.bump
                # Their copies too: our write touched only the ranges of the targets it wrote.
                SyncTargetCopy.objects.filter(
                    target__spreadsheet_id=state.spreadsheet_id,
                    target__synced_version=before,
                    drive_version=before,
                ).update(drive_version=after)
                SyncTarget.objects.filter(spreadsheet_id=state.spreadsheet_id, synced_version=before).update(
                    synced_version=after
                )

    @staticmethod
    def save_copy(work: _Work) -> None:
        """Keep what the target's range holds now (inside the caller's transaction, with the target's state)."""
        if work.copy_out is None or work.synced_version is None:
            return
        values, grid_rows, width = work.copy_out
        SyncTargetCopy.objects.update_or_create(
            target=work.target,
            defaults={
                "drive_version": work.synced_version,
                "layout": layout_key(work.target),
                "width": width,
                "grid_rows": grid_rows,
                "values": cells_pack(values),
            },
        )

    def record(self, work: _Work, group: _Group | None) -> None:
        """Record one target's outcome (its state, its event, audit and alerts)."""
        if work.outcome in (CHANGED, FAILED):
            self.counters[work.outcome] += 1
        if work.outcome == FAILED:
            self.failures.append(f"{work.target.name}: {work.error}")
        if self.dry_run:
            self.record_dry(work)
            return
        if work.outcome == FAILED:
            self.record_failure(work, group)
        elif work.outcome == CHANGED:
            self.record_changed(work, group)
        else:
            self.record_compact([work], work.outcome or NO_CHANGES, group=group)

    def record_dry(self, work: _Work) -> None:
        """A dry run records nothing: count the outcome and say what would be written."""
        if work.outcome in COMPACT_OUTCOMES or not work.outcome:
            self.counters[work.outcome or NO_CHANGES] += 1
        plan = work.plan
        if work.outcome == FAILED:
            self.plan_lines.append(f"{work.target.name}: would fail: {work.error}")
        elif plan is not None:
            self.counters["cells_written"] += plan.cells
            self.plan_lines.append(
                f"{work.target.name}: would write {plan.cells} cells (+{plan.rows_added}/-{plan.rows_removed} rows)"
            )

    def _event_fields(self, work: _Work, group: _Group | None) -> dict[str, Any]:
        plan = work.plan
        details: dict[str, Any] = {}
        if work.source_label:
            details["source"] = work.source_label
        if work.source_ms:
            details["source_ms"] = work.source_ms
        if work.table is not None and work.table.quarantined:
            details["quarantined"] = [q.as_dict() for q in work.table.quarantined[:SAMPLE_LIMIT]]
        if plan is not None and plan.dropped_protected and work.outcome == CHANGED:
            details["dropped_protected"] = list(plan.dropped_protected[:SAMPLE_LIMIT])
        if work.ranges and work.outcome == CHANGED:
            details["ranges"] = len(work.ranges)
        duration = (
            int((time.monotonic() - work.started) * 1000) if group is None else group.duration_ms + work.source_ms
        )
        return {
            "target": work.target,
            "target_name": work.target.name,
            "job_run": self.job_run,
            "source_changed": work.source_changed,
            "sheet_changed": work.sheet_changed,
            "cells_written": plan.cells if plan is not None and work.outcome == CHANGED else 0,
            "rows_added": plan.rows_added if plan is not None and work.outcome == CHANGED else 0,
            "rows_removed": plan.rows_removed if plan is not None and work.outcome == CHANGED else 0,
            "rows_quarantined": len(work.table.quarantined) if work.table is not None else 0,
            "api_requests": group.requests if group is not None else 0,
            "rereads": group.rereads if group is not None else 0,
            "duration_ms": duration,
            "drive_version_before": group.version_before if group is not None else None,
            "drive_version_after": group.version_after if group is not None else None,
            "error": work.error or work.quarantine_note,
            "details": details,
        }

    def record_changed(self, work: _Work, group: _Group | None) -> None:
        """A written target: its new state, its event and the audit record of the write, in one transaction."""
        plan = work.plan
        assert plan is not None
        fields = self._event_fields(work, group)
        self.counters["cells_written"] += plan.cells
        self.counters["rows_added"] += plan.rows_added
        self.counters["rows_removed"] += plan.rows_removed
        with transaction.atomic():
            target = work.target
            target.source_fingerprint = work.fingerprint
            target.source_stamp = work.stamp
            target.synced_version = work.synced_version
            target.written_width = plan.width
            target.last_outcome = CHANGED
            target.last_checked_at = target.last_synced_at = self.now
            target.last_error = work.quarantine_note
            target.consecutive_failures = 0
            target.escalated_at = None
            target.save(
                update_fields=[
                    "source_fingerprint",
                    "source_stamp",
                    "synced_version",
                    "written_width",
                    "last_outcome",
                    "last_checked_at",
                    "last_synced_at",
                    "last_error",
                    "consecutive_failures",
                    "escalated_at",
                ]
            )
            self.save_copy(work)
            event = SyncEvent.objects.create(
                outcome=CHANGED,
                day=timezone.localdate(self.now),
                first_seen_at=self.now,
                last_seen_at=self.now,
                **fields,
            )
            audit_log(
                action="sheetsync.sheet_written",
                obj=target,
                data={
                    "event": event.pk,
                    "spreadsheet_id": target.spreadsheet_id,
                    "cells": plan.cells,
                    "rows_added": plan.rows_added,
                    "rows_removed": plan.rows_removed,
                    "drive_version_before": fields["drive_version_before"],
                    "drive_version_after": fields["drive_version_after"],
                    "dropped_protected": len(plan.dropped_protected),
                },
            )

    def record_failure(self, work: _Work, group: _Group | None) -> None:
        """A failed target: the streak, its event, the broken flag or an escalation (audited, mailed on commit)."""
        fields = self._event_fields(work, group)
        threshold = max(1, int(settings.SHEETS_SYNC_FAILURE_ESCALATION))
        with transaction.atomic():
            target = SyncTarget.objects.select_for_update().get(pk=work.target.pk)
            target.consecutive_failures += 1
            target.last_outcome = FAILED
            target.last_error = work.error
            target.last_checked_at = self.now
            update = ["consecutive_failures", "last_outcome", "last_error", "last_checked_at"]
            escalate = not work.broken and target.consecutive_failures >= threshold and target.escalated_at is None
            if escalate:
                target.escalated_at = self.now
                update.append("escalated_at")
            if work.broken and not target.broken:
                target.broken = True
                target.broken_reason = work.error
                target.broken_at = self.now
                update += ["broken", "broken_reason", "broken_at"]
                audit_log(action="sheetsync.target_broken", obj=target, data={"reason": work.error})
                _alert_on_commit(target.pk, "broken")
                self.counters["broken"] += 1
            target.save(update_fields=update)
            fields["target"] = target
            event = SyncEvent.objects.create(
                outcome=FAILED,
                day=timezone.localdate(self.now),
                first_seen_at=self.now,
                last_seen_at=self.now,
                **fields,
            )
            if escalate:
                audit_log(
                    action="sheetsync.target_escalated",
                    obj=target,
                    data={"failures": target.consecutive_failures, "event": event.pk, "error": work.error[:500]},
                )
                _alert_on_commit(target.pk, "escalation")
                self.counters["escalated"] += 1
        work.target = target

    def record_compact(self, works: list[_Work], outcome: str, *, group: _Group | None = None) -> None:
        """No changes / skipped: one row per target and day, its counter and last-seen time moved on."""
        if not works:
            return
        self.counters[outcome] += len(works)
        if self.dry_run:
            return
        day = timezone.localdate(self.now)
        ids = [w.target.pk for w in works]
        with transaction.atomic():
            if outcome == NO_CHANGES:
                status_only = [w for w in works if self._status_only(w)]
                ids_status = [w.target.pk for w in status_only]
                # A quiet cycle after a failed one (a source back as it was) clears the old error.
                SyncTarget.objects.filter(pk__in=ids_status, last_outcome=FAILED).update(last_error="")
                SyncTarget.objects.filter(pk__in=ids_status).update(
                    last_outcome=outcome, last_checked_at=self.now, consecutive_failures=0, escalated_at=None
                )
                for work in works:
                    if work in status_only:
                        continue
                    target = work.target
                    target.last_outcome = outcome
                    target.last_checked_at = self.now
                    target.last_error = work.quarantine_note
                    target.consecutive_failures = 0
                    target.escalated_at = None
                    target.source_stamp = work.stamp
                    fields = ["last_outcome", "last_checked_at", "last_error", "consecutive_failures", "escalated_at"]
                    fields.append("source_stamp")
                    if work.plan is not None and work.synced_version is not None:
                        target.source_fingerprint = work.fingerprint
                        target.synced_version = work.synced_version
                        target.written_width = work.plan.width
                        fields += ["source_fingerprint", "synced_version", "written_width"]
                        self.save_copy(work)
                    target.save(update_fields=fields)
            else:
                for work in works:
                    SyncTarget.objects.filter(pk=work.target.pk).update(
                        last_outcome=outcome, last_checked_at=self.now, last_error=work.error
                    )
            existing = set(
                SyncEvent.objects.filter(target_id__in=ids, day=day, outcome=outcome).values_list(
                    "target_id", flat=True
                )
            )
            bump: dict[str, Any] = {"count": F("count") + 1, "last_seen_at": self.now, "job_run": self.job_run}
            if group is not None:
                bump.update(
                    api_requests=F("api_requests") + group.requests,
                    duration_ms=F("duration_ms") + group.duration_ms,
                    rereads=F("rereads") + group.rereads,
                    drive_version_after=group.version_after,
                )
            single_work = works[0] if len(works) == 1 else None
            if single_work is not None and (single_work.error or single_work.quarantine_note):
                bump["error"] = single_work.error or single_work.quarantine_note
            if existing:
                SyncEvent.objects.filter(target_id__in=existing, day=day, outcome=outcome).update(**bump)
            fresh = [w for w in works if w.target.pk not in existing]
            try:
                with transaction.atomic():
                    SyncEvent.objects.bulk_create(
                        [
                            SyncEvent(
                                outcome=outcome,
                                day=day,
                                first_seen_at=self.now,
                                last_seen_at=self.now,
                                **self._event_fields(w, group),
                            )
                            for w in fresh
                        ]
                    )
            except IntegrityError:  # another writer created a row for the same day meanwhile: count on it
                SyncEvent.objects.filter(target_id__in=[w.target.pk for w in fresh], day=day, outcome=outcome).update(
                    **bump
                )

    @staticmethod
    def _status_only(work: _Work) -> bool:
        """A quiet target whose stored state is still right: only its status fields move (in bulk)."""
        if work.table is None:  # the very same file: nothing was even converted
            return True
        target = work.target
        return work.plan is None and work.stamp == target.source_stamp and work.quarantine_note == target.last_error

    def result(self) -> JobResult:
        """The run's summary and counters; ``JobFailed`` when every target that was tried failed."""
        c = self.counters
        changed, failed = c[CHANGED], c[FAILED]
        quiet, skipped = c[NO_CHANGES], c[SKIPPED]
        prefix = "DRY RUN: " if self.dry_run else ""
        verb = "would change" if self.dry_run else "changed"
        summary = (
            f"{prefix}{c['targets']} targets: {changed} {verb} ({c['cells_written']} cells, +{c['rows_added']}/"
            f"-{c['rows_removed']} rows), {quiet} no changes, {failed} failed, {skipped} skipped; "
            f"{c['sheets_requests']} Sheets/Drive requests ({c['spreadsheets_read']} spreadsheets read, "
            f"{c['targets_diffed_without_reading']} targets diffed against their kept copy without a read, "
            f"{c['spreadsheets_changed']} edited outside the sync)"
        )
        lines = [summary]
        if c["rate_limit_pauses"]:
            lines.append(f"paused {c['rate_limit_pauses']} times for the Sheets quota (429), every step completed")
        lines += [f"FAILED {line}" for line in self.failures[:20]]
        if len(self.failures) > 20:
            lines.append(f"... and {len(self.failures) - 20} more failures (see Sync events)")
        lines += self.plan_lines[:50]
        counters = {
            "targets": c["targets"],
            "changed": changed,
            "no_changes": quiet,
            "failed": failed,
            "skipped": skipped,
            "cells_written": c["cells_written"],
            "rows_added": c["rows_added"],
            "rows_removed": c["rows_removed"],
            "sheets_requests": c["sheets_requests"],
            "spreadsheets_read": c["spreadsheets_read"],
            "targets_diffed_without_reading": c["targets_diffed_without_reading"],
        }
        extras = (
            "rate_limit_pauses",
            "restores",
            "restores_failed",
            "broken",
            "escalated",
            "feed_resets",
            "feed_polls",
        )
        for extra in (*extras, "principals"):
            if c[extra]:
                counters[extra] = c[extra]
        attempted = changed + quiet + failed
        if failed and failed == attempted:
            raise JobFailed("\n".join(lines))
        return JobResult(summary="\n".join(lines), counters=counters)


def _alert_on_commit(target_id: int, kind: str) -> None:
    from .tasks import sync_target_alert_task

    transaction.on_commit(lambda: sync_target_alert_task.delay(target_id, kind))

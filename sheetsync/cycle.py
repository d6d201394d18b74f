"""One Sheets sync cycle over every enabled target, writing only the cells that changed.

A cycle, cheapest first:

1. **One Drive changes-feed call** (its page token is kept in :class:`SyncCursor`) names the spreadsheets
   that changed since the last cycle, with their Drive versions. Our own writes appear there too: a
   spreadsheet still at the version our last write left is not "changed".
2. Each target's **source** is read and fingerprinted (sha256 of the target's layout and the converted rows).
3. A target whose fingerprint and spreadsheet version both match what it was last synced at is logged
   "no changes", **without reading the sheet**. A no-change cycle therefore costs one request.
4. For each spreadsheet with targets left: **read** their ranges (one values batchGet), **diff** cell by cell
   by key (:mod:`sheetsync.diff`), **check** the Drive version, and **write** only the changed cells of all
   those targets in **one** values batchUpdate, which also returns what Sheets stored: that is the
   verification. If the version moved since the read (a person edited), the ranges are re-read and re-diffed
   (at most ``SHEETS_SYNC_MAX_REREADS`` times) so their edit is never overwritten with stale values. If the
   write fails or does not verify, the previous values are put back. So a changed spreadsheet costs three
   requests (plus one Drive files.get the first time it is seen, and two when its grid must grow).

After our write the spreadsheet's version is recorded as "version at the check + our own changes". Drive only
promises that versions increase, so if a real write moves it further the next cycle re-reads that sheet once
(and writes nothing); it can never hide a person's edit, which always moves the version past our guess.

Quotas: every Sheets request passes the client's per-user limiter and a process-wide project limiter; a 429
that outlasts the client's own retries pauses the cycle and retries the same step, so no work is lost.

State changes are audited: writes to a sheet, a target marked broken, escalations, admin edits, pause, resume
and repair. Network calls never run inside a transaction; each target's outcome is recorded in its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
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
from connectors.sheets import SheetsClient, ValueRange, a1_to_grid, grid_to_a1
from orchestration.models import JobRun
from orchestration.registry import JobFailed, JobResult
from orchestration.services import job_run_heartbeat

from .diff import (
    SAMPLE_LIMIT,
    SourceTable,
    TableError,
    TablePlan,
    grids_match,
    output_columns,
    source_table_prepare,
    table_plan,
    write_ranges,
)
from .models import COMPACT_OUTCOMES, SyncCursor, SyncEvent, SyncOutcome, SyncSpreadsheet, SyncTarget, target_writer
from .selectors import sync_targets_for_cycle
from .sources import SourceError, source_load, source_stamp, source_validate

__all__ = ["CURSOR_NAME", "SyncCycle", "target_fingerprint"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

CURSOR_NAME = "drive_changes"
# Outcomes as plain strings (the SyncOutcome values) for the engine's bookkeeping.
CHANGED, NO_CHANGES, FAILED, SKIPPED = "changed", "no_changes", "failed", "skipped"
assert {CHANGED, NO_CHANGES, FAILED, SKIPPED} == set(SyncOutcome.values)
FINGERPRINT_VERSION = 1  # bump when the fingerprint's inputs change: every target then re-reads once
GRID_HEADROOM_ROWS = 100


def _layout(target: SyncTarget) -> bytes:
    layout = [FINGERPRINT_VERSION, target.range, target.key_list, target.protected_list, target.row_order]
    if target.quality_suite:  # a suite decides which rows are written: a new one re-reads the source
        layout.append(target.quality_suite)
    return json.dumps(layout, separators=(",", ":")).encode() + b"\n"


def target_fingerprint(*, target: SyncTarget, table: SourceTable) -> str:
    """sha256 of what the sheet should hold: the target's layout settings and the converted source rows."""
    return hashlib.sha256(_layout(target) + table.fingerprint_payload()).hexdigest()


def target_stamp(*, target: SyncTarget, raw_sha256: str) -> str:
    """The cheap first check for file sources: the layout and the file's bytes ("" when there is no file)."""
    return hashlib.sha256(_layout(target) + raw_sha256.encode()).hexdigest() if raw_sha256 else ""


class _Trashed(Exception):
    """The spreadsheet is in the Drive trash."""


class _Refused(Exception):
    """Sheets refused a write as a whole (4xx): nothing was written."""


class _WriteFailed(Exception):
    """A write failed or did not verify; the message says whether the previous values were put back."""


class _Moved(Exception):
    """The spreadsheet changed while the write waited (a quota pause, a resize): nothing was written."""


RECHECK_AFTER_S = 2.0  # a write that starts this long after the last version check checks again first


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
    read: ValueRange | None = None
    plan: TablePlan | None = None
    ranges: list[tuple[str, list[list[Any]]]] = field(default_factory=list)
    outcome: str = ""
    error: str = ""
    broken: bool = False
    synced_version: int | None = None

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
    # After our write: targets that matched the sheet at the first version still match at the second.
    bump: tuple[int, int] | None = None


class SyncCycle:
    """One cycle (see the module docstring); ``run()`` once, then ``close()``."""

    def __init__(
        self,
        *,
        job_run: JobRun | None,
        dry_run: bool,
        force: bool,
        client: SheetsClient,
        bigquery: Callable[[], BigQueryClient] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.job_run = job_run
        self.dry_run = dry_run
        self.force = force
        self.client = client
        self._bigquery_factory = bigquery or embedded_bigquery_client
        self._bigquery: BigQueryClient | None = None
        self._sleep = sleep
        self.counters: Counter[str] = Counter()
        self.spreadsheets: dict[str, SyncSpreadsheet] = {}
        self.failures: list[str] = []
        self.plan_lines: list[str] = []
        self.now = timezone.now()
        # Who writes each registered sheet: a target on a sheet another writer holds is refused.
        self.destinations = destination_writers_map()

    def close(self) -> None:
        """Release the clients' connections."""
        self.client.close()
        if self._bigquery is not None:
            self._bigquery.close()

    # ---- plumbing -----------------------------------------------------------------------------------------

    def bigquery(self) -> BigQueryClient:
        """The BigQuery client, made on first use (most cycles have no BigQuery source)."""
        if self._bigquery is None:
            self._bigquery = self._bigquery_factory()
        return self._bigquery

    def call(self, fn: Callable[[], T]) -> T:
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
                self.counters["rate_limit_pauses"] += 1
                logger.warning("Sheets quota exhausted (%s); pausing %.1fs, then retrying the same step", exc, wait)
                self._sleep(wait)
        raise AssertionError("unreachable")

    def heartbeat(self, progress: str) -> None:
        """Tell the job framework this run is alive (it raises if another run took over)."""
        if self.job_run is not None and self.job_run.status == JobRun.Status.RUNNING:
            job_run_heartbeat(job_run=self.job_run, progress=progress)

    def version(self, spreadsheet_id: str) -> int:
        """The spreadsheet's Drive version now (one files.get); ``_Trashed`` when it is in the trash."""
        found = self.call(lambda: self.client.drive_version(spreadsheet_id=spreadsheet_id))
        if found.trashed:
            raise _Trashed(spreadsheet_id)
        return found.version

    # ---- the run ------------------------------------------------------------------------------------------

    def run(self, refs: Sequence[str] | None) -> JobResult:
        """The whole cycle over the enabled targets (or those named in ``refs``); see the module docstring."""
        targets = list(sync_targets_for_cycle(refs=refs))
        if not targets:
            which = f" among {', '.join(refs)}" if refs else ""
            return JobResult(summary=f"no enabled sync targets{which}: nothing to do", counters={"targets": 0})
        requests_before = self.client.request_count
        self.heartbeat("reading the Drive changes feed")
        self.changes_feed(targets)
        self.counters["feed_requests"] = self.client.request_count - requests_before

        quiet: list[_Work] = []
        skipped: list[_Work] = []
        dirty: dict[str, list[_Work]] = {}
        for index, target in enumerate(targets, start=1):
            if index % 50 == 0:
                self.heartbeat(f"reading sources: {index}/{len(targets)}")
            work = _Work(target=target, started=time.monotonic())
            try:
                if not self.triage(work):
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

        for index, (spreadsheet_id, works) in enumerate(dirty.items(), start=1):
            self.heartbeat(f"spreadsheet {index}/{len(dirty)}: {spreadsheet_id}")
            self.sync_spreadsheet(spreadsheet_id, works)
        self.counters["sheets_requests"] = self.client.request_count - requests_before
        self.counters["targets"] = len(targets)
        self.counters["spreadsheets_read"] = len(dirty)
        return self.result()

    def changes_feed(self, targets: list[SyncTarget]) -> None:
        """One changes-feed call; apply it to every spreadsheet the sync tracks and keep the new token."""
        cursor = SyncCursor.objects.filter(name=CURSOR_NAME).first()
        changes = None
        reset = False
        try:
            if cursor is not None:
                try:
                    changes = self.call(lambda: self.client.drive_changes(token=cursor.token))
                except ConnectorRequestError as exc:
                    logger.warning("Drive refused the changes-feed token (%s): every sheet is checked afresh", exc)
                    reset = True
            token = changes.new_token if changes is not None else self.call(self.client.drive_changes_start_token)
        except ConnectorError as exc:
            raise JobFailed(f"the Drive changes feed could not be read, so no target was synced: {exc}") from exc

        selected = {t.spreadsheet_id for t in targets}
        changed = set(changes.changed_ids) if changes is not None else set()
        tracked = selected | (changed & set(SyncTarget.objects.values_list("spreadsheet_id", flat=True)))
        states = {s.spreadsheet_id: s for s in SyncSpreadsheet.objects.filter(spreadsheet_id__in=tracked)}
        new = [SyncSpreadsheet(spreadsheet_id=sid) for sid in sorted(tracked - set(states))]
        states.update({s.spreadsheet_id: s for s in new})
        touched: list[SyncSpreadsheet] = []
        if reset:
            for state in states.values():
                state.drive_version = None  # every known version is unreliable now: each sheet is checked afresh
            self.counters["feed_resets"] += 1
        elif changes is not None:
            for sid in sorted(changed & set(states)):
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
                    touched.append(state)
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
                SyncSpreadsheet.objects.bulk_update(touched, ["drive_version", "trashed", "deleted_at", "updated_at"])
            SyncCursor.objects.update_or_create(name=CURSOR_NAME, defaults={"token": token})

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

    # ---- one spreadsheet --------------------------------------------------------------------------------------

    def sync_spreadsheet(self, spreadsheet_id: str, works: list[_Work]) -> None:
        """Read, diff, check, write and verify the targets of one spreadsheet; record every outcome."""
        group = _Group(spreadsheet_id, started=time.monotonic(), requests_before=self.client.request_count)
        state = self.spreadsheets[spreadsheet_id]
        try:
            self.sync_group(state, works, group)
        except ConnectorNotFound as exc:
            for work in works:
                if not work.outcome:
                    work.fail(
                        f"spreadsheet {spreadsheet_id} was not found: deleted, or no longer shared with the sync's "
                        f"account ({exc})",
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
        group.requests = self.client.request_count - group.requests_before
        group.duration_ms = int((time.monotonic() - group.started) * 1000)
        if self.dry_run:
            for work in works:
                self.record(work, group)
            return
        self.record_group_state(state, works, group)
        for work in works:
            self.record(work, group)

    def sync_group(self, state: SyncSpreadsheet, works: list[_Work], group: _Group) -> None:
        """Read -> diff -> version check (re-read while it moved) -> grow grids -> one write -> bookkeeping."""
        spreadsheet_id = state.spreadsheet_id
        if state.drive_version is None:
            state.drive_version = self.version(spreadsheet_id)
        expected = state.drive_version
        group.version_before = expected
        live = list(works)
        while True:
            live, resized = self.read_and_plan(spreadsheet_id, live, group)
            if resized:  # our own resize moved the version: start again from the new one
                expected = state.drive_version = self.version(spreadsheet_id)
                group.version_before = expected
                continue
            if not live:
                return
            writers = [w for w in live if w.plan is not None and w.plan.writes]
            if not writers or self.dry_run:
                for work in live:
                    work.outcome = CHANGED if work in writers else NO_CHANGES
                    work.synced_version = expected
                group.version_after = expected
                return
            check = self.version(spreadsheet_id)
            checked_at = time.monotonic()
            if check == expected:
                break
            # A person (or another program) changed the spreadsheet after our read: diff again from fresh values,
            # so their edit is kept rather than overwritten with what we read before it.
            group.rereads += 1
            state.drive_version = check
            if group.rereads > int(settings.SHEETS_SYNC_MAX_REREADS):
                for work in live:
                    work.outcome = SKIPPED
                    work.error = (
                        f"the sheet kept changing while it was read ({group.rereads} reads): left for the next cycle"
                    )
                return
            expected = check
            group.version_before = expected

        own_changes = self.grow_grids(spreadsheet_id, writers)
        writers = [w for w in writers if not w.outcome]  # a tab may have turned out to be missing
        if not writers:
            for work in live:
                if not work.outcome:
                    work.outcome = NO_CHANGES
                    work.synced_version = expected + own_changes
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
                spreadsheet_id, writers, expected=expected + own_changes, checked_at=checked_at, recheck=own_changes > 0
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
                        self.write(spreadsheet_id, [work], expected=expected + own_changes, checked_at=checked_at)
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
        if unknown:
            state.drive_version = None  # the next changes feed tells the real version
            return
        state.drive_version = new_version
        group.version_after = new_version
        if new_version != expected:
            group.bump = (expected, new_version)

    def read_and_plan(self, spreadsheet_id: str, works: list[_Work], group: _Group) -> tuple[list[_Work], bool]:
        """Read the works' ranges (one batchGet) and diff them; returns the works with a plan, and whether a
        grid had to grow first (then nothing was planned)."""
        live = [w for w in works if not w.outcome]
        if not live:
            return [], False
        try:
            found = self.call(
                lambda: self.client.values_batch_get(
                    spreadsheet_id=spreadsheet_id,
                    ranges=[w.read_range for w in live],
                    value_render_option="UNFORMATTED_VALUE",
                )
            )
            reads = list(zip(live, found, strict=True))
        except ConnectorRequestError as exc:
            if "exceeds grid limits" in str(exc) and not group.grown:
                group.grown = True
                if self.grow_for_read(spreadsheet_id, live):
                    return [w for w in live if not w.outcome], True
            if "exceeds grid limits" in str(exc):
                for work in live:
                    if not work.outcome:
                        work.fail(self._read_error(work, exc))
                return [], False
            if len(live) == 1:
                live[0].fail(self._read_error(live[0], exc))
                return [], False
            reads = []
            for work in live:  # one bad range (a missing tab) must not hold back the others
                try:
                    one = self.call(
                        partial(
                            self.client.values_get,
                            spreadsheet_id=spreadsheet_id,
                            range=work.read_range,
                            value_render_option="UNFORMATTED_VALUE",
                        )
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

    def grow_for_read(self, spreadsheet_id: str, works: list[_Work]) -> bool:
        """The read range runs past a grid: grow the grids to fit the tables (True when one grew)."""
        needs: dict[str, tuple[int, int]] = {}
        for work in works:
            anchor = work.target.anchor
            assert anchor.sheet and anchor.row is not None and anchor.col is not None and work.table is not None
            rows = anchor.row + len(work.table.rows) + GRID_HEADROOM_ROWS
            cols = anchor.col + work.read_width - 1
            have = needs.get(anchor.sheet, (0, 0))
            needs[anchor.sheet] = (max(have[0], rows), max(have[1], cols))
        return self.ensure_grids(spreadsheet_id, needs, works) > 0

    def grow_grids(self, spreadsheet_id: str, writers: list[_Work]) -> int:
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
        return self.ensure_grids(spreadsheet_id, needs, writers) if needs else 0

    def ensure_grids(self, spreadsheet_id: str, needs: dict[str, tuple[int, int]], works: list[_Work]) -> int:
        """Resize tabs to at least (rows, cols); returns how many resizes were made (each moves the version)."""
        meta = self.call(lambda: self.client.spreadsheet_meta(spreadsheet_id=spreadsheet_id))
        resized = 0
        for title, (rows, cols) in needs.items():
            tab = meta.sheet(title)
            if tab is None:
                for work in works:
                    if work.target.anchor.sheet == title:
                        work.fail(f"spreadsheet {spreadsheet_id} has no sheet named {title!r}")
                continue
            if tab.rows >= rows and tab.cols >= cols:
                continue
            self.call(
                partial(
                    self.client.sheet_resize,
                    spreadsheet_id=spreadsheet_id,
                    sheet_id=tab.sheet_id,
                    rows=max(tab.rows, rows),
                    cols=max(tab.cols, cols),
                )
            )
            resized += 1
        return resized

    def write(
        self, spreadsheet_id: str, writers: list[_Work], *, expected: int, checked_at: float, recheck: bool = False
    ) -> None:
        """ONE values batchUpdate for these targets, verified from the stored values it returns; the previous
        values are put back when it fails or does not verify.

        ``expected`` is the Drive version the plan was made for. After a grid resize (``recheck``), after a quota
        pause, or when the write starts more than ``RECHECK_AFTER_S`` after the last check, the version is checked
        again first, so a person's edit made in the meantime is never written over (``_Moved``). A 429 that outlasts
        every retry means nothing was written (``_Refused``): nothing to put back.
        """
        data = [item for work in writers for item in work.ranges]
        rounds = max(1, int(settings.SHEETS_SYNC_RATE_LIMIT_ROUNDS))
        for attempt in range(1, rounds + 1):
            if recheck or attempt > 1 or time.monotonic() - checked_at > RECHECK_AFTER_S:
                now = self.version(spreadsheet_id)
                checked_at = time.monotonic()
                if now != expected:
                    raise _Moved(
                        f"the sheet changed (Drive version {expected} -> {now}) while the write waited: nothing "
                        "was written; the next cycle re-reads it"
                    )
            try:
                result = self.client.values_batch_update(
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
                self.counters["rate_limit_pauses"] += 1
                logger.warning("Sheets quota exhausted (%s); pausing %.1fs before writing again", exc, wait)
                self._sleep(wait)
            except ConnectorNotFound:
                raise
            except (ConnectorRequestError, ConnectorAuthError) as exc:
                raise _Refused(str(exc)) from exc
            except ConnectorError as exc:
                # A timeout or 5xx: the write may or may not have landed. Put the previous values back to be sure.
                raise _WriteFailed(self.restore(spreadsheet_id, writers, f"the write failed: {exc}")) from exc
        stored = list(result.values or ())
        if len(stored) != len(data) or not all(
            grids_match(values, got.values) for (_, values), got in zip(data, stored, strict=True)
        ):
            raise _WriteFailed(
                self.restore(spreadsheet_id, writers, "the sheet did not hold what was written (verification failed)")
            )
        self.counters["batch_updates"] += 1

    def restore(self, spreadsheet_id: str, writers: list[_Work], reason: str) -> str:
        """Write back the values read before the failed write, in one batch; the message says how it went."""
        data: list[tuple[str, list[list[Any]]]] = []
        for work in writers:
            anchor = work.target.anchor
            assert work.plan is not None and anchor.sheet and anchor.row is not None and anchor.col is not None
            previous = [(r, c, work.plan.previous.get((r, c), "")) for r, c, _ in work.plan.writes]
            data.extend(write_ranges(previous, sheet=anchor.sheet, row0=anchor.row, col0=anchor.col))
        try:
            self.call(
                lambda: self.client.values_batch_update(
                    spreadsheet_id=spreadsheet_id, data=data, value_input_option="RAW"
                )
            )
        except ConnectorError as exc:
            logger.error("sheets sync: putting back the values of %s failed too: %s", spreadsheet_id, exc)
            self.counters["restores_failed"] += 1
            return f"{reason}; PUTTING THE PREVIOUS VALUES BACK ALSO FAILED ({exc}): check the sheet"
        self.counters["restores"] += 1
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
                SyncTarget.objects.filter(spreadsheet_id=state.spreadsheet_id, synced_version=before).update(
                    synced_version=after
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
        }
        for extra in ("rate_limit_pauses", "restores", "restores_failed", "broken", "escalated", "feed_resets"):
            if c[extra]:
                counters[extra] = c[extra]
        attempted = changed + quiet + failed
        if failed and failed == attempted:
            raise JobFailed("\n".join(lines))
        return JobResult(summary="\n".join(lines), counters=counters)


def _alert_on_commit(target_id: int, kind: str) -> None:
    from .tasks import sync_target_alert_task

    transaction.on_commit(lambda: sync_target_alert_task.delay(target_id, kind))

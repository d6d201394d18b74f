"""Sync targets (a sheet range fed by a source), what the sync knows of each spreadsheet, and sync events.

A target's table starts at its anchor cell: a header row (the source's columns, then the protected columns
the source does not have), then one row per source row, matched to the sheet's rows by the key columns.
The sync owns the columns of that table from the anchor row down; protected columns keep what people typed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

if TYPE_CHECKING:  # connectors.sheets imports gspread and google-auth: at call time only (issue 15: start-up)
    from connectors.sheets import GridRange

STORE_PREFIX = "store:"
FILE_SUFFIXES = (".csv", ".parquet", ".pq")


class SyncOutcome(models.TextChoices):
    CHANGED = "changed", "Changed"
    NO_CHANGES = "no_changes", "No changes"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


# Outcomes kept as one row per target per day with a counter; the others keep one row per cycle.
COMPACT_OUTCOMES = (SyncOutcome.NO_CHANGES, SyncOutcome.SKIPPED)


def split_columns(text: str) -> list[str]:
    """``"id, region"`` -> ``["id", "region"]`` (blank entries dropped, order kept, duplicates removed)."""
    seen: dict[str, None] = {}
    for part in (text or "").split(","):
        name = part.strip()
        if name:
            seen.setdefault(name, None)
    return list(seen)


class SyncTarget(models.Model):
    """One sheet range kept equal to a source, managed in the admin."""

    class SourceKind(models.TextChoices):
        BIGQUERY = "bigquery", "BigQuery SQL query"
        DATABASE = "database", "SQL query on a database"
        FILE = "file", "CSV or Parquet file"

    class RowOrder(models.TextChoices):
        SHEET = "sheet", "Keep the sheet's order (new rows at the end)"
        SOURCE = "source", "Follow the source's order"

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    spreadsheet_id = models.CharField(max_length=200, db_index=True, help_text="the id in the spreadsheet's URL")
    range = models.CharField(
        max_length=200,
        default="Sheet1!A1",
        help_text="the table's top-left cell with its sheet: Sheet1!A1, 'Q1 numbers'!B3 (a sheet name alone means A1)",
    )
    source_kind = models.CharField(max_length=20, choices=SourceKind.choices)
    source_query = models.TextField(blank=True, help_text="SQL for BigQuery or database sources (read-only)")
    source_database = models.CharField(
        max_length=50,
        blank=True,
        help_text="database alias: its URL is in the environment variable SHEETS_SYNC_DB_<ALIAS>, never stored here",
    )
    source_file = models.CharField(
        max_length=500,
        blank=True,
        help_text="store:<name> for a file in the backup store, else a path under SHEETS_SYNC_FILE_ROOTS "
        "(.csv or .parquet)",
    )
    key_columns = models.CharField(max_length=500, help_text="comma-separated source columns that identify a row")
    protected_columns = models.CharField(
        max_length=1000,
        blank=True,
        help_text="comma-separated columns people edit in the sheet: never overwritten (they move with their row)",
    )
    row_order = models.CharField(max_length=10, choices=RowOrder.choices, default=RowOrder.SHEET)
    quality_suite = models.CharField(
        max_length=200,
        blank=True,
        help_text="a declared quality suite (its dataset name, e.g. sales.order_lines) the source's rows must pass "
        "before anything is written; empty: no validation",
    )
    principal = models.CharField(
        max_length=36,
        blank=True,
        help_text="the service account (one per team) that reads and writes this spreadsheet: a name from "
        "SHEETS_PRINCIPALS; blank: the default credentials. Every target on one spreadsheet uses the same one",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="sync_targets"
    )
    enabled = models.BooleanField(default=True, help_text="paused targets are left out of every cycle")
    broken = models.BooleanField(default=False, help_text="needs a person (e.g. the spreadsheet was deleted)")
    broken_reason = models.TextField(blank=True)
    broken_at = models.DateTimeField(null=True, blank=True)

    # What the sync knows; never edited by hand.
    source_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    # For file sources: sha256 of the layout and the file's bytes, a cheaper first check than the fingerprint.
    source_stamp = models.CharField(max_length=64, blank=True, editable=False)
    synced_version = models.BigIntegerField(
        null=True, blank=True, editable=False, help_text="Drive version at which the range last matched the source"
    )
    written_width = models.PositiveIntegerField(default=0, editable=False)
    last_outcome = models.CharField(max_length=20, choices=SyncOutcome.choices, blank=True, editable=False)
    last_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_synced_at = models.DateTimeField(null=True, blank=True, editable=False, help_text="last write to the sheet")
    last_error = models.TextField(blank=True, editable=False)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    escalated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("pause_synctarget", "Can pause, resume and repair sync targets"),
            ("sync_synctarget", "Can sync targets now"),
        ]
        indexes = [models.Index(fields=["enabled", "broken"])]

    def __str__(self) -> str:
        return self.name

    # ---- parsed configuration ------------------------------------------------------------------------

    @property
    def key_list(self) -> list[str]:
        return split_columns(self.key_columns)

    @property
    def protected_list(self) -> list[str]:
        return split_columns(self.protected_columns)

    @property
    def anchor(self) -> GridRange:
        """The table's top-left cell (``ValueError`` when the range is not one cell of a named sheet)."""
        return parse_anchor(self.range)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            parse_anchor(self.range)
        except ValueError as exc:
            errors["range"] = str(exc)
        keys, protected = self.key_list, self.protected_list
        if not keys:
            errors["key_columns"] = "name at least one key column"
        overlap = sorted(set(keys) & set(protected))
        if overlap:
            errors["protected_columns"] = f"a key column cannot be protected: {', '.join(overlap)}"
        if self.source_kind in (self.SourceKind.BIGQUERY, self.SourceKind.DATABASE) and not self.source_query.strip():
            errors["source_query"] = "a query is required for this kind of source"
        if self.source_kind == self.SourceKind.DATABASE:
            alias = self.source_database.strip().lower()
            if not alias:
                errors["source_database"] = "name the database alias"
            elif alias not in settings.SHEETS_SYNC_DATABASES:
                known = ", ".join(sorted(settings.SHEETS_SYNC_DATABASES)) or "none configured"
                errors["source_database"] = (
                    f"no environment variable SHEETS_SYNC_DB_{alias.upper()} is set (known aliases: {known})"
                )
            elif "source_query" not in errors:
                from .sources import SourceError, database_query_check

                try:
                    database_query_check(alias=alias, sql=self.source_query)
                except SourceError as exc:
                    errors["source_query"] = str(exc)
        if self.source_kind == self.SourceKind.FILE:
            try:
                source_file_check(self.source_file)
            except ValueError as exc:
                errors["source_file"] = str(exc)
        if self.quality_suite.strip():
            from quality.suites import SUITES

            if self.quality_suite.strip() not in SUITES:
                errors["quality_suite"] = f"no such suite; declared: {', '.join(sorted(SUITES))}"
        if "range" not in errors and self.spreadsheet_id:
            from approvals.services import DestinationTaken, destination_check

            try:
                destination_check(
                    spreadsheet_id=self.spreadsheet_id.strip(), sheet=self.anchor.sheet, writer=target_writer(self)
                )
            except DestinationTaken as exc:
                errors["range"] = str(exc)
        if self.principal and self.principal not in settings.SHEETS_PRINCIPALS:
            known = ", ".join(sorted(p for p in settings.SHEETS_PRINCIPALS if p)) or "none configured"
            errors["principal"] = f"no principal {self.principal!r} in SHEETS_PRINCIPALS (known: {known})"
        elif self.spreadsheet_id:
            others = SyncTarget.objects.filter(spreadsheet_id=self.spreadsheet_id).exclude(pk=self.pk)
            clash = others.exclude(principal=self.principal).values_list("name", "principal").first()
            if clash:
                errors["principal"] = (
                    f"target {clash[0]} writes this spreadsheet as {clash[1] or 'the default principal'}: every "
                    "target on one spreadsheet must use the same principal"
                )
        if errors:
            raise ValidationError(errors)


def target_writer(target: SyncTarget) -> str:
    """The name a target is registered under as the one writer of its sheet."""
    return f"sync target {target.name}"


def parse_anchor(text: str) -> GridRange:
    """``Sheet1!B3`` -> the grid cell; ``Sheet1`` -> A1 of that sheet. ``ValueError`` otherwise."""
    from connectors.sheets import GridRange, a1_to_grid

    grid = a1_to_grid(text)
    if grid.sheet is None:
        raise ValueError(f"name the sheet, e.g. Sheet1!{text.strip()}")
    if grid.row is None and grid.col is None and grid.row2 is None and grid.col2 is None:
        return GridRange(grid.sheet, 1, 1, 1, 1)
    if grid.row is None or grid.col is None or grid.row2 != grid.row or grid.col2 != grid.col:
        raise ValueError(f"give the table's top-left cell only (e.g. {grid.sheet}!A1), not a range: {text!r}")
    return grid


def source_file_check(text: str) -> str:
    """The file source as given, once its form and suffix are acceptable (``ValueError`` with the reason).

    Paths outside the backup store must resolve under ``SHEETS_SYNC_FILE_ROOTS``, so a target cannot be
    pointed at an arbitrary file of the server.
    """
    value = (text or "").strip()
    if not value:
        raise ValueError("name the file: store:<name> or a path")
    name = value.removeprefix(STORE_PREFIX)
    if not name.lower().endswith(FILE_SUFFIXES):
        raise ValueError(f"only {', '.join(FILE_SUFFIXES)} files can be read: {value!r}")
    if value.startswith(STORE_PREFIX):
        if not name or name.startswith("/") or ".." in Path(name).parts:
            raise ValueError(f"a backup store name must be relative, without '..': {value!r}")
        return value
    path = Path(value).expanduser().resolve()
    roots = [Path(root).expanduser().resolve() for root in settings.SHEETS_SYNC_FILE_ROOTS]
    if not any(path == root or root in path.parents for root in roots):
        allowed = ", ".join(str(r) for r in roots) or "none configured"
        raise ValueError(f"{path} is outside SHEETS_SYNC_FILE_ROOTS ({allowed})")
    return value


class SyncSpreadsheet(models.Model):
    """What the sync knows of one spreadsheet's Drive state (shared by every target on it)."""

    spreadsheet_id = models.CharField(max_length=200, unique=True)
    drive_version = models.BigIntegerField(
        null=True, blank=True, help_text="latest Drive version known (changes feed, version check, or our own write)"
    )
    trashed = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["spreadsheet_id"]

    def __str__(self) -> str:
        return self.spreadsheet_id


class SyncTargetCopy(models.Model):
    """What a target's range held after the sync last wrote (or read) it, kept so a cycle in which only the source
    changed diffs against it instead of reading the sheet. It stands for the sheet only while the spreadsheet is
    still at the Drive version it was taken at (the changes feed tells) and the target's layout is the same."""

    target = models.OneToOneField(SyncTarget, on_delete=models.CASCADE, related_name="sheet_copy")
    drive_version = models.BigIntegerField(help_text="the Drive version at which the range held these values")
    layout = models.CharField(max_length=64, help_text="sha256 of the range, key and protected columns and row order")
    width = models.PositiveIntegerField(help_text="columns covered, from the anchor")
    grid_rows = models.PositiveIntegerField(help_text="rows of the sheet's grid")
    values = models.BinaryField(help_text="the cells from the anchor down, as read (trimmed), JSON then zlib")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"copy of {self.target_id} at version {self.drive_version}"


class SyncCursor(models.Model):
    """The Drive changes-feed page token, kept between cycles."""

    name = models.CharField(max_length=50, unique=True)
    token = models.CharField(max_length=200)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.token}"


class SyncEvent(models.Model):
    """What one cycle did to one target. "No changes" and "skipped" are compacted to one row per target and
    day (``count`` cycles between ``first_seen_at`` and ``last_seen_at``); changed and failed keep one row each."""

    target = models.ForeignKey(SyncTarget, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    target_name = models.CharField(max_length=100, help_text="kept when the target is deleted")
    job_run = models.ForeignKey(
        "orchestration.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="sync_events"
    )
    outcome = models.CharField(max_length=20, choices=SyncOutcome.choices)
    day = models.DateField()
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)
    count = models.PositiveIntegerField(default=1, help_text="cycles this row stands for")
    source_changed = models.BooleanField(default=False)
    sheet_changed = models.BooleanField(default=False)
    cells_written = models.PositiveIntegerField(default=0)
    rows_added = models.PositiveIntegerField(default=0)
    rows_removed = models.PositiveIntegerField(default=0)
    rows_quarantined = models.PositiveIntegerField(default=0)
    api_requests = models.PositiveIntegerField(default=0, help_text="Sheets and Drive requests for this spreadsheet")
    rereads = models.PositiveSmallIntegerField(default=0, help_text="re-reads because the sheet moved under us")
    duration_ms = models.PositiveIntegerField(default=0)
    drive_version_before = models.BigIntegerField(null=True, blank=True)
    drive_version_after = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-last_seen_at", "-pk"]
        indexes = [
            models.Index(fields=["target", "day", "outcome"]),
            models.Index(fields=["outcome", "last_seen_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["target", "day", "outcome"],
                condition=models.Q(outcome__in=["no_changes", "skipped"]),
                name="syncevent_one_quiet_row_per_target_day",
            )
        ]

    def __str__(self) -> str:
        suffix = f" x{self.count}" if self.count > 1 else ""
        return f"{self.target_name} {self.outcome}{suffix} ({self.last_seen_at:%Y-%m-%d %H:%M})"

"""A Sheets emulator on loopback, file sources in a temporary directory, and target factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from django.core.management import call_command

HEADER = ["id", "region", "amount"]


@pytest.fixture
def sheets(settings) -> Iterator[Any]:
    """A fresh Sheets + Drive emulator, the app pointed at it, quick retries, no client-side throttling."""
    from sandbox.sheets.testing import running_sheets_emulator

    with running_sheets_emulator() as emulator:
        settings.SHEETS_API_ENDPOINT = emulator.base_url
        settings.SHEETS_EMULATOR_AUTOSTART = False
        settings.SHEETS_MAX_ATTEMPTS = 2
        settings.SHEETS_BACKOFF_BASE = 0.001
        settings.SHEETS_BACKOFF_MAX = 0.01
        settings.SHEETS_RATE_LIMIT_PER_MINUTE = 0
        settings.SHEETS_SYNC_PROJECT_RATE_LIMIT_PER_MINUTE = 0
        settings.SHEETS_SYNC_RATE_LIMIT_PAUSE_S = 0.001
        settings.SHEETS_SYNC_FAILURE_ESCALATION = 3
        # The cycle's own feed call stays fresh for its writes: request counts do not depend on the machine's pace
        # (tests of the mid-cycle feed check set this to 0).
        settings.SHEETS_SYNC_RECHECK_AFTER_S = 30.0
        yield emulator


@pytest.fixture
def files(settings, tmp_path) -> Path:
    root = tmp_path / "sources"
    root.mkdir()
    settings.SHEETS_SYNC_FILE_ROOTS = [str(root)]
    return root


def write_parquet(path: Path, rows: list[list[Any]], columns: list[str] = HEADER) -> Path:
    pl.DataFrame(rows, schema=columns, orient="row").write_parquet(path)
    return path


@pytest.fixture
def make_target(files, sheets) -> Callable[..., Any]:
    """``make_target("t1", rows, spreadsheet_id="s1")``: a Parquet source with ``rows`` and a target on it; the
    spreadsheet is created (empty) unless it exists."""
    from sheetsync.models import SyncTarget

    def make(
        name: str,
        rows: list[list[Any]],
        *,
        spreadsheet_id: str = "s1",
        sheet: str = "Sheet1",
        anchor: str = "A1",
        key_columns: str = "id",
        protected: str = "",
        columns: list[str] = HEADER,
        **extra: Any,
    ) -> SyncTarget:
        if spreadsheet_id not in sheets.store.spreadsheet_ids():
            sheets.store.create_spreadsheet(spreadsheet_id, {sheet: []}, spreadsheet_id=spreadsheet_id)
        path = write_parquet(files / f"{name}.parquet", rows, columns)
        target = SyncTarget(
            name=name,
            spreadsheet_id=spreadsheet_id,
            range=f"{sheet}!{anchor}",
            source_kind=SyncTarget.SourceKind.FILE,
            source_file=str(path),
            key_columns=key_columns,
            protected_columns=protected,
            **extra,
        )
        target.full_clean()
        target.save()
        return target

    return make


def set_source(target: Any, rows: list[list[Any]], columns: list[str] = HEADER) -> None:
    write_parquet(Path(target.source_file), rows, columns)


def run_cycle(*args: str) -> tuple[int, str]:
    """``manage.py run_job sheets_sync`` in-process: (exit status, output)."""
    out = StringIO()
    try:
        call_command("run_job", "sheets_sync", *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code), out.getvalue()
    return 0, out.getvalue()


class Counted:
    """Emulator request counters between two points: ``with Counted(sheets) as c: ...; c.total``."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.delta: dict[str, int] = {}

    def __enter__(self) -> Counted:
        self.emulator.reset_counters()
        return self

    def __exit__(self, *exc: object) -> None:
        self.delta = self.emulator.counters()

    @property
    def total(self) -> int:
        return self.delta.get("total", 0)

    def of(self, key: str) -> int:
        return sum(n for k, n in self.delta.items() if k.endswith(key))


ROWS = [[1, "EMEA", 10.5], [2, "NA", 20.0], [3, "APAC", 30.25]]

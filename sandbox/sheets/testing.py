"""Test helper: an in-process Sheets + Drive emulator on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox.sheets.server import SheetsEmulator

__all__ = ["running_sheets_emulator"]


@contextmanager
def running_sheets_emulator(
    *,
    fixture: Mapping[str, Any] | list[Any] | None = None,
    latency_ms: int = 0,
    state_path: str | Path | None = None,
) -> Iterator[SheetsEmulator]:
    """Run a Sheets emulator for the duration of the ``with`` block and yield it.

    Content comes from ``fixture`` (see :mod:`sandbox.sheets.store`), else from ``state_path``
    when that file exists, else it starts empty. The emulator exposes ``.base_url``, ``.faults``,
    ``.counters()``, ``.reset_counters()``, ``.latency_ms``, ``.set_quota()`` and ``.store``.
    """
    emulator = SheetsEmulator.from_fixture(fixture=fixture, state_path=state_path, latency_ms=latency_ms)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()

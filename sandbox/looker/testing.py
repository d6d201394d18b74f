"""Test helper: an in-process Looker emulator on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox.looker.server import EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET, LookerEmulator

__all__ = ["EMULATOR_CLIENT_ID", "EMULATOR_CLIENT_SECRET", "running_looker_emulator"]


@contextmanager
def running_looker_emulator(
    *,
    fixture: dict[str, Any] | None = None,
    n_dashboards: int = 50,
    latency_ms: int = 0,
    seed: int = 7,
    state_path: str | Path | None = None,
    token_ttl_s: int = 3600,
) -> Iterator[LookerEmulator]:
    """Run a Looker emulator for the duration of the ``with`` block and yield it.

    Content comes from ``fixture`` or, when absent, ``generate_fixture(n_dashboards, seed=seed)``
    (unless ``state_path`` already holds saved state). The emulator accepts
    ``EMULATOR_CLIENT_ID`` / ``EMULATOR_CLIENT_SECRET`` and exposes ``.base_url``, ``.faults``,
    ``.counters()``, ``.reset_counters()``, ``.latency_ms``, ``.revoke_tokens()`` and ``.store``.
    """
    emulator = LookerEmulator.from_fixture(
        fixture=fixture,
        n_dashboards=n_dashboards,
        seed=seed,
        state_path=state_path,
        latency_ms=latency_ms,
        token_ttl_s=token_ttl_s,
    )
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()

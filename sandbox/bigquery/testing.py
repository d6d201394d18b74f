"""Test helper: an in-process BigQuery emulator on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandbox.bigquery.engine import DEFAULT_LOCATION, DEFAULT_PROJECT
from sandbox.bigquery.server import BigQueryEmulator

__all__ = ["running_bigquery_emulator"]


@contextmanager
def running_bigquery_emulator(
    *,
    data_dir: str | Path | None,
    latency_ms: int = 0,
    project: str = DEFAULT_PROJECT,
    location: str = DEFAULT_LOCATION,
    job_running_ms: float = 0,
) -> Iterator[BigQueryEmulator]:
    """Run a BigQuery emulator seeded from ``data_dir`` for the duration of the ``with`` block.

    The emulator exposes ``.base_url`` (use it as the client's ``api_endpoint``), ``.faults``,
    ``.counters()``, ``.reset_counters()``, ``.latency_ms``, ``.duckdb_query(sql)``,
    ``.queries_executed``, ``.load_table(...)`` and ``.job(job_id)``.
    """
    emulator = BigQueryEmulator(
        data_dir=data_dir,
        project=project,
        location=location,
        latency_ms=latency_ms,
        job_running_ms=job_running_ms,
    )
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.close()

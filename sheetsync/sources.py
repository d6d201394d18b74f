"""Reading a sync target's source: a BigQuery query, a SQL query on a database, or a CSV/Parquet file.

Every source gives back its column names and rows of Python values; :mod:`sheetsync.diff` turns them into
cells. Failures become a :class:`SourceError` whose message says what was read and what went wrong
(never a database URL: it may hold a password).

* BigQuery: through :mod:`connectors.bigquery`, with ``maximum_bytes_billed`` = ``SHEETS_SYNC_MAX_BYTES``
  (BigQuery refuses a runaway query before running it; an unchanged query is usually a free cache hit).
* Databases: an alias whose URL is in the environment variable ``SHEETS_SYNC_DB_<ALIAS>``;
  ``sqlite:///relative.db`` / ``sqlite:////absolute.db`` opened read-only with the standard library, or
  ``postgres://`` / ``postgresql://`` with psycopg in a read-only transaction with a statement timeout.
* Files: ``store:<name>`` in the backup store, or a path under ``SHEETS_SYNC_FILE_ROOTS``; Parquet and CSV
  read with polars (CSV rows with the wrong number of fields are kept aside for the quarantine).

A target that names a quality suite (``SyncTarget.quality_suite``) has the rows it read checked by that declared
suite before anything is written (:func:`source_validate`): the same checks the sales job runs in BigQuery, here
in memory on the (bounded) result. A gate that fails or asks for a review stops the target for this cycle, naming
the checks (a sync has no review queue); a passing gate drops the rows the suite quarantined or removed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import polars as pl
from django.conf import settings
from django.core.files.storage import storages

from connectors.bigquery import BigQueryClient, QueryTooExpensive
from connectors.errors import ConnectorError

from .models import STORE_PREFIX, SyncTarget, source_file_check

__all__ = ["SourceError", "SourceResult", "source_load", "source_stamp", "source_validate"]

_CSV_INFER_ROWS = 10_000


class SourceError(Exception):
    """A source could not be read; the message names it and says why."""


@dataclass(frozen=True)
class SourceResult:
    """A source's columns and rows (Python values), in the source's order.

    A row may have the wrong number of values (a malformed CSV line); the diff engine quarantines it.
    """

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    label: str
    bytes_processed: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    # sha256 of the raw bytes when the source is a file: equal bytes, equal rows, no need to convert them.
    raw_sha256: str = ""


def source_load(*, target: SyncTarget, bigquery: Callable[[], BigQueryClient]) -> SourceResult:
    """Read ``target``'s source; ``bigquery`` makes the BigQuery client when one is needed."""
    max_rows = int(settings.SHEETS_SYNC_MAX_ROWS)
    kind = target.source_kind
    if kind == SyncTarget.SourceKind.BIGQUERY:
        result = _load_bigquery(target, bigquery(), max_rows=max_rows)
    elif kind == SyncTarget.SourceKind.DATABASE:
        result = _load_database(target.source_database, target.source_query, max_rows=max_rows)
    elif kind == SyncTarget.SourceKind.FILE:
        result = _load_file(target.source_file, max_rows=max_rows)
    else:
        raise SourceError(f"unknown source kind {kind!r}")
    if len(result.rows) > max_rows:
        raise SourceError(f"{result.label} returned more than SHEETS_SYNC_MAX_ROWS ({max_rows:,}) rows")
    return result


def source_validate(*, target: SyncTarget, loaded: SourceResult) -> SourceResult:
    """Check ``loaded`` with the target's declared suite; SourceError when its gate does not pass.

    Returns the rows to write: all of them, less those the suite quarantined (keys) or removed (exact copies).
    """
    name = (target.quality_suite or "").strip()
    if not name:
        return loaded
    from quality.engine import Decision, rows_frame, suite_run
    from quality.suites import suite_for

    try:
        suite = suite_for(name)
    except KeyError as exc:
        raise SourceError(f"quality suite {name!r}: {exc.args[0]}") from exc
    try:
        frame = rows_frame(suite, loaded.columns, loaded.rows)
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise SourceError(f"{loaded.label}: the rows could not be read for quality suite {name}: {exc}") from exc
    result = suite_run(suite, frame, max_keys_per_check=5)
    failing = [
        f"{r.name}: {r.failed_count} of {result.rows} ({r.failed_share:.2%}; {r.threshold})"
        for r in result.check_results
        if r.failed_count and str(r.gate_effect) != "pass"
    ]
    if result.gate.decision is not Decision.PASS:
        verdict = "failed" if result.gate.decision is Decision.FAIL else "asks for a review"
        detail = "; ".join(failing) or "; ".join(result.gate.reasons)
        raise SourceError(
            f"quality suite {name} {verdict} on {loaded.label} ({detail}): nothing was written, the sheet keeps its "
            "values. Fix the source (or the suite's thresholds) and the next cycle syncs it."
        )
    quality = {
        "suite": name,
        "score": result.score,
        "quarantined": result.rows_quarantined,
        "removed": result.rows_removed,
    }
    if not result.rows_quarantined and not result.rows_removed:
        return replace(loaded, details={**loaded.details, "quality": quality})
    positions = [loaded.columns.index(k) for k in suite.keys if k in loaded.columns]
    bad = {tuple(row[k] for k in suite.keys) for row in result.quarantine.select(list(suite.keys)).to_dicts()}
    rows, seen = [], set()
    for row in loaded.rows:
        if len(row) == len(loaded.columns) and tuple(row[i] for i in positions) in bad:
            continue
        if result.rows_removed:
            if row in seen:
                continue
            seen.add(row)
        rows.append(row)
    return replace(loaded, rows=rows, details={**loaded.details, "quality": quality})


def source_stamp(*, target: SyncTarget) -> str:
    """A cheap change marker: sha256 of a file source's bytes (no parsing); "" for query sources, which have none.

    Equal bytes mean equal rows, so a cycle can skip converting and fingerprinting an unchanged file.
    """
    if target.source_kind != SyncTarget.SourceKind.FILE:
        return ""
    return hashlib.sha256(_file_bytes(target.source_file)).hexdigest()


# --------------------------------------------------------------------------------------------------------------
# BigQuery
# --------------------------------------------------------------------------------------------------------------


def _label_value(text: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text.lower())
    return cleaned[:63] or "unnamed"


def _load_bigquery(target: SyncTarget, client: BigQueryClient, *, max_rows: int) -> SourceResult:
    label = "the BigQuery query"
    try:
        result = client.query_run(
            sql=target.source_query,
            maximum_bytes_billed=int(settings.SHEETS_SYNC_MAX_BYTES),
            labels={"dataops_job": "sheets_sync", "sync_target": _label_value(target.name)},
            max_rows=max_rows + 1,
        )
    except QueryTooExpensive as exc:
        raise SourceError(
            f"{label} was refused as too expensive (over SHEETS_SYNC_MAX_BYTES={settings.SHEETS_SYNC_MAX_BYTES:,} "
            f"bytes): {exc}"
        ) from exc
    except ConnectorError as exc:
        raise SourceError(f"{label} failed: {exc}") from exc
    columns = tuple(c.name for c in result.schema)
    if result.total_rows > max_rows:
        raise SourceError(f"{label} returned {result.total_rows:,} rows, over SHEETS_SYNC_MAX_ROWS ({max_rows:,})")
    rows = [tuple(row.get(name) for name in columns) for row in result.rows]
    return SourceResult(
        columns=columns,
        rows=rows,
        label=f"BigQuery job {result.job_id}",
        bytes_processed=result.bytes_processed,
        details={"bq_job_id": result.job_id, "bytes_billed": result.bytes_billed, "cache_hit": result.cache_hit},
    )


# --------------------------------------------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------------------------------------------


def _load_database(alias: str, sql: str, *, max_rows: int) -> SourceResult:
    name = (alias or "").strip().lower()
    url = settings.SHEETS_SYNC_DATABASES.get(name)
    label = f"database {name!r}"
    if not url:
        raise SourceError(f"{label}: the environment variable SHEETS_SYNC_DB_{name.upper()} is not set")
    scheme = url.split(":", 1)[0].lower()
    timeout_s = int(settings.SHEETS_SYNC_SOURCE_TIMEOUT_S)
    if scheme == "sqlite":
        columns, rows = _sqlite_rows(url, sql, label=label, max_rows=max_rows, timeout_s=timeout_s)
    elif scheme in ("postgres", "postgresql"):
        columns, rows = _postgres_rows(url, sql, label=label, max_rows=max_rows, timeout_s=timeout_s)
    else:
        raise SourceError(f"{label}: unsupported URL scheme {scheme!r} (use sqlite:// or postgres://)")
    return SourceResult(columns=columns, rows=rows, label=label)


def _sqlite_path(url: str) -> str:
    rest = url[len("sqlite://") :] if url.lower().startswith("sqlite://") else ""
    if not rest.startswith("/") or len(rest) < 2:
        raise SourceError("a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db")
    return rest[1:]


def _sqlite_rows(
    url: str, sql: str, *, label: str, max_rows: int, timeout_s: int
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    path = _sqlite_path(url)
    if not Path(path).is_file():
        raise SourceError(f"{label}: the SQLite file does not exist")
    deadline = time.monotonic() + timeout_s
    try:
        # mode=ro: the query cannot change the source, whatever it says.
        connection = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise SourceError(f"{label}: could not open the SQLite file: {exc}") from exc
    try:
        connection.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
        cursor = connection.execute(sql)
        if cursor.description is None:
            raise SourceError(f"{label}: the query returned no result set (is it a SELECT?)")
        columns = tuple(str(d[0]) for d in cursor.description)
        rows = [tuple(r) for r in cursor.fetchmany(max_rows + 1)]
    except sqlite3.Error as exc:
        detail = f"timed out after {timeout_s}s" if time.monotonic() > deadline else str(exc)
        raise SourceError(f"{label}: the query failed: {detail}") from exc
    finally:
        connection.close()
    return columns, rows


def _postgres_rows(
    url: str, sql: str, *, label: str, max_rows: int, timeout_s: int
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    import psycopg

    options = f"-c statement_timeout={timeout_s * 1000} -c default_transaction_read_only=on"
    try:
        with psycopg.connect(url, connect_timeout=10, options=options) as connection:
            with connection.cursor() as cursor:
                cursor.execute(sql)  # type: ignore[arg-type]  # admin-defined SQL, run read-only
                if cursor.description is None:
                    raise SourceError(f"{label}: the query returned no result set (is it a SELECT?)")
                columns = tuple(str(d.name) for d in cursor.description)
                rows = [tuple(r) for r in cursor.fetchmany(max_rows + 1)]
            connection.rollback()
    except psycopg.Error as exc:
        # libpq quotes a malformed URL whole, password included: scrub before the message goes anywhere.
        raise SourceError(f"{label}: the query failed: {scrub_secrets(str(exc).strip(), url)}") from exc
    return columns, rows


# --------------------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------------------


_CREDENTIALS_IN_URL = re.compile(r"(\w[\w+.-]*://[^:/@\s]*:)[^@\s]+@")


def scrub_secrets(message: str, url: str = "") -> str:
    """The message without the password of ``url`` (or of any ``scheme://user:password@`` in it)."""
    try:
        password = urlsplit(url).password if url else None
    except ValueError:  # a malformed URL (the very case that makes libpq quote it)
        found = _CREDENTIALS_IN_URL.search(url)
        password = found.group(0)[len(found.group(1)) : -1] if found else None
    if password:
        message = message.replace(password, "***")
    return _CREDENTIALS_IN_URL.sub(r"\1***@", message)


def _file_bytes(spec: str) -> bytes:
    try:
        source_file_check(spec)
    except ValueError as exc:
        raise SourceError(f"source file {spec!r}: {exc}") from exc
    if spec.startswith(STORE_PREFIX):
        name = spec.removeprefix(STORE_PREFIX)
        storage = storages["backups"]
        try:
            if not storage.exists(name):
                raise SourceError(f"source file {name!r} is not in the backup store")
            with storage.open(name, "rb") as handle:
                return handle.read()
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - any storage backend's failure (filesystem, GCS)
            raise SourceError(f"source file {name!r} could not be read from the backup store: {exc}") from exc
    # Read the path that was checked (resolved), not the name again: a symlink swapped in between the check and
    # the read cannot lead outside SHEETS_SYNC_FILE_ROOTS.
    path = Path(spec).expanduser().resolve()
    try:
        source_file_check(str(path))
    except ValueError as exc:
        raise SourceError(f"source file {spec!r}: {exc}") from exc
    if not path.is_file():
        raise SourceError(f"source file {path} does not exist")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"source file {path} could not be read: {exc}") from exc


def _load_file(spec: str, *, max_rows: int) -> SourceResult:
    data = _file_bytes(spec)
    label = f"file {spec}"
    digest = hashlib.sha256(data).hexdigest()
    if spec.lower().endswith(".csv"):
        return replace(_csv_result(data, label=label, max_rows=max_rows), raw_sha256=digest)
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise SourceError(f"{label} is not a readable Parquet file: {exc}") from exc
    if frame.height > max_rows:
        raise SourceError(f"{label} has {frame.height:,} rows, over SHEETS_SYNC_MAX_ROWS ({max_rows:,})")
    return SourceResult(columns=tuple(frame.columns), rows=frame.rows(), label=label, raw_sha256=digest)


def _csv_result(data: bytes, *, label: str, max_rows: int) -> SourceResult:
    """CSV with a header line, types inferred by polars; a line with the wrong number of fields is passed on
    as it is (in its place) so the quarantine names it, instead of failing or padding the whole file."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{label} is not UTF-8 text: {exc}") from exc
    try:
        records = [r for r in csv.reader(io.StringIO(text)) if r]
    except csv.Error as exc:
        raise SourceError(f"{label} is not valid CSV: {exc}") from exc
    if not records:
        raise SourceError(f"{label} is empty (a CSV source needs a header line)")
    header, body = records[0], records[1:]
    if len(body) > max_rows:
        raise SourceError(f"{label} has {len(body):,} rows, over SHEETS_SYNC_MAX_ROWS ({max_rows:,})")
    good = [r for r in body if len(r) == len(header)]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *good])
    try:
        frame = pl.read_csv(io.BytesIO(buffer.getvalue().encode()), infer_schema_length=_CSV_INFER_ROWS)
    except pl.exceptions.PolarsError as exc:
        raise SourceError(f"{label} could not be parsed: {exc}") from exc
    typed = iter(frame.rows())
    rows: list[tuple[Any, ...]] = [next(typed) if len(r) == len(header) else tuple(r) for r in body]
    # The header as written (polars would rename duplicates; the diff engine refuses them with a clear error).
    return SourceResult(columns=tuple(header), rows=rows, label=label)

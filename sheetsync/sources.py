"""Reading a sync target's source: a BigQuery query, a SQL query on a database, or a CSV/Parquet file.

Every source gives back its column names and rows of Python values; :mod:`sheetsync.diff` turns them into
cells. Failures become a :class:`SourceError` whose message says what was read and what went wrong
(never a database URL: it may hold a password).

* BigQuery: through :mod:`connectors.bigquery`, with ``maximum_bytes_billed`` = ``SHEETS_SYNC_MAX_BYTES``
  (BigQuery refuses a runaway query before running it; an unchanged query is usually a free cache hit).
* Databases: an alias whose URL is in the environment variable ``SHEETS_SYNC_DB_<ALIAS>``. The query must be
  exactly one SELECT (parsed with sqlglot: no second statement, no DML/DDL even in a CTE, no SELECT INTO, no
  function that writes or reaches out). ``sqlite:///relative.db`` / ``sqlite:////absolute.db`` is opened
  read-only (``mode=ro``, ``query_only``, an authorizer that allows only reads); ``postgres://`` /
  ``postgresql://`` runs in a READ ONLY transaction of a session opened with ``default_transaction_read_only``,
  as one prepared statement, with a statement timeout. Rows and bytes are capped (SHEETS_SYNC_MAX_ROWS,
  SHEETS_SYNC_SOURCE_MAX_BYTES). The alias should still use a database role that can only read.
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
import sqlglot
from django.conf import settings
from django.core.files.storage import storages
from sqlglot import exp

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


_SQL_DIALECTS = {"sqlite": "sqlite", "postgres": "postgres", "postgresql": "postgres"}
# Statements and clauses that write, change the session or reach outside the database, wherever they appear.
_FORBIDDEN_NODES = tuple(
    node
    for name in ("Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "AlterTable", "TruncateTable",
                 "Command", "Copy", "Into", "Transaction", "Commit", "Rollback", "Set", "Pragma", "Attach", "Detach",
                 "Use", "Grant", "Revoke", "Lock", "Cache", "Uncache", "LoadData", "Analyze")
    if (node := getattr(exp, name, None)) is not None
)  # fmt: skip
# Functions that write files, run SQL from a string, reach other servers or change settings and sequences.
_FORBIDDEN_FUNCTIONS = {
    *("set_config", "nextval", "setval", "txid_current"),
    *("query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml", "table_to_xml"),
    *("database_to_xml", "load_extension", "writefile", "readfile", "edit", "fts3_tokenizer"),
}
_FORBIDDEN_PREFIXES = ("pg_", "lo_", "dblink")
_ALLOWED_FUNCTIONS = {"pg_typeof"}


def readonly_select_check(sql: str, *, dialect: str) -> None:
    """Refuse anything but exactly one plain SELECT (``SourceError`` with the reason): no second statement, no
    DML or DDL anywhere (CTEs included), no ``SELECT ... INTO``, no row locks, no function that writes or reaches
    out (``lo_export``, ``dblink``, ``set_config``, ``pg_*`` admin functions...). Parsed with sqlglot."""
    try:
        statements = [s for s in sqlglot.parse(sql or "", read=dialect) if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise SourceError(f"the query could not be parsed as {dialect} SQL: {str(exc).splitlines()[0][:200]}") from exc
    if len(statements) != 1:
        raise SourceError(f"a database source runs exactly one SELECT statement; this has {len(statements)}")
    root = statements[0]
    if not isinstance(root, exp.Select | exp.SetOperation):
        raise SourceError(f"a database source runs only a SELECT, not {root.key.upper()}")
    for node in root.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise SourceError(f"a database source is read-only: {node.key.upper()} is not allowed in its query")
        if isinstance(node, exp.Select) and (node.args.get("into") or node.args.get("locks")):
            raise SourceError("a database source is read-only: SELECT ... INTO and FOR UPDATE/SHARE are not allowed")
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in _ALLOWED_FUNCTIONS:
                continue
            if name in _FORBIDDEN_FUNCTIONS or name.startswith(_FORBIDDEN_PREFIXES):
                raise SourceError(f"a database source is read-only: the function {name}() is not allowed")


def database_query_check(*, alias: str, sql: str) -> None:
    """Validate a database source's SQL for its alias's dialect (``SourceError``); unknown aliases are left to the
    alias check."""
    url = settings.SHEETS_SYNC_DATABASES.get((alias or "").strip().lower(), "")
    dialect = _SQL_DIALECTS.get(url.split(":", 1)[0].lower()) if url else None
    if dialect:
        readonly_select_check(sql, dialect=dialect)


def _load_database(alias: str, sql: str, *, max_rows: int) -> SourceResult:
    name = (alias or "").strip().lower()
    url = settings.SHEETS_SYNC_DATABASES.get(name)
    label = f"database {name!r}"
    if not url:
        raise SourceError(f"{label}: the environment variable SHEETS_SYNC_DB_{name.upper()} is not set")
    scheme = url.split(":", 1)[0].lower()
    timeout_s = int(settings.SHEETS_SYNC_SOURCE_TIMEOUT_S)
    max_bytes = int(settings.SHEETS_SYNC_SOURCE_MAX_BYTES)
    if scheme not in _SQL_DIALECTS:
        raise SourceError(f"{label}: unsupported URL scheme {scheme!r} (use sqlite:// or postgres://)")
    try:
        readonly_select_check(sql, dialect=_SQL_DIALECTS[scheme])
    except SourceError as exc:
        raise SourceError(f"{label}: {exc}") from exc
    rows_of = _sqlite_rows if scheme == "sqlite" else _postgres_rows
    columns, rows = rows_of(url, sql, label=label, max_rows=max_rows, timeout_s=timeout_s, max_bytes=max_bytes)
    return SourceResult(columns=columns, rows=rows, label=label)


def _fetch_capped(cursor: Any, *, label: str, max_rows: int, max_bytes: int) -> list[tuple[Any, ...]]:
    """Up to ``max_rows + 1`` rows, refusing a result larger than ``max_bytes`` (text and bytes counted as they are,
    other values as 8 bytes) before it is all in memory."""
    rows: list[tuple[Any, ...]] = []
    size = 0
    while len(rows) <= max_rows:
        batch = cursor.fetchmany(min(1000, max_rows + 1 - len(rows)))
        if not batch:
            break
        for row in batch:
            size += sum(len(v) if isinstance(v, str | bytes) else 8 for v in row)
        if size > max_bytes:
            raise SourceError(f"{label}: the result is larger than SHEETS_SYNC_SOURCE_MAX_BYTES ({max_bytes:,} bytes)")
        rows.extend(tuple(r) for r in batch)
    return rows


def _sqlite_path(url: str) -> str:
    rest = url[len("sqlite://") :] if url.lower().startswith("sqlite://") else ""
    if not rest.startswith("/") or len(rest) < 2:
        raise SourceError("a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db")
    return rest[1:]


# What a read-only SQLite query may do: read tables and call functions (a denied function fails the query).
_SQLITE_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                           getattr(sqlite3, "SQLITE_RECURSIVE", 33)}  # fmt: skip


def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
    if action not in _SQLITE_ALLOWED_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION:
        name = (arg2 or "").lower()
        if name in _FORBIDDEN_FUNCTIONS or name.startswith(_FORBIDDEN_PREFIXES):
            return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _sqlite_rows(
    url: str, sql: str, *, label: str, max_rows: int, timeout_s: int, max_bytes: int
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    path = _sqlite_path(url)
    if not Path(path).is_file():
        raise SourceError(f"{label}: the SQLite file does not exist")
    deadline = time.monotonic() + timeout_s
    try:
        # mode=ro: the connection cannot change the source; query_only and the authorizer refuse anything but reads
        # (VACUUM INTO, ATTACH, PRAGMA...), whatever the query says.
        connection = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise SourceError(f"{label}: could not open the SQLite file: {exc}") from exc
    try:
        connection.execute("PRAGMA query_only = ON")
        connection.set_authorizer(_sqlite_authorizer)
        connection.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
        cursor = connection.execute(sql)
        if cursor.description is None:
            raise SourceError(f"{label}: the query returned no result set (is it a SELECT?)")
        columns = tuple(str(d[0]) for d in cursor.description)
        rows = _fetch_capped(cursor, label=label, max_rows=max_rows, max_bytes=max_bytes)
    except (sqlite3.Error, sqlite3.Warning) as exc:
        detail = f"timed out after {timeout_s}s" if time.monotonic() > deadline else str(exc)
        raise SourceError(f"{label}: the query failed: {detail}") from exc
    finally:
        connection.close()
    return columns, rows


def _postgres_rows(
    url: str, sql: str, *, label: str, max_rows: int, timeout_s: int, max_bytes: int
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    import psycopg

    # Opened read-only (every transaction of this session defaults to READ ONLY), and this one is declared READ ONLY
    # again; the query goes as a prepared statement, which PostgreSQL refuses to hold more than one command.
    options = f"-c statement_timeout={timeout_s * 1000} -c default_transaction_read_only=on -c lock_timeout=5000"
    try:
        with psycopg.connect(url, connect_timeout=10, options=options, autocommit=False) as connection:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION READ ONLY")
                cursor.execute(sql, prepare=True)  # type: ignore[arg-type]  # checked by readonly_select_check
                if cursor.description is None:
                    raise SourceError(f"{label}: the query returned no result set (is it a SELECT?)")
                columns = tuple(str(d.name) for d in cursor.description)
                rows = _fetch_capped(cursor, label=label, max_rows=max_rows, max_bytes=max_bytes)
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

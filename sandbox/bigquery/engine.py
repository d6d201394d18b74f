"""The BigQuery emulator's engine: a DuckDB catalog, SQL translation, cost estimates and row encoding.

* **Catalog.** Every ``<dataset>.<table>.parquet|csv`` of the data directory becomes DuckDB table
  ``"dataset"."table"`` (a DuckDB schema per dataset). A sidecar ``<dataset>.<table>.json`` may say
  ``{"partition_field": "order_ts"}`` (DAY partitioning on a TIMESTAMP/DATE/DATETIME column),
  ``"description"``, and ``"schema": [{"name", "type", "mode"}]`` to force BigQuery types on CSV columns
  (``"mode": "REQUIRED"`` makes the column NOT NULL, which loading checks, and ``tables.get`` reports it).
  CSV timestamps without a zone are read as UTC TIMESTAMPs. At load the engine measures the rows
  and, per STRING/BYTES column, the average value size, for the cost estimate.
* **SQL.** BigQuery Standard SQL is parsed with sqlglot, table paths (``project.dataset.table``,
  ```dataset.table```, or bare names with a default dataset) are resolved against the catalog, query
  parameters become typed DuckDB parameters (``CAST($p_start AS TIMESTAMPTZ)``), and the tree is
  written as DuckDB SQL. Unnamed result columns are named ``f0_``, ``f1_``... like BigQuery's.
* **Cost.** ``totalBytesProcessed`` = for each table read, the sum over the columns the query
  references (found with sqlglot's qualify + scopes) of the bytes per value of the column's type
  (INT64/FLOAT64/TIMESTAMP/DATE 8, NUMERIC 16, BOOL 1, STRING 2 + average UTF-8 length) times the
  rows scanned. A partitioned table scans only the days whose bounds satisfy the WHERE conjuncts that
  use the partition column alone (with constants and parameters). Like BigQuery's dry run, the estimate
  reads table metadata only, never the rows: at load the engine keeps per day (partition) its row count
  and the partition column's least and greatest value, and a comparison of the column with a constant
  (``=``, ``<``, ``<=``, ``>``, ``>=``, ``BETWEEN``, ``IN``; under AND/OR) is evaluated on those bounds
  over the partitions' metadata; any other conjunct prunes nothing. ``totalBytesBilled`` is that rounded
  up to the MiB, at least 10 MiB per query that reads a table.
* **Rows.** Results are kept as Arrow tables and encoded per the REST API: every scalar a string,
  TIMESTAMP as integer microseconds (``formatOptions.useInt64Timestamp``), NUMERIC as a decimal
  string, NULL as ``{"v": null}``, ARRAY as a list of ``{"v": ...}``, STRUCT as ``{"f": [...]}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError, TokenError, UnsupportedError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope

logger = logging.getLogger(__name__)

MIB = 1 << 20
MIN_BILLED_BYTES = 10 * MIB
DEFAULT_PROJECT = "dataops-local"
DEFAULT_LOCATION = "US"

# Bytes per value of fixed-size BigQuery types (https://cloud.google.com/bigquery/pricing#data).
FIXED_BYTES: dict[str, int] = {
    "INT64": 8,
    "FLOAT64": 8,
    "NUMERIC": 16,
    "BIGNUMERIC": 32,
    "BOOL": 1,
    "DATE": 8,
    "DATETIME": 8,
    "TIME": 8,
    "TIMESTAMP": 8,
    "INTERVAL": 16,
}
VARIABLE_TYPES = frozenset({"STRING", "BYTES", "JSON", "GEOGRAPHY"})
PARTITION_TYPES = frozenset({"TIMESTAMP", "DATE", "DATETIME"})

# BigQuery type (as sent in queryParameters, legacy names included) -> the type we cast to.
_PARAM_TYPES: dict[str, str] = {
    "STRING": "STRING",
    "INT64": "INT64",
    "INTEGER": "INT64",
    "FLOAT64": "FLOAT64",
    "FLOAT": "FLOAT64",
    "NUMERIC": "NUMERIC",
    "DECIMAL": "NUMERIC",
    "BIGNUMERIC": "BIGNUMERIC",
    "BIGDECIMAL": "BIGNUMERIC",
    "BOOL": "BOOL",
    "BOOLEAN": "BOOL",
    "DATE": "DATE",
    "DATETIME": "DATETIME",
    "TIMESTAMP": "TIMESTAMP",
    "TIME": "TIME",
    "BYTES": "BYTES",
    "JSON": "JSON",
}
# BigQuery type -> DuckDB type, for sidecar schemas.
_DUCK_TYPES: dict[str, str] = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "NUMERIC": "DECIMAL(38, 9)",
    "BIGNUMERIC": "DECIMAL(38, 9)",
    "BOOL": "BOOLEAN",
    "DATE": "DATE",
    "DATETIME": "TIMESTAMP",
    "TIMESTAMP": "TIMESTAMPTZ",
    "TIME": "TIME",
    "BYTES": "BLOB",
    "JSON": "JSON",
}
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BigQueryError(Exception):
    """A failure BigQuery reports as ``{"error": {"code", "message", "errors": [{"reason", ...}]}}``."""

    def __init__(self, status: int, reason: str, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.location = location

    def error_proto(self) -> dict[str, Any]:
        """The ``ErrorProto`` of a job's ``status.errorResult`` and of an error reply's ``errors[]``."""
        proto: dict[str, Any] = {"reason": self.reason, "message": self.message}
        if self.location:
            proto["location"] = self.location
        return proto


def invalid_query(message: str) -> BigQueryError:
    """400 ``invalidQuery``, located at the query like BigQuery's."""
    return BigQueryError(400, "invalidQuery", message, location="query")


# --------------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaField:
    """One column of a table or result, with BigQuery's type names (RECORD for structs)."""

    name: str
    type: str
    mode: str = "NULLABLE"
    fields: tuple[SchemaField, ...] = ()

    def to_api(self) -> dict[str, Any]:
        """The ``TableFieldSchema`` JSON."""
        data: dict[str, Any] = {"name": self.name, "type": self.type, "mode": self.mode}
        if self.fields:
            data["fields"] = [f.to_api() for f in self.fields]
        return data

    def sql_type(self) -> str:
        """The BigQuery SQL type (for sqlglot's schema)."""
        base = (
            "STRUCT<" + ", ".join(f"`{f.name}` {f.sql_type()}" for f in self.fields) + ">"
            if self.type == "RECORD"
            else self.type
        )
        return f"ARRAY<{base}>" if self.mode == "REPEATED" else base


def duck_type_to_field(name: str, dtype: Any) -> SchemaField:
    """A :class:`SchemaField` for a DuckDB type (``DuckDBPyType``)."""
    type_id = str(dtype.id).lower()
    if type_id in ("list", "array"):
        inner = duck_type_to_field(name, dict(dtype.children)["child"])
        if inner.mode == "REPEATED":  # BigQuery has no arrays of arrays: keep the inner one as text
            return SchemaField(name, "STRING", "REPEATED")
        return replace(inner, mode="REPEATED")
    if type_id == "struct":
        return SchemaField(name, "RECORD", fields=tuple(duck_type_to_field(n, t) for n, t in dtype.children))
    if type_id == "decimal":
        scale = dict(dtype.children)["scale"]
        return SchemaField(name, "NUMERIC" if scale <= 9 else "BIGNUMERIC")
    if type_id in ("tinyint", "smallint", "integer", "bigint", "hugeint", "null"):
        return SchemaField(name, "INT64")  # DuckDB's SUM(BIGINT) is a HUGEINT; BigQuery's is INT64
    if type_id in ("utinyint", "usmallint", "uinteger", "ubigint", "uhugeint"):
        return SchemaField(name, "INT64")
    if type_id in ("float", "double"):
        return SchemaField(name, "FLOAT64")
    if type_id == "boolean":
        return SchemaField(name, "BOOL")
    if type_id == "varchar":
        return SchemaField(name, "JSON" if str(dtype).upper() == "JSON" else "STRING")
    if type_id == "blob":
        return SchemaField(name, "BYTES")
    if type_id == "date":
        return SchemaField(name, "DATE")
    if type_id in ("time", "time with time zone"):
        return SchemaField(name, "TIME")
    if type_id == "timestamp with time zone":
        return SchemaField(name, "TIMESTAMP")
    if type_id.startswith("timestamp"):
        return SchemaField(name, "DATETIME")
    return SchemaField(name, "STRING")  # uuid, interval, map, enum, bit...: rendered as text


# --------------------------------------------------------------------------------------------
# Query parameters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryParam:
    """One query parameter; ``name`` is None for positional ones; ``array_type`` set for ARRAYs."""

    name: str | None
    type: str
    value: Any
    array_type: str | None = None

    @property
    def sql_type(self) -> str:
        """The BigQuery SQL type to cast the bound value to."""
        return f"ARRAY<{self.array_type}>" if self.array_type else self.type


def _timestamp_param(text: str) -> datetime:
    cleaned = text.strip().replace(" UTC", "+00:00").replace("Z", "+00:00")
    if len(cleaned) == 10:
        cleaned += "T00:00:00"
    parsed = datetime.fromisoformat(cleaned)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


_SCALAR_PARSERS: dict[str, Callable[[Any], Any]] = {
    "STRING": str,
    "INT64": lambda v: int(str(v)),
    "FLOAT64": float,
    "NUMERIC": lambda v: Decimal(str(v)),
    "BIGNUMERIC": lambda v: Decimal(str(v)),
    "BOOL": lambda v: v if isinstance(v, bool) else str(v).strip().lower() == "true",
    "DATE": lambda v: date.fromisoformat(str(v)),
    "DATETIME": lambda v: datetime.fromisoformat(str(v).replace(" ", "T", 1)),
    "TIMESTAMP": lambda v: _timestamp_param(str(v)),
    "TIME": lambda v: dt_time.fromisoformat(str(v)),
    "BYTES": lambda v: base64.b64decode(str(v)),
    "JSON": str,
}


def parse_query_parameters(raw: Any) -> list[QueryParam]:
    """``configuration.query.queryParameters`` (NAMED or POSITIONAL) as :class:`QueryParam` objects."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BigQueryError(400, "invalid", "queryParameters must be a list")
    params: list[QueryParam] = []
    for item in raw:
        if not isinstance(item, dict):
            raise BigQueryError(400, "invalid", "Each query parameter must be an object")
        name = item.get("name") or None
        ptype = item.get("parameterType") or {}
        pvalue = item.get("parameterValue") or {}
        label = f"parameter {name!r}" if name else "a positional parameter"
        kind = str(ptype.get("type", "")).upper()
        try:
            if kind == "ARRAY":
                elem = str((ptype.get("arrayType") or {}).get("type", "")).upper()
                if elem not in _PARAM_TYPES:
                    raise BigQueryError(400, "invalidQuery", f"Unsupported ARRAY element type {elem!r} for {label}")
                elem = _PARAM_TYPES[elem]
                values = [
                    None if v.get("value") is None else _SCALAR_PARSERS[elem](v["value"])
                    for v in (pvalue.get("arrayValues") or [])
                ]
                params.append(QueryParam(name, "ARRAY", values, array_type=elem))
            elif kind in _PARAM_TYPES:
                kind = _PARAM_TYPES[kind]
                value = pvalue.get("value")
                params.append(QueryParam(name, kind, None if value is None else _SCALAR_PARSERS[kind](value)))
            else:
                raise BigQueryError(400, "invalidQuery", f"Unsupported query parameter type {kind!r} for {label}")
        except (ValueError, TypeError, InvalidOperation) as exc:
            raise BigQueryError(400, "invalidQuery", f"Invalid value for {label} of type {kind}: {exc}") from exc
    names = [p.name.lower() for p in params if p.name]
    if len(names) != len(set(names)):
        raise BigQueryError(400, "invalidQuery", "Duplicate query parameter names")
    if names and len(names) != len(params):
        raise BigQueryError(400, "invalidQuery", "Cannot mix named and positional query parameters")
    return params


# --------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableMeta:
    """What the catalog knows about one table; a new object (and ``version``) on every load."""

    dataset: str
    table: str
    fields: tuple[SchemaField, ...]
    num_rows: int
    bytes_per_value: Mapping[str, float]  # lower-cased column name -> bytes per value
    partition_field: str | None
    version: int
    created_ms: int
    modified_ms: int
    description: str | None = None
    source: str | None = None
    num_partitions: int | None = None
    # Per day (partition) of a partitioned table: day, rows, least and greatest partition column value.
    partitions: pa.Table | None = None

    @property
    def num_bytes(self) -> int:
        """Logical size: every column's bytes per value times the rows."""
        return int(round(sum(self.bytes_per_value.values()) * self.num_rows))

    def column_bytes(self, columns: Sequence[str], rows: int) -> int:
        """Bytes processed reading ``columns`` (lower-case names) over ``rows`` rows."""
        return int(round(sum(self.bytes_per_value.get(c, 0.0) for c in set(columns)) * rows))


@dataclass(frozen=True)
class TableRead:
    """How a query reads one table: the columns it references and the rows it scans."""

    meta: TableMeta
    columns: tuple[str, ...]
    rows_scanned: int
    partitions_scanned: int | None

    @property
    def bytes_processed(self) -> int:
        """This table's share of ``totalBytesProcessed``."""
        return self.meta.column_bytes(self.columns, self.rows_scanned)


@dataclass(frozen=True)
class PreparedQuery:
    """A query resolved, translated, bound (validated) and costed, but not run."""

    sql: str
    duck_sql: str
    bind: Mapping[str, Any]
    fields: tuple[SchemaField, ...]
    reads: tuple[TableRead, ...]
    cache_key: str

    @property
    def bytes_processed(self) -> int:
        """The ``totalBytesProcessed`` estimate."""
        return sum(r.bytes_processed for r in self.reads)

    @property
    def bytes_billed(self) -> int:
        """``totalBytesBilled`` when run (not from cache): MiB-rounded, 10 MiB minimum when reading a table."""
        if not self.reads:
            return 0
        return max(MIN_BILLED_BYTES, -(-self.bytes_processed // MIB) * MIB)

    @property
    def partitions_processed(self) -> int:
        """Partitions scanned over every partitioned table read."""
        return sum(r.partitions_scanned or 0 for r in self.reads)


@dataclass
class QueryOutput:
    """A finished query: its rows (Arrow) with their BigQuery schema and the execution time."""

    table: pa.Table
    fields: tuple[SchemaField, ...]
    elapsed_s: float

    @property
    def num_rows(self) -> int:
        """Rows in the result."""
        return self.table.num_rows


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _now_ms() -> int:
    return int(time.time() * 1000)


class DuckEngine:
    """An in-memory DuckDB database holding the emulator's tables, with BigQuery semantics on top.

    Thread-safe: each query runs on its own DuckDB cursor; loads are serialised by a lock.
    """

    def __init__(self, *, project: str = DEFAULT_PROJECT, location: str = DEFAULT_LOCATION) -> None:
        self.project = project
        self.location = location
        self._db = duckdb.connect(":memory:")
        self._db.execute("SET GLOBAL TimeZone = 'UTC'")
        self._lock = threading.RLock()
        self._tables: dict[tuple[str, str], TableMeta] = {}
        self._datasets: dict[str, int] = {}  # dataset -> creation time (ms)
        self._version = 0
        self._executions = 0
        self._active = 0
        self._closed = False
        self._idle = threading.Condition()

    # ---- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB cursor of this database (its own connection; safe to use from one thread)."""
        with self._idle:
            if self._closed:
                raise BigQueryError(503, "backendError", "The BigQuery emulator is shutting down")
            self._active += 1
        try:
            cur = self._db.cursor()
            try:
                yield cur
            finally:
                cur.close()
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def close(self, *, wait_s: float = 10.0) -> None:
        """Release the database once the queries in flight are done (or after ``wait_s``)."""
        with self._idle:
            self._closed = True
            self._idle.wait_for(lambda: self._active == 0, timeout=wait_s)
            busy = self._active > 0
        if busy:  # a query still runs on a server thread: leave the database to the garbage collector
            logger.warning("BigQuery emulator: %d queries still running at close; not closing DuckDB", self._active)
            return
        self._db.close()

    @property
    def executions(self) -> int:
        """How many queries were actually run (dry runs, cost estimates and cache hits excluded)."""
        with self._lock:
            return self._executions

    def duckdb_query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> list[tuple]:
        """Run DuckDB SQL directly (for tests and inspection) and return the rows."""
        with self.cursor() as cur:
            return cur.execute(sql, params).fetchall() if params is not None else cur.execute(sql).fetchall()

    # ---- loading --------------------------------------------------------------------------------

    def load_directory(self, directory: str | Path) -> list[TableMeta]:
        """Load every ``<dataset>.<table>.parquet|csv`` of ``directory`` (with optional JSON sidecar)."""
        root = Path(directory)
        if not root.is_dir():
            raise FileNotFoundError(f"BigQuery emulator data directory {root} does not exist")
        loaded = []
        for path in sorted(root.iterdir()):
            if path.suffix.lower() not in (".parquet", ".csv") or not path.is_file():
                continue
            parts = path.stem.split(".")
            if len(parts) != 2:
                logger.warning("BigQuery emulator: skipping %s (expected <dataset>.<table>%s)", path, path.suffix)
                continue
            sidecar_path = path.with_suffix(".json")
            sidecar: dict[str, Any] = {}
            if sidecar_path.exists():
                sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
            loaded.append(
                self.load_table(
                    parts[0],
                    parts[1],
                    path,
                    partition_field=sidecar.get("partition_field"),
                    schema=sidecar.get("schema"),
                    description=sidecar.get("description"),
                )
            )
        return loaded

    def load_table(
        self,
        dataset: str,
        table: str,
        source: str | Path | pa.Table | Any,
        *,
        partition_field: str | None = None,
        schema: Sequence[Mapping[str, str]] | None = None,
        description: str | None = None,
    ) -> TableMeta:
        """Create or replace ``dataset.table`` from a parquet/CSV file, an Arrow table or a polars DataFrame.

        Replacing a table gives it a new version, which invalidates cached query results.
        """
        for label, name in (("dataset", dataset), ("table", table)):
            if not _NAME_RE.match(name):
                raise ValueError(f"invalid BigQuery {label} name {name!r}")
        overrides = {str(c["name"]).lower(): str(c["type"]).upper() for c in (schema or []) if c.get("type")}
        unknown = set(overrides.values()) - set(_DUCK_TYPES)
        if unknown:
            raise ValueError(f"unsupported types in the schema of {dataset}.{table}: {sorted(unknown)}")
        required = {str(c["name"]).lower() for c in (schema or []) if str(c.get("mode", "")).upper() == "REQUIRED"}
        with self._lock, self.cursor() as cur:
            registered = None
            if isinstance(source, (str, Path)):
                path = Path(source)
                if path.suffix.lower() == ".parquet":
                    relation = f"read_parquet({_literal(str(path))})"
                elif path.suffix.lower() == ".csv":
                    relation = f"read_csv({_literal(str(path))}, header = true, auto_detect = true)"
                else:
                    raise ValueError(f"cannot load {path}: only .parquet and .csv files")
                origin: str | None = path.name
            else:
                arrow = source.to_arrow() if hasattr(source, "to_arrow") else source
                if not isinstance(arrow, pa.Table):
                    raise TypeError(
                        f"cannot load a {type(source).__name__}: pass a path, an Arrow table or a DataFrame"
                    )
                registered = f"_load_{dataset}_{table}"
                cur.register(registered, arrow)
                relation, origin = _q(registered), None
            try:
                probe = cur.sql(f"SELECT * FROM {relation}")  # noqa: S608 - identifiers quoted by _q
                select = []
                for name, dtype in zip(probe.columns, probe.types, strict=True):
                    wanted = overrides.get(name.lower())
                    if wanted:
                        select.append(f"CAST({_q(name)} AS {_DUCK_TYPES[wanted]}) AS {_q(name)}")
                    elif str(dtype.id).lower() == "timestamp" and registered is None:
                        select.append(f"CAST({_q(name)} AS TIMESTAMPTZ) AS {_q(name)}")  # zone-less CSV: UTC
                    else:
                        select.append(_q(name))
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(dataset)}")
                cur.execute(
                    f"CREATE OR REPLACE TABLE {_q(dataset)}.{_q(table)} AS SELECT {', '.join(select)} FROM {relation}"  # noqa: S608 - identifiers quoted by _q
                )
                for name in probe.columns:
                    if name.lower() in required:
                        try:
                            cur.execute(f"ALTER TABLE {_q(dataset)}.{_q(table)} ALTER COLUMN {_q(name)} SET NOT NULL")
                        except duckdb.Error as exc:
                            raise ValueError(f"{dataset}.{table}: column {name} is REQUIRED but has nulls") from exc
            finally:
                if registered is not None:
                    cur.unregister(registered)
            meta = self._measure(cur, dataset, table, partition_field, description, origin)
            if required:
                fields = tuple(replace(f, mode="REQUIRED") if f.name.lower() in required else f for f in meta.fields)
                meta = replace(meta, fields=fields)
            self._datasets.setdefault(dataset, _now_ms())
            previous = self._tables.get((dataset, table))
            if previous is not None:
                meta = replace(meta, created_ms=previous.created_ms)
            self._tables[(dataset, table)] = meta
        logger.info(
            "BigQuery emulator: loaded %s.%s (%d rows, %d bytes)", dataset, table, meta.num_rows, meta.num_bytes
        )
        return meta

    def _measure(
        self,
        cur: duckdb.DuckDBPyConnection,
        dataset: str,
        table: str,
        partition_field: str | None,
        description: str | None,
        origin: str | None,
    ) -> TableMeta:
        rel = cur.sql(f"SELECT * FROM {_q(dataset)}.{_q(table)}")  # noqa: S608 - identifiers quoted by _q
        fields = tuple(duck_type_to_field(n, t) for n, t in zip(rel.columns, rel.types, strict=True))
        aggregates = ["COUNT(*)"]
        variable = []
        for f in fields:
            if f.type in VARIABLE_TYPES and f.mode != "REPEATED":
                expr = f"strlen({_q(f.name)})" if f.type != "BYTES" else f"octet_length({_q(f.name)})"
            elif f.type == "RECORD" or f.mode == "REPEATED":
                expr = f"strlen(CAST({_q(f.name)} AS VARCHAR))"  # nested: approximated by its text size
            else:
                continue
            variable.append(f.name)
            aggregates.append(f"COALESCE(SUM({expr}), 0) + 2 * COUNT({_q(f.name)})")
        row = cur.execute(f"SELECT {', '.join(aggregates)} FROM {_q(dataset)}.{_q(table)}").fetchone()  # noqa: S608 - identifiers quoted by _q
        assert row is not None
        num_rows = int(row[0])
        sizes = dict(zip(variable, row[1:], strict=True))
        bytes_per_value: dict[str, float] = {}
        for f in fields:
            if f.name in sizes:
                bytes_per_value[f.name.lower()] = float(sizes[f.name]) / num_rows if num_rows else 2.0
            else:
                bytes_per_value[f.name.lower()] = float(FIXED_BYTES.get(f.type, 8))
        if partition_field is not None:
            match = [f for f in fields if f.name.lower() == partition_field.lower()]
            if not match or match[0].type not in PARTITION_TYPES or match[0].mode == "REPEATED":
                raise ValueError(
                    f"{dataset}.{table}: partition_field {partition_field!r} must be a TIMESTAMP, DATE or "
                    "DATETIME column"
                )
            partition_field = match[0].name
            column = _q(partition_field)
            rows = cur.execute(
                f"SELECT CAST({column} AS DATE) AS day, COUNT(*) AS n_rows, MIN({column}) AS lo, "  # noqa: S608 - identifiers quoted by _q
                f"MAX({column}) AS hi FROM {_q(dataset)}.{_q(table)} GROUP BY 1 ORDER BY 1"
            ).fetchall()
            kind = {"TIMESTAMP": pa.timestamp("us", tz="UTC"), "DATE": pa.date32()}.get(
                match[0].type, pa.timestamp("us")
            )
            partitions = pa.table(
                {
                    "day": pa.array([r[0] for r in rows], pa.date32()),
                    "n_rows": pa.array([r[1] for r in rows], pa.int64()),
                    "lo": pa.array([r[2] for r in rows], kind),
                    "hi": pa.array([r[3] for r in rows], kind),
                }
            )
            num_partitions = partitions.num_rows
        else:
            num_partitions = None
            partitions = None
        self._version += 1
        now = _now_ms()
        return TableMeta(
            dataset=dataset,
            table=table,
            fields=fields,
            num_rows=num_rows,
            bytes_per_value=bytes_per_value,
            partition_field=partition_field,
            version=self._version,
            created_ms=now,
            modified_ms=now,
            description=description,
            source=origin,
            num_partitions=num_partitions,
            partitions=partitions,
        )

    # ---- catalog reads ----------------------------------------------------------------------------

    def datasets(self) -> list[str]:
        """Dataset names, sorted."""
        with self._lock:
            return sorted(self._datasets)

    def dataset_created_ms(self, dataset: str) -> int:
        """Creation time of a dataset; 404 ``notFound`` when unknown."""
        with self._lock:
            if dataset not in self._datasets:
                raise BigQueryError(404, "notFound", f"Not found: Dataset {self.project}:{dataset}", location=None)
            return self._datasets[dataset]

    def tables(self, dataset: str) -> list[TableMeta]:
        """The tables of a dataset, by name; 404 ``notFound`` when the dataset is unknown."""
        self.dataset_created_ms(dataset)
        with self._lock:
            return sorted((m for (d, _), m in self._tables.items() if d == dataset), key=lambda m: m.table)

    def table(self, dataset: str, table: str, *, project: str | None = None) -> TableMeta:
        """One table's metadata; 404 ``notFound`` (dataset or table) like BigQuery."""
        project = project or self.project
        with self._lock:
            meta = self._tables.get((dataset, table))
            if meta is not None:
                return meta
            # Dataset names are case-sensitive in BigQuery, table names too by default; be lenient on
            # case only when the match is unique.
            candidates = [
                m for (d, t), m in self._tables.items() if d.lower() == dataset.lower() and t.lower() == table.lower()
            ]
            if len(candidates) == 1:
                return candidates[0]
            if not any(d.lower() == dataset.lower() for d in self._datasets):
                raise BigQueryError(
                    404, "notFound", f"Not found: Dataset {project}:{dataset} was not found in location {self.location}"
                )
        raise BigQueryError(
            404, "notFound", f"Not found: Table {project}:{dataset}.{table} was not found in location {self.location}"
        )

    # ---- queries ------------------------------------------------------------------------------------

    def prepare(
        self, sql: str, params: Sequence[QueryParam] = (), *, default_dataset: str | None = None
    ) -> PreparedQuery:
        """Parse, resolve, translate and bind ``sql`` (raising BigQuery's errors) and estimate its cost."""
        if not isinstance(sql, str) or not sql.strip():
            raise invalid_query("Syntax error: Unexpected end of script at [1:1]")
        try:
            statements = [s for s in sqlglot.parse(sql, read="bigquery") if s is not None]
        except ParseError as exc:
            raise invalid_query(_syntax_message(exc)) from exc
        except TokenError as exc:
            raise invalid_query(f"Syntax error: {exc}") from exc
        if not statements:
            raise invalid_query("Syntax error: Unexpected end of script at [1:1]")
        if len(statements) > 1:
            raise invalid_query("The BigQuery emulator runs one statement per job; scripts are not supported")
        tree = statements[0]
        if not isinstance(tree, exp.Query):
            raise invalid_query(f"The BigQuery emulator runs queries (SELECT) only, not {tree.key.upper()} statements")

        tables = self._resolve_tables(tree, default_dataset)
        bind = self._bind_parameters(tree, params)
        for dtype in tree.find_all(exp.DataType):
            # BigQuery's NUMERIC is DECIMAL(38, 9); sqlglot writes a bare DECIMAL (DuckDB's 18, 3).
            if dtype.this == exp.DataType.Type.DECIMAL and not dtype.expressions:
                dtype.set("expressions", [exp.DataTypeParam(this=exp.Literal.number(n)) for n in (38, 9)])
        reads = self._estimate(tree.copy(), tables, bind)
        _name_anonymous_columns(tree)
        _date_trunc_returns_date(tree)
        try:
            duck_sql = tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
        except UnsupportedError as exc:
            raise invalid_query(f"Not supported by the BigQuery emulator: {exc}") from exc
        with self.cursor() as cur:
            try:
                relation = cur.sql(duck_sql, params=dict(bind) or None)
            except duckdb.Error as exc:
                raise _duck_error(exc) from exc
            if relation is None:  # pragma: no cover - only non-queries return no relation
                raise invalid_query("The BigQuery emulator runs queries (SELECT) only")
            fields = tuple(duck_type_to_field(n, t) for n, t in zip(relation.columns, relation.types, strict=True))
        versions = sorted((m.dataset, m.table, m.version) for m in tables.values())
        cache_key = hashlib.sha256(
            json.dumps([duck_sql, _bind_repr(bind), versions], default=str).encode("utf-8")
        ).hexdigest()
        return PreparedQuery(
            sql=sql, duck_sql=duck_sql, bind=bind, fields=fields, reads=tuple(reads), cache_key=cache_key
        )

    def execute(self, prepared: PreparedQuery) -> QueryOutput:
        """Run a prepared query and return its rows."""
        started = time.perf_counter()
        with self.cursor() as cur:
            try:
                relation = cur.sql(prepared.duck_sql, params=dict(prepared.bind) or None)
                table = relation.to_arrow_table() if relation is not None else pa.table({})
            except duckdb.Error as exc:
                raise _duck_error(exc) from exc
        elapsed = time.perf_counter() - started
        with self._lock:
            self._executions += 1
        return QueryOutput(table=table, fields=prepared.fields, elapsed_s=elapsed)

    def _resolve_tables(self, tree: exp.Expr, default_dataset: str | None) -> dict[tuple[str, str], TableMeta]:
        """Point every table reference at its DuckDB table; 404 for unknown ones."""
        cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        found: dict[tuple[str, str], TableMeta] = {}
        for table in list(tree.find_all(exp.Table)):
            if not isinstance(table.this, exp.Identifier):
                continue  # a table-valued function or UNNEST
            name, dataset, project = table.name, table.db, table.catalog
            if not dataset:
                if name.lower() in cte_names:
                    continue
                if not default_dataset:
                    raise invalid_query(f'Table "{name}" must be qualified with a dataset (e.g. dataset.table).')
                dataset = default_dataset
            if dataset.upper() == "INFORMATION_SCHEMA" or name.upper() == "INFORMATION_SCHEMA":
                raise invalid_query("INFORMATION_SCHEMA is not supported by the BigQuery emulator")
            meta = self.table(dataset, name, project=project or None)
            found[(meta.dataset, meta.table)] = meta
            table.set("catalog", None)
            table.set("db", exp.to_identifier(meta.dataset, quoted=True))
            table.set("this", exp.to_identifier(meta.table, quoted=True))
        return found

    @staticmethod
    def _bind_parameters(tree: exp.Expr, params: Sequence[QueryParam]) -> dict[str, Any]:
        """Replace ``@name`` / ``?`` with typed DuckDB parameters; return the values to bind."""
        by_name = {p.name.lower(): p for p in params if p.name}
        positional = [p for p in params if not p.name]
        bind: dict[str, Any] = {}
        next_positional = 0
        for node in list(tree.find_all(exp.Parameter, exp.Placeholder, bfs=False)):
            if isinstance(node, exp.Parameter):
                name = node.name
                param = by_name.get(name.lower())
                if param is None:
                    raise invalid_query(f"Query parameter '{name}' not found{_at(node)}")
                key = "p_" + re.sub(r"\W", "_", name.lower())
            else:
                if next_positional >= len(positional):
                    raise invalid_query(f"Positional query parameter {next_positional + 1} not found{_at(node)}")
                param = positional[next_positional]
                key = f"p{next_positional}"
                next_positional += 1
            bind[key] = param.value
            cast_to = exp.DataType.build(param.sql_type, dialect="bigquery")
            node.replace(exp.Cast(this=exp.Parameter(this=exp.var(key)), to=cast_to))
        return bind

    def _estimate(
        self, tree: exp.Expr, tables: Mapping[tuple[str, str], TableMeta], bind: Mapping[str, Any]
    ) -> list[TableRead]:
        """The columns and rows each table read costs (see the module docstring)."""
        if not tables:
            return []
        everything = [
            TableRead(meta=m, columns=tuple(m.bytes_per_value), rows_scanned=m.num_rows, partitions_scanned=None)
            for m in tables.values()
        ]
        schema: dict[str, object] = {}
        for meta in tables.values():
            tables_of_dataset = schema.setdefault(meta.dataset, {})
            assert isinstance(tables_of_dataset, dict)
            tables_of_dataset[meta.table] = {f.name: f.sql_type() for f in meta.fields}
        try:
            qualified = qualify(tree, schema=schema, dialect="bigquery", validate_qualify_columns=False)
            scopes = list(traverse_scope(qualified))
        except (SqlglotError, KeyError, ValueError, TypeError, AttributeError) as exc:
            # sqlglot cannot follow every BigQuery construct: charge every column (an upper bound).
            logger.debug("BigQuery emulator: cost estimate falls back to full scans: %s", exc)
            return everything

        columns: dict[tuple[str, str], set[str]] = {}
        rows: dict[tuple[str, str], int] = {}
        partitions: dict[tuple[str, str], int | None] = {}
        for scope in scopes:
            table_aliases: dict[str, tuple[str, str]] = {}
            for alias, source in scope.sources.items():
                if not isinstance(source, exp.Table):
                    continue
                key = (source.db, source.name)
                found = tables.get(key)
                if found is None:
                    continue
                meta = found
                table_aliases[alias] = key
                columns.setdefault(key, set())
                scanned, days = self._scan(scope.expression, alias, meta, bind)
                if key not in rows or scanned > rows[key]:
                    rows[key] = scanned
                    partitions[key] = days
            for column in scope.columns:
                key_or_none = table_aliases.get(column.table)
                if key_or_none is not None:
                    columns[key_or_none].add(column.name.lower())
            projections = scope.expression.expressions if isinstance(scope.expression, exp.Select) else []
            if any(isinstance(p, exp.Star) or (isinstance(p, exp.Column) and p.is_star) for p in projections):
                # An unexpanded * (qualify could not): charge every column of the scope's tables.
                for key in table_aliases.values():
                    columns[key].update(tables[key].bytes_per_value)
        reads = []
        for key, meta in tables.items():
            if key not in rows:  # referenced somewhere sqlglot's scopes did not reach
                return everything
            reads.append(
                TableRead(
                    meta=meta,
                    columns=tuple(sorted(columns.get(key, ()))),
                    rows_scanned=rows[key],
                    partitions_scanned=partitions.get(key),
                )
            )
        return reads

    def _scan(self, select: exp.Expr, alias: str, meta: TableMeta, bind: Mapping[str, Any]) -> tuple[int, int | None]:
        """Rows (and days) scanned reading ``meta`` as ``alias`` in ``select``, after partition pruning."""
        if meta.partition_field is None:
            return meta.num_rows, None
        where = select.args.get("where") if isinstance(select, exp.Select) else None
        field_name = meta.partition_field.lower()
        pruning = [p for p in (_conjuncts(where.this) if where is not None else []) if _uses_only(p, alias, field_name)]
        if not pruning:
            return meta.num_rows, meta.num_partitions
        if meta.partitions is None:
            return meta.num_rows, meta.num_partitions
        bounds = _on_bounds(exp.and_(*(p.copy() for p in pruning)), alias, field_name)
        if bounds is None:  # no conjunct BigQuery could prune on: every partition
            return meta.num_rows, meta.num_partitions
        names = {p.name for p in bounds.find_all(exp.Parameter)}
        try:
            condition = bounds.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
        except UnsupportedError:
            return meta.num_rows, meta.num_partitions
        # The partitions' metadata only (one row per day), never the table's rows: a dry run costs the same
        # at any table size, as BigQuery's does.
        sql = f"SELECT COALESCE(SUM(n_rows), 0), COUNT(*) FROM __partitions AS {_PARTITION_ALIAS} WHERE {condition}"  # noqa: S608 - built from the parsed predicate
        with self.cursor() as cur:
            try:
                cur.register("__partitions", meta.partitions)
                try:
                    row = cur.execute(sql, {k: v for k, v in bind.items() if k in names} or None).fetchall()[0]
                finally:
                    cur.unregister("__partitions")
            except duckdb.Error as exc:  # the real run reports the error; the estimate stays conservative
                logger.debug("BigQuery emulator: partition pruning failed (%s): %s", sql, exc)
                return meta.num_rows, meta.num_partitions
        assert row is not None
        return int(row[0]), int(row[1])


def _bind_repr(bind: Mapping[str, Any]) -> list[Any]:
    return sorted((k, repr(v)) for k, v in bind.items())


def _at(node: exp.Expr) -> str:
    meta = getattr(node, "meta", None) or {}
    line, col = meta.get("line"), meta.get("col")
    return f" at [{line}:{col}]" if line and col else ""


def _syntax_message(exc: ParseError) -> str:
    errors = getattr(exc, "errors", None) or []
    if errors and isinstance(errors[0], dict):
        first = errors[0]
        description = str(first.get("description") or "invalid syntax").rstrip(".")
        line, col = first.get("line"), first.get("col")
        where = f" at [{line}:{col}]" if line and col else ""
        return f"Syntax error: {description}{where}"
    return f"Syntax error: {str(exc).splitlines()[0]}"


_UNRECOGNIZED_COLUMN = re.compile(r'Referenced column "([^"]+)" not found')
_MISSING_TABLE = re.compile(r"Table with name (\S+) does not exist")


def _duck_error(exc: duckdb.Error) -> BigQueryError:
    """DuckDB's error as BigQuery would say it (first line only, known messages reworded)."""
    text = str(exc).strip()
    first_line = text.splitlines()[0] if text else type(exc).__name__
    match = _UNRECOGNIZED_COLUMN.search(first_line)
    if match:
        return invalid_query(f"Unrecognized name: {match.group(1)}")
    match = _MISSING_TABLE.search(first_line)
    if match:
        return BigQueryError(404, "notFound", f"Not found: Table {match.group(1)}")
    # Strip DuckDB's "Binder Error: " style prefix.
    message = re.sub(r"^[A-Za-z ]+Error: ", "", first_line)
    return invalid_query(message)


def _conjuncts(node: exp.Expr) -> list[exp.Expr]:
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    if isinstance(node, exp.And):
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


_PARTITION_ALIAS = "__p"
_FLIPPED: dict[type, type] = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE, exp.EQ: exp.EQ}


def _is_column(node: exp.Expr, alias: str, column: str) -> bool:
    return isinstance(node, exp.Column) and node.table == alias and node.name.lower() == column


def _bound(name: str) -> exp.Column:
    return exp.column(name, table=_PARTITION_ALIAS)


def _on_bounds(node: exp.Expr, alias: str, column: str) -> exp.Expr | None:
    """``node`` (a filter on ``alias.column``) as a test of a partition's bounds (``lo``, ``hi``): true when some
    value between them could pass. None when it cannot be told from the bounds (then it prunes nothing).

    An over-approximation, as BigQuery's pruning is: a partition whose bounds could match is scanned.
    """
    if isinstance(node, exp.Paren):
        inner = _on_bounds(node.this, alias, column)
        return None if inner is None else exp.Paren(this=inner)
    if isinstance(node, exp.And):
        left, right = _on_bounds(node.left, alias, column), _on_bounds(node.right, alias, column)
        if left is None or right is None:
            return left or right
        return exp.and_(left, right)
    if isinstance(node, exp.Or):
        left, right = _on_bounds(node.left, alias, column), _on_bounds(node.right, alias, column)
        return None if left is None or right is None else exp.or_(left, right)
    if isinstance(node, exp.Between) and _is_column(node.this, alias, column):
        low, high = node.args.get("low"), node.args.get("high")
        if low is None or high is None or low.find(exp.Column) or high.find(exp.Column):
            return None
        return exp.and_(
            exp.GTE(this=_bound("hi"), expression=low.copy()), exp.LTE(this=_bound("lo"), expression=high.copy())
        )
    if isinstance(node, exp.In) and _is_column(node.this, alias, column):
        values = node.expressions
        if not values or node.args.get("query") or any(v.find(exp.Column) for v in values):
            return None
        return exp.or_(*(_comparison_on_bounds(exp.EQ, v) for v in values))
    if type(node) in _FLIPPED:
        left, right = node.left, node.right
        if _is_column(left, alias, column) and not right.find(exp.Column):
            return _comparison_on_bounds(type(node), right)
        if _is_column(right, alias, column) and not left.find(exp.Column):
            return _comparison_on_bounds(_FLIPPED[type(node)], left)
    return None


def _comparison_on_bounds(kind: type, value: exp.Expr) -> exp.Expr:
    """``column <kind> value`` as a test of the bounds: some v in [lo, hi] with v <kind> value."""
    value = value.copy()
    if kind is exp.GT:
        return exp.GT(this=_bound("hi"), expression=value)
    if kind is exp.GTE:
        return exp.GTE(this=_bound("hi"), expression=value)
    if kind is exp.LT:
        return exp.LT(this=_bound("lo"), expression=value)
    if kind is exp.LTE:
        return exp.LTE(this=_bound("lo"), expression=value)
    return exp.and_(exp.LTE(this=_bound("lo"), expression=value), exp.GTE(this=_bound("hi"), expression=value.copy()))


def _uses_only(predicate: exp.Expr, alias: str, column: str) -> bool:
    """Whether ``predicate`` reads nothing but ``alias.column``, constants and parameters."""
    if predicate.find(exp.Subquery, exp.Select, exp.AggFunc, exp.Window):
        return False
    columns = list(predicate.find_all(exp.Column))
    return bool(columns) and all(c.table == alias and c.name.lower() == column for c in columns)


def _date_trunc_returns_date(tree: exp.Expression) -> None:
    """BigQuery's DATE_TRUNC returns a DATE; DuckDB's date_trunc returns a TIMESTAMP. Cast it back.

    (DATETIME_TRUNC and TIMESTAMP_TRUNC parse to other node types and keep their own result types.)
    """
    for node in list(tree.find_all(exp.DateTrunc)):
        if isinstance(node.parent, exp.Cast):
            continue
        node.replace(exp.Cast(this=node.copy(), to=exp.DataType.build("DATE")))


def _name_anonymous_columns(tree: exp.Expr) -> None:
    """Alias the top-level unnamed expressions ``f0_``, ``f1_``... as BigQuery names them."""
    select: exp.Expr = tree
    while isinstance(select, exp.SetOperation):
        select = select.left
    if isinstance(select, exp.Subquery):
        select = select.unnest()
    if not isinstance(select, exp.Select):
        return
    counter = 0
    projections: list[exp.Expr] = []
    for projection in select.expressions:
        if isinstance(projection, (exp.Alias, exp.Column, exp.Star)) or (
            isinstance(projection, exp.Dot) and projection.is_star
        ):
            projections.append(projection)
            continue
        projections.append(exp.alias_(projection, f"f{counter}_", quoted=False))
        counter += 1
    select.set("expressions", projections)


# --------------------------------------------------------------------------------------------
# Row encoding
# --------------------------------------------------------------------------------------------


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


def _decimal_text(value: Any) -> str:
    text = format(Decimal(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _micros(value: datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


def _scalar_encoder(f: SchemaField, use_int64_timestamp: bool) -> Callable[[Any], Any]:
    kind = f.type
    if kind == "RECORD":
        subs = [(sub.name, _cell_encoder(sub, use_int64_timestamp)) for sub in f.fields]

        def record(value: Any) -> Any:
            if value is None:
                return None
            items = list(value.values()) if isinstance(value, dict) else list(value)
            return {"f": [{"v": enc(item)} for (_, enc), item in zip(subs, items, strict=False)]}

        return record
    if kind == "INT64":
        return lambda v: None if v is None else str(int(v))
    if kind == "FLOAT64":
        return lambda v: None if v is None else _float_text(v)
    if kind in ("NUMERIC", "BIGNUMERIC"):
        return lambda v: None if v is None else _decimal_text(v)
    if kind == "BOOL":
        return lambda v: None if v is None else ("true" if v else "false")
    if kind == "BYTES":
        return lambda v: None if v is None else base64.b64encode(bytes(v)).decode("ascii")
    if kind in ("DATE", "TIME"):
        return lambda v: None if v is None else v.isoformat()
    if kind == "DATETIME":
        return lambda v: None if v is None else v.replace(tzinfo=None).isoformat()
    if kind == "TIMESTAMP":
        if use_int64_timestamp:
            return lambda v: None if v is None else (str(v) if isinstance(v, int) else str(_micros(v)))
        return lambda v: None if v is None else _float_text((v if isinstance(v, int) else _micros(v)) / 1e6)
    if kind == "JSON":
        return lambda v: None if v is None else (v if isinstance(v, str) else json.dumps(v, default=str))

    def text(value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, dict | list):
            return json.dumps(value, default=str)
        return str(value)

    return text


def _cell_encoder(f: SchemaField, use_int64_timestamp: bool) -> Callable[[Any], Any]:
    scalar = _scalar_encoder(f, use_int64_timestamp)
    if f.mode == "REPEATED":
        return lambda v: [] if v is None else [{"v": scalar(item)} for item in v]
    return scalar


def encode_rows(
    table: pa.Table, fields: Sequence[SchemaField], start: int, count: int, *, use_int64_timestamp: bool
) -> list[dict[str, Any]]:
    """Rows ``start .. start+count`` of a result as the REST API's ``[{"f": [{"v": ...}]}]``."""
    if count <= 0 or start >= table.num_rows:
        return []
    window = table.slice(start, count)
    columns: list[list[Any]] = []
    for index, f in enumerate(fields):
        column = window.column(index)
        texts = _arrow_texts(f, column, use_int64_timestamp)
        if texts is not None:
            columns.append(texts)
        else:
            encode = _cell_encoder(f, use_int64_timestamp)
            columns.append([encode(v) for v in column.to_pylist()])
    return [{"f": [{"v": col[i]} for col in columns]} for i in range(window.num_rows)]


def _arrow_texts(f: SchemaField, column: pa.ChunkedArray, use_int64_timestamp: bool) -> list[Any] | None:
    """A top-level scalar column encoded with Arrow compute (fast path); None when Python must do it."""
    if f.mode == "REPEATED":
        return None
    kind, arrow_type = f.type, column.type
    if kind == "STRING" and (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)):
        return column.to_pylist()
    if kind == "INT64" and (pa.types.is_integer(arrow_type) or pa.types.is_decimal(arrow_type)):
        return pc.cast(column, pa.string()).to_pylist()
    if kind == "TIMESTAMP" and use_int64_timestamp and pa.types.is_timestamp(arrow_type):
        micros = pc.cast(pc.cast(column, pa.timestamp("us", tz=arrow_type.tz)), pa.int64())
        return pc.cast(micros, pa.string()).to_pylist()
    if kind in ("NUMERIC", "BIGNUMERIC") and pa.types.is_decimal(arrow_type):
        text = pc.cast(column, pa.string())
        if pc.any(pc.match_substring(text, "E")).as_py():
            return None  # Arrow writes tiny values and zero as 1E-9 / 0E-9: let Python spell them out
        if arrow_type.scale > 0:  # "12.50" -> "12.5", "3.00" -> "3", as BigQuery writes them
            text = pc.replace_substring_regex(text, pattern=r"0+$", replacement="")
            text = pc.replace_substring_regex(text, pattern=r"\.$", replacement="")
        return text.to_pylist()
    if kind == "BOOL" and pa.types.is_boolean(arrow_type):
        return pc.if_else(column, "true", "false").to_pylist()
    if kind == "DATE" and pa.types.is_date(arrow_type):
        return pc.cast(column, pa.string()).to_pylist()
    return None

"""BigQuery connector: the only module of the project that imports ``google.cloud.bigquery``.

Everything leaves here as frozen dataclasses, and every failure as one of the
:mod:`connectors.errors` exceptions (plus :class:`QueryTooExpensive`), with a message that says what
was being done and BigQuery's own words.

How the client is wired (google-cloud-bigquery 3.47):

* With ``api_endpoint`` (the local emulator) the client gets ``AnonymousCredentials`` and
  ``client_options={"api_endpoint": ...}``. Without it, the library's default credentials; the
  underlying client is built on first use, so constructing a :class:`BigQueryClient` never looks
  for credentials or touches the network.
* Every call passes a short, attempt-bounded ``retry`` (transient errors only: 429/5xx/
  ``rateLimitExceeded``/``backendError``, timeouts, connection errors; ``max_attempts`` tries in all
  per public call) and ``job_retry=None``. The library's defaults retry for up to 10 minutes (and
  ``jobs.insert`` is wrapped in a second 10-minute retry whenever ``job_retry`` is set).
* Queries use jobs.insert with a ``job_id_prefix`` (so a retried insert that already created the
  job is recovered by the library through jobs.get rather than run twice), then wait and page
  through getQueryResults.
* A failed query job carries its error in ``status.errorResult``; the library turns reasons it does
  not know into HTTP 500 exceptions (``bytesBilledLimitExceeded`` arrives as InternalServerError),
  so errors are mapped on BigQuery's ``reason`` first and the HTTP status second.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dt_time
from decimal import Decimal
from typing import Any, TypeVar

import requests
from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from connectors.errors import (
    ConnectorAuthError,
    ConnectorBadResponse,
    ConnectorError,
    ConnectorNotFound,
    ConnectorRateLimited,
    ConnectorRequestError,
    ConnectorTransientError,
)
from connectors.http import request_hook_install, request_record

__all__ = [
    "BigQueryClient",
    "Column",
    "QueryEstimate",
    "QueryResult",
    "QueryTooExpensive",
    "TableInfo",
    "bigquery_client",
]

logger = logging.getLogger(__name__)

SYSTEM = "bigquery"
MIB = 1 << 20
MIN_BILLED_BYTES = 10 * MIB
T = TypeVar("T")

# Reasons BigQuery documents as worth retrying (https://cloud.google.com/bigquery/docs/error-messages).
_TRANSIENT_REASONS = frozenset({"backendError", "internalError", "badGateway", "timeout", "rateLimitExceeded"})
_RATE_REASONS = frozenset({"rateLimitExceeded", "quotaExceeded", "jobRateLimitExceeded"})
_JOB_TRANSIENT_REASONS = frozenset({"jobBackendError", "jobInternalError"})
_AUTH_REASONS = frozenset({"accessDenied", "authError", "unauthorized", "billingNotEnabled"})
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    api_exceptions.TooManyRequests,
    api_exceptions.InternalServerError,
    api_exceptions.BadGateway,
    api_exceptions.ServiceUnavailable,
    api_exceptions.GatewayTimeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    auth_exceptions.TransportError,
    ConnectionError,
)
_BYTES_LIMIT_RE = re.compile(r"bytes billed:\s*(\d+)\.\s*(\d+) or higher required")


# --------------------------------------------------------------------------------------------
# What callers get back
# --------------------------------------------------------------------------------------------


class QueryTooExpensive(ConnectorRequestError):
    """BigQuery refused to run a query over ``maximum_bytes_billed`` (nothing ran, nothing billed).

    ``limit`` is the cap that was set; ``required`` the bill BigQuery computed, when it said.
    """

    def __init__(self, message: str, *, limit: int | None, required: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.limit = limit
        self.required = required


@dataclass(frozen=True)
class Column:
    """A column of a table or query result, with BigQuery's type names (``RECORD`` has ``fields``)."""

    name: str
    type: str
    mode: str = "NULLABLE"
    fields: tuple[Column, ...] = ()


@dataclass(frozen=True)
class QueryEstimate:
    """A dry run: bytes the query would process and the schema it would return."""

    bytes_processed: int
    schema: tuple[Column, ...]

    @property
    def bytes_billed(self) -> int:
        """What running it would bill (MiB-rounded, 10 MiB minimum), were it not cached."""
        if self.bytes_processed <= 0:
            return 0
        return max(MIN_BILLED_BYTES, math.ceil(self.bytes_processed / MIB) * MIB)


@dataclass(frozen=True)
class QueryResult:
    """A finished query.

    ``rows`` is a list of dicts keyed by column name (a result with two columns of the same name
    keeps the last), with Python values: ``Decimal`` for NUMERIC, timezone-aware (UTC) ``datetime``
    for TIMESTAMP, naive ``datetime`` for DATETIME, ``date``, ``int``, ``float``, ``str``, ``bool``,
    lists for ARRAY and dicts for STRUCT. ``total_rows`` counts the whole result even when
    ``max_rows`` cut ``rows`` short. Bytes and slot-ms are BigQuery's job statistics (0 billed on a
    cache hit); ``duration_s`` is the wall time this call took.
    """

    job_id: str
    location: str | None
    rows: list[dict[str, Any]]
    schema: tuple[Column, ...]
    total_rows: int
    bytes_processed: int
    bytes_billed: int
    slot_ms: int
    cache_hit: bool
    duration_s: float
    started: datetime | None
    ended: datetime | None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TableInfo:
    """A table's metadata; ``partition_field`` None when not partitioned (or ingestion-time)."""

    project: str
    dataset: str
    table: str
    schema: tuple[Column, ...]
    num_rows: int | None
    num_bytes: int | None
    partition_type: str | None
    partition_field: str | None
    created: datetime | None
    modified: datetime | None
    description: str | None


# --------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------


def _scalar_type(name: str, value: Any) -> str:
    """BigQuery type of a Python parameter value (bool before int, datetime before date)."""
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, Decimal):
        return "NUMERIC"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, datetime):
        return "TIMESTAMP"
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, dt_time):
        return "TIME"
    if isinstance(value, bytes):
        return "BYTES"
    raise TypeError(f"query parameter {name!r}: unsupported Python type {type(value).__name__}")


def _parameter_value(value: Any) -> Any:
    # The library formats a naive datetime as if it were UTC; say so explicitly.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def query_parameters(params: Mapping[str, Any]) -> list[Any]:
    """Typed named parameters from Python values.

    str -> STRING, int -> INT64, float -> FLOAT64, Decimal -> NUMERIC, bool -> BOOL, date -> DATE,
    datetime -> TIMESTAMP (naive = UTC), list/tuple of those -> ARRAY of that type (an empty or
    all-None list is ARRAY<STRING>), None -> a NULL STRING.
    """
    out: list[Any] = []
    for name, value in params.items():
        if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise ValueError(f"invalid query parameter name {name!r}")
        if isinstance(value, (list, tuple)):
            types = {_scalar_type(name, v) for v in value if v is not None}
            if len(types) > 1:
                raise TypeError(f"query parameter {name!r}: array elements of mixed types {sorted(types)}")
            element = types.pop() if types else "STRING"
            out.append(bigquery.ArrayQueryParameter(name, element, [_parameter_value(v) for v in value]))
        elif value is None:
            out.append(bigquery.ScalarQueryParameter(name, "STRING", None))
        else:
            out.append(bigquery.ScalarQueryParameter(name, _scalar_type(name, value), _parameter_value(value)))
    return out


def _columns(schema: Any) -> tuple[Column, ...]:
    return tuple(
        Column(
            name=f.name,
            type=str(f.field_type),
            mode=str(f.mode or "NULLABLE"),
            fields=_columns(f.fields) if f.fields else (),
        )
        for f in (schema or ())
    )


def _reason_and_message(exc: api_exceptions.GoogleAPICallError) -> tuple[str | None, str]:
    """BigQuery's first error reason and message (without the library's job footer)."""
    reason = None
    message = ""
    errors = getattr(exc, "errors", None) or []
    if errors and isinstance(errors[0], dict):
        reason = errors[0].get("reason")
        message = str(errors[0].get("message") or "")
    if not message:
        message = str(exc.message or "").split("\n\nLocation:")[0].strip()
        message = message.split("; reason:")[0]
    return reason, message


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def _is_transient(exc: BaseException) -> bool:
    """Whether retrying ``exc`` may help (BigQuery's reason decides when it gave one)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    errors = getattr(exc, "errors", None)
    if isinstance(exc, api_exceptions.GoogleAPICallError) and errors and isinstance(errors[0], dict):
        reason = errors[0].get("reason")
        if reason:
            return reason in _TRANSIENT_REASONS
    return isinstance(exc, _TRANSIENT_TYPES)


def map_error(action: str, exc: BaseException) -> ConnectorError:
    """The :mod:`connectors.errors` exception for a failure of ``action``."""
    prefix = f"BigQuery: {action} failed"
    if isinstance(exc, api_exceptions.RetryError):
        cause = exc.cause
        if cause is not None:
            error = map_error(action, cause)
            return error.with_suffix(" (retries exhausted)")
        return ConnectorTransientError(f"{prefix}: {exc.message}", system=SYSTEM)
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        reason, message = _reason_and_message(exc)
        status = exc.code if isinstance(exc.code, int) else None
        detail = f"{prefix}: {message}" + (f" ({reason})" if reason else f" (HTTP {status})")
        if reason == "bytesBilledLimitExceeded":
            match = _BYTES_LIMIT_RE.search(message)
            return QueryTooExpensive(
                detail,
                limit=int(match.group(1)) if match else None,
                required=int(match.group(2)) if match else None,
                status=400,
                system=SYSTEM,
            )
        if reason in _RATE_REASONS or status == 429:
            return ConnectorRateLimited(detail, retry_after=_retry_after(exc), status=status, system=SYSTEM)
        if reason == "notFound" or status == 404:
            return ConnectorNotFound(detail, status=404, system=SYSTEM)
        if status == 401 or reason in _AUTH_REASONS or (status == 403 and reason is None):
            return ConnectorAuthError(detail, status=status, system=SYSTEM)
        if reason in _TRANSIENT_REASONS or reason in _JOB_TRANSIENT_REASONS:
            return ConnectorTransientError(detail, status=status, system=SYSTEM)
        if reason is None and status is not None and (status >= 500 or status == 408):
            return ConnectorTransientError(detail, status=status, system=SYSTEM)
        # Anything else is BigQuery refusing this request or query (invalidQuery, invalid,
        # duplicate, resourcesExceeded, responseTooLarge...): retrying the same thing will not help.
        return ConnectorRequestError(detail, status=status if status and status < 500 else 400, system=SYSTEM)
    if isinstance(exc, concurrent.futures.TimeoutError):
        return ConnectorTransientError(f"{prefix}: the query job did not finish in time", system=SYSTEM)
    if isinstance(exc, requests.exceptions.Timeout):
        return ConnectorTransientError(f"{prefix}: timed out ({exc})", system=SYSTEM)
    if isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError, auth_exceptions.TransportError)):
        return ConnectorTransientError(f"{prefix}: connection failed ({exc})", system=SYSTEM)
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        return ConnectorAuthError(f"{prefix}: credentials problem ({exc})", system=SYSTEM)
    if isinstance(exc, requests.exceptions.RequestException):
        return ConnectorTransientError(f"{prefix}: {exc}", system=SYSTEM)
    return ConnectorBadResponse(f"{prefix}: unexpected reply ({type(exc).__name__}: {exc})", system=SYSTEM)


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


class BigQueryClient:
    """Runs queries and reads table metadata in one BigQuery project through ``google-cloud-bigquery``.

    ``api_endpoint`` aims it at an emulator (``http://127.0.0.1:PORT``) with anonymous credentials;
    ``credentials`` overrides the library's default credentials otherwise. ``timeout`` bounds each
    HTTP request and the wait for a query job to finish. Transient failures are tried up to
    ``max_attempts`` times in all per call, waiting ``backoff_base * 2**n`` seconds (capped at
    ``backoff_max``) in between. Thread-safe.
    """

    def __init__(
        self,
        *,
        project: str,
        location: str = "US",
        api_endpoint: str | None = None,
        credentials: Any = None,
        timeout: float = 60,
        max_attempts: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
    ) -> None:
        if not project:
            raise ValueError("a BigQuery project id is required")
        if timeout <= 0 or max_attempts < 1 or backoff_base < 0 or backoff_max < 0:
            raise ValueError("timeout must be > 0, max_attempts >= 1 and backoffs >= 0")
        self.project = project
        self.location = location
        self.api_endpoint = api_endpoint.rstrip("/") if api_endpoint else None
        self.timeout = float(timeout)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._credentials = credentials
        self._client: bigquery.Client | None = None
        self._client_lock = threading.Lock()

    # ---- plumbing -----------------------------------------------------------------------------

    def _sdk(self) -> bigquery.Client:
        with self._client_lock:
            if self._client is None:
                options: dict[str, Any] = {"project": self.project, "location": self.location}
                if self.api_endpoint:
                    options["credentials"] = self._credentials or AnonymousCredentials()
                    options["client_options"] = {"api_endpoint": self.api_endpoint}
                elif self._credentials is not None:
                    options["credentials"] = self._credentials
                self._client = bigquery.Client(**options)
                request_hook_install(self._client._http, system=SYSTEM)  # counts and times requests for monitoring
            return self._client

    def close(self) -> None:
        """Release the HTTP connection pool."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> BigQueryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _retry(self) -> tuple[api_retry.Retry, list[int]]:
        """A Retry for one public call (transient errors only, ``max_attempts`` tries in all) and its retry count."""
        retried = [0]
        lock = threading.Lock()

        def predicate(exc: Exception) -> bool:
            if not _is_transient(exc):
                return False
            with lock:
                if retried[0] >= self.max_attempts - 1:
                    return False
                retried[0] += 1
            logger.warning("BigQuery: transient failure, retrying (%s: %s)", type(exc).__name__, exc)
            return True

        retry = api_retry.Retry(
            predicate=predicate,
            initial=max(self.backoff_base, 0.001),
            maximum=max(self.backoff_max, 0.001),
            multiplier=2.0,
            timeout=(self.timeout + self.backoff_max) * self.max_attempts,
        )
        return retry, retried

    def _call(self, action: str, fn: Callable[[api_retry.Retry], T]) -> T:
        """Run ``fn(retry)`` with the error mapping; auth/setup problems surface as connector errors."""
        retry, retried = self._retry()
        try:
            return fn(retry)
        except ConnectorError:
            raise
        except (
            api_exceptions.GoogleAPIError,
            concurrent.futures.TimeoutError,
            requests.exceptions.RequestException,
            auth_exceptions.GoogleAuthError,
            ConnectionError,
        ) as exc:
            error = map_error(action, exc)
            if retried[0]:
                error = error.with_suffix(f" (after {retried[0] + 1} attempts)")
            raise error from exc
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            # The library chokes on a reply it cannot read (missing or malformed fields).
            raise ConnectorBadResponse(
                f"BigQuery: {action} failed: the reply could not be read ({type(exc).__name__}: {exc})",
                system=SYSTEM,
            ) from exc

    # ---- queries --------------------------------------------------------------------------------

    def query_dry_run(self, *, sql: str, params: Mapping[str, Any] | None = None) -> QueryEstimate:
        """Ask BigQuery what ``sql`` would process (bytes) and return (schema), without running it."""
        config = bigquery.QueryJobConfig(
            dry_run=True, use_query_cache=False, query_parameters=query_parameters(params or {})
        )
        action = "estimating a query (dry run)"

        def run(retry: api_retry.Retry) -> QueryEstimate:
            job = self._sdk().query(
                sql, job_config=config, retry=retry, timeout=self.timeout, job_retry=None, location=self.location
            )
            processed = job.total_bytes_processed
            if processed is None:
                raise ConnectorBadResponse(
                    f"BigQuery: {action} failed: the reply has no totalBytesProcessed", system=SYSTEM
                )
            return QueryEstimate(bytes_processed=int(processed), schema=_columns(job.schema))

        return self._call(action, run)

    def query_run(
        self,
        *,
        sql: str,
        params: Mapping[str, Any] | None = None,
        maximum_bytes_billed: int | None,
        labels: dict[str, str] | None = None,
        job_id_prefix: str = "dataops_",
        page_size: int | None = None,
        max_rows: int | None = None,
        use_query_cache: bool = True,
    ) -> QueryResult:
        """Run ``sql`` as a query job and return all its rows (or the first ``max_rows``) with job statistics.

        ``maximum_bytes_billed`` is passed to BigQuery, which refuses (before running anything) a
        query that would bill more: :class:`QueryTooExpensive`. ``None`` means the project default
        (usually no limit). ``page_size`` sets the rows per getQueryResults page; ``use_query_cache=False``
        makes BigQuery run the query even when it has the answer cached (benchmarks).
        """
        if maximum_bytes_billed is not None and maximum_bytes_billed < 0:
            raise ValueError("maximum_bytes_billed must be >= 0 or None")
        config = bigquery.QueryJobConfig(
            query_parameters=query_parameters(params or {}), labels=dict(labels or {}), use_query_cache=use_query_cache
        )
        if maximum_bytes_billed is not None:
            # Only when set: the library sends maximum_bytes_billed=None as the string "None".
            config.maximum_bytes_billed = maximum_bytes_billed
        action = "running a query"
        started = time.monotonic()

        def run(retry: api_retry.Retry) -> QueryResult:
            job = self._sdk().query(
                sql,
                job_config=config,
                job_id_prefix=job_id_prefix,
                retry=retry,
                timeout=self.timeout,
                job_retry=None,
                location=self.location,
            )
            try:
                iterator = job.result(
                    retry=retry, timeout=self.timeout, page_size=page_size, max_results=max_rows, job_retry=None
                )
                rows = [dict(row.items()) for row in iterator]
            except concurrent.futures.TimeoutError:
                self._cancel_quietly(job)
                raise
            total = iterator.total_rows
            request_record(system=SYSTEM, method="QUERY", status=None, duration_s=0, requests=0,
                           bytes_billed=int(job.total_bytes_billed or 0))  # fmt: skip
            return QueryResult(
                job_id=str(job.job_id),
                location=job.location,
                rows=rows,
                schema=_columns(iterator.schema),
                total_rows=int(total if total is not None else len(rows)),
                bytes_processed=int(job.total_bytes_processed or 0),
                bytes_billed=int(job.total_bytes_billed or 0),
                slot_ms=int(job.slot_millis or 0),
                cache_hit=bool(job.cache_hit),
                duration_s=time.monotonic() - started,
                started=job.started,
                ended=job.ended,
                labels=dict(job.labels or {}),
            )

        return self._call(action, run)

    def _cancel_quietly(self, job: Any) -> None:
        """Best effort: stop a job we gave up waiting for, so it does not keep billing."""
        try:
            job.cancel(timeout=min(self.timeout, 10), retry=None)
        except Exception as exc:  # noqa: BLE001 - the caller already gets the timeout error
            logger.warning("BigQuery: could not cancel job %s after a timeout: %s", job.job_id, exc)

    # ---- metadata -----------------------------------------------------------------------------------

    def table_get(self, *, dataset: str, table: str) -> TableInfo:
        """A table's schema, size and partitioning."""
        action = f"reading table {dataset}.{table}"

        def run(retry: api_retry.Retry) -> TableInfo:
            info = self._sdk().get_table(f"{self.project}.{dataset}.{table}", retry=retry, timeout=self.timeout)
            partitioning = info.time_partitioning
            return TableInfo(
                project=info.project,
                dataset=info.dataset_id,
                table=info.table_id,
                schema=_columns(info.schema),
                num_rows=info.num_rows,
                num_bytes=info.num_bytes,
                partition_type=partitioning.type_ if partitioning is not None else None,
                partition_field=partitioning.field if partitioning is not None else None,
                created=info.created,
                modified=info.modified,
                description=info.description,
            )

        return self._call(action, run)


def bigquery_client() -> BigQueryClient:
    """A :class:`BigQueryClient` configured from Django settings.

    ``GOOGLE_CLOUD_PROJECT`` (default ``dataops-local``), ``BIGQUERY_LOCATION`` (``US``),
    ``BIGQUERY_EMULATOR_HOST`` (an ``http://host:port`` emulator; empty = real BigQuery with the
    library's default credentials), ``BIGQUERY_TIMEOUT`` and ``BIGQUERY_MAX_ATTEMPTS``.
    """
    from django.conf import settings

    endpoint = str(getattr(settings, "BIGQUERY_EMULATOR_HOST", "") or "").strip()
    if endpoint and "://" not in endpoint:
        endpoint = f"http://{endpoint}"  # the library's own variable is a bare host:port
    return BigQueryClient(
        project=str(getattr(settings, "GOOGLE_CLOUD_PROJECT", "") or "dataops-local"),
        location=str(getattr(settings, "BIGQUERY_LOCATION", "") or "US"),
        api_endpoint=endpoint or None,
        timeout=float(getattr(settings, "BIGQUERY_TIMEOUT", 60)),
        max_attempts=int(getattr(settings, "BIGQUERY_MAX_ATTEMPTS", 3)),
    )

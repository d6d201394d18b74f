"""The BigQuery API v2 emulator: jobs, query results, tables, and BigQuery-shaped errors.

Routes follow what ``google-cloud-bigquery`` 3.47 sends (``client_options={"api_endpoint": url}``
or ``BIGQUERY_EMULATOR_HOST``), all under ``/bigquery/v2/projects/{project}``:

* ``POST /jobs`` (jobs.insert): query jobs only. ``configuration.dryRun`` answers the estimate and
  the schema without running anything. Otherwise the query runs before the reply (so the job is
  ``DONE``), unless ``job_running_ms`` makes jobs look ``RUNNING`` for a while to exercise polling.
  Like BigQuery, a query that fails (invalid SQL, unknown table, over ``maximumBytesBilled``)
  still creates a job, ``DONE`` with ``status.errorResult``; getQueryResults on it answers the HTTP
  error. A dry run and jobs.query answer the HTTP error directly. A reused job id is a 409
  ``duplicate``.
* ``GET /jobs/{jobId}`` (jobs.get, ``location`` checked), ``GET /jobs``, ``POST /jobs/{jobId}/cancel``.
* ``GET /queries/{jobId}`` (getQueryResults): ``maxResults`` (0 = status only), ``pageToken``,
  ``startIndex``, ``timeoutMs``, ``formatOptions.useInt64Timestamp``, ``fields``.
* ``POST /queries`` (jobs.query): the same semantics, answering the first page and the jobReference.
* ``GET /datasets``, ``GET /datasets/{d}``, ``GET /datasets/{d}/tables``, ``GET /datasets/{d}/tables/{t}``.

Statistics: ``totalBytesProcessed`` is the engine's estimate (see :mod:`sandbox.bigquery.engine`),
``totalBytesBilled`` its MiB-rounded bill (10 MiB minimum), ``totalSlotMs`` the measured DuckDB time,
``cacheHit`` true when the same SQL and parameters ran on the same table versions and
``useQueryCache`` is not false (then nothing is processed or billed). Finished jobs and their rows
are kept in memory, the last ``max_jobs`` of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.bigquery.engine import (
    DEFAULT_LOCATION,
    DEFAULT_PROJECT,
    BigQueryError,
    DuckEngine,
    PreparedQuery,
    QueryOutput,
    TableMeta,
    encode_rows,
    invalid_query,
    parse_query_parameters,
)
from sandbox.common import EmulatorHTTPError, EmulatorServer, apply_fields, json_response, parse_fields, request_json

API = "/bigquery/v2/projects/<project>"
DEFAULT_PAGE_ROWS = 50_000  # BigQuery caps a page at ~10 MB; a row count is close enough here
MAX_WAIT_S = 10.0  # getQueryResults' default timeoutMs
_JOB_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,1024}$")
_STATUS_TEXT = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "BAD_GATEWAY",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_REASONS = {
    400: "invalid",
    401: "authError",
    403: "accessDenied",
    404: "notFound",
    405: "invalid",
    409: "duplicate",
    429: "rateLimitExceeded",
    500: "backendError",
    502: "badGateway",
    503: "backendError",
    504: "timeout",
}


def bigquery_error_body(status: int, reason: str, message: str, *, location: str | None = None) -> dict[str, Any]:
    """BigQuery's JSON error reply."""
    proto: dict[str, Any] = {"message": message, "domain": "global", "reason": reason}
    if location:
        proto.update({"location": location, "locationType": "other"})
    return {
        "error": {
            "code": status,
            "message": message,
            "errors": [proto],
            "status": _STATUS_TEXT.get(status, "UNKNOWN"),
        }
    }


def _http_error(exc: BigQueryError) -> EmulatorHTTPError:
    body = bigquery_error_body(exc.status, exc.reason, exc.message, location=exc.location)
    return EmulatorHTTPError(exc.status, exc.message, extra=body)


def _ms_text(ms: int | None) -> str | None:
    return None if ms is None else str(ms)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _int_param(value: Any, name: str, *, minimum: int = 0) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise BigQueryError(400, "invalid", f"Invalid value for {name}: {value!r} is not an integer") from exc
    if number < minimum:
        raise BigQueryError(400, "invalid", f"Invalid value for {name}: must be >= {minimum}")
    return number


def _check_limit(value: Any, path: str) -> None:
    """Reject a non-integer ``maximumBytesBilled`` the way the API rejects a malformed INT64 field."""
    if value is None:
        return
    try:
        int(str(value))
    except ValueError as exc:
        raise BigQueryError(400, "invalid", f"Invalid value at '{path}' (TYPE_INT64), \"{value}\"") from exc


def _true(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


@dataclass
class _Job:
    """One query job: configuration, outcome and (when it succeeded) its rows."""

    project: str
    job_id: str
    location: str
    configuration: dict[str, Any]
    created_ms: int
    done_at: float = 0.0  # monotonic time from which the job reports DONE
    started_ms: int | None = None
    ended_ms: int | None = None
    error: BigQueryError | None = None
    prepared: PreparedQuery | None = None
    output: QueryOutput | None = None
    cache_hit: bool = False
    bytes_processed: int = 0
    bytes_billed: int = 0
    slot_ms: int = 0
    cancelled: bool = False

    @property
    def done(self) -> bool:
        """Whether the job reports DONE now."""
        return self.cancelled or time.monotonic() >= self.done_at


class BigQueryEmulator(EmulatorServer):
    """A local BigQuery API v2 over a :class:`DuckEngine` seeded from ``data_dir``.

    ``job_running_ms`` keeps every new job ``RUNNING`` that long (the query itself has already
    run), so clients poll jobs.get / getQueryResults as they do against BigQuery.
    """

    def __init__(
        self,
        *,
        data_dir: str | Path | None = None,
        project: str = DEFAULT_PROJECT,
        location: str = DEFAULT_LOCATION,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        job_running_ms: float = 0,
        max_jobs: int = 200,
    ) -> None:
        self.project = project
        self.location = location
        self.job_running_ms = job_running_ms
        self.max_jobs = max_jobs
        self.engine = DuckEngine(project=project, location=location)
        if data_dir is not None:
            self.engine.load_directory(data_dir)
        self._jobs: OrderedDict[tuple[str, str], _Job] = OrderedDict()
        self._cache: OrderedDict[str, QueryOutput] = OrderedDict()
        self._jobs_lock = threading.Lock()
        super().__init__(name="bigquery", url_map=self._build_map(), host=host, port=port, latency_ms=latency_ms)

    def close(self) -> None:
        """Stop serving and release the DuckDB database."""
        self.stop()
        self.engine.close()

    # ---- inspection helpers for tests -----------------------------------------------------------

    def duckdb_query(self, sql: str, params: Any = None) -> list[tuple]:
        """Run DuckDB SQL directly on the emulator's database (tables are ``"dataset"."table"``)."""
        return self.engine.duckdb_query(sql, params)

    @property
    def queries_executed(self) -> int:
        """Queries actually run on DuckDB (dry runs, refused jobs and cache hits do not count)."""
        return self.engine.executions

    def load_table(self, dataset: str, table: str, source: Any, **kwargs: Any) -> TableMeta:
        """Create or replace a table (see :meth:`DuckEngine.load_table`); invalidates cached results."""
        return self.engine.load_table(dataset, table, source, **kwargs)

    def job(self, job_id: str, *, project: str | None = None) -> dict[str, Any]:
        """The jobs.get resource of a kept job (KeyError when unknown)."""
        with self._jobs_lock:
            job = self._jobs[(project or self.project, job_id)]
        return self._job_resource(job)

    def job_ids(self) -> list[str]:
        """Ids of the kept jobs, oldest first."""
        with self._jobs_lock:
            return [job_id for (_, job_id) in self._jobs]

    def clear_cache(self) -> None:
        """Forget cached query results."""
        with self._jobs_lock:
            self._cache.clear()

    # ---- routing ----------------------------------------------------------------------------------

    def _build_map(self) -> Map:
        def rule(path: str, handler: Callable[..., Response], *methods: str) -> Rule:
            def endpoint(request: Request, **values: Any) -> Response:
                try:
                    return handler(request, **values)
                except BigQueryError as exc:
                    raise _http_error(exc) from exc

            return Rule(path, endpoint=endpoint, methods=list(methods))

        return Map(
            [
                rule(f"{API}/jobs", self.jobs_insert, "POST"),
                rule(f"{API}/jobs", self.jobs_list, "GET"),
                rule(f"{API}/jobs/<job_id>", self.jobs_get, "GET"),
                rule(f"{API}/jobs/<job_id>/cancel", self.jobs_cancel, "POST"),
                rule(f"{API}/queries", self.jobs_query, "POST"),
                rule(f"{API}/queries/<job_id>", self.get_query_results, "GET"),
                rule(f"{API}/datasets", self.datasets_list, "GET"),
                rule(f"{API}/datasets/<dataset>", self.datasets_get, "GET"),
                rule(f"{API}/datasets/<dataset>/tables", self.tables_list, "GET"),
                rule(f"{API}/datasets/<dataset>/tables/<table>", self.tables_get, "GET"),
            ]
        )

    def error_body(self, status: int, message: str, request: Request) -> dict[str, Any]:
        """BigQuery's error shape, with the reason BigQuery gives for that status."""
        return bigquery_error_body(
            status, _REASONS.get(status, "backendError" if status >= 500 else "invalid"), message
        )

    # ---- jobs -------------------------------------------------------------------------------------------

    def jobs_insert(self, request: Request, project: str) -> Response:
        """``POST /jobs``: run a query job (or estimate it, for a dry run)."""
        body = request_json(request)
        if not isinstance(body, dict):
            raise BigQueryError(400, "invalid", "Expected a Job resource in the request body")
        reference = body.get("jobReference") or {}
        configuration = body.get("configuration") or {}
        query = configuration.get("query") if isinstance(configuration, dict) else None
        if not isinstance(query, dict):
            raise BigQueryError(400, "invalid", "The BigQuery emulator runs query jobs only (configuration.query)")
        location = reference.get("location") or self.location
        if configuration.get("dryRun"):
            prepared = self._prepare(query)
            return json_response(self._dry_run_job(project, location, configuration, prepared))
        _check_limit(query.get("maximumBytesBilled"), "job.configuration.query.maximum_bytes_billed")
        job_id = reference.get("jobId") or f"job_{secrets.token_urlsafe(18)}"
        if not _JOB_ID_RE.match(job_id):
            raise BigQueryError(
                400, "invalid", f'Invalid job ID "{job_id}": use letters, numbers, dashes and underscores'
            )
        job = self._create_job(project, job_id, location, configuration)
        self._run(job, query)
        return json_response(self._job_resource(job))

    def jobs_get(self, request: Request, project: str, job_id: str) -> Response:
        """``GET /jobs/{jobId}``."""
        job = self._find_job(project, job_id, request.args.get("location"))
        return json_response(self._job_resource(job))

    def jobs_list(self, request: Request, project: str) -> Response:
        """``GET /jobs``: the kept jobs of the project, newest first."""
        with self._jobs_lock:
            jobs = [j for (p, _), j in reversed(self._jobs.items()) if p == project]
        limit = _int_param(request.args.get("maxResults"), "maxResults") or len(jobs)
        items = []
        for job in jobs[:limit]:
            resource = self._job_resource(job)
            resource["state"] = resource["status"]["state"]
            items.append(resource)
        return json_response({"kind": "bigquery#jobList", "etag": self._etag(len(items)), "jobs": items})

    def jobs_cancel(self, request: Request, project: str, job_id: str) -> Response:
        """``POST /jobs/{jobId}/cancel``: a running job stops at once (without an error, like BigQuery)."""
        job = self._find_job(project, job_id, request.args.get("location"))
        if not job.done:
            job.cancelled = True
            job.ended_ms = _now_ms()
            job.error = BigQueryError(400, "stopped", "Job execution was cancelled: User requested cancellation")
        return json_response({"kind": "bigquery#jobCancelResponse", "job": self._job_resource(job)})

    def get_query_results(self, request: Request, project: str, job_id: str) -> Response:
        """``GET /queries/{jobId}``: wait up to ``timeoutMs`` for the job, then a page of rows or its error."""
        job = self._find_job(project, job_id, request.args.get("location"))
        timeout_ms = _int_param(request.args.get("timeoutMs"), "timeoutMs")
        self._wait(job, MAX_WAIT_S if timeout_ms is None else min(timeout_ms / 1000, MAX_WAIT_S))
        page = self._results_page(
            job,
            max_results=_int_param(request.args.get("maxResults"), "maxResults"),
            page_token=request.args.get("pageToken"),
            start_index=_int_param(request.args.get("startIndex"), "startIndex"),
            use_int64_timestamp=_true(request.args.get("formatOptions.useInt64Timestamp")),
        )
        page["kind"] = "bigquery#getQueryResultsResponse"
        try:
            tree = parse_fields(request.args.get("fields"))
        except ValueError as exc:
            raise BigQueryError(400, "invalid", f"Invalid fields parameter: {exc}") from exc
        return json_response(apply_fields(page, tree))

    def jobs_query(self, request: Request, project: str) -> Response:
        """``POST /queries``: run a query and answer its first page (jobs.query)."""
        body = request_json(request)
        if not isinstance(body, dict):
            raise BigQueryError(400, "invalid", "Expected a QueryRequest in the request body")
        query = {
            key: body[key]
            for key in (
                "query",
                "useLegacySql",
                "parameterMode",
                "queryParameters",
                "maximumBytesBilled",
                "useQueryCache",
                "defaultDataset",
                "createSession",
                "connectionProperties",
            )
            if key in body
        }
        configuration: dict[str, Any] = {"query": query}
        if body.get("labels"):
            configuration["labels"] = body["labels"]
        location = body.get("location") or self.location
        if body.get("dryRun"):
            configuration["dryRun"] = True
            prepared = self._prepare(query)
            dry = self._dry_run_job(project, location, configuration, prepared)
            return json_response(
                {
                    "kind": "bigquery#queryResponse",
                    "schema": {"fields": [f.to_api() for f in prepared.fields]},
                    "jobReference": dry["jobReference"],
                    "totalBytesProcessed": str(prepared.bytes_processed),
                    "jobComplete": True,
                    "cacheHit": False,
                }
            )
        _check_limit(query.get("maximumBytesBilled"), "query_request.maximum_bytes_billed")
        job = self._create_job(project, f"job_{secrets.token_urlsafe(18)}", location, configuration)
        self._run(job, query)
        timeout_ms = _int_param(body.get("timeoutMs"), "timeoutMs")
        self._wait(job, MAX_WAIT_S if timeout_ms is None else min(timeout_ms / 1000, MAX_WAIT_S))
        page = self._results_page(
            job,
            max_results=_int_param(body.get("maxResults"), "maxResults"),
            page_token=None,
            start_index=None,
            use_int64_timestamp=_true((body.get("formatOptions") or {}).get("useInt64Timestamp")),
        )
        page["kind"] = "bigquery#queryResponse"
        page["queryId"] = job.job_id
        page["location"] = job.location
        return json_response(page)

    # ---- datasets and tables ------------------------------------------------------------------------------

    def datasets_list(self, request: Request, project: str) -> Response:
        """``GET /datasets``."""
        items = [
            {
                "kind": "bigquery#dataset",
                "id": f"{project}:{name}",
                "datasetReference": {"projectId": project, "datasetId": name},
                "location": self.location,
                "type": "DEFAULT",
            }
            for name in self.engine.datasets()
        ]
        return json_response({"kind": "bigquery#datasetList", "etag": self._etag(len(items)), "datasets": items})

    def datasets_get(self, request: Request, project: str, dataset: str) -> Response:
        """``GET /datasets/{d}``."""
        created = self.engine.dataset_created_ms(dataset)
        return json_response(
            {
                "kind": "bigquery#dataset",
                "etag": self._etag(created),
                "id": f"{project}:{dataset}",
                "selfLink": f"{self._root}/bigquery/v2/projects/{project}/datasets/{dataset}",
                "datasetReference": {"projectId": project, "datasetId": dataset},
                "location": self.location,
                "creationTime": str(created),
                "lastModifiedTime": str(created),
                "type": "DEFAULT",
            }
        )

    def tables_list(self, request: Request, project: str, dataset: str) -> Response:
        """``GET /datasets/{d}/tables`` (``maxResults`` / ``pageToken`` paging)."""
        tables = self.engine.tables(dataset)
        start = self._decode_offset(request.args.get("pageToken"), f"tables:{dataset}") or 0
        limit = _int_param(request.args.get("maxResults"), "maxResults") or 1000
        chunk = tables[start : start + limit]
        items = []
        for meta in chunk:
            item = {
                "kind": "bigquery#table",
                "id": f"{project}:{meta.dataset}.{meta.table}",
                "tableReference": {"projectId": project, "datasetId": meta.dataset, "tableId": meta.table},
                "type": "TABLE",
                "creationTime": str(meta.created_ms),
            }
            if meta.partition_field:
                item["timePartitioning"] = {"type": "DAY", "field": meta.partition_field}
            items.append(item)
        reply: dict[str, Any] = {
            "kind": "bigquery#tableList",
            "etag": self._etag(len(tables)),
            "tables": items,
            "totalItems": len(tables),
        }
        if start + limit < len(tables):
            reply["nextPageToken"] = self._encode_offset(start + limit, f"tables:{dataset}")
        return json_response(reply)

    def tables_get(self, request: Request, project: str, dataset: str, table: str) -> Response:
        """``GET /datasets/{d}/tables/{t}``: schema, numRows, numBytes, timePartitioning."""
        meta = self.engine.table(dataset, table, project=project)
        resource: dict[str, Any] = {
            "kind": "bigquery#table",
            "etag": self._etag(meta.version),
            "id": f"{project}:{meta.dataset}.{meta.table}",
            "selfLink": f"{self._root}/bigquery/v2/projects/{project}/datasets/{meta.dataset}/tables/{meta.table}",
            "tableReference": {"projectId": project, "datasetId": meta.dataset, "tableId": meta.table},
            "schema": {"fields": [f.to_api() for f in meta.fields]},
            "numRows": str(meta.num_rows),
            "numBytes": str(meta.num_bytes),
            "numLongTermBytes": "0",
            "numTotalLogicalBytes": str(meta.num_bytes),
            "numActiveLogicalBytes": str(meta.num_bytes),
            "creationTime": str(meta.created_ms),
            "lastModifiedTime": str(meta.modified_ms),
            "type": "TABLE",
            "location": self.location,
        }
        if meta.description:
            resource["description"] = meta.description
        if meta.partition_field:
            resource["timePartitioning"] = {"type": "DAY", "field": meta.partition_field}
            resource["numPartitions"] = str(meta.num_partitions or 0)
        try:
            tree = parse_fields(request.args.get("fields"))
        except ValueError as exc:
            raise BigQueryError(400, "invalid", f"Invalid fields parameter: {exc}") from exc
        return json_response(apply_fields(resource, tree))

    # ---- job machinery ------------------------------------------------------------------------------------

    def _prepare(self, query: dict[str, Any]) -> PreparedQuery:
        if query.get("useLegacySql") is True:
            raise invalid_query("Legacy SQL is not supported by the BigQuery emulator; set useLegacySql to false")
        sql = query.get("query")
        if not isinstance(sql, str):
            raise BigQueryError(400, "invalid", "Required parameter is missing: query")
        mode = str(query.get("parameterMode") or "").upper()
        params = parse_query_parameters(query.get("queryParameters"))
        if mode == "POSITIONAL" and any(p.name for p in params):
            raise invalid_query("Named query parameters cannot be used with parameterMode POSITIONAL")
        if mode == "NAMED" and any(not p.name for p in params):
            raise invalid_query("Positional query parameters cannot be used with parameterMode NAMED")
        default_dataset = (query.get("defaultDataset") or {}).get("datasetId")
        return self.engine.prepare(sql, params, default_dataset=default_dataset)

    def _create_job(self, project: str, job_id: str, location: str, configuration: dict[str, Any]) -> _Job:
        """Register a new job id (409 ``duplicate`` when taken) and forget the oldest beyond ``max_jobs``."""
        config = dict(configuration)
        query = dict(config.get("query") or {})
        query.setdefault("useLegacySql", False)
        query.setdefault("priority", "INTERACTIVE")
        config["query"] = query
        config["jobType"] = "QUERY"
        job = _Job(project=project, job_id=job_id, location=location, configuration=config, created_ms=_now_ms())
        with self._jobs_lock:
            if (project, job_id) in self._jobs:
                raise BigQueryError(409, "duplicate", f"Already Exists: Job {project}:{location}.{job_id}")
            self._jobs[(project, job_id)] = job
            while len(self._jobs) > self.max_jobs:
                self._jobs.popitem(last=False)
        return job

    def _run(self, job: _Job, query: dict[str, Any]) -> None:
        """Run the job's query now; record the outcome (errors included) on the job."""
        job.started_ms = _now_ms()
        try:
            prepared = self._prepare(query)
            job.prepared = prepared
            use_cache = query.get("useQueryCache") is not False
            with self._jobs_lock:
                cached = self._cache.get(prepared.cache_key) if use_cache else None
                if cached is not None:
                    self._cache.move_to_end(prepared.cache_key)
            if cached is not None:
                job.output, job.cache_hit = cached, True
            else:
                limit = _int_param(query.get("maximumBytesBilled"), "maximumBytesBilled")
                if limit is not None and prepared.bytes_billed > limit:
                    raise BigQueryError(
                        400,
                        "bytesBilledLimitExceeded",
                        f"Query exceeded limit for bytes billed: {limit}. {prepared.bytes_billed} or higher required.",
                    )
                output = self.engine.execute(prepared)
                job.output = output
                job.bytes_processed = prepared.bytes_processed
                job.bytes_billed = prepared.bytes_billed
                job.slot_ms = max(1, round(output.elapsed_s * 1000))
                with self._jobs_lock:
                    self._cache[prepared.cache_key] = output
                    while len(self._cache) > self.max_jobs:
                        self._cache.popitem(last=False)
        except BigQueryError as exc:
            job.error = exc
        job.ended_ms = _now_ms()
        job.done_at = time.monotonic() + self.job_running_ms / 1000

    def _find_job(self, project: str, job_id: str, location: str | None) -> _Job:
        with self._jobs_lock:
            job = self._jobs.get((project, job_id))
        if job is None or (location and location.lower() != job.location.lower()):
            where = location or self.location
            raise BigQueryError(404, "notFound", f"Not found: Job {project}:{where}.{job_id}")
        return job

    def _wait(self, job: _Job, seconds: float) -> None:
        remaining = job.done_at - time.monotonic()
        if remaining > 0 and not job.cancelled:
            self._stopping.wait(min(remaining, max(seconds, 0)))

    @property
    def _root(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _reference(self, job: _Job) -> dict[str, Any]:
        return {"projectId": job.project, "jobId": job.job_id, "location": job.location}

    def _etag(self, *parts: Any) -> str:
        digest = hashlib.sha1(repr(parts).encode(), usedforsecurity=False).digest()
        return base64.b64encode(digest[:12]).decode("ascii")

    def _query_statistics(self, prepared: PreparedQuery, job: _Job | None) -> dict[str, Any]:
        processed = job.bytes_processed if job is not None else prepared.bytes_processed
        stats: dict[str, Any] = {
            "totalBytesProcessed": str(processed),
            "totalBytesBilled": str(job.bytes_billed if job is not None else 0),
            "totalSlotMs": str(job.slot_ms if job is not None else 0),
            "cacheHit": bool(job.cache_hit) if job is not None else False,
            "billingTier": 1,
            "statementType": "SELECT",
            "totalBytesProcessedAccuracy": "PRECISE",
            "estimatedBytesProcessed": str(prepared.bytes_processed),
            "schema": {"fields": [f.to_api() for f in prepared.fields]},
            "referencedTables": [
                {"projectId": self.project, "datasetId": r.meta.dataset, "tableId": r.meta.table}
                for r in prepared.reads
            ],
        }
        if any(r.partitions_scanned is not None for r in prepared.reads):
            stats["totalPartitionsProcessed"] = str(
                0 if job is not None and job.cache_hit else prepared.partitions_processed
            )
        return stats

    def _dry_run_job(
        self, project: str, location: str, configuration: dict[str, Any], prepared: PreparedQuery
    ) -> dict[str, Any]:
        now = _now_ms()
        stats = self._query_statistics(prepared, None)
        return {
            "kind": "bigquery#job",
            "etag": self._etag(now, prepared.cache_key),
            "configuration": {**configuration, "jobType": "QUERY"},
            "jobReference": {"projectId": project, "location": location},
            "statistics": {
                "creationTime": str(now),
                "totalBytesProcessed": stats["totalBytesProcessed"],
                "query": stats,
            },
            "status": {"state": "DONE"},
        }

    def _job_resource(self, job: _Job) -> dict[str, Any]:
        done = job.done
        statistics: dict[str, Any] = {"creationTime": str(job.created_ms), "startTime": _ms_text(job.started_ms)}
        status: dict[str, Any] = {"state": "DONE" if done else "RUNNING"}
        if done:
            statistics["endTime"] = _ms_text(job.ended_ms)
            if job.error is not None:
                proto = job.error.error_proto()
                status.update({"errorResult": proto, "errors": [proto]})
                statistics["query"] = {"statementType": "SELECT", "totalBytesBilled": "0", "totalSlotMs": "0"}
            elif job.prepared is not None:
                query_stats = self._query_statistics(job.prepared, job)
                statistics["query"] = query_stats
                statistics["totalBytesProcessed"] = query_stats["totalBytesProcessed"]
                statistics["totalSlotMs"] = query_stats["totalSlotMs"]
        statistics = {k: v for k, v in statistics.items() if v is not None}
        return {
            "kind": "bigquery#job",
            "etag": self._etag(job.project, job.job_id, status["state"]),
            "id": f"{job.project}:{job.location}.{job.job_id}",
            "selfLink": (f"{self._root}/bigquery/v2/projects/{job.project}/jobs/{job.job_id}?location={job.location}"),
            "user_email": "emulator@dataops.local",
            "principal_subject": "user:emulator@dataops.local",
            "configuration": job.configuration,
            "jobReference": self._reference(job),
            "statistics": statistics,
            "status": status,
            "jobCreationReason": {"code": "REQUESTED"},
        }

    def _results_page(
        self,
        job: _Job,
        *,
        max_results: int | None,
        page_token: str | None,
        start_index: int | None,
        use_int64_timestamp: bool,
    ) -> dict[str, Any]:
        """One page of a job's results (getQueryResults / jobs.query shape), or its HTTP error."""
        base: dict[str, Any] = {"etag": self._etag(job.project, job.job_id), "jobReference": self._reference(job)}
        if not job.done:
            return {**base, "jobComplete": False}
        if job.error is not None:
            raise job.error
        if job.output is None or job.prepared is None:  # pragma: no cover - a DONE job has one or the other
            raise BigQueryError(500, "internalError", f"Job {job.project}:{job.location}.{job.job_id} has no result")
        output = job.output
        total = output.num_rows
        start = (self._decode_offset(page_token, job.job_id) if page_token else start_index) or 0
        count = DEFAULT_PAGE_ROWS if max_results is None else min(max_results, DEFAULT_PAGE_ROWS)
        rows = encode_rows(output.table, output.fields, start, count, use_int64_timestamp=use_int64_timestamp)
        page: dict[str, Any] = {
            **base,
            "schema": {"fields": [f.to_api() for f in output.fields]},
            "totalRows": str(total),
            "totalBytesProcessed": str(job.bytes_processed),
            "totalBytesBilled": str(job.bytes_billed),
            "totalSlotMs": str(job.slot_ms),
            "jobComplete": True,
            "cacheHit": job.cache_hit,
            "creationTime": str(job.created_ms),
            "startTime": _ms_text(job.started_ms),
            "endTime": _ms_text(job.ended_ms),
        }
        if rows:
            page["rows"] = rows
        if max_results != 0 and start + len(rows) < total:
            page["pageToken"] = self._encode_offset(start + len(rows), job.job_id)
        return page

    @staticmethod
    def _encode_offset(offset: int, scope: str) -> str:
        raw = f"{offset}:{hashlib.sha1(scope.encode(), usedforsecurity=False).hexdigest()[:10]}"
        return base64.urlsafe_b64encode(raw.encode()).decode("ascii").rstrip("=")

    @staticmethod
    def _decode_offset(token: str | None, scope: str) -> int | None:
        if not token:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
            offset_text, digest = raw.split(":", 1)
            offset = int(offset_text)
        except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
            raise BigQueryError(400, "invalid", f"Invalid page token: {token}") from exc
        if digest != hashlib.sha1(scope.encode(), usedforsecurity=False).hexdigest()[:10] or offset < 0:
            raise BigQueryError(400, "invalid", f"Invalid page token: {token}")
        return offset

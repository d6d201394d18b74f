"""The sales analytics job: order lines validated at the source, cost-guarded report, one gate, publish to Sheets.

Flow:

1. **Contract**: ``tables.get`` on ``sales.order_lines``, compared with ``ORDER_LINES_CONTRACT`` (missing
   column, changed type, changed mode): drift stops the run before any query, naming the column and both types.
2. **Plan**: ``ORDER_LINES_SUITE`` compiled to SQL for the lines of the requested range (:mod:`quality.sql`),
   and the report query rewritten to read only the lines that pass (the same predicates, compiled in).
3. **Cost guard**: dry runs of the validation and of the report; refused above ``SALES_MAX_BYTES`` (the sum);
   above ``SALES_APPROVAL_BYTES`` nothing runs until a Platform Admin approves the pinned query, parameters and
   estimate (``sales.costly_query``); every real query carries ``maximum_bytes_billed``.
4. **Validation** in BigQuery: one scan for every check's count, one bounded query for failing keys and the
   quarantined lines (the first ``QUALITY_QUARANTINE_CAP``, with reason codes). A failing gate stops here.
5. **Report** query, then the report's own suite in memory; both results make ONE gate, score and review:
   pass publishes now; review opens a ReviewItem (the evidence: every check, line and report, and the quarantined
   lines) with the approval request (``sales.review_publish``) whose approval publishes; fail blocks and the sheet
   keeps its last good values (a failed report can be published only by an override, quorum 2). Publishing is
   intent -> sheet write -> record. Job metadata and cost are recorded per query (validation and report apart).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.roles import DATA_STEWARD
from approvals.services import DestinationTaken, approval_request_create, destination_register, inputs_sha256
from audit.services import audit_log
from connectors.bigquery import MIB, MIN_BILLED_BYTES, BigQueryClient, QueryResult, QueryTooExpensive
from connectors.embedded import embedded_bigquery_client, embedded_sheets_client
from connectors.errors import ConnectorError
from lineage.extractors import sales_report_output_name
from lineage.services import lineage_governance
from orchestration.models import JobRun
from orchestration.registry import JobFailed, JobResult
from orchestration.services import job_run_heartbeat
from privacy.suppression import COUNT_COLUMN, SuppressionError, groups_suppress, suppressed_count
from quality.engine import Decision, contract_check, contract_drift_result, suite_run
from quality.services import quality_runs_record, quarantine_cap
from quality.sql import CompiledSuite, suite_compile, table_replace
from quality.suites import ORDER_LINES_CONTRACT, ORDER_LINES_SUITE, SALES_REPORT_SUITE
from quality.warehouse import warehouse_estimate, warehouse_run

from .constants import COSTLY_QUERY_ACTION, OVERRIDE_ACTION, REVIEW_ACTION, SALES_WRITER  # noqa: F401
from .models import QueryRun, SalesQuery, SalesReport
from .publish import REPORT_SHEET, PublishError, report_on_sheet, report_publish

logger = logging.getLogger(__name__)
SQL_DIR = Path(__file__).resolve().parent / "sql"
GRAINS = {"day": "DAY", "week": "WEEK", "month": "MONTH"}
TIB = 2**40
_POLARS_TYPES = {
    "DATE": pl.Date,
    "STRING": pl.String,
    "INTEGER": pl.Int64,
    "INT64": pl.Int64,
    "NUMERIC": pl.Float64,
    "BIGNUMERIC": pl.Float64,
    "FLOAT": pl.Float64,
    "FLOAT64": pl.Float64,
}


def sales_query_get(*, name: str) -> SalesQuery:
    """The active query called ``name``: from the admin, else loaded once from ``sales/sql/<name>.sql``."""
    query = SalesQuery.objects.filter(name=name, active=True).first()
    if query is not None:
        return query
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file() or "/" in name:
        known = sorted(
            {
                *SalesQuery.objects.filter(active=True).values_list("name", flat=True),
                *(p.stem for p in SQL_DIR.glob("*.sql")),
            }
        )
        raise JobFailed(f"unknown sales query {name!r}; known: {', '.join(known) or 'none'}")
    sql = path.read_text()
    title = next((ln.strip("- ").strip() for ln in sql.splitlines() if ln.startswith("--")), name)
    with transaction.atomic():
        query, _ = SalesQuery.objects.get_or_create(
            name=name, defaults={"title": title[:200], "sql": sql, "source_file": f"sales/sql/{path.name}"}
        )
        audit_log(action="sales.query_loaded", obj=query, data={"source_file": query.source_file})
    return query


def _sql_sha256(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()


def sales_query_save(*, query: SalesQuery, actor: Any, created: bool, changed_fields: Sequence[str] = ()) -> SalesQuery:
    """Create or edit a sales query (validated by the caller's form), audited with the SQL's hash before and after.

    ``updated_by`` remembers who last shaped the query, so an approval of a costly run of it refuses its editor;
    the audit trail has every edit with its actor.
    """
    with transaction.atomic():
        before = None if created else SalesQuery.objects.select_for_update().filter(pk=query.pk).first()
        query.updated_by = actor
        query.save()
        audit_log(
            action="sales.query_created" if created else "sales.query_changed",
            obj=query,
            actor=actor,
            data={
                "name": query.name,
                "changed": sorted(changed_fields),
                "sql_sha256_before": _sql_sha256(before.sql) if before else None,
                "sql_sha256": _sql_sha256(query.sql),
                "sql": query.sql,
                "active": query.active,
            },
        )
    return query


def sales_query_delete(*, query: SalesQuery, actor: Any) -> None:
    """Delete a sales query that never ran (runs protect theirs), audited."""
    with transaction.atomic():
        audit_log(
            action="sales.query_deleted",
            obj=query,
            actor=actor,
            data={"name": query.name, "sql_sha256": _sql_sha256(query.sql)},
        )
        query.delete()


@dataclass(frozen=True)
class Prepared:
    query: SalesQuery
    sql: str
    params: dict[str, Any]
    grain: str


def sales_query_prepare(params: dict[str, Any]) -> Prepared:
    """The SQL and typed BigQuery parameters for a run; JobFailed with a clear message on bad input."""
    grain = GRAINS.get(str(params.get("grain", "day")).lower())
    if grain is None:
        raise JobFailed(f"grain must be one of {', '.join(GRAINS)}, got {params.get('grain')!r}")
    start, end = date.fromisoformat(params["start"]), date.fromisoformat(params["end"])
    if end < start:
        raise JobFailed(f"end ({end}) is before start ({start})")
    regions = [r.strip().upper() for r in params.get("regions") or [] if r.strip()]
    query = sales_query_get(name=params.get("query") or "daily_revenue")
    return Prepared(
        query=query,
        sql=query.sql.replace("{grain}", grain),
        params={"start": start, "end": end, "regions": regions, "all_regions": not regions},
        grain=grain,
    )


@dataclass(frozen=True)
class CostEstimate:
    """What a run would process: the order-line validation and the report query, each and together."""

    bytes_processed: int
    cost_usd: Decimal
    limit_bytes: int
    validation_bytes: int = 0
    report_bytes: int = 0

    @property
    def over_limit(self) -> bool:
        return self.bytes_processed > self.limit_bytes

    def text(self) -> str:
        verdict = "ABOVE the limit" if self.over_limit else "within the limit"
        guarded = ""
        if not self.over_limit and self.bytes_processed > settings.SALES_APPROVAL_BYTES:
            guarded = (
                f", but above SALES_APPROVAL_BYTES ({_size(settings.SALES_APPROVAL_BYTES)}): it runs once a "
                "Platform Admin approves it"
            )
        return (
            f"would process {_size(self.bytes_processed)} (validation {_size(self.validation_bytes)} + report "
            f"{_size(self.report_bytes)}) and bill at least {_size(self.bytes_billed)} (~${self.billed_cost_usd:.4f} "
            f"at ${settings.SALES_PRICE_PER_TIB_USD}/TiB: BigQuery bills every query at least 10 MiB), "
            f"{verdict} of {_size(self.limit_bytes)}{guarded}"
        )

    @property
    def bytes_billed(self) -> int:
        """The least this run bills: each of its two queries (validation scan, report) at least 10 MiB, MiB-rounded.

        A validation that finds failing lines runs one more bounded query (another 10 MiB at least).
        """
        return sum(max(MIN_BILLED_BYTES, -(-n // MIB) * MIB) for n in (self.validation_bytes, self.report_bytes))

    @property
    def billed_cost_usd(self) -> Decimal:
        return _cost(self.bytes_billed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "bytes_processed": self.bytes_processed,
            "bytes_billed": self.bytes_billed,
            "cost_usd": str(self.billed_cost_usd),
            "validation_bytes": self.validation_bytes,
            "report_bytes": self.report_bytes,
            "limit_bytes": self.limit_bytes,
            "over_limit": self.over_limit,
            "min_bill_per_query_bytes": MIN_BILLED_BYTES,
        }


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n} B"


def _cost(bytes_: int) -> Decimal:
    return (Decimal(bytes_) / TIB * Decimal(str(settings.SALES_PRICE_PER_TIB_USD))).quantize(Decimal("0.000001"))


# ------------------------------------------------------------------------------------------------------------------
# The order lines: contract, validation plan, cost
# ------------------------------------------------------------------------------------------------------------------

LINES_SUITE = ORDER_LINES_SUITE
LINES_TABLE = ORDER_LINES_CONTRACT.table
# The lines a report of [start, end] for the requested regions reads: the same filter as the report's own.
LINES_SCOPE = (
    "order_ts >= TIMESTAMP(@start) AND order_ts < TIMESTAMP(DATE_ADD(@end, INTERVAL 1 DAY)) "
    "AND (@all_regions OR region IN UNNEST(@regions))"
)
SAMPLE_KEYS = 100  # failing keys kept per check


@dataclass(frozen=True)
class RunPlan:
    """What a run sends to BigQuery: the compiled validation of the lines and the report reading only clean lines."""

    prepared: Prepared
    validation: CompiledSuite
    report_sql: str
    report_params: Mapping[str, Any]


def sales_lines_contract_check(*, client: BigQueryClient) -> tuple[list[Any], list[str]]:
    """Compare ``sales.order_lines`` (BigQuery ``tables.get``) with its contract: schema results and the drift."""
    dataset, table = LINES_TABLE.split(".")
    try:
        info = client.table_get(dataset=dataset, table=table)
    except ConnectorError as exc:
        raise JobFailed(f"could not read the schema of {LINES_TABLE} (tables.get): {exc}") from exc
    return contract_check(ORDER_LINES_CONTRACT, [(c.name, c.type, c.mode) for c in info.schema])


def sales_run_plan(*, prepared: Prepared, as_of: datetime) -> RunPlan:
    """Compile the line validation for the run's range and put its clean lines in place of the table in the report."""
    validation = suite_compile(LINES_SUITE, table=LINES_TABLE, where=LINES_SCOPE, params=prepared.params, as_of=as_of)
    try:
        report_sql = table_replace(prepared.sql, table=LINES_TABLE, replacement=validation.clean_rows_sql())
    except ValueError as exc:
        raise JobFailed(
            f"the sales query {prepared.query.name!r} cannot be validated at the source: {exc}. A sales query reads "
            f"`{LINES_TABLE}`, whose lines are checked before the report is computed."
        ) from exc
    return RunPlan(prepared=prepared, validation=validation, report_sql=report_sql, report_params=validation.params)


def _estimate(client: BigQueryClient, plan: RunPlan) -> CostEstimate:
    try:
        validation = warehouse_estimate(
            compiled=plan.validation, client=client, max_keys=SAMPLE_KEYS, quarantine_cap=quarantine_cap()
        )
        report = client.query_dry_run(sql=plan.report_sql, params=plan.report_params).bytes_processed
    except ConnectorError as exc:
        raise JobFailed(f"BigQuery could not estimate the query: {exc}") from exc
    total = validation + report
    return CostEstimate(total, _cost(total), settings.SALES_MAX_BYTES, validation_bytes=validation, report_bytes=report)


def _drift_message(drift: list[str]) -> str:
    return (
        f"{LINES_TABLE} does not match its contract: {'; '.join(drift)}. Nothing was queried and the sheet keeps its "
        f"last good values: fix the table (or, if the change is intended, the contract in quality/suites.py)."
    )


def sales_cost_estimate(*, params: dict[str, Any], client: BigQueryClient | None = None) -> CostEstimate:
    """Dry-run the validation and the report: what they would process and cost, and whether the guard refuses it."""
    prepared = sales_query_prepare(params)
    client = client or embedded_bigquery_client()
    _, drift = sales_lines_contract_check(client=client)
    if drift:
        raise JobFailed(_drift_message(drift))
    return _estimate(client, sales_run_plan(prepared=prepared, as_of=timezone.now()))


def _prepared_sql_sha256(prepared: Prepared) -> str:
    return hashlib.sha256(prepared.sql.encode()).hexdigest()


def _shapers(job_run: JobRun, query: SalesQuery) -> list[Any]:
    """Who shaped a run's inputs: whoever started it and whoever last edited its SQL."""
    return [u for u in (job_run.actor, job_run.principal, query.updated_by) if u is not None]


def _costly_query_approved(job_run: JobRun, prepared: Prepared, estimate: CostEstimate) -> bool:
    """True when this run carries an approval of exactly this query, parameters and (about) this cost."""
    approval = job_run.approval
    if approval is None or approval.action != COSTLY_QUERY_ACTION or approval.status != "approved":
        return False
    pinned = approval.inputs
    if pinned.get("params") != job_run.params or pinned.get("sql_sha256") != _prepared_sql_sha256(prepared):
        raise JobFailed(f"approval #{approval.pk} was for another query or parameters: nothing ran; ask again")
    if estimate.bytes_processed > int(pinned.get("bytes_estimated", 0) * 1.1):
        raise JobFailed(
            f"the query now {estimate.text()}, more than the {_size(pinned['bytes_estimated'])} approved in "
            f"#{approval.pk}: nothing ran; ask again"
        )
    return True


def _record_query_run(
    job_run: JobRun,
    prepared: Prepared,
    *,
    sql: str | None = None,
    params: Mapping[str, Any] | None = None,
    **fields: Any,
) -> QueryRun:
    values = params if params is not None else prepared.params
    with transaction.atomic():
        run = QueryRun.objects.create(
            job_run=job_run,
            query=prepared.query,
            actor=job_run.actor,
            sql_hash=hashlib.sha256((sql or prepared.sql).encode()).hexdigest(),
            params={k: (v.isoformat() if isinstance(v, date) else v) for k, v in values.items()},
            **fields,
        )
        audit_log(
            action=f"sales.query_{run.status}",
            obj=run,
            actor=job_run.actor,
            data={
                "purpose": run.purpose,
                "bq_job_id": run.bq_job_id,
                "bytes_billed": run.bytes_billed,
                "error": run.error[:500],
            },
        )
    return run


def _record_job(
    job_run: JobRun, plan: RunPlan, result: QueryResult, *, purpose: Any, sql: str, estimated: int
) -> QueryRun:
    return _record_query_run(
        job_run,
        plan.prepared,
        sql=sql,
        params=plan.report_params,
        purpose=purpose,
        status=QueryRun.Status.SUCCEEDED,
        bq_job_id=result.job_id,
        location=result.location or "",
        bytes_estimated=estimated,
        bytes_processed=result.bytes_processed,
        bytes_billed=result.bytes_billed,
        slot_ms=result.slot_ms,
        cache_hit=result.cache_hit,
        rows=result.total_rows,
        duration_s=result.duration_s,
        estimated_cost_usd=_cost(result.bytes_billed),
    )


def _record_estimates(job_run: JobRun, plan: RunPlan, estimate: CostEstimate, *, status: Any, error: str) -> None:
    """One query run per planned query (validation, report) that did not run: estimated, refused or awaiting."""
    for purpose, sql, estimated in (
        (QueryRun.Purpose.VALIDATION, plan.validation.counts_sql(), estimate.validation_bytes),
        (QueryRun.Purpose.REPORT, plan.report_sql, estimate.report_bytes),
    ):
        _record_query_run(
            job_run,
            plan.prepared,
            sql=sql,
            purpose=purpose,
            status=status,
            bytes_estimated=estimated,
            estimated_cost_usd=_cost(estimated),
            error=error,
        )


def _frame(rows: list[dict[str, Any]], schema: tuple[Any, ...]) -> pl.DataFrame:
    """The result as a polars frame typed from BigQuery's schema (so an empty result keeps its columns)."""
    columns = {c.name: _POLARS_TYPES.get(c.type.upper(), pl.String) for c in schema}
    data = {
        name: [(float(r.get(name)) if isinstance(r.get(name), Decimal) else r.get(name)) for r in rows]
        for name in columns
    }
    return pl.DataFrame(data, schema=columns, strict=False)


_LABELS = {"sales.order_lines": "order lines", "sales.daily_report": "report"}


def checks_text(checks: list[Any], *, all_checks: bool = False) -> list[str]:
    """One line per check (those with failing or removed rows, unless ``all_checks``): count, share, threshold, and
    what it did to the gate."""
    lines = []
    for c in checks:
        if not all_checks and not c.failed_count:
            continue
        what = "removed" if c.removes else "failing"
        effect = "" if str(c.gate_effect) in ("", "pass") else f" -> {c.gate_effect}"
        label = _LABELS.get(c.dataset, c.dataset)
        lines.append(
            f"- {label} / {c.name}: {c.failed_count:,} {what} ({c.failed_share:.2%}); threshold: "
            f"{c.threshold or 'no gate threshold'}{effect}"
        )
    return lines


def _check_details(checks: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "dataset": c.dataset,
            "check": c.name,
            "failed": c.failed_count,
            "share": round(c.failed_share, 6),
            "threshold": c.threshold,
            "gate": str(c.gate_effect),
            "removes": c.removes,
        }
        for c in checks
    ]


def sales_report_run(*, job_run: JobRun, params: dict[str, Any], dry_run: bool) -> JobResult:
    """The on-demand sales job (see the module docstring)."""
    prepared = sales_query_prepare(params)
    client = embedded_bigquery_client()
    as_of = timezone.now()

    job_run_heartbeat(job_run=job_run, progress=f"checking {LINES_TABLE} against its contract (tables.get)")
    schema_results, drift = sales_lines_contract_check(client=client)
    if drift:
        stopped = contract_drift_result(LINES_SUITE, schema_results, drift)
        quality = quality_runs_record(parts=[(LINES_SUITE, stopped)], job_run=job_run, requested_by=job_run.principal)
        _alert(f"Sales report stopped: {LINES_TABLE} broke its contract (quality run #{quality.pk})", drift, job_run)
        raise JobFailed(_drift_message(drift))

    plan = sales_run_plan(prepared=prepared, as_of=as_of)
    job_run_heartbeat(job_run=job_run, progress="estimating the validation and the report (dry runs)")
    estimate = _estimate(client, plan)
    counters: dict[str, Any] = {
        "bytes_estimated": estimate.bytes_processed,
        "validation_bytes_estimated": estimate.validation_bytes,
        "report_bytes_estimated": estimate.report_bytes,
        "cost_estimate_usd": str(estimate.cost_usd),
    }
    if estimate.over_limit or dry_run:
        status = QueryRun.Status.REFUSED if estimate.over_limit else QueryRun.Status.ESTIMATED
        error = "over SALES_MAX_BYTES" if estimate.over_limit else ""
        _record_estimates(job_run, plan, estimate, status=status, error=error)
        if estimate.over_limit:
            raise JobFailed(
                f"the query {estimate.text()}: refused before running. Narrow the date range or regions, or raise "
                f"SALES_MAX_BYTES."
            )
        return JobResult(summary=f"DRY RUN: the query {estimate.text()}", counters=counters)

    if estimate.bytes_processed > settings.SALES_APPROVAL_BYTES and not _costly_query_approved(
        job_run, prepared, estimate
    ):
        request = approval_request_create(
            action=COSTLY_QUERY_ACTION,
            inputs={"job": "sales_report", "params": job_run.params, "query": prepared.query.name,
                    "sql_sha256": _prepared_sql_sha256(prepared), "bytes_estimated": estimate.bytes_processed},
            reason=f"the query {estimate.text()}",
            requested_by=job_run.principal,
            requested_by_label=job_run.principal_label or str(job_run.trigger),
            shapers=_shapers(job_run, prepared.query),
            title=f"Run the costly sales query {prepared.query.name} {params['start']}..{params['end']}",
            obj=job_run,
        )  # fmt: skip
        _record_estimates(
            job_run,
            plan,
            estimate,
            status=QueryRun.Status.AWAITING_APPROVAL,
            error=f"above SALES_APPROVAL_BYTES: approval #{request.pk}",
        )
        counters["approval_request"] = request.pk
        return JobResult(
            summary=f"NOT RUN: the query {estimate.text()}. Approval #{request.pk} was requested.",
            counters=counters,
        )

    # 1. The order lines of the range, validated where they are.
    job_run_heartbeat(job_run=job_run, progress=f"validating the order lines in BigQuery ({plan.validation.plan} plan)")
    try:
        lines = warehouse_run(
            compiled=plan.validation,
            client=client,
            maximum_bytes_billed=settings.SALES_MAX_BYTES,
            max_keys=SAMPLE_KEYS,
            quarantine_cap=quarantine_cap(),
            labels={"dataops_job_run": str(job_run.pk)},
            schema_results=schema_results,
        )
    except ConnectorError as exc:
        refused = isinstance(exc, QueryTooExpensive)
        _record_query_run(
            job_run,
            prepared,
            sql=plan.validation.counts_sql(),
            purpose=QueryRun.Purpose.VALIDATION,
            status=QueryRun.Status.REFUSED if refused else QueryRun.Status.FAILED,
            bytes_estimated=estimate.validation_bytes,
            error=str(exc),
        )
        what = "BigQuery refused the order-line validation as too expensive" if refused else "the validation failed"
        raise JobFailed(f"{what}: {exc}") from exc
    sqls = [plan.validation.counts_sql(), plan.validation.failing_rows_sql()]
    for index, job in enumerate(lines.jobs):
        _record_job(
            job_run,
            plan,
            job,
            purpose=QueryRun.Purpose.VALIDATION,
            sql=sqls[index],
            estimated=estimate.validation_bytes if index == 0 else 0,
        )
    validation_cost = _cost(lines.bytes_billed)
    counters.update(
        lines_checked=lines.result.rows,
        lines_removed=lines.result.rows_removed,
        lines_quarantined=lines.result.rows_quarantined,
        validation_bytes_billed=lines.bytes_billed,
        validation_cost_usd=str(validation_cost),
    )
    job_run_heartbeat(job_run=job_run, progress="validated the order lines", counters=counters)
    lines_text = (
        f"order lines: {lines.result.rows:,} checked in BigQuery ({plan.validation.plan} plan, "
        f"{len(lines.jobs)} queries, {_size(lines.bytes_billed)} billed, ~${validation_cost}): "
        f"{lines.result.rows_removed:,} exact duplicates removed, {lines.result.rows_quarantined:,} quarantined "
        f"(kept {min(lines.result.quarantine.height, quarantine_cap()):,}) -> {lines.result.gate.decision}"
    )

    if lines.result.gate.decision is Decision.FAIL:
        # The report cannot pass: do not pay for its query. The sheet keeps its last good values.
        quality = quality_runs_record(
            parts=[(LINES_SUITE, lines.result)],
            job_run=job_run,
            requested_by=job_run.principal,
            details={"validation": {"bytes_billed": lines.bytes_billed, **lines.details}},
        )
        checks = checks_text(lines.result.check_results)
        _alert(f"Sales report blocked by its order lines (quality run #{quality.pk})", quality.reasons, job_run)
        raise JobFailed(
            "\n".join(
                [
                    f"{lines_text}. The quality gate failed ({'; '.join(quality.reasons)}) on the order lines: the "
                    "report query did not run, nothing was published and the sheet keeps its last good values.",
                    *checks,
                ]
            )
        )

    # 2. The report, computed from the lines that passed.
    job_run_heartbeat(job_run=job_run, progress="running the report query (quarantined lines excluded)")
    try:
        result = client.query_run(
            sql=plan.report_sql,
            params=plan.report_params,
            maximum_bytes_billed=settings.SALES_MAX_BYTES,
            labels={"dataops_job_run": str(job_run.pk)},
        )
    except QueryTooExpensive as exc:
        _record_query_run(
            job_run,
            prepared,
            sql=plan.report_sql,
            status=QueryRun.Status.REFUSED,
            bytes_estimated=estimate.report_bytes,
            error=str(exc),
        )
        raise JobFailed(f"BigQuery refused the query as too expensive: {exc}") from exc
    except ConnectorError as exc:
        _record_query_run(
            job_run,
            prepared,
            sql=plan.report_sql,
            status=QueryRun.Status.FAILED,
            bytes_estimated=estimate.report_bytes,
            error=str(exc),
        )
        raise JobFailed(f"the sales query failed: {exc}") from exc

    query_run = _record_job(
        job_run, plan, result, purpose=QueryRun.Purpose.REPORT, sql=plan.report_sql, estimated=estimate.report_bytes
    )
    counters.update(
        rows=result.total_rows,
        bytes_billed=lines.bytes_billed + result.bytes_billed,
        report_bytes_billed=result.bytes_billed,
        report_cost_usd=str(query_run.estimated_cost_usd),
        cache_hit=result.cache_hit,
    )

    job_run_heartbeat(job_run=job_run, progress="checking the report's quality")
    checked = suite_run(SALES_REPORT_SUITE, _frame(result.rows, result.schema))
    rows = [
        {
            "day": r["day"].isoformat() if isinstance(r.get("day"), date | datetime) else r.get("day"),
            "region": r.get("region"),
            "orders": r.get("orders"),
            "revenue": round(float(r["revenue"]), 2) if r.get("revenue") is not None else None,
            **({COUNT_COLUMN: r[COUNT_COLUMN]} if COUNT_COLUMN in r else {}),
        }
        for r in checked.cleaned.to_dicts()
    ]
    # Issue 12: groups of fewer than SALES_MIN_GROUP_SIZE distinct customers are published suppressed.
    try:
        small = groups_suppress(rows, k=settings.SALES_MIN_GROUP_SIZE, figures=("orders", "revenue"))
    except SuppressionError as exc:
        if checked.gate.decision is not Decision.FAIL:  # a failed report says why it failed first
            raise JobFailed(str(exc)) from exc
        # Kept blocked, but an override could still publish it: unknown group sizes count as too small.
        small = groups_suppress(
            rows, k=settings.SALES_MIN_GROUP_SIZE, figures=("orders", "revenue"), missing_count="suppress"
        )
    rows = small.rows
    counters["groups_suppressed"] = small.suppressed
    with transaction.atomic():
        report = SalesReport.objects.create(
            query_run=query_run,
            grain=prepared.grain,
            rows=rows,
            status=SalesReport.Status.BLOCKED,
            sheet_id=settings.SALES_SHEET_ID,
        )
        quality = quality_runs_record(
            parts=[(LINES_SUITE, lines.result), (SALES_REPORT_SUITE, checked)],
            labels=["order lines", "report"],
            job_run=job_run,
            requested_by=job_run.principal,
            requested_by_label=job_run.principal_label or str(job_run.trigger),
            review_title=f"Sales report {params['start']}..{params['end']} (run #{job_run.pk})",
            approval_action=REVIEW_ACTION,
            approval_inputs={"report_id": report.pk, "rows_sha256": report_rows_sha256(report)},
            shapers=_shapers(job_run, prepared.query),
            obj=report,
            details={"validation": {"bytes_billed": lines.bytes_billed, **lines.details}},
        )
        report.quality_run = quality
        report.status = {"pass": SalesReport.Status.BLOCKED, "review": SalesReport.Status.PENDING_REVIEW}.get(
            quality.gate, SalesReport.Status.BLOCKED
        )
        report.save(update_fields=["quality_run", "status"])
    counters.update(quality_score=quality.score, gate=quality.gate, rows_quarantined=quality.rows_quarantined)
    all_checks = list(quality.checks.order_by("pk"))
    counters.update(checks=len(all_checks), checks_failed=sum(1 for c in all_checks if c.status == "fail"))
    checks = checks_text(all_checks)
    total_cost = validation_cost + query_run.estimated_cost_usd
    summary = "\n".join(
        [
            lines_text,
            f"report: query {query_run.bq_job_id}: {result.total_rows} rows, {_size(result.bytes_billed)} billed "
            f"(~${query_run.estimated_cost_usd}), cache hit {result.cache_hit}",
            f"small groups: {small.suppressed} of {len(rows)} suppressed (fewer than {small.k} customers)"
            if small.k > 0
            else "small groups: suppression off (SALES_MIN_GROUP_SIZE=0)",
            f"cost: validation ~${validation_cost} + report ~${query_run.estimated_cost_usd} = ~${total_cost}",
            f"quality {quality.score:.1f} -> {quality.gate}"
            if quality.score in (0, 100)
            else f"quality {quality.score:.2f} -> {quality.gate}",
            *(["checks with failing or removed rows:", *checks] if checks else ["every check passed"]),
        ]
    )
    details = {"checks": _check_details(all_checks)}
    if quality.gate == "fail":
        _alert_blocked(report, quality.reasons)
        raise JobFailed(
            f"{summary}\nThe quality gate failed ({'; '.join(quality.reasons)}): nothing was published "
            f"and the sheet keeps its last good values."
        )
    if quality.gate == "review":
        return JobResult(
            summary=f"{summary}\nWaiting for a Data Steward's review (#{quality.review.pk}); approval publishes it.",
            counters=counters,
            details=details,
        )
    outcome = sales_report_publish(report=report)
    counters["publish_requests"] = report.publish_requests
    if report.status != SalesReport.Status.PUBLISHED:
        raise JobFailed(f"{summary}\n{outcome}")
    return JobResult(summary=f"{summary}\n{outcome}", counters=counters, details=details)


def _run_url(report: SalesReport) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("admin:sales_salesreport_change", args=[report.pk])


def report_rows_sha256(report: SalesReport) -> str:
    """SHA-256 of the report's rows as canonical JSON: what an approval pins."""
    return inputs_sha256(report.rows)


def sales_report_publish(*, report: SalesReport, approved_by: Any = None, stuck_before: datetime | None = None) -> str:
    """Publish the report's rows and status cells to SALES_SHEET_ID: intent -> sheet write -> record (audited).

    1. Intent: the report moves to PUBLISHING in its own transaction before any sheet call, so a crash leaves a
       row that says a write may have happened.
    2. The write (one verified batch, previous values put back on failure). It is idempotent: writing the same
       report again gives the same cells.
    3. Record PUBLISHED (or PUBLISH_FAILED with the reason).

    A report found in PUBLISHING (a crash between 1 and 3) is taken over only when its intent is older than
    ``stuck_before``: the sheet is read first and, when it already holds this report, the publish is recorded
    without writing again; otherwise it is written again.
    """
    sheet_id = settings.SALES_SHEET_ID
    if not sheet_id:
        return _publish_failed(report, "SALES_SHEET_ID is not set: nowhere to publish")
    with transaction.atomic():
        current = SalesReport.objects.select_for_update(of=("self",)).select_related("quality_run").get(pk=report.pk)
        if current.status == SalesReport.Status.PUBLISHED:
            return "already published"
        resumed = current.status == SalesReport.Status.PUBLISHING
        if resumed and (stuck_before is None or (current.publish_started_at or timezone.now()) >= stuck_before):
            return "a publish of this report is already under way"
        newer = (
            SalesReport.objects.filter(status=SalesReport.Status.PUBLISHED, pk__gt=current.pk).order_by("-pk").first()
        )
        if newer is not None:
            # A late approval (or a late sweep) must not put older figures over a newer published report.
            error = f"not published: the newer report #{newer.pk} is already on the sheet"
        else:
            try:
                destination_register(spreadsheet_id=sheet_id, sheet=REPORT_SHEET, writer=SALES_WRITER)
                error = ""
            except DestinationTaken as exc:
                error = str(exc)
        if not error:
            current.status = SalesReport.Status.PUBLISHING
            current.publish_started_at = timezone.now()
            current.sheet_id = sheet_id
            current.save(update_fields=["status", "publish_started_at", "sheet_id"])
            audit_log(
                action="sales.report_publish_started",
                obj=current,
                actor=approved_by,
                data={"sheet_id": sheet_id, "rows": len(current.rows), "resumed": resumed,
                      "rows_sha256": report_rows_sha256(current)},
            )  # fmt: skip
    if error:
        return _publish_failed(current, error)
    report.__dict__.update({k: v for k, v in current.__dict__.items() if not k.startswith("_")})
    sheets = embedded_sheets_client()
    run_url = _run_url(report)
    requests, cells, reconciled = 0, 0, False
    try:
        if resumed and report_on_sheet(sheets=sheets, spreadsheet_id=sheet_id, rows=report.rows, run_url=run_url):
            reconciled, requests = True, 1
        else:
            score = report.quality_run.score if report.quality_run else ""
            status = [
                ["Last updated", timezone.now().isoformat(timespec="seconds")],
                ["Quality score", score],
                ["Run", run_url],
                ["Rows", len(report.rows)],
                ["Suppressed groups", suppressed_count(report.rows, figure="revenue")],
                ["Period", report.period],
            ]
            outcome = report_publish(sheets=sheets, spreadsheet_id=sheet_id, rows=report.rows, status=status)
            requests, cells = outcome.requests, outcome.cells
    except (PublishError, ConnectorError) as exc:
        return _publish_failed(report, str(exc))
    return _publish_record(report, approved_by=approved_by, requests=requests, cells=cells, reconciled=reconciled)


def _publish_record(report: SalesReport, *, approved_by: Any, requests: int, cells: int, reconciled: bool) -> str:
    with transaction.atomic():
        report.status = SalesReport.Status.PUBLISHED
        report.published_at = timezone.now()
        report.publish_requests = requests
        report.error = ""
        report.save(update_fields=["status", "published_at", "publish_requests", "error"])
        audit_log(
            action="sales.report_published",
            obj=report,
            actor=approved_by,
            data={
                "sheet_id": report.sheet_id,
                "rows": len(report.rows),
                "requests": requests,
                "cells": cells,
                "reconciled": reconciled,
            },
        )
        lineage_governance(
            action="publish", dataset=sales_report_output_name(report.sheet_id), actor=approved_by,
            job_run=report.query_run.job_run, obj=report, details={"rows": len(report.rows), "reconciled": reconciled},
        )  # fmt: skip
    if reconciled:
        return f"published {len(report.rows)} rows (the sheet already held them: recorded after a crash)"
    return f"published {len(report.rows)} rows to the sheet in {requests} requests"


def _publish_failed(report: SalesReport, error: str) -> str:
    with transaction.atomic():
        report.status = SalesReport.Status.PUBLISH_FAILED
        report.error = error
        report.save(update_fields=["status", "error"])
        audit_log(action="sales.report_publish_failed", obj=report, data={"error": error[:1000]})
    return f"publish failed: {error}"


def sales_report_publish_resume(*, report_id: int, approved_by: Any = None) -> str:
    """Publish again a report whose publish failed (e.g. "verify and resume" on its incident).

    Only a report that already passed its gate or its approval and then failed to publish (or whose publish a
    crash interrupted) can be resumed: a report blocked, waiting for its review or rejected goes through the
    approvals instead. The same rows are written; a newer published report is never overwritten.
    """
    report = SalesReport.objects.select_related("quality_run").get(pk=report_id)
    if report.status == SalesReport.Status.PUBLISHED:
        return "already published"
    if report.status not in (SalesReport.Status.PUBLISH_FAILED, SalesReport.Status.PUBLISHING):
        return f"not published: report #{report.pk} is {report.get_status_display().lower()}, not a failed publish"
    stuck_before = timezone.now() - timedelta(seconds=float(settings.APPROVALS_STUCK_AFTER_S))
    return sales_report_publish(report=report, approved_by=approved_by, stuck_before=stuck_before)


def sales_publishes_reconcile() -> dict[str, int]:
    """The sweeper's part for sales: settle publishes a crash left in PUBLISHING (no approval is running them)."""
    stuck_before = timezone.now() - timedelta(seconds=float(settings.APPROVALS_STUCK_AFTER_S))
    counts = {"published": 0, "publish_failed": 0}
    stale = SalesReport.objects.filter(status=SalesReport.Status.PUBLISHING, publish_started_at__lt=stuck_before)
    for report in stale.select_related("quality_run").order_by("pk"):
        sales_report_publish(report=report, stuck_before=stuck_before)
        report.refresh_from_db(fields=["status"])
        counts["published" if report.status == SalesReport.Status.PUBLISHED else "publish_failed"] += 1
    return counts


def sales_report_override_request(*, report_id: int, actor: Any, reason: str) -> Any:
    """Ask to publish a report whose quality gate failed: two Data Stewards (neither the requester nor whoever
    shaped the run) must approve, and a reason is required. The pinned rows are what would be published."""
    from approvals.services import ApprovalError

    report = SalesReport.objects.select_related("quality_run", "query_run__job_run", "query_run__query").get(
        pk=report_id
    )
    if report.status != SalesReport.Status.BLOCKED or report.quality_run is None or report.quality_run.gate != "fail":
        raise ApprovalError(f"report #{report.pk} is {report.get_status_display().lower()}: only a report blocked by a "
                            "failed quality gate can be overridden")  # fmt: skip
    if not actor.has_perm("sales.run_salesquery"):
        raise ApprovalError("asking for a publish override needs the Analyst role")
    job_run = report.query_run.job_run
    shapers = [*(_shapers(job_run, report.query_run.query) if job_run else []), report.query_run.actor]
    return approval_request_create(
        action=OVERRIDE_ACTION,
        inputs={"report_id": report.pk, "rows_sha256": report_rows_sha256(report),
                "quality_run_id": report.quality_run_id, "gate_reasons": report.quality_run.reasons},
        reason=reason,
        requested_by=actor,
        shapers=[u for u in shapers if u is not None and u != actor],
        title=f"Publish report #{report.pk} over its FAILED quality gate",
        obj=report,
    )  # fmt: skip


def _alert(subject: str, reasons: list[str], job_run: JobRun) -> None:
    """Tell the Data Stewards and the requester that a run stopped before it had a report."""
    users = get_user_model().objects.filter(groups__name=DATA_STEWARD, is_active=True).exclude(email="")
    recipients = set(users.values_list("email", flat=True))
    if job_run.actor is not None and job_run.actor.email:
        recipients.add(job_run.actor.email)
    if not recipients:
        return
    body = "Nothing was published; the sheet keeps its last good values.\n\n" + "\n".join(f"- {r}" for r in reasons)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, sorted(recipients))
    except Exception as exc:  # noqa: BLE001
        logger.warning("alert for job run %s could not be sent: %s", job_run.pk, exc)


def _alert_blocked(report: SalesReport, reasons: list[str]) -> None:
    """Tell the Data Stewards and the requester; the first quarantined lines are shown masked by each reader's
    clearance (issue 12: one message per clearance)."""
    from security.mail import mail_by_clearance
    from security.masking import mask_row_for_clearance

    users = list(get_user_model().objects.filter(groups__name=DATA_STEWARD, is_active=True).exclude(email=""))
    requester = report.query_run.actor
    if requester is not None and requester.email and requester not in users:
        users.append(requester)
    quarantined = list(report.quality_run.quarantined_rows.order_by("pk")[:5]) if report.quality_run_id else []

    def body_for(clearance: str) -> str:
        body = (
            "The sales report failed its quality gate and was not published; the sheet keeps its last good "
            "values.\n\n" + "\n".join(f"- {r}" for r in reasons)
        )
        if quarantined:
            body += "\n\nFirst quarantined lines (values above your clearance are masked):\n" + "\n".join(
                f"- {r.row_key} [{', '.join(r.reason_codes)}]: "
                + ", ".join(f"{k}={v}" for k, v in mask_row_for_clearance(r.dataset, r.data, clearance).items())
                for r in quarantined
            )
        return body

    mail_by_clearance(
        subject=f"Sales report blocked by the quality gate (report #{report.pk})", users=users, body_for=body_for
    )

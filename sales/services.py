"""The sales analytics job: cost-guarded BigQuery query, quality gate, publish to the dashboard sheet.

Flow: dry run (estimate) -> refuse above SALES_MAX_BYTES -> real run carrying maximum_bytes_billed (BigQuery
itself refuses a runaway) -> record the job's metadata and cost -> the quality suite of the report -> the gate:
pass publishes now; review opens a ReviewItem whose approval publishes; fail blocks and the sheet keeps its last
good values.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
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
from connectors.bigquery import BigQueryClient, QueryTooExpensive
from connectors.embedded import embedded_bigquery_client, embedded_sheets_client
from connectors.errors import ConnectorError
from orchestration.models import JobRun
from orchestration.registry import JobFailed, JobResult
from orchestration.services import job_run_heartbeat
from quality.engine import suite_run
from quality.services import quality_run_record
from quality.suites import SALES_REPORT_SUITE

from .models import QueryRun, SalesQuery, SalesReport
from .publish import REPORT_SHEET, PublishError, report_on_sheet, report_publish

SALES_WRITER = "sales_report"
REVIEW_ACTION = "sales.review_publish"
OVERRIDE_ACTION = "sales.override_publish"
COSTLY_QUERY_ACTION = "sales.costly_query"

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
    bytes_processed: int
    cost_usd: Decimal
    limit_bytes: int

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
            f"would process {_size(self.bytes_processed)} (~${self.cost_usd:.4f} at "
            f"${settings.SALES_PRICE_PER_TIB_USD}/TiB), {verdict} of {_size(self.limit_bytes)}{guarded}"
        )


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n} B"


def _cost(bytes_: int) -> Decimal:
    return (Decimal(bytes_) / TIB * Decimal(str(settings.SALES_PRICE_PER_TIB_USD))).quantize(Decimal("0.000001"))


def sales_cost_estimate(*, params: dict[str, Any], client: BigQueryClient | None = None) -> CostEstimate:
    """Dry-run the query: what it would process and cost, and whether the cost guard would refuse it."""
    prepared = sales_query_prepare(params)
    try:
        estimate = (client or embedded_bigquery_client()).query_dry_run(sql=prepared.sql, params=prepared.params)
    except ConnectorError as exc:
        raise JobFailed(f"BigQuery could not estimate the query: {exc}") from exc
    return CostEstimate(estimate.bytes_processed, _cost(estimate.bytes_processed), settings.SALES_MAX_BYTES)


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


def _record_query_run(job_run: JobRun, prepared: Prepared, **fields: Any) -> QueryRun:
    with transaction.atomic():
        run = QueryRun.objects.create(
            job_run=job_run,
            query=prepared.query,
            actor=job_run.actor,
            sql_hash=hashlib.sha256(prepared.sql.encode()).hexdigest(),
            params={k: (v.isoformat() if isinstance(v, date) else v) for k, v in prepared.params.items()},
            **fields,
        )
        audit_log(
            action=f"sales.query_{run.status}",
            obj=run,
            actor=job_run.actor,
            data={"bq_job_id": run.bq_job_id, "bytes_billed": run.bytes_billed, "error": run.error[:500]},
        )
    return run


def _frame(rows: list[dict[str, Any]], schema: tuple[Any, ...]) -> pl.DataFrame:
    """The result as a polars frame typed from BigQuery's schema (so an empty result keeps its columns)."""
    columns = {c.name: _POLARS_TYPES.get(c.type.upper(), pl.String) for c in schema}
    data = {
        name: [(float(r.get(name)) if isinstance(r.get(name), Decimal) else r.get(name)) for r in rows]
        for name in columns
    }
    return pl.DataFrame(data, schema=columns, strict=False)


def sales_report_run(*, job_run: JobRun, params: dict[str, Any], dry_run: bool) -> JobResult:
    """The on-demand sales job (see the module docstring)."""
    prepared = sales_query_prepare(params)
    client = embedded_bigquery_client()
    job_run_heartbeat(job_run=job_run, progress="estimating the query (dry run)")
    estimate = sales_cost_estimate(params=params, client=client)
    counters: dict[str, Any] = {
        "bytes_estimated": estimate.bytes_processed,
        "cost_estimate_usd": str(estimate.cost_usd),
    }
    if estimate.over_limit:
        _record_query_run(
            job_run,
            prepared,
            status=QueryRun.Status.REFUSED,
            bytes_estimated=estimate.bytes_processed,
            estimated_cost_usd=estimate.cost_usd,
            error="over SALES_MAX_BYTES",
        )
        raise JobFailed(
            f"the query {estimate.text()}: refused before running. Narrow the date range or regions, or raise "
            f"SALES_MAX_BYTES."
        )
    if dry_run:
        _record_query_run(
            job_run,
            prepared,
            status=QueryRun.Status.ESTIMATED,
            bytes_estimated=estimate.bytes_processed,
            estimated_cost_usd=estimate.cost_usd,
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
        _record_query_run(
            job_run,
            prepared,
            status=QueryRun.Status.AWAITING_APPROVAL,
            bytes_estimated=estimate.bytes_processed,
            estimated_cost_usd=estimate.cost_usd,
            error=f"above SALES_APPROVAL_BYTES: approval #{request.pk}",
        )
        counters["approval_request"] = request.pk
        return JobResult(
            summary=f"NOT RUN: the query {estimate.text()}. Approval #{request.pk} was requested.",
            counters=counters,
        )

    job_run_heartbeat(job_run=job_run, progress="running the query")
    try:
        result = client.query_run(
            sql=prepared.sql,
            params=prepared.params,
            maximum_bytes_billed=settings.SALES_MAX_BYTES,
            labels={"dataops_job_run": str(job_run.pk)},
        )
    except QueryTooExpensive as exc:
        _record_query_run(
            job_run, prepared, status=QueryRun.Status.REFUSED, bytes_estimated=estimate.bytes_processed, error=str(exc)
        )
        raise JobFailed(f"BigQuery refused the query as too expensive: {exc}") from exc
    except ConnectorError as exc:
        _record_query_run(
            job_run, prepared, status=QueryRun.Status.FAILED, bytes_estimated=estimate.bytes_processed, error=str(exc)
        )
        raise JobFailed(f"the sales query failed: {exc}") from exc

    query_run = _record_query_run(
        job_run,
        prepared,
        status=QueryRun.Status.SUCCEEDED,
        bq_job_id=result.job_id,
        location=result.location or "",
        bytes_estimated=estimate.bytes_processed,
        bytes_processed=result.bytes_processed,
        bytes_billed=result.bytes_billed,
        slot_ms=result.slot_ms,
        cache_hit=result.cache_hit,
        rows=result.total_rows,
        duration_s=result.duration_s,
        estimated_cost_usd=_cost(result.bytes_billed),
    )
    counters.update(rows=result.total_rows, bytes_billed=result.bytes_billed, cache_hit=result.cache_hit)

    job_run_heartbeat(job_run=job_run, progress="checking quality")
    checked = suite_run(SALES_REPORT_SUITE, _frame(result.rows, result.schema))
    rows = [
        {
            "day": r["day"].isoformat() if isinstance(r.get("day"), date | datetime) else r.get("day"),
            "region": r.get("region"),
            "orders": r.get("orders"),
            "revenue": round(float(r["revenue"]), 2) if r.get("revenue") is not None else None,
        }
        for r in checked.cleaned.to_dicts()
    ]
    with transaction.atomic():
        report = SalesReport.objects.create(
            query_run=query_run,
            grain=prepared.grain,
            rows=rows,
            status=SalesReport.Status.BLOCKED,
            sheet_id=settings.SALES_SHEET_ID,
        )
        quality = quality_run_record(
            suite=SALES_REPORT_SUITE,
            result=checked,
            job_run=job_run,
            requested_by=job_run.principal,
            requested_by_label=job_run.principal_label or str(job_run.trigger),
            review_title=f"Sales report {params['start']}..{params['end']} (run #{job_run.pk})",
            approval_action=REVIEW_ACTION,
            approval_inputs={"report_id": report.pk, "rows_sha256": report_rows_sha256(report)},
            shapers=_shapers(job_run, prepared.query),
            obj=report,
        )
        report.quality_run = quality
        report.status = {"pass": SalesReport.Status.BLOCKED, "review": SalesReport.Status.PENDING_REVIEW}.get(
            quality.gate, SalesReport.Status.BLOCKED
        )
        report.save(update_fields=["quality_run", "status"])
    counters.update(quality_score=quality.score, gate=quality.gate, rows_quarantined=quality.rows_quarantined)
    summary = (
        f"query {query_run.bq_job_id}: {result.total_rows} rows, {_size(result.bytes_billed)} billed "
        f"(~${query_run.estimated_cost_usd}), cache hit {result.cache_hit}; quality {quality.score:.1f} -> "
        f"{quality.gate}"
    )
    if quality.gate == "fail":
        _alert_blocked(report, quality.reasons)
        raise JobFailed(
            f"{summary}. The quality gate failed ({'; '.join(quality.reasons)}): nothing was published "
            f"and the sheet keeps its last good values."
        )
    if quality.gate == "review":
        return JobResult(
            summary=f"{summary}. Waiting for a Data Steward's review (#{quality.review.pk}); approval publishes it.",
            counters=counters,
        )
    outcome = sales_report_publish(report=report)
    counters["publish_requests"] = report.publish_requests
    if report.status != SalesReport.Status.PUBLISHED:
        raise JobFailed(f"{summary}. {outcome}")
    return JobResult(summary=f"{summary}. {outcome}", counters=counters)


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


def _alert_blocked(report: SalesReport, reasons: list[str]) -> None:
    users = get_user_model().objects.filter(groups__name=DATA_STEWARD, is_active=True).exclude(email="")
    recipients = sorted(set(users.values_list("email", flat=True)))
    requester = report.query_run.actor
    if requester is not None and requester.email:
        recipients = sorted({*recipients, requester.email})
    if not recipients:
        return
    body = (
        "The sales report failed its quality gate and was not published; the sheet keeps its last good "
        "values.\n\n" + "\n".join(f"- {r}" for r in reasons)
    )
    try:
        send_mail(
            f"Sales report blocked by the quality gate (report #{report.pk})",
            body,
            settings.DEFAULT_FROM_EMAIL,
            recipients,
        )
    except Exception as exc:  # noqa: BLE001
        logger.warning("quality alert for report %s could not be sent: %s", report.pk, exc)

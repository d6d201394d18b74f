"""What each job read and wrote, its facets and its four stages, read from the records the job left.

One function per job, registered in ``EXTRACTORS`` (a job without one emits its run events with no datasets).
Each reads the database only (query runs, quality runs, reports, cleanup actions, backups): the lineage of a run
is what the run recorded, so a rerun of the extraction gives the same events.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    output_statistics_output_dataset,
    schema_dataset,
    sql_job,
)

from . import naming
from .facets import QueryCostRunFacet
from .services import dataset_input, dataset_output

STAGES = ("extraction", "transformation", "validation", "loading")


@dataclass
class Stage:
    name: str
    outcome: str  # succeeded, failed, skipped
    rows_in: int | None = None
    rows_out: int | None = None
    duration_s: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    inputs: list[InputDataset] = field(default_factory=list)
    outputs: list[OutputDataset] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobLineage:
    inputs: list[InputDataset] = field(default_factory=list)
    outputs: list[OutputDataset] = field(default_factory=list)
    job_facets: dict[str, Any] = field(default_factory=dict)
    run_facets: dict[str, Any] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)


def _schema(columns: list[tuple[str, str]]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in columns]
    )


# --- sales_report ---------------------------------------------------------------------------------------------

RATES_COLUMNS = [("currency", "STRING"), ("rate_date", "DATE"), ("usd_per_unit", "NUMERIC")]
REPORT_COLUMNS = [("day", "DATE"), ("region", "STRING"), ("orders", "INTEGER"), ("revenue", "FLOAT")]
# Which source columns feed which report column (daily_revenue.sql): DIRECT when the value is computed from the
# column, INDIRECT when the column only joins, filters or groups.
SALES_COLUMN_LINEAGE: dict[str, list[tuple[str, str, str, str]]] = {
    "day": [("lines", "order_ts", "DIRECT", "TRANSFORMATION")],
    "region": [("lines", "region", "DIRECT", "IDENTITY")],
    "orders": [("lines", "order_id", "DIRECT", "AGGREGATION")],
    "revenue": [
        ("lines", "revenue", "DIRECT", "AGGREGATION"),
        ("rates", "usd_per_unit", "DIRECT", "AGGREGATION"),
        ("lines", "currency", "INDIRECT", "JOIN"),
        ("lines", "order_ts", "INDIRECT", "JOIN"),
        ("rates", "currency", "INDIRECT", "JOIN"),
        ("rates", "rate_date", "INDIRECT", "JOIN"),
    ],
}


def _sales_sources() -> dict[str, naming.DatasetName]:
    from quality.suites import FX_RATES_TABLE, ORDER_LINES_CONTRACT

    return {"lines": naming.bigquery_table(ORDER_LINES_CONTRACT.table), "rates": naming.bigquery_table(FX_RATES_TABLE)}


def _sales_inputs(quality: Any = None, rows_checked: int | None = None) -> list[InputDataset]:
    from quality.suites import ORDER_LINES_CONTRACT

    sources = _sales_sources()
    lines_columns = [(c, spec.type) for c, spec in ORDER_LINES_CONTRACT.columns.items()]
    input_facets: dict[str, Any] = {}
    if quality is not None:
        checks = [c for c in quality.checks.all() if c.dataset != "report"]
        input_facets["dataQualityAssertions"] = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
            assertions=[
                data_quality_assertions_dataset.Assertion(
                    assertion=c.reason_code or c.name,
                    success=c.status == "pass",
                    name=c.name,
                    severity=c.severity,
                    actual=str(c.failed_count),
                    description=c.message[:500] or None,
                )
                for c in checks
            ]
        )
        input_facets["dataQualityMetrics"] = data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
            columnMetrics={}, rowCount=rows_checked if rows_checked is not None else quality.rows
        )
    return [
        dataset_input(sources["lines"], {"schema": _schema(lines_columns)}, input_facets),
        dataset_input(sources["rates"], {"schema": _schema(RATES_COLUMNS)}),
    ]


def _sales_column_lineage() -> column_lineage_dataset.ColumnLineageDatasetFacet:
    sources = _sales_sources()
    return column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            column: column_lineage_dataset.Fields(
                inputFields=[
                    column_lineage_dataset.InputField(
                        namespace=sources[src].namespace,
                        name=sources[src].name,
                        field=source_column,
                        transformations=[column_lineage_dataset.Transformation(type=kind, subtype=subtype)],
                    )
                    for src, source_column, kind, subtype in feeds
                ]
            )
            for column, feeds in SALES_COLUMN_LINEAGE.items()
        }
    )


def sales_report_output_name(sheet_id: str) -> naming.DatasetName:
    from sales.publish import REPORT_SHEET

    return naming.sheet_range(sheet_id, REPORT_SHEET, "A:D")


def _sales_declared(job_run: Any) -> tuple[list[InputDataset], list[OutputDataset]]:
    return _sales_inputs(), []


def _sales_extract(job_run: Any) -> JobLineage:
    from quality.models import QualityRun
    from sales.models import QueryRun, SalesReport

    found = JobLineage()
    runs = list(job_run.query_runs.select_related("query").order_by("pk"))
    executed = [r for r in runs if r.status in (QueryRun.Status.SUCCEEDED, QueryRun.Status.FAILED)]
    validation = [r for r in runs if r.purpose == QueryRun.Purpose.VALIDATION]
    report_run = next((r for r in runs if r.purpose == QueryRun.Purpose.REPORT), None)
    quality = QualityRun.objects.filter(job_run=job_run).order_by("-pk").first()
    report = SalesReport.objects.filter(query_run__job_run=job_run).order_by("-pk").first()
    counters = job_run.counters or {}

    found.inputs = _sales_inputs(quality, counters.get("lines_checked"))
    if report_run is not None:
        grain = report.grain if report is not None else str(job_run.params.get("grain", "day")).upper()
        found.job_facets["sql"] = sql_job.SQLJobFacet(
            query=report_run.query.sql.replace("{grain}", grain), dialect="bigquery"
        )
    if executed:
        found.run_facets["queryCost"] = QueryCostRunFacet(
            bytesProcessed=sum(r.bytes_processed for r in executed),
            bytesBilled=sum(r.bytes_billed for r in executed),
            slotMs=sum(r.slot_ms for r in executed),
            estimatedCostUsd=str(sum((r.estimated_cost_usd for r in executed), Decimal(0))),
            pricePerTibUsd=float(settings.SALES_PRICE_PER_TIB_USD),
            bigqueryJobIds=[r.bq_job_id for r in executed if r.bq_job_id],
            cacheHit=all(r.cache_hit for r in executed),
        )
    report_facets = {"schema": _schema(REPORT_COLUMNS), "columnLineage": _sales_column_lineage()}
    published = report is not None and report.status == SalesReport.Status.PUBLISHED
    if report is not None:
        found.outputs.append(
            dataset_output(
                naming.database_table(SalesReport._meta.db_table),
                {"schema": _schema(REPORT_COLUMNS)},
                {
                    "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                        rowCount=len(report.rows)
                    )
                },
            )
        )
    sheet_output = None
    if published:
        sheet_output = dataset_output(
            sales_report_output_name(report.sheet_id),
            report_facets,
            {
                "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=len(report.rows)
                )
            },
        )
        found.outputs.append(sheet_output)

    if job_run.dry_run or not executed:
        found.stages = [
            Stage(
                name=s, outcome="skipped", details={"reason": "nothing ran (dry run, refused or waiting for approval)"}
            )
            for s in STAGES
        ]
        return found
    lines_ok = bool(validation) and all(r.status == QueryRun.Status.SUCCEEDED for r in validation)
    checked = counters.get("lines_checked")
    removed = counters.get("lines_removed", 0) or 0
    quarantined = counters.get("lines_quarantined", 0) or 0
    found.stages.append(
        Stage(
            name="extraction",
            outcome="succeeded" if lines_ok else "failed",
            rows_out=checked,
            duration_s=sum(r.duration_s for r in validation) or None,
            inputs=found.inputs,
            details={
                "bigquery_jobs": [r.bq_job_id for r in validation if r.bq_job_id],
                "removed": removed,
                "quarantined": quarantined,
            },
        )
    )
    report_ok = report_run is not None and report_run.status == QueryRun.Status.SUCCEEDED
    found.stages.append(
        Stage(
            name="transformation",
            outcome="succeeded" if report_ok else ("failed" if report_run is not None else "skipped"),
            rows_in=(checked - removed - quarantined) if checked is not None else None,
            rows_out=report_run.rows if report_run is not None else None,
            duration_s=report_run.duration_s if report_run is not None else None,
            details={"bigquery_job": report_run.bq_job_id if report_run is not None else ""},
        )
    )
    if quality is not None:
        found.stages.append(
            Stage(
                name="validation",
                outcome="failed" if quality.gate == "fail" else "succeeded",
                rows_in=quality.rows,
                rows_out=len(report.rows) if report is not None else None,
                duration_s=quality.duration_s,
                ended_at=quality.created_at,
                details={"quality_run": quality.pk, "score": quality.score, "gate": quality.gate},
            )
        )
    else:
        found.stages.append(Stage(name="validation", outcome="skipped"))
    if report is not None and report.publish_started_at:
        duration = (report.published_at - report.publish_started_at).total_seconds() if report.published_at else None
        found.stages.append(
            Stage(
                name="loading",
                outcome="succeeded" if published else "failed",
                rows_in=len(report.rows),
                rows_out=len(report.rows) if published else 0,
                duration_s=duration,
                started_at=report.publish_started_at,
                ended_at=report.published_at,
                outputs=[sheet_output] if sheet_output is not None else [],
                details={"report": report.pk, "requests": report.publish_requests, "status": report.status},
            )
        )
    else:
        found.stages.append(Stage(name="loading", outcome="skipped", details={"report": report.pk if report else None}))
    return found


# --- looker_cleanup ---------------------------------------------------------------------------------------------


def _cleanup_extract(job_run: Any) -> JobLineage:
    from cleanup.models import CleanupAction

    found = JobLineage()
    counters = job_run.counters or {}
    actions = list(job_run.cleanup_actions.select_related("dashboard", "backup").order_by("pk"))
    found.inputs = [dataset_input(naming.looker_dashboard(a.dashboard.looker_id)) for a in actions]
    backups = [a.backup for a in actions if a.backup is not None]
    for backup in backups:
        found.outputs.append(dataset_output(naming.backup_object(backup.storage_name)))
    mailed = sorted({a.dashboard.owner_email for a in actions if a.owner_notified_at and a.dashboard.owner_email})
    for address in mailed:
        found.outputs.append(dataset_output(naming.email_recipient(address)))
    if actions:
        found.outputs.append(dataset_output(naming.database_table(CleanupAction._meta.db_table)))
    if job_run.dry_run or not actions:
        seen = counters.get("dashboards_active", 0) + counters.get("dashboards_in_trash", 0) if counters else None
        found.stages = [
            Stage(name="extraction", outcome="succeeded" if "dashboards_active" in counters else "failed",
                  rows_out=seen),
            Stage(name="transformation", outcome="succeeded" if "planned" in counters else "skipped",
                  rows_out=counters.get("planned")),
            Stage(name="validation", outcome="skipped"),
            Stage(name="loading", outcome="skipped"),
        ]  # fmt: skip
        return found
    inventory = counters.get("dashboards_active", 0) + counters.get("dashboards_in_trash", 0)
    deleted = [a for a in actions if a.status == CleanupAction.Status.DELETED]
    created = [b.created_at for b in backups]
    verified = [b.verified_at for b in backups]
    finished = [t for a in deleted for t in (a.deleted_at, a.owner_notified_at) if t]
    found.stages = [
        Stage(name="extraction", outcome="succeeded", rows_out=inventory, inputs=found.inputs,
              details={"source": naming.looker_dashboard("*").namespace}),
        Stage(name="transformation", outcome="succeeded", rows_in=inventory, rows_out=len(actions),
              details={"planned": counters.get("planned"), "lookml_reported": counters.get("lookml_reported")}),
        Stage(name="validation", outcome="failed" if counters.get("failed_backup") else "succeeded",
              rows_in=len(actions), rows_out=len(backups),
              started_at=min(created) if created else None, ended_at=max(verified) if verified else None,
              duration_s=(max(verified) - min(created)).total_seconds() if created else None,
              outputs=[o for o in found.outputs if not o.namespace.startswith(("mailto", "postgres", "sqlite"))],
              details={"backups_verified": len(backups)}),
        Stage(name="loading", outcome="failed" if counters.get("failed_soft_delete") else "succeeded",
              rows_in=len(backups), rows_out=len(deleted),
              started_at=min(finished) if finished else None, ended_at=max(finished) if finished else None,
              duration_s=(max(finished) - min(finished)).total_seconds() if finished else None,
              outputs=[o for o in found.outputs if o.namespace.startswith("mailto")],
              details={"soft_deleted": len(deleted), "owners_notified": len(mailed)}),
    ]  # fmt: skip
    return found


# --- sheets_sync ------------------------------------------------------------------------------------------------

_SQL_TABLE = re.compile(r"\b(?:FROM|JOIN)\s+`?([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+){1,2})`?", re.IGNORECASE)


def sync_source_names(target: Any) -> list[naming.DatasetName]:
    """A sync target's source datasets: its file (a path or ``store:<name>`` in the backup store), the tables its
    BigQuery SQL reads (FROM/JOIN with a dataset-qualified name), or ``dbalias://<alias>`` / ``query:<target>``
    for a database query (the database's URL lives only in the environment)."""
    if target.source_kind == "file":
        if target.source_file.startswith("store:"):
            return [naming.backup_object(target.source_file.removeprefix("store:"))]
        return [naming.DatasetName("file://localhost", target.source_file)]
    if target.source_kind == "bigquery":
        names = []
        for table in dict.fromkeys(_SQL_TABLE.findall(target.source_query or "")):
            try:
                names.append(naming.bigquery_table(table))
            except ValueError:
                continue
        return names
    return [naming.DatasetName(f"dbalias://{target.source_database or 'default'}", f"query:{target.name}")]


def _sheets_sync_extract(job_run: Any) -> JobLineage:
    found = JobLineage()
    events = list(job_run.sync_events.select_related("target").order_by("pk"))
    active = [e for e in events if e.target is not None and e.outcome in ("changed", "failed")]
    seen_in: set[tuple[str, str]] = set()
    for event in active:
        for name in sync_source_names(event.target):
            if (name.namespace, name.name) not in seen_in:
                seen_in.add((name.namespace, name.name))
                found.inputs.append(dataset_input(name))
    written = [e for e in active if e.outcome == "changed"]
    for event in written:
        found.outputs.append(dataset_output(naming.sheet_range(event.target.spreadsheet_id, *_sheet_and_cells(event))))
    failed = any(e.outcome == "failed" for e in events)
    ms = sum(e.duration_ms for e in events)
    found.stages = [
        Stage(name="extraction", outcome="succeeded" if events else "skipped", rows_out=len(events),
              inputs=found.inputs, details={"targets_checked": len(events), "sources_read": len(active)}),
        Stage(name="transformation", outcome="succeeded" if events else "skipped",
              rows_out=sum(e.rows_added + e.rows_removed for e in active),
              details={"rows_added": sum(e.rows_added for e in active),
                       "rows_removed": sum(e.rows_removed for e in active)}),
        Stage(name="validation", outcome="succeeded" if events else "skipped",
              rows_out=sum(e.rows_quarantined for e in active), details={"rows_quarantined": sum(
                  e.rows_quarantined for e in active)}),
        Stage(name="loading", outcome="failed" if failed else ("succeeded" if events else "skipped"),
              rows_out=sum(e.cells_written for e in written), duration_s=ms / 1000 if ms else None,
              outputs=found.outputs, details={"cells_written": sum(e.cells_written for e in written),
                                              "targets_written": len(written)}),
    ]  # fmt: skip
    return found


def _sheet_and_cells(event: Any) -> tuple[str, str]:
    sheet, _, cells = event.target.range.rpartition("!")
    return (sheet.strip("'") or event.target.range.strip("'")), (cells if sheet else "A1")


EXTRACTORS: dict[str, Callable[[Any], JobLineage]] = {
    "sales_report": _sales_extract,
    "looker_cleanup": _cleanup_extract,
    "sheets_sync": _sheets_sync_extract,
}
DECLARED: dict[str, Callable[[Any], tuple[list[InputDataset], list[OutputDataset]]]] = {
    "sales_report": _sales_declared,
}


def job_lineage_extract(job_run: Any) -> JobLineage:
    """What the finished run read and wrote, its facets and stages (empty for a job without an extractor)."""
    extractor = EXTRACTORS.get(job_run.job)
    return extractor(job_run) if extractor is not None else JobLineage()


def job_lineage_declared(job_run: Any) -> tuple[list[InputDataset], list[OutputDataset]]:
    declared = DECLARED.get(job_run.job)
    return declared(job_run) if declared is not None else ([], [])

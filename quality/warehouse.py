"""Running a compiled suite in BigQuery and reading its answers back as a :class:`~quality.engine.SuiteResult`.

Two queries at most, both bounded (``maximum_bytes_billed``; the second returns at most
``quarantine_cap + max_keys x checks`` rows):

1. the counts scan (:meth:`~quality.sql.CompiledSuite.counts_sql`): every check's failing count, the removed
   and the quarantined rows;
2. only when something failed, the failing keys and rows (:meth:`~quality.sql.CompiledSuite.failing_rows_sql`):
   each check's first ``max_keys`` failing keys, and the first ``quarantine_cap`` quarantined rows with their
   reason codes. Past the cap the counts stay exact, the quarantine holds the first rows (in key order) and the
   gate says so (and asks for a review at least).

:func:`warehouse_estimate` dry-runs both first, so the caller's cost guard sees the bytes before anything runs.
The score and the gate come from the same functions as the in-memory run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from connectors.bigquery import BigQueryClient, QueryResult

from .engine import (
    REASON_CODES_COLUMN,
    CheckResult,
    Decision,
    Gate,
    SuiteResult,
    check_result,
    check_skipped,
    gate_decide,
    quality_score,
)
from .sql import CompiledSuite

__all__ = ["WarehouseRun", "warehouse_estimate", "warehouse_run"]

_PAGE_ROWS = 2_000  # rows per getQueryResults page of the failing rows: bounds the client's peak per page


@dataclass(frozen=True)
class WarehouseRun:
    """A suite's outcome in the warehouse, with what its queries cost."""

    result: SuiteResult
    jobs: tuple[QueryResult, ...]
    bytes_estimated: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def bytes_processed(self) -> int:
        """Bytes the validation queries processed."""
        return sum(job.bytes_processed for job in self.jobs)

    @property
    def bytes_billed(self) -> int:
        """Bytes the validation queries were billed."""
        return sum(job.bytes_billed for job in self.jobs)

    @property
    def slot_ms(self) -> int:
        """Slot milliseconds the validation queries took."""
        return sum(job.slot_ms for job in self.jobs)


def warehouse_estimate(*, compiled: CompiledSuite, client: BigQueryClient, max_keys: int, quarantine_cap: int) -> int:
    """Dry-run the counts scan and the failing-rows query: the bytes they would process together."""
    counts = client.query_dry_run(sql=compiled.counts_sql(), params=compiled.params)
    rows = client.query_dry_run(
        sql=compiled.failing_rows_sql(),
        params=compiled.failing_rows_params(max_keys=max_keys, quarantine_cap=quarantine_cap),
    )
    return counts.bytes_processed + rows.bytes_processed


def warehouse_run(
    *,
    compiled: CompiledSuite,
    client: BigQueryClient,
    maximum_bytes_billed: int | None,
    max_keys: int = 1000,
    quarantine_cap: int = 10_000,
    labels: dict[str, str] | None = None,
    schema_results: Sequence[CheckResult] = (),
    fetch_rows: bool = True,
    use_query_cache: bool = True,
) -> WarehouseRun:
    """Run the counts scan (and, when rows failed, the failing-rows query) and build the suite's result.

    ``fetch_rows=False`` stops after the counts (no sample keys, an empty quarantine). Connector errors
    (:class:`~connectors.errors.ConnectorError`, ``QueryTooExpensive``) propagate to the caller.
    """
    started = time.perf_counter()
    suite = compiled.suite
    counts_job = client.query_run(
        sql=compiled.counts_sql(),
        params=compiled.params,
        maximum_bytes_billed=maximum_bytes_billed,
        labels={**(labels or {}), "dataops_step": "validation_counts"},
        use_query_cache=use_query_cache,
    )
    rows, removed, quarantined, per_check = compiled.counts(counts_job.rows[0] if counts_job.rows else {})
    jobs = [counts_job]
    failing: list[dict[str, Any]] = []
    if fetch_rows and rows and any(per_check.values()):
        rows_job = client.query_run(
            sql=compiled.failing_rows_sql(),
            params=compiled.failing_rows_params(max_keys=max_keys, quarantine_cap=quarantine_cap),
            maximum_bytes_billed=maximum_bytes_billed,
            labels={**(labels or {}), "dataops_step": "validation_rows"},
            max_rows=quarantine_cap + max(0, max_keys) * len(compiled.flags),
            page_size=_PAGE_ROWS,
            use_query_cache=use_query_cache,
        )
        jobs.append(rows_job)
        failing = rows_job.rows
    results = [replace(r, dataset=r.dataset or suite.dataset) for r in schema_results]
    keys = list(suite.keys)
    if rows == 0:
        results += [
            replace(check_skipped(f.check, "the input has no rows"), dataset=suite.dataset) for f in compiled.flags
        ]
        result = SuiteResult(
            dataset=suite.dataset,
            rows=0,
            cleaned=pl.DataFrame(),
            quarantine=pl.DataFrame(),
            check_results=results,
            score=0.0,
            gate=gate_decide(suite, rows=0, score=0.0, check_results=results),
            duration_s=time.perf_counter() - started,
            as_of=compiled.params["qc_as_of"],
            quarantined_total=0,
        )
        return WarehouseRun(result=result, jobs=tuple(jobs))

    for index, flag in enumerate(compiled.flags):
        sample = [tuple(r.get(k) for k in keys) for r in failing if compiled.failed(r, index)][: max(0, max_keys)]
        results.append(
            check_result(suite, flag.check, failed=per_check[flag.check.name], rows=rows, sample_keys=sample)
        )
    quarantine = _quarantine(compiled, failing, quarantine_cap)
    score = quality_score(suite, rows, per_check)
    gate = gate_decide(suite, rows=rows, score=score, check_results=results)
    if quarantined > quarantine.height:
        gate = _capped(gate, kept=quarantine.height, total=quarantined, fetched=fetch_rows)
    result = SuiteResult(
        dataset=suite.dataset,
        rows=rows,
        cleaned=pl.DataFrame(),  # the rows that passed stay in the warehouse (CompiledSuite.clean_rows_sql)
        quarantine=quarantine,
        check_results=results,
        score=score,
        gate=gate,
        duration_s=time.perf_counter() - started,
        as_of=compiled.params["qc_as_of"],
        rows_removed=removed,
        quarantined_total=quarantined,
    )
    details = {"plan": compiled.plan, "failing_rows_fetched": len(failing), "quarantine_kept": quarantine.height}
    return WarehouseRun(result=result, jobs=tuple(jobs), details=details)


def _quarantine(compiled: CompiledSuite, failing: list[dict[str, Any]], cap: int) -> pl.DataFrame:
    """The first ``cap`` quarantined rows: keys, every reason code the row failed, then the rest of the row."""
    keys = list(compiled.suite.keys)
    coded = [(i, f) for i, f in enumerate(compiled.flags) if not f.check.removes]
    quarantining = [i for i, f in coded if f.check.severity.quarantines]
    rest = [c for c in compiled.output_columns if c not in keys]
    rows = []
    for row in failing:
        if row.get("__qc_removed") or not any(compiled.failed(row, i) for i in quarantining):
            continue
        codes = [f.check.reason_code for i, f in coded if compiled.failed(row, i)]
        rows.append({**{k: row.get(k) for k in keys}, REASON_CODES_COLUMN: codes, **{c: row.get(c) for c in rest}})
        if len(rows) >= cap:
            break
    if not rows:
        return pl.DataFrame(schema={**{k: pl.String for k in keys}, REASON_CODES_COLUMN: pl.List(pl.String)})
    return pl.DataFrame(rows, infer_schema_length=None)


def _capped(gate: Gate, *, kept: int, total: int, fetched: bool) -> Gate:
    if fetched:
        note = (
            f"quarantine capped: {total} rows failed a check of severity error or above; the first {kept} (in key "
            f"order) are kept with their reason codes, the counts per check are exact (QUALITY_QUARANTINE_CAP)"
        )
    else:
        note = f"{total} rows failed a check of severity error or above (counts only: the rows were not fetched)"
    decision = Decision.REVIEW if gate.decision is Decision.PASS else gate.decision
    return Gate(decision, [*gate.reasons, note] if decision is gate.decision else [note, *gate.reasons])

"""What a job run's outcome was, in words, from the run and the objects it produced.

A run's ``status`` says whether its process ended well; it does not say whether a sales report waits for a
review, was blocked by the quality gate or was published, nor whether a cleanup failed for some dashboards.
``job_runs_outcomes`` reads the linked objects of many runs in a bounded number of queries (two, whatever the
number of runs) and ``job_run_outcome`` says what happened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .models import JobRun

# Colours of the outcome badges: one per kind of outcome, the same everywhere.
OK, WAITING, BAD, LIVE, NEUTRAL = "#2e7d32", "#b26a00", "#c62828", "#1565c0", "#555"


@dataclass(frozen=True)
class RunOutcome:
    key: str
    label: str
    colour: str

    @property
    def live(self) -> bool:
        return self.key in ("queued", "triggered", "running")


# SalesReport.status -> (key, label, colour)
_REPORT_OUTCOMES = {
    "pending_review": ("awaiting_review", "Awaiting review", WAITING),
    "blocked": ("blocked_by_gate", "Blocked by the quality gate", BAD),
    "publishing": ("publishing", "Publishing", LIVE),
    "published": ("published", "Published", OK),
    "publish_failed": ("publish_failed", "Publish failed", BAD),
    "rejected": ("rejected", "Rejected in review", BAD),
}
# QueryRun.status of a report query without a report -> outcome
_QUERY_OUTCOMES = {
    "awaiting_approval": ("awaiting_approval", "Awaiting approval (costly query)", WAITING),
    "refused": ("refused", "Refused by the cost guard", BAD),
    "estimated": ("estimated", "Estimated only (dry run)", OK),
}
# Counters that, when above zero in a finished run, mean some items failed while the run went on.
_PARTIAL_FAILURE_COUNTERS = ("failed", "failed_backup", "failed_soft_delete")


def job_runs_outcomes(runs: Iterable[JobRun]) -> dict[int, RunOutcome]:
    """The outcome of each run, by pk: sales runs read their report query and its report (one query)."""
    from sales.models import QueryRun

    runs = list(runs)
    sales_ids = [r.pk for r in runs if r.job == "sales_report" and r.status == JobRun.Status.SUCCEEDED]
    reports: dict[int, tuple[str, str]] = {}  # job_run_id -> (query run status, report status or "")
    if sales_ids:
        rows = (
            QueryRun.objects.filter(job_run_id__in=sales_ids, purpose=QueryRun.Purpose.REPORT)
            .order_by("job_run_id", "pk")
            .values_list("job_run_id", "status", "report__status")
        )
        for job_run_id, query_status, report_status in rows:
            reports[job_run_id] = (query_status, report_status or "")
    return {r.pk: job_run_outcome(r, sales=reports.get(r.pk)) for r in runs}


def job_run_outcome(run: JobRun, *, sales: tuple[str, str] | None = None) -> RunOutcome:
    """What happened in ``run``; ``sales`` is (report query status, report status) for a sales run."""
    status = run.status
    if status == JobRun.Status.QUEUED:
        return RunOutcome("queued", "Queued", LIVE)
    if status == JobRun.Status.TRIGGERED:
        return RunOutcome("triggered", "Triggered in Airflow", LIVE)
    if status == JobRun.Status.RUNNING:
        return RunOutcome("running", "Running", LIVE)
    if status == JobRun.Status.FAILED_TO_TRIGGER:
        return RunOutcome("failed_to_trigger", "Failed to trigger", BAD)
    if status == JobRun.Status.FAILED:
        return RunOutcome("failed", "Failed", BAD)
    # Succeeded: say what it came to.
    counters = run.counters or {}
    if counters.get("approval_request") and not run.dry_run:
        what = "costly query" if run.job == "sales_report" else "second person"
        return RunOutcome("awaiting_approval", f"Awaiting approval ({what})", WAITING)
    if run.job == "sales_report" and not run.dry_run:
        if sales is not None:
            query_status, report_status = sales
            if report_status in _REPORT_OUTCOMES:
                return RunOutcome(*_REPORT_OUTCOMES[report_status])
            if query_status in _QUERY_OUTCOMES:
                return RunOutcome(*_QUERY_OUTCOMES[query_status])
    if run.dry_run:
        return RunOutcome("planned", "Dry run (nothing changed)", OK)
    failed = sum(int(counters.get(k) or 0) for k in _PARTIAL_FAILURE_COUNTERS if isinstance(counters.get(k), int))
    if failed:
        return RunOutcome("partially_failed", f"Partially failed ({failed} failed)", WAITING)
    return RunOutcome("succeeded", "Succeeded", OK)


# Counters worth a glance in the run list, in this order; the run page shows them all.
_COUNTER_ORDER = (
    "rows", "lines_checked", "lines_quarantined", "checks", "checks_failed", "rows_quarantined",
    "targets", "changed", "failed", "cells_written", "rows_added", "rows_removed",
    "planned", "deleted", "failed_backup", "failed_soft_delete", "looker_requests", "bytes_billed",
)  # fmt: skip


def job_run_counters_short(run: JobRun, *, limit: int = 5) -> str:
    """The run's main counters in one line (``rows=120, checks=14, cells=480``); numbers only."""
    counters = {k: v for k, v in (run.counters or {}).items() if isinstance(v, int | float) and not isinstance(v, bool)}
    keys = [k for k in _COUNTER_ORDER if k in counters] + sorted(k for k in counters if k not in _COUNTER_ORDER)
    return ", ".join(f"{k}={counters[k]}" for k in keys[:limit])

"""Registers the sales analytics job."""

from datetime import date, timedelta
from typing import Any

from orchestration.registry import JobSpec, ParamSpec, job_register

MAX_SPAN_DAYS = 3 * 366  # three years of days in one report


def _within_a_year() -> date:
    return date.today() + timedelta(days=366)


def _span_check(params: dict[str, Any]) -> None:
    start, end = date.fromisoformat(params["start"]), date.fromisoformat(params["end"])
    if end < start:
        raise ValueError(f"end ({end}) is before start ({start})")
    if (end - start).days > MAX_SPAN_DAYS:
        raise ValueError(f"start to end spans {(end - start).days} days; the limit is {MAX_SPAN_DAYS}")


SALES_REPORT = job_register(
    JobSpec(
        name="sales_report",
        title="BigQuery sales report",
        runner="sales.services.sales_report_run",
        permission="sales.run_salesquery",
        supports_dry_run=True,
        estimator="sales.services.sales_cost_estimate",
        params={
            "start": ParamSpec("date", "first day (YYYY-MM-DD)", required=True, min="2000-01-01", max=_within_a_year),
            "end": ParamSpec(
                "date", "last day, inclusive (YYYY-MM-DD)", required=True, min="2000-01-01", max=_within_a_year
            ),
            "regions": ParamSpec(
                "list",
                "comma-separated regions (empty: all)",
                max_length=20,
                item_max_length=32,
                pattern=r"[A-Za-z][A-Za-z0-9 _-]*",
            ),
            "grain": ParamSpec(
                "str", "day, week or month", default="day", max_length=5, choices=("day", "week", "month")
            ),
            "query": ParamSpec(
                "str", "sales query name", default="daily_revenue", max_length=100, pattern=r"[-a-zA-Z0-9_]+"
            ),
        },
        params_check=_span_check,
        params_context_check="sales.params.sales_params_check",
        param_choices="sales.params.sales_param_choices",
    )
)

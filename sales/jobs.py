"""Registers the sales analytics job."""

from orchestration.registry import JobSpec, ParamSpec, job_register

SALES_REPORT = job_register(
    JobSpec(
        name="sales_report",
        title="BigQuery sales report",
        runner="sales.services.sales_report_run",
        permission="sales.run_salesquery",
        supports_dry_run=True,
        estimator="sales.services.sales_cost_estimate",
        params={
            "start": ParamSpec("date", "first day (YYYY-MM-DD)", required=True),
            "end": ParamSpec("date", "last day, inclusive (YYYY-MM-DD)", required=True),
            "regions": ParamSpec("list", "comma-separated regions (empty: all)"),
            "grain": ParamSpec("str", "day, week or month", default="day"),
            "query": ParamSpec("str", "sales query name", default="daily_revenue"),
        },
    )
)

"""Registers the weekly performance report job (Airflow's DAG or Celery beat runs it on Mondays)."""

from orchestration.registry import JobSpec, ParamSpec, job_register

WEEKLY_REPORT = job_register(
    JobSpec(
        name="monitoring_weekly_report",
        title="Weekly performance report",
        runner="monitoring.services.weekly_report_run",
        permission="monitoring.view_operations",
        supports_dry_run=True,
        params={"days": ParamSpec("int", "days the report covers", default=7)},
    )
)

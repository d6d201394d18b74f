"""Registers the daily retention purge (Airflow's DAG or Celery beat runs it)."""

from orchestration.registry import JobSpec, job_register

RETENTION_PURGE = job_register(
    JobSpec(
        name="privacy_retention_purge",
        title="Retention purge (personal data past its period)",
        runner="privacy.retention.retention_purge_run",
        permission="privacy.run_retention_purge",
        supports_dry_run=True,
    )
)

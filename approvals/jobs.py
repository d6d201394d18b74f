"""Registers the approvals sweeper as a job, so Airflow (or cron through ``run_job``) can run it too."""

from typing import Any

from orchestration.registry import JobResult, JobSpec, job_register


def approvals_sweep_run(*, job_run: Any, params: dict[str, Any], dry_run: bool) -> JobResult:
    """Expire overdue requests, run approved actions a crash left unrun, reconcile half-done publishes."""
    from .services import approvals_sweep

    counts = approvals_sweep()
    return JobResult(summary=", ".join(f"{k}={v}" for k, v in sorted(counts.items())), counters=counts)


APPROVALS_SWEEP = job_register(
    JobSpec(
        name="approvals_sweep",
        title="Approvals sweeper (expire, run what a crash left, reconcile)",
        runner="approvals.jobs.approvals_sweep_run",
        permission="approvals.change_approvalrequest",
    )
)

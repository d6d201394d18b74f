"""Registers the Looker cleanup job."""

from django.conf import settings

from orchestration.registry import JobSpec, ParamSpec, job_register

LOOKER_CLEANUP = job_register(
    JobSpec(
        name="looker_cleanup",
        title="Looker dashboard cleanup",
        runner="cleanup.services.looker_cleanup_run",
        permission="cleanup.run_cleanup",
        supports_dry_run=True,
        params={
            "inactive_days": ParamSpec(
                "int",
                "days without a view or access before a dashboard is inactive",
                default=lambda: settings.CLEANUP_INACTIVE_DAYS,
                min=1,
                max=3650,  # ten years: Looker's own history is younger than that
            ),
            "max_deletions": ParamSpec(
                "int",
                "most dashboards one run may soft-delete",
                default=lambda: settings.CLEANUP_MAX_DELETIONS,
                min=1,
                max=10_000,
            ),
        },
    )
)

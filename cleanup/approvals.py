"""The cleanup's guarded action: a real run above CLEANUP_APPROVAL_THRESHOLD (or above the per-run cap)."""

from __future__ import annotations

from approvals.registry import ApprovalAction, approval_action_register
from dataops_site.lazy import lazy_function
from orchestration.approvals import job_confirmation_register, job_run_approved_execute, job_run_link

from .constants import CLEANUP_RUN_ACTION

# Imported on first use: cleanup.services imports looker_sdk (issue 15: start-up).
cleanup_plan_preview = lazy_function("cleanup.services.cleanup_plan_preview")


def register() -> None:
    approval_action_register(
        ApprovalAction(
            name=CLEANUP_RUN_ACTION,
            title="Run a large Looker cleanup (or one above the per-run cap)",
            approver_permission="cleanup.run_cleanup",
            approver_role="Content Admin",
            execute=job_run_approved_execute,
            link=job_run_link,
        )
    )
    job_confirmation_register("looker_cleanup", cleanup_plan_preview)

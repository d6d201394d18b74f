"""The sales app's guarded actions: publishing a reviewed report, overriding a failed gate, a costly query.

Registered from ``SalesConfig.ready()``; approval requests store only these names and their pinned inputs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from approvals.registry import (
    ApprovalAction,
    ApprovalExecutionFailed,
    ApprovalStillRunning,
    approval_action_register,
    approval_sweeper_register,
    destination_reserve,
)
from dataops_site.lazy import lazy_function
from orchestration.approvals import job_run_approved_execute, job_run_link

from .constants import COSTLY_QUERY_ACTION, OVERRIDE_ACTION, REPORT_SHEET, REVIEW_ACTION, SALES_WRITER
from .models import SalesReport

# Imported on first use: sales.services imports google-cloud-bigquery, polars and sqlglot (issue 15: start-up).
report_rows_sha256 = lazy_function("sales.services.report_rows_sha256")
sales_publishes_reconcile = lazy_function("sales.services.sales_publishes_reconcile")
sales_report_publish = lazy_function("sales.services.sales_report_publish")


def report_publish_approved(*, request: Any) -> str:
    """Publish the report the request pinned (its rows unchanged since), once; a failure is reported as one."""
    report = SalesReport.objects.select_related("quality_run").filter(pk=request.inputs["report_id"]).first()
    if report is None:
        raise ApprovalExecutionFailed(f"report #{request.inputs['report_id']} no longer exists")
    if report_rows_sha256(report) != request.inputs["rows_sha256"]:
        raise ApprovalExecutionFailed(f"report #{report.pk} changed since it was approved: nothing was published")
    if report.status == SalesReport.Status.PUBLISHED:
        return "already published"
    # A re-run by the sweeper takes over a publish its crashed first attempt left under way.
    stuck_before = None
    if request.execution_attempts > 1:
        stuck_before = timezone.now() - timedelta(seconds=float(settings.APPROVALS_STUCK_AFTER_S))
    outcome = sales_report_publish(report=report, approved_by=None, stuck_before=stuck_before)
    report.refresh_from_db(fields=["status", "error"])
    if report.status == SalesReport.Status.PUBLISHING:
        raise ApprovalStillRunning(outcome)
    if report.status != SalesReport.Status.PUBLISHED:
        raise ApprovalExecutionFailed(outcome if outcome.startswith("publish failed") else f"not published: {outcome}")
    return outcome


def review_decided(*, request: Any, actor: Any, reason: str) -> None:
    """Mirror the decision on the review item; a rejected or expired review leaves the report unpublished."""
    from quality.services import review_item_decided

    review_item_decided(request=request, actor=actor, reason=reason)
    if request.status == "rejected":
        SalesReport.objects.filter(pk=request.inputs["report_id"]).update(
            status=SalesReport.Status.REJECTED, error=reason
        )
    elif request.status == "expired":
        SalesReport.objects.filter(pk=request.inputs["report_id"], status=SalesReport.Status.PENDING_REVIEW).update(
            status=SalesReport.Status.BLOCKED, error="the quality review expired before anyone decided"
        )


def review_link(*, request: Any) -> tuple[str, str] | None:
    item = getattr(request, "review_item", None)
    if item is not None:
        return f"review #{item.pk}: checks, failing samples, quarantine", reverse(
            "admin:quality_reviewitem_change", args=[item.pk]
        )
    return report_link(request=request)


def report_link(*, request: Any) -> tuple[str, str] | None:
    report_id = request.inputs.get("report_id")
    if not report_id:
        return None
    return f"sales report #{report_id}", reverse("admin:sales_salesreport_change", args=[report_id])


def register() -> None:
    approval_action_register(
        ApprovalAction(
            name=REVIEW_ACTION,
            title="Publish a sales report held for a quality review",
            approver_permission="quality.decide_reviewitem",
            approver_role="Data Steward",
            execute=report_publish_approved,
            on_decided=review_decided,
            link=review_link,
        )
    )
    approval_action_register(
        ApprovalAction(
            name=OVERRIDE_ACTION,
            title="Publish a sales report whose quality gate FAILED (override)",
            approver_permission="quality.decide_reviewitem",
            approver_role="Data Steward",
            execute=report_publish_approved,
            quorum=2,
            reason_required=True,
            link=report_link,
        )
    )
    approval_action_register(
        ApprovalAction(
            name=COSTLY_QUERY_ACTION,
            title="Run a sales query above SALES_APPROVAL_BYTES",
            approver_permission="sales.approve_costly_query",
            approver_role="Platform Admin",
            execute=job_run_approved_execute,
            link=job_run_link,
        )
    )
    approval_sweeper_register("sales_publish", sales_publishes_reconcile)
    destination_reserve(SALES_WRITER, lambda: [(settings.SALES_SHEET_ID, REPORT_SHEET)])

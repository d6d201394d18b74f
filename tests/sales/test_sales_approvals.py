"""The sales guarded actions on the approvals mechanism: the durable publish at both crash points, the override of a
failed gate (quorum 2, reason), the costly query above SALES_APPROVAL_BYTES, and a failed publish shown as failed."""

from __future__ import annotations

import pytest
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.services import ApprovalError, approval_approve, approvals_sweep
from orchestration.models import JobRun
from orchestration.services import job_run_create, job_run_execute
from quality.models import ReviewItem
from sales.models import QueryRun, SalesQuery, SalesReport
from sandbox.common import FaultRule
from tests.cleanup.test_cleanup_job import run_job
from tests.sales.conftest import OLD_SHEET, report_values

pytestmark = pytest.mark.django_db
OCTOBER = {"start": "2026-10-01", "end": "2026-10-31"}


class Crash(BaseException):
    """The process dies here (not an Exception: nothing in the app catches it)."""


def _dirty_review(role_user, capture):
    analyst = role_user("Analyst")
    queued = job_run_create(job="sales_report", actor=analyst, params=OCTOBER)
    with capture(execute=True):
        job_run_execute(job_run_id=queued.pk)
    return analyst, ReviewItem.objects.get()


def _writes(sheet) -> int:
    return sum(n for k, n in sheet.counters().items() if k.startswith("POST") and "batchUpdate" in k)


def test_crash_after_the_approval_commits_and_before_the_publish(
    dirty_bigquery, sheet, role_user, django_capture_on_commit_callbacks, settings
):
    _, item = _dirty_review(role_user, django_capture_on_commit_callbacks)
    # The approval commits; the process dies before its queued execution runs (the on-commit hook never fires).
    approval_approve(request_id=item.approval_id, actor=role_user("Data Steward"))
    approval = ApprovalRequest.objects.get()
    assert approval.status == "approved" and approval.execution == "not_started"
    assert SalesReport.objects.get().status == "pending_review" and report_values(sheet) == OLD_SHEET

    settings.APPROVALS_SWEEP_GRACE_S = 0
    assert approvals_sweep()["executed"] == 1
    approval.refresh_from_db()
    assert approval.execution == "done" and approval.execution_outcome.startswith("published")
    assert SalesReport.objects.get().status == "published" and report_values(sheet)[0][0] == "day"


def test_crash_after_the_sheet_write_and_before_the_record(
    dirty_bigquery, sheet, role_user, django_capture_on_commit_callbacks, settings, monkeypatch
):
    import sales.services

    _, item = _dirty_review(role_user, django_capture_on_commit_callbacks)

    def die(*args, **kwargs):
        raise Crash

    monkeypatch.setattr(sales.services, "_publish_record", die)
    with pytest.raises(Crash), django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=item.approval_id, actor=role_user("Data Steward"))
    report = SalesReport.objects.get()
    written = report_values(sheet)
    # The sheet holds the report and the database does not call it pending: it says a publish is under way.
    assert written[0][:4] == ["day", "region", "orders", "revenue"] and report.status == "publishing"
    assert ApprovalRequest.objects.get().execution == "running"

    monkeypatch.undo()
    settings.APPROVALS_STUCK_AFTER_S = 0
    writes = _writes(sheet)
    counts = approvals_sweep()
    assert counts["taken_over"] == 1 and counts["executed"] == 1
    report.refresh_from_db()
    approval = ApprovalRequest.objects.get()
    assert report.status == "published" and "recorded after a crash" in approval.execution_outcome
    assert _writes(sheet) == writes  # reconciled from a read: not written a second time
    assert report_values(sheet) == written


def test_a_passed_publish_that_died_mid_write_is_finished_by_the_sweeper(bigquery, sheet, settings, monkeypatch):
    import sales.services

    def die_before_writing(**kwargs):
        raise Crash

    monkeypatch.setattr(sales.services, "report_publish", die_before_writing)
    with pytest.raises(Crash):
        run_job("sales_report", "--param", "start=2026-10-01", "--param", "end=2026-10-31")
    assert SalesReport.objects.get().status == "publishing" and report_values(sheet) == OLD_SHEET
    monkeypatch.undo()
    settings.APPROVALS_STUCK_AFTER_S = 0
    assert approvals_sweep()["sales_publish.published"] == 1
    assert SalesReport.objects.get().status == "published" and report_values(sheet)[0][0] == "day"


def test_a_failed_publish_is_shown_as_failed_to_the_approver(
    dirty_bigquery, sheet, role_user, client, django_capture_on_commit_callbacks
):
    _, item = _dirty_review(role_user, django_capture_on_commit_callbacks)
    sheet.faults.add(FaultRule(method="POST", path_pattern="*values:batchUpdate", status=500, times=None))
    client.force_login(role_user("Data Steward"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/admin/quality/reviewitem/{item.pk}/decide/", {"decision": "approve"})
    approval = ApprovalRequest.objects.get()
    assert approval.execution == "failed" and "publish failed" in approval.execution_outcome
    assert SalesReport.objects.get().status == "publish_failed" and report_values(sheet) == OLD_SHEET
    page = client.get(f"/admin/quality/reviewitem/{item.pk}/change/").content.decode()
    assert "Failed" in page and "publish failed" in page and "resumes" not in page
    queue = client.get(f"/admin/approvals/approvalrequest/{approval.pk}/change/").content.decode()
    assert "#c62828" in queue and "Failed" in queue


def test_overriding_a_failed_gate_needs_a_reason_and_two_other_stewards(
    bigquery, sheet, role_user, client, django_capture_on_commit_callbacks
):
    from sales.services import sales_report_override_request

    SalesQuery.objects.create(
        name="drifted",
        title="drifted",
        sql="SELECT DATE(order_ts) AS day, region, COUNT(*) AS orders FROM `sales.order_lines` "
        "WHERE order_ts >= TIMESTAMP(@start) AND order_ts < TIMESTAMP(@end) AND (@all_regions OR region IN "
        "UNNEST(@regions)) GROUP BY day, region",
    )
    analyst = role_user("Analyst")
    queued = job_run_create(job="sales_report", actor=analyst, params={**OCTOBER, "query": "drifted"})
    assert job_run_execute(job_run_id=queued.pk).status == "failed"
    report = SalesReport.objects.get()
    assert report.status == "blocked"
    client.force_login(analyst)
    client.post(f"/admin/sales/salesreport/{report.pk}/override/", {"reason": ""})
    assert not ApprovalRequest.objects.exists()  # a reason is required
    client.post(f"/admin/sales/salesreport/{report.pk}/override/", {"reason": "board meeting; revenue comes later"})
    approval = ApprovalRequest.objects.get()
    assert approval.action == "sales.override_publish" and approval.quorum == 2
    stewards = [role_user("Data Steward"), role_user("Data Steward", username="steward2")]
    with pytest.raises(ApprovalError):
        approval_approve(request_id=approval.pk, actor=analyst)
    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=approval.pk, actor=stewards[0])
    assert SalesReport.objects.get().status == "blocked" and report_values(sheet) == OLD_SHEET
    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=approval.pk, actor=stewards[1])
    assert SalesReport.objects.get().status == "published"
    with pytest.raises(ApprovalError, match="only a report blocked"):
        sales_report_override_request(report_id=report.pk, actor=analyst, reason="again")


def test_a_costly_query_waits_for_an_approval_then_runs_exactly_what_was_approved(
    bigquery, sheet, role_user, settings, django_capture_on_commit_callbacks
):
    settings.SALES_APPROVAL_BYTES = 1024
    analyst, admin = role_user("Analyst"), role_user("Platform Admin")
    queued = job_run_create(job="sales_report", actor=analyst, params=OCTOBER)
    run = job_run_execute(job_run_id=queued.pk)
    assert run.status == "succeeded" and run.summary.startswith("NOT RUN") and "SALES_APPROVAL_BYTES" in run.summary
    # One query run per planned query (the order-line validation and the report), both waiting, neither run.
    waiting = [(q.purpose, q.status) for q in QueryRun.objects.order_by("purpose")]
    assert waiting == [("report", "awaiting_approval"), ("validation", "awaiting_approval")]
    assert not any(k.startswith("GET") and "queries" in k for k in bigquery.counters())  # nothing ran
    approval = ApprovalRequest.objects.get()
    assert approval.action == "sales.costly_query" and approval.inputs["params"] == run.params
    with pytest.raises(ApprovalError, match="Platform Admin"):
        approval_approve(request_id=approval.pk, actor=role_user("Analyst", username="peer"))
    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=approval.pk, actor=admin)
    approval.refresh_from_db()
    assert approval.execution == "done", approval.execution_outcome
    approved_run = JobRun.objects.get(approval=approval)
    assert approved_run.actor == analyst and approved_run.trigger == "approval" and approved_run.status == "succeeded"
    assert SalesReport.objects.get().status == "published"


def test_a_costly_query_whose_sql_changed_after_approval_does_not_run(
    bigquery, sheet, role_user, settings, django_capture_on_commit_callbacks
):
    from sales.services import sales_query_get

    settings.SALES_APPROVAL_BYTES = 1024
    analyst = role_user("Analyst")
    job_run_execute(job_run_id=job_run_create(job="sales_report", actor=analyst, params=OCTOBER).pk)
    query = sales_query_get(name="daily_revenue")
    query.sql = query.sql.replace("SELECT", "SELECT /* changed */", 1)
    query.save()
    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=ApprovalRequest.objects.get().pk, actor=role_user("Platform Admin"))
    approval = ApprovalRequest.objects.get()
    assert approval.execution == "failed" and "another query" in approval.execution_outcome
    assert not SalesReport.objects.exists()
    assert timezone.now() >= approval.execution_finished_at


def test_a_review_of_a_run_without_a_requester_cannot_be_approved_by_whoever_started_it(
    dirty_bigquery, sheet, role_user
):
    stella = role_user("Data Steward", username="stella")
    code, _ = run_job("sales_report", "--param", "start=2026-10-01", "--param", "end=2026-10-31",
                      "--principal", "cli:stella")  # fmt: skip
    assert code == 0
    item = ReviewItem.objects.get()
    assert JobRun.objects.get().principal == stella and item.approval.requested_by == stella
    with pytest.raises(ApprovalError, match="other than the requester"):
        approval_approve(request_id=item.approval_id, actor=stella)
    approval_approve(request_id=item.approval_id, actor=role_user("Data Steward", username="sam"))
    assert ReviewItem.objects.get().status == "approved"


def test_an_expired_review_never_publishes_and_its_requester_is_told(
    dirty_bigquery, sheet, role_user, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.core import mail

    analyst, item = _dirty_review(role_user, django_capture_on_commit_callbacks)
    ApprovalRequest.objects.filter(pk=item.approval_id).update(expires_at=timezone.now() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert approvals_sweep()["expired"] == 1
    assert ReviewItem.objects.get().status == "expired"
    report = SalesReport.objects.get()
    assert report.status == "blocked" and "expired" in report.error and report_values(sheet) == OLD_SHEET
    assert any(m.to == [analyst.email] and "expired" in m.subject for m in mail.outbox)
    with pytest.raises(ApprovalError, match="already expired"):
        approval_approve(request_id=item.approval_id, actor=role_user("Data Steward"))


def test_resuming_a_publish_never_bypasses_the_review(
    dirty_bigquery, sheet, role_user, django_capture_on_commit_callbacks
):
    from sales.services import sales_report_publish_resume

    _dirty_review(role_user, django_capture_on_commit_callbacks)
    report = SalesReport.objects.get()
    outcome = sales_report_publish_resume(report_id=report.pk)
    assert outcome.startswith("not published") and "waiting for a quality review" in outcome
    assert SalesReport.objects.get().status == "pending_review" and report_values(sheet) == OLD_SHEET

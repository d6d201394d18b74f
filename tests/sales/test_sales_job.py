"""The sales job end to end through the real google-cloud-bigquery client and gspread against the emulators."""

from __future__ import annotations

import pytest
from django.core import mail

from orchestration.models import JobRun
from quality.models import QualityRun, ReviewItem
from sales.models import QueryRun, SalesQuery, SalesReport
from sandbox.common import FaultRule
from tests.cleanup.test_cleanup_job import run_job
from tests.sales.conftest import OLD_SHEET, report_values

pytestmark = pytest.mark.django_db
OCTOBER = ["sales_report", "--param", "start=2026-10-01", "--param", "end=2026-10-31"]


def test_clean_run_publishes_in_one_verified_batch(bigquery, sheet):
    code, out = run_job(*OCTOBER)
    assert code == 0, out
    report = SalesReport.objects.get()
    assert report.status == "published" and report.quality_run.gate == "pass"
    assert 1 <= report.publish_requests <= 3
    values = report_values(sheet)
    assert values[0][:4] == ["day", "region", "orders", "revenue"]
    assert len([r for r in values[1:] if r and r[0]]) == len(report.rows) > 0
    assert values[1][0].startswith("2026-10-01")
    assert values[0][5:7] == ["Last updated", values[0][6]] and values[1][5] == "Quality score"
    run = QueryRun.objects.get(purpose="report")
    assert run.status == "succeeded" and run.bq_job_id and run.bytes_processed > 0 and run.bytes_billed > 0
    assert run.rows == len(report.rows) and run.estimated_cost_usd > 0 and len(run.sql_hash) == 64
    assert run.params["start"] == "2026-10-01" and run.params["all_regions"] is True
    assert "published" in out and "quality 100.0 -> pass" in out


def test_dry_run_shows_the_cost_and_runs_nothing(bigquery, sheet):
    code, out = run_job(*OCTOBER, "--dry-run")
    assert code == 0, out
    assert "DRY RUN: the query would process" in out and "within the limit" in out
    assert set(QueryRun.objects.values_list("purpose", "status")) == {
        ("validation", "estimated"),
        ("report", "estimated"),
    }
    assert report_values(sheet) == OLD_SHEET


def test_a_narrower_range_costs_less(bigquery, sheet):
    from sales.services import sales_cost_estimate

    month = sales_cost_estimate(params={"start": "2026-10-01", "end": "2026-10-31"})
    year = sales_cost_estimate(params={"start": "2025-11-01", "end": "2026-10-31"})
    assert 0 < month.bytes_processed < year.bytes_processed


def test_query_over_the_byte_limit_is_refused_before_it_runs(bigquery, sheet, settings):
    settings.SALES_MAX_BYTES = 1024
    code, out = run_job(*OCTOBER)
    assert code == 1 and "refused before running" in out and "SALES_MAX_BYTES" in out
    assert set(QueryRun.objects.values_list("purpose", "status")) == {("validation", "refused"), ("report", "refused")}
    assert not any(k.startswith("GET") and "queries" in k for k in bigquery.counters())  # no results fetched
    assert report_values(sheet) == OLD_SHEET


def test_dirty_run_waits_for_review_and_approval_publishes(
    dirty_bigquery, sheet, client, role_user, django_capture_on_commit_callbacks
):
    analyst = role_user("Analyst")
    steward = role_user("Data Steward")
    from orchestration.services import job_run_create, job_run_execute

    queued = job_run_create(job="sales_report", actor=analyst, params={"start": "2026-10-01", "end": "2026-10-31"})
    with django_capture_on_commit_callbacks(execute=True):
        run = job_run_execute(job_run_id=queued.pk)
    assert run.status == "succeeded" and "Waiting for a Data Steward" in run.summary
    report = SalesReport.objects.get()
    item = ReviewItem.objects.get()
    assert report.status == "pending_review" and item.status == "pending" and item.requested_by == analyst
    assert report_values(sheet) == OLD_SHEET
    assert QualityRun.objects.get().rows_quarantined >= 1
    assert any("Approval needed" in m.subject and steward.email in m.to for m in mail.outbox)
    assert item.approval.action == "sales.review_publish" and item.approval.requested_by == analyst

    # Four eyes: the analyst who asked cannot approve their own run.
    from quality.services import ReviewError, review_item_approve

    with pytest.raises(ReviewError):
        review_item_approve(item_id=item.pk, actor=analyst)

    client.force_login(steward)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/quality/reviewitem/{item.pk}/decide/", {"decision": "approve"}, follow=True)
    # Inside the test's transaction the action runs when the callbacks do: the page says it is running, not done.
    assert "approved; the action is running" in response.content.decode()
    page = client.get(f"/admin/quality/reviewitem/{item.pk}/change/").content.decode()
    assert 'id="review-outcome"' in page and "Done" in page
    report.refresh_from_db()
    item.refresh_from_db()
    assert item.status == "approved" and item.decided_by == steward
    assert item.approval.execution == "done" and item.approval.execution_outcome.startswith("published")
    assert report.status == "published" and report_values(sheet)[0][0] == "day"
    assert any(m.to == [analyst.email] and "approved" in m.subject for m in mail.outbox)


def test_rejected_review_never_publishes(dirty_bigquery, sheet, client, role_user):
    run_job(*OCTOBER)
    item = ReviewItem.objects.get()
    client.force_login(role_user("Data Steward"))
    client.post(f"/admin/quality/reviewitem/{item.pk}/decide/", {"decision": "reject", "reason": ""})
    assert ReviewItem.objects.get().status == "pending"  # a rejection needs a reason
    client.post(f"/admin/quality/reviewitem/{item.pk}/decide/", {"decision": "reject", "reason": "null regions"})
    assert ReviewItem.objects.get().status == "rejected"
    assert SalesReport.objects.get().status == "rejected"
    assert report_values(sheet) == OLD_SHEET


def test_failed_gate_leaves_the_sheet_as_it_was(bigquery, sheet):
    SalesQuery.objects.create(
        name="drifted",
        title="drifted",
        sql=(
            "SELECT DATE(order_ts) AS day, region, COUNT(*) AS orders FROM `sales.order_lines` "
            "WHERE order_ts >= TIMESTAMP(@start) AND order_ts < TIMESTAMP(@end) AND (@all_regions OR region IN "
            "UNNEST(@regions)) GROUP BY day, region"
        ),
    )
    code, out = run_job(*OCTOBER, "--param", "query=drifted")
    assert code == 1 and "quality gate failed" in out and "revenue" in out
    assert SalesReport.objects.get().status == "blocked"
    assert report_values(sheet) == OLD_SHEET


@pytest.mark.parametrize("status", [429, 500])
def test_sheets_failure_mid_publish_keeps_the_previous_values(bigquery, sheet, status):
    sheet.faults.add(FaultRule(method="POST", path_pattern="*values:batchUpdate", status=status, times=None))
    code, out = run_job(*OCTOBER)
    assert code == 1 and "publish failed" in out
    report = SalesReport.objects.get()
    assert report.status == "publish_failed"
    assert report_values(sheet) == OLD_SHEET
    assert JobRun.objects.get().status == "failed"


def test_bad_parameters(bigquery, sheet):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="parameter start is required"):
        run_job("sales_report", "--param", "end=2026-10-31")
    with pytest.raises(CommandError, match="not a valid date"):
        run_job("sales_report", "--param", "start=yesterday", "--param", "end=2026-10-31")
    with pytest.raises(CommandError, match="is before start"):  # refused before a run exists (issue 9)
        run_job("sales_report", "--param", "start=2026-10-31", "--param", "end=2026-10-01")
    code, out = run_job(*OCTOBER, "--param", "query=nope")
    assert code == 1 and "unknown sales query 'nope'" in out


def test_empty_result_fails_the_gate_readably(bigquery, sheet):
    code, out = run_job("sales_report", "--param", "start=2020-01-01", "--param", "end=2020-01-31")
    assert code == 1 and "quality gate failed (input has no rows: nothing to publish)" in out
    assert report_values(sheet) == OLD_SHEET


def test_changed_column_type_fails_the_gate_readably(bigquery, sheet):
    SalesQuery.objects.create(
        name="stringly",
        title="revenue as text",
        sql=(
            "SELECT DATE(order_ts) AS day, region, COUNT(*) AS orders, CAST(SUM(revenue) AS STRING) AS revenue "
            "FROM `sales.order_lines` WHERE order_ts >= TIMESTAMP(@start) AND order_ts < TIMESTAMP(@end) "
            "AND (@all_regions OR region IN UNNEST(@regions)) GROUP BY day, region"
        ),
    )
    code, out = run_job(*OCTOBER, "--param", "query=stringly")
    assert code == 1 and "revenue changed type" in out
    assert report_values(sheet) == OLD_SHEET


def test_quarantined_rows_can_be_reprocessed_from_the_admin(dirty_bigquery, sheet, client, role_user):
    from quality.models import QuarantinedRow

    run_job(*OCTOBER)
    rows = list(QuarantinedRow.objects.order_by("pk"))
    assert rows and all(r.reason_codes for r in rows)
    fixed = rows[0]
    if fixed.data.get("region") is None:
        fixed.data["region"] = "EMEA"  # someone fixed the source row
    fixed.data["revenue"] = abs(float(fixed.data.get("revenue") or 0))
    fixed.save(update_fields=["data"])
    client.force_login(role_user("Data Steward"))
    response = client.post(
        "/admin/quality/quarantinedrow/",
        {"action": "reprocess_selected", "_selected_action": [r.pk for r in rows]},
        follow=True,
    )
    assert "passed" in response.content.decode()
    assert QuarantinedRow.objects.exclude(status="quarantined").count() == len(rows)
    viewer = role_user("Viewer")
    client.force_login(viewer)
    assert client.get("/admin/quality/quarantinedrow/").status_code == 403


def test_a_late_approval_never_puts_older_figures_over_a_newer_report(
    dirty_bigquery, sheet, role_user, django_capture_on_commit_callbacks
):
    from quality.services import review_item_approve

    run_job(*OCTOBER)
    run_job("sales_report", "--param", "start=2026-10-15", "--param", "end=2026-10-31")
    older, newer = ReviewItem.objects.order_by("pk")
    # CLI runs of a shell user with no account: nobody answers for them, so two stewards must approve.
    assert newer.approval.requested_by is None and newer.approval.quorum == 2
    stewards = [role_user("Data Steward"), role_user("Data Steward", username="steward2")]
    with django_capture_on_commit_callbacks(execute=True):
        for steward in stewards:
            review_item_approve(item_id=newer.pk, actor=steward)
    published = report_values(sheet)
    with django_capture_on_commit_callbacks(execute=True):
        for steward in stewards:
            review_item_approve(item_id=older.pk, actor=steward)
    older_report = SalesReport.objects.order_by("pk").first()
    assert older_report.status == "publish_failed" and "newer report" in older_report.error
    assert report_values(sheet) == published

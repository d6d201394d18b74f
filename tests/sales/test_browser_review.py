"""A Data Steward approves a dirty sales run in a real browser (Debian's chromium) and the sheet is published; when the
publish then fails, the approver sees it as failed, never as a success."""

from __future__ import annotations

import pytest

from quality.models import ReviewItem
from sales.models import SalesReport
from sandbox.common import FaultRule
from tests.browser import admin_login
from tests.cleanup.test_cleanup_job import run_job
from tests.sales.conftest import OLD_SHEET, report_values

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_steward_approves_a_review_and_the_sheet_is_published(
    chromium, live_server, dirty_bigquery, sheet, role_user, tmp_path
):
    role_user("Analyst", username="ann")
    assert run_job("sales_report", "--param", "start=2026-10-01", "--param", "end=2026-10-31",
                   "--principal", "cli:ann")[0] == 0  # fmt: skip
    item = ReviewItem.objects.get()
    assert report_values(sheet) == OLD_SHEET
    role_user("Data Steward", username="stella")

    page = chromium.new_page()
    admin_login(page, live_server.url, "stella")
    page.goto(f"{live_server.url}/admin/quality/reviewitem/?status__exact=pending")
    page.click(f"#result_list a[href*='/reviewitem/{item.pk}/change/']")
    page.wait_for_selector("#decision")
    page.click("#approve")
    page.wait_for_selector(".messagelist")
    message = page.inner_text(".messagelist")
    page.screenshot(path=str(tmp_path / "approved.png"), full_page=True)

    assert "approved and done: published" in message, message
    assert ReviewItem.objects.get().status == "approved"
    assert SalesReport.objects.get().status == "published"
    assert report_values(sheet)[0][:4] == ["day", "region", "orders", "revenue"]


def test_an_approver_sees_a_failed_publish_as_failed(chromium, live_server, dirty_bigquery, sheet, role_user, tmp_path):
    role_user("Analyst", username="ann")
    assert run_job("sales_report", "--param", "start=2026-10-01", "--param", "end=2026-10-31",
                   "--principal", "cli:ann")[0] == 0  # fmt: skip
    item = ReviewItem.objects.get()
    role_user("Data Steward", username="stella")
    sheet.faults.add(FaultRule(method="POST", path_pattern="*values:batchUpdate", status=500, times=None))
    page = chromium.new_page()
    admin_login(page, live_server.url, "stella")
    page.goto(f"{live_server.url}/admin/quality/reviewitem/{item.pk}/change/")
    page.click("#approve")
    page.wait_for_selector(".messagelist")
    message = page.inner_text(".messagelist")
    error_shown = page.locator(".messagelist .error").count()
    success_shown = page.locator(".messagelist .success").count()
    outcome = page.inner_text("#review-outcome")
    page.screenshot(path=str(tmp_path / "publish-failed.png"), full_page=True)

    assert "FAILED" in message and "publish failed" in message and "resumes" not in message, message
    assert error_shown == 1 and success_shown == 0
    assert outcome.startswith("Failed")
    assert SalesReport.objects.get().status == "publish_failed" and report_values(sheet) == OLD_SHEET

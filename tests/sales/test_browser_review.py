"""A Data Steward approves a dirty sales run in a real browser (Debian's chromium) and the sheet is published."""

from __future__ import annotations

import pytest

from quality.models import ReviewItem
from sales.models import SalesReport
from tests.cleanup.test_cleanup_job import run_job
from tests.sales.conftest import OLD_SHEET, report_values

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def test_steward_approves_a_review_and_the_sheet_is_published(
    require_chromium, live_server, dirty_bigquery, sheet, role_user, tmp_path
):
    from playwright.sync_api import sync_playwright

    assert run_job("sales_report", "--param", "start=2026-10-01", "--param", "end=2026-10-31")[0] == 0
    item = ReviewItem.objects.get()
    assert report_values(sheet) == OLD_SHEET
    role_user("Data Steward", username="stella")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=require_chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/admin/")
            page.fill("#id_username", "stella")
            page.fill("#id_password", "pw-stella")
            page.click("input[type=submit]")
            page.wait_for_selector("#site-name")
            page.goto(f"{live_server.url}/admin/quality/reviewitem/?status__exact=pending")
            page.click(f"#result_list a[href*='/reviewitem/{item.pk}/change/']")
            page.wait_for_selector("#decision")
            page.click("#approve")
            page.wait_for_selector(".messagelist")
            message = page.inner_text(".messagelist")
            page.screenshot(path=str(tmp_path / "approved.png"), full_page=True)
        finally:
            browser.close()

    assert "approved" in message
    assert ReviewItem.objects.get().status == "approved"
    assert SalesReport.objects.get().status == "published"
    assert report_values(sheet)[0][:4] == ["day", "region", "orders", "revenue"]

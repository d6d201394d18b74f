"""In Chromium: an analyst sees the live cost estimate (with BigQuery's minimum bill) and is stopped by a range
beyond the data before any run exists (issue 11)."""

from __future__ import annotations

import pytest

from orchestration.models import JobRun
from tests.browser import admin_login
from tests.test_browser_approvals import _db

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_an_analyst_is_stopped_by_a_bad_range_before_any_run(
    chromium, live_server, bigquery, sheet, role_user, tmp_path
):
    from django.core.cache import cache

    from sales.params import AVAILABILITY_CACHE_KEY

    cache.delete(AVAILABILITY_CACHE_KEY)
    role_user("Analyst", username="ana")
    before = JobRun.objects.count()
    page = chromium.new_page(viewport={"width": 1366, "height": 900})
    admin_login(page, live_server.url, "ana")
    page.goto(f"{live_server.url}/admin/orchestration/jobrun/trigger/sales_report/")
    page.fill("#id_start", "2026-10-01")
    page.fill("#id_end", "2026-10-31")
    # A locator, not wait_for_function: the CSP forbids evaluating strings as JavaScript.
    page.locator("#estimate-text", has_text="bills at least").wait_for()
    estimate = page.inner_text("#estimate-text")
    assert "BigQuery bills every query at least 10.00 MiB" in estimate, estimate
    assert "Data in BigQuery:" in page.inner_text("#data-available")
    page.fill("#id_start", "2024-01-01")  # the order lines start in late 2024
    page.wait_for_selector("ul[data-errors-for=start] li")
    live = page.inner_text("ul[data-errors-for=start]")
    assert "before the first order line" in live, live
    page.click("#run-button")
    page.wait_for_selector("#form-errors")
    body = page.inner_text("#content")
    page.screenshot(path=str(tmp_path / "analyst-stopped.png"), full_page=True)
    assert "Nothing was started" in body and "before the first order line" in body
    assert _db(lambda: JobRun.objects.count()) == before

"""In a real browser (Debian's chromium): a second Content Admin approves a large cleanup from the approvals queue
and it runs once. (The failed publish seen as failed is in tests/sales/test_browser_review.py.)"""

from __future__ import annotations

import pytest

from approvals.models import ApprovalRequest
from orchestration.models import JobRun
from tests.browser import admin_login
from tests.looker_estate import EXPECTED_PLAN

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _db(fn):
    """Run ORM code outside Playwright's event loop (Django refuses database calls from an async context)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def test_a_second_content_admin_approves_a_large_cleanup_that_then_runs_once(
    chromium, live_server, looker, role_user, settings, tmp_path
):
    settings.CLEANUP_APPROVAL_THRESHOLD = 3
    role_user("Content Admin", username="carol")
    role_user("Content Admin", username="dave")
    page = chromium.new_page()
    admin_login(page, live_server.url, "carol")
    page.goto(f"{live_server.url}/admin/orchestration/jobrun/trigger/looker_cleanup/")
    page.click("input[name=_run]")
    page.wait_for_selector("#plan")
    assert "CLEANUP_APPROVAL_THRESHOLD" in page.inner_text("#needs-approval")
    page.click("#confirm")
    page.wait_for_selector(".messagelist")
    first = _db(lambda: JobRun.objects.get())
    assert first.status == "succeeded" and "NOT RUN" in first.summary
    request = _db(lambda: ApprovalRequest.objects.get())
    # carol asked: the queue has nothing for her to approve, and the request page has no buttons for her.
    page.goto(f"{live_server.url}/admin/approvals/approvalrequest/?can_approve=yes")
    assert page.locator(f"#result_list a[href*='/approvalrequest/{request.pk}/change/']").count() == 0
    page.goto(f"{live_server.url}/admin/approvals/approvalrequest/{request.pk}/change/")
    assert page.locator("#approve").count() == 0 and "requester" in page.inner_text("#no-decision")

    page = chromium.new_context().new_page()
    admin_login(page, live_server.url, "dave")
    page.goto(f"{live_server.url}/admin/approvals/approvalrequest/?can_approve=yes")
    page.click(f"#result_list a[href*='/approvalrequest/{request.pk}/change/']")
    assert all(i in page.inner_text("#approval-inputs") for i in EXPECTED_PLAN)
    page.click("#approve")
    page.wait_for_selector(".messagelist")
    message = page.inner_text(".messagelist")
    page.screenshot(path=str(tmp_path / "cleanup-approved.png"), full_page=True)
    assert page.locator("#approve").count() == 0

    assert "approved and done" in message, message
    request.refresh_from_db()
    assert request.execution == "done" and request.execution_attempts == 1
    assert JobRun.objects.filter(approval=request).count() == 1
    assert sorted(i for i in EXPECTED_PLAN if looker.store.dashboard(i)["deleted"]) == EXPECTED_PLAN

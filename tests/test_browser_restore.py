"""A Content Admin logs in with a real browser (Debian's chromium via Playwright) and restores a dashboard."""

from __future__ import annotations

import pytest

from cleanup.models import DashboardRestore
from tests.browser import admin_login
from tests.cleanup.test_cleanup_job import run_job

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_content_admin_restores_a_dashboard_in_the_browser(chromium, live_server, looker, role_user, tmp_path):
    from cleanup.models import ProtectedFolder

    ProtectedFolder.objects.get_or_create(folder_id="6", defaults={"reason": "certified"})
    assert run_job("looker_cleanup")[0] == 0
    assert looker.store.dashboard("102")["deleted"] is True
    role_user("Content Admin", username="carol")

    page = chromium.new_page()
    admin_login(page, live_server.url, "carol")

    page.goto(f"{live_server.url}/admin/cleanup/lookerdashboard/?deleted__exact=1&q=102")
    row = page.locator("#result_list tbody tr", has_text="(102)")
    assert row.count() == 1
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "restore_selected")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    message = page.inner_text(".messagelist")
    page.screenshot(path=str(tmp_path / "restored.png"), full_page=True)

    assert "1 restore(s) queued" in message
    restore = DashboardRestore.objects.get()
    assert restore.status == "restored" and restore.verified and restore.requested_by.username == "carol"
    assert looker.store.dashboard("102")["deleted"] is False

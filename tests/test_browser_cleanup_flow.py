"""In Chromium: a Content Admin previews a cleanup, confirms it with the numbers, and later restores a dashboard
from its own page (issue 11)."""

from __future__ import annotations

import pytest

from cleanup.models import DashboardRestore
from orchestration.models import JobRun
from tests.browser import admin_login
from tests.looker_estate import EXPECTED_PLAN
from tests.test_browser_approvals import _db

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_content_admin_previews_confirms_and_restores(chromium, live_server, looker, role_user, tmp_path):
    from cleanup.models import LookerDashboard, ProtectedFolder

    ProtectedFolder.objects.get_or_create(folder_id="6", defaults={"reason": "certified"})
    role_user("Content Admin", username="carol")
    page = chromium.new_page()
    admin_login(page, live_server.url, "carol")
    page.goto(f"{live_server.url}/admin/orchestration/jobrun/trigger/looker_cleanup/")
    assert page.is_checked("input[name=dry_run][value='']")  # real run, which previews first
    page.click("#run-button")
    page.wait_for_selector("#confirm-question")
    question = page.inner_text("#confirm-question")
    assert _db(lambda: JobRun.objects.count()) == 0  # the preview changed nothing
    assert question.startswith(f"Move {len(EXPECTED_PLAN)} dashboards to the trash and mail "), question
    page.click("#confirm")
    page.wait_for_selector(".messagelist")
    assert looker.store.dashboard("102")["deleted"] is True

    pk = _db(lambda: LookerDashboard.objects.get(looker_id="102").pk)
    page.goto(f"{live_server.url}/admin/cleanup/lookerdashboard/{pk}/change/")
    story = page.inner_text("#deletion-story")
    assert "Moved to the trash by cleanup run #" in story and "carol" in story, story
    page.click("#restore")
    page.wait_for_selector("#restore-question")
    page.click("#confirm-restore")
    page.wait_for_selector(".messagelist")
    message = page.inner_text(".messagelist")
    page.screenshot(path=str(tmp_path / "restored-from-page.png"), full_page=True)
    assert "Restore of 102 requested" in message, message
    restore = _db(lambda: DashboardRestore.objects.get())
    assert restore.status == "restored" and restore.requested_by.username == "carol"
    assert looker.store.dashboard("102")["deleted"] is False

"""A Viewer opens a dashboard's lineage in a real browser (Debian's chromium via Playwright) and follows a link."""

from __future__ import annotations

import pytest

from lineage.models import LineageDataset
from orchestration.models import JobRun
from tests.browser import admin_login
from tests.cleanup.test_cleanup_job import run_job

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_viewer_opens_the_lineage_view_and_follows_the_run(chromium, live_server, looker, role_user, tmp_path):
    from cleanup.models import ProtectedFolder

    ProtectedFolder.objects.get_or_create(folder_id="6", defaults={"reason": "certified"})
    assert run_job("looker_cleanup")[0] == 0
    run = JobRun.objects.get()
    dashboard = LineageDataset.objects.get(namespace__startswith="looker://", name="dashboards/102")
    role_user("Viewer", username="vera")

    page = chromium.new_page()
    errors: list[str] = []
    # Every resource the pages load answers (the browser's own favicon probe aside): nothing external.
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}") if r.status >= 400 and not r.url.endswith("/favicon.ico") else None
        ),
    )
    page.on(
        "request",
        lambda r: errors.append(f"external {r.url}") if not r.url.startswith(live_server.url) else None,
    )
    admin_login(page, live_server.url, "vera")

    page.goto(f"{live_server.url}/admin/lineage/lineagedataset/")
    page.click("text=dashboards/102")
    page.wait_for_selector("svg.lineage-graph")
    assert page.locator("svg.lineage-graph a.node-run").count() >= 2  # the cleanup run, the soft delete
    assert page.locator("svg.lineage-graph a.node-person").count() >= 1
    backup = page.locator("svg.lineage-graph a.node-dataset", has_text="json")
    assert backup.count() >= 1
    page.screenshot(path=str(tmp_path / "lineage.png"), full_page=True)
    # The date filter: another day shows no run.
    page.fill("#lineage-date", "2001-01-01")
    page.click("text=Show")
    page.wait_for_selector("text=No run read or wrote this dataset on")
    page.goto(f"{live_server.url}/admin/lineage/lineagedataset/{dashboard.pk}/change/")
    page.locator("svg.lineage-graph a.node-run", has_text=f"looker_cleanup #{run.pk}").click()
    page.wait_for_url(f"**/admin/orchestration/jobrun/{run.pk}/change/")
    assert not errors, errors

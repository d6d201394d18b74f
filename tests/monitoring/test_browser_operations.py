"""A Platform Admin opens the operations page in a real browser (Debian's chromium via Playwright) and sees the
figures of the runs this test made, as server-rendered SVG charts that refresh while the page is open."""

from __future__ import annotations

import pytest

from monitoring.services import monitoring_tick
from sandbox.common import FaultRule
from tests.browser import admin_login
from tests.monitoring.conftest import execute

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_platform_admin_sees_the_operations_page_with_this_tests_runs(
    chromium, live_server, looker, role_user, settings, tmp_path
):
    settings.MONITORING_OPERATIONS_REFRESH_S = 1
    owner = role_user("Content Admin", "owner")
    role_user("Platform Admin", "pat")
    assert execute("audit_anchor").status == "succeeded"
    assert execute("looker_cleanup", actor=owner, dry_run=True).status == "succeeded"
    looker.faults.add(FaultRule(method="POST", path_pattern="/api/4.0/login", status=401, times=None))
    assert execute("looker_cleanup", actor=owner).status == "failed"
    monitoring_tick()  # a host sample and the escalation pass

    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    admin_login(page, live_server.url, "pat")
    page.goto(f"{live_server.url}/admin/monitoring/operations/?window=6h")
    page.wait_for_selector("#ops-jobs")
    jobs = page.inner_text("#ops-jobs")
    charts = page.locator("svg.ops-chart").count()
    titles = [page.locator("svg.ops-chart").nth(i).get_attribute("aria-label") for i in range(charts)]
    incidents = page.inner_text("#ops-incidents")
    first = page.get_attribute("#ops-body", "data-refreshed")
    page.wait_for_selector("#ops-body[data-refreshed]", state="attached")  # no eval: the CSP forbids it
    refreshed = page.get_attribute("#ops-body", "data-refreshed")
    page.screenshot(path=str(tmp_path / "operations.png"), full_page=True)

    assert "audit_anchor" in jobs and "looker_cleanup" in jobs
    row = next(line for line in jobs.splitlines() if line.startswith("looker_cleanup"))
    assert row.split("\t")[1:4] == ["1", "0", "1"]  # one real run (the dry run is left out), failed
    assert "looker_cleanup: success and error rate" in titles and "looker_cleanup: duration p50 / p95" in titles
    assert any(t.startswith("Host ") for t in titles) and "SLA compliance" in titles
    assert "looker_cleanup failed (Authentication" in incidents
    assert first is None and refreshed is not None  # the page fetched a fresh body while open

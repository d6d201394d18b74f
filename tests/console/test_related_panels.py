"""One click along every chain (issue 11): the related panel on the sales report page (-> review, approval, query
run, job run, sheet, audit events), the review page (-> report, quality run, job run, approval, audit events) and the
dashboard page (-> cleanup action, backup, restore, cleanup run, audit events, open in Looker). Every link in a
panel opens (200) for the reader it is shown to, and a reader is not shown links they could not open."""

from __future__ import annotations

import re

import pytest
from django.test import TestCase
from django.urls import reverse

from cleanup.models import CleanupAction, DashboardBackup, DashboardRestore, LookerDashboard
from orchestration.services import job_run_create, job_run_execute
from quality.models import ReviewItem
from sales.models import SalesReport
from tests.cleanup.test_restore import cleaned  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db
OCTOBER = {"start": "2026-10-01", "end": "2026-10-31"}


def _panel_links(page: str, marker: str) -> dict[str, str]:
    """label -> href of the related panel's list (the first related-links list after ``marker``)."""
    panel = page[page.index(marker) :]
    block = panel[panel.index('<ul class="related-links"') : panel.index("</ul>")]
    return {
        re.sub(r"<[^>]+>", "", label).strip(): href.replace("&amp;", "&")
        for href, label in re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', block)
    }


def _all_open(client, links: dict[str, str]) -> None:
    for label, url in links.items():
        if url.startswith("http"):
            continue
        response = client.get(url)
        assert response.status_code == 200, (label, url, response.status_code)


@pytest.fixture
def sales_chain(dirty_bigquery, sheet, role_user, django_capture_on_commit_callbacks):
    """A sales run whose report waits for a review (and its approval)."""
    queued = job_run_create(job="sales_report", actor=role_user("Analyst", username="ann"), params=OCTOBER)
    with django_capture_on_commit_callbacks(execute=True):
        job_run_execute(job_run_id=queued.pk)
    report, item = SalesReport.objects.get(), ReviewItem.objects.get()
    assert report.status == "pending_review" and item.approval_id
    if not report.sheet_id:  # the destination it will publish to, as a published report names it
        SalesReport.objects.filter(pk=report.pk).update(sheet_id="sales-dashboard")
        report.refresh_from_db()
    return report, item


def test_the_sales_report_page_links_its_whole_chain_and_every_link_opens(sales_chain, role_user, client):
    report, item = sales_chain
    client.force_login(role_user("Auditor", username="aud"))
    page = client.get(reverse("admin:sales_salesreport_change", args=[report.pk])).content.decode()
    links = _panel_links(page, "field-related_panel")
    urls = set(links.values())
    job_run_id = report.query_run.job_run_id
    for url in (
        reverse("admin:quality_reviewitem_change", args=[item.pk]),
        reverse("admin:approvals_approvalrequest_change", args=[item.approval_id]),
        reverse("admin:sales_queryrun_change", args=[report.query_run_id]),
        reverse("admin:orchestration_jobrun_change", args=[job_run_id]),
        reverse("admin:quality_qualityrun_change", args=[report.quality_run_id]),
        f"https://docs.google.com/spreadsheets/d/{report.sheet_id}",
        f"/admin/audit/auditevent/?object_type=sales.salesreport&object_id={report.pk}",
        f"/admin/audit/auditevent/?job_run_id={job_run_id}",
        f"/admin/audit/auditevent/?object_type=approvals.approvalrequest&object_id={item.approval_id}",
    ):
        assert url in urls, url
    _all_open(client, links)
    # The run's audit link finds the run's events (the query run, the quality run...), not an empty list.
    events = client.get(f"/admin/audit/auditevent/?job_run_id={job_run_id}").content.decode()
    assert "sales.query_" in events or "quality.run_recorded" in events


def test_the_review_page_links_its_whole_chain_and_every_link_opens(sales_chain, role_user, client):
    report, item = sales_chain
    client.force_login(role_user("Auditor", username="aud"))
    page = client.get(reverse("admin:quality_reviewitem_change", args=[item.pk])).content.decode()
    links = _panel_links(page, "field-related_panel")
    urls = set(links.values())
    for url in (
        reverse("admin:sales_salesreport_change", args=[report.pk]),
        reverse("admin:quality_qualityrun_change", args=[item.quality_run_id]),
        reverse("admin:orchestration_jobrun_change", args=[item.job_run_id]),
        reverse("admin:approvals_approvalrequest_change", args=[item.approval_id]),
        f"/admin/audit/auditevent/?object_type=quality.reviewitem&object_id={item.pk}",
        f"/admin/audit/auditevent/?job_run_id={item.job_run_id}",
        f"/admin/audit/auditevent/?object_type=approvals.approvalrequest&object_id={item.approval_id}",
    ):
        assert url in urls, url
    _all_open(client, links)
    approval_events = client.get(
        f"/admin/audit/auditevent/?object_type=approvals.approvalrequest&object_id={item.approval_id}"
    ).content.decode()
    assert "approval.requested" in approval_events


def test_a_steward_is_shown_only_the_links_they_can_open(sales_chain, role_user, client):
    """The Data Steward may not read the audit trail: the panel leaves its links out, and the rest all open."""
    report, item = sales_chain
    client.force_login(role_user("Data Steward", username="stu"))
    for url in (
        reverse("admin:sales_salesreport_change", args=[report.pk]),
        reverse("admin:quality_reviewitem_change", args=[item.pk]),
    ):
        links = _panel_links(client.get(url).content.decode(), "field-related_panel")
        assert links and not any("/admin/audit/" in u for u in links.values()), links
        assert reverse("admin:orchestration_jobrun_change", args=[item.job_run_id]) in links.values()
        _all_open(client, links)
    assert client.get("/admin/audit/auditevent/").status_code == 403  # what the panel spared them


def test_the_dashboard_page_links_action_backup_restore_run_audit_and_looker(looker, cleaned, role_user, client):  # noqa: F811
    dashboard = LookerDashboard.objects.get(looker_id="102")
    admin = role_user("Content Admin", username="cat")
    client.force_login(admin)
    pk = dashboard.pk
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post(f"/admin/cleanup/lookerdashboard/{pk}/restore/")
    action = CleanupAction.objects.filter(dashboard=dashboard).latest("pk")
    backup = DashboardBackup.objects.filter(dashboard=dashboard).latest("pk")
    restore = DashboardRestore.objects.get(dashboard=dashboard)

    client.force_login(role_user("Auditor", username="aud"))
    page = client.get(f"/admin/cleanup/lookerdashboard/{pk}/change/").content.decode()
    links = _panel_links(page, 'id="related-panel"')
    urls = set(links.values())
    for url in (
        reverse("admin:cleanup_cleanupaction_change", args=[action.pk]),
        reverse("admin:cleanup_dashboardbackup_change", args=[backup.pk]),
        reverse("admin:cleanup_dashboardrestore_change", args=[restore.pk]),
        reverse("admin:orchestration_jobrun_change", args=[action.job_run_id]),
        f"{looker.base_url}/dashboards/102",
        f"/admin/audit/auditevent/?object_type=cleanup.lookerdashboard&object_id={pk}",
    ):
        assert url in urls, url
    _all_open(client, links)
    events = client.get(f"/admin/audit/auditevent/?object_type=cleanup.lookerdashboard&object_id={pk}")
    assert "cleanup.dashboard_soft_deleted" in events.content.decode()

    # A Viewer sees the dashboard but not its backups nor the audit trail: neither is offered.
    client.force_login(role_user("Viewer", username="vic"))
    viewer_links = _panel_links(
        client.get(f"/admin/cleanup/lookerdashboard/{pk}/change/").content.decode(), 'id="related-panel"'
    )
    assert reverse("admin:cleanup_cleanupaction_change", args=[action.pk]) in viewer_links.values()
    assert not any("/admin/audit/" in u or "dashboardbackup" in u for u in viewer_links.values()), viewer_links
    _all_open(client, viewer_links)

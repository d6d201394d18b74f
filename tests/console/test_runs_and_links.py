"""Run outcomes that say what happened, counters for every job, a live run's page that refreshes, and one click
along the chain (job run -> query run -> quality run -> review -> approval -> report -> sheet; audit events)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from orchestration.models import JobRun
from orchestration.outcome import job_run_counters_short, job_run_outcome, job_runs_outcomes
from orchestration.services import job_run_create, job_run_execute
from quality.models import ReviewItem
from sales.models import SalesReport

pytestmark = pytest.mark.django_db
OCTOBER = {"start": "2026-10-01", "end": "2026-10-31"}


def _run(**fields) -> JobRun:
    now = timezone.now()
    defaults = {"trigger": "cli", "status": "succeeded", "started_at": now, "finished_at": now}
    return JobRun.objects.create(**{**defaults, **fields})


def test_outcomes_say_what_happened_without_a_sales_report():
    assert job_run_outcome(
        _run(job="looker_cleanup", counters={"planned": 5, "deleted": 3, "failed_backup": 2})
    ).key == ("partially_failed")
    assert job_run_outcome(_run(job="looker_cleanup", counters={"approval_request": 7})).label.startswith(
        "Awaiting approval"
    )
    assert job_run_outcome(_run(job="looker_cleanup", dry_run=True)).key == "planned"
    assert job_run_outcome(_run(job="sheets_sync", counters={"targets": 2, "failed": 0})).key == "succeeded"
    assert job_run_outcome(_run(job="sheets_sync", status="running")).live
    assert job_run_outcome(_run(job="sheets_sync", status="failed")).key == "failed"
    run = _run(job="sheets_sync", counters={"targets": 3, "changed": 1, "cells_written": 48, "gate": "pass"})
    assert job_run_counters_short(run) == "targets=3, changed=1, cells_written=48"


def test_a_sales_run_waiting_for_review_is_never_shown_succeeded_and_links_its_chain(
    dirty_bigquery, sheet, role_user, django_capture_on_commit_callbacks, client, django_assert_max_num_queries
):
    analyst = role_user("Analyst", username="ann")
    queued = job_run_create(job="sales_report", actor=analyst, params=OCTOBER)
    with django_capture_on_commit_callbacks(execute=True):
        job_run_execute(job_run_id=queued.pk)
    run = JobRun.objects.get(pk=queued.pk)
    item, report = ReviewItem.objects.get(), SalesReport.objects.get()
    assert run.status == "succeeded" and report.status == "pending_review"
    assert job_runs_outcomes([run])[run.pk].label == "Awaiting review"
    assert run.counters["checks"] >= 1 and "lines_checked" in run.counters

    for i in range(5):  # more runs on the list page: still one query for all their outcomes
        _run(job="sheets_sync", counters={"targets": i})
    client.force_login(role_user("Viewer", username="vic"))
    client.get(reverse("admin:orchestration_jobrun_changelist"))
    with django_assert_max_num_queries(12):
        listing = client.get(reverse("admin:orchestration_jobrun_changelist")).content.decode()
    row = listing.split(f"/admin/orchestration/jobrun/{run.pk}/change/")[1].split("</tr>")[0]
    assert "Awaiting review" in row and "Succeeded" not in row and "lines_checked=" in row

    page = client.get(reverse("admin:orchestration_jobrun_change", args=[run.pk])).content.decode()
    for url in (
        reverse("admin:sales_queryrun_change", args=[report.query_run_id]),
        reverse("admin:sales_salesreport_change", args=[report.pk]),
        reverse("admin:quality_qualityrun_change", args=[item.quality_run_id]),
        reverse("admin:quality_reviewitem_change", args=[item.pk]),
        reverse("admin:approvals_approvalrequest_change", args=[item.approval_id]),
        f"/admin/audit/auditevent/?job_run_id={run.pk}",
    ):
        assert f'href="{url}"' in page, url
    assert "data-live-refresh" not in page and "console/live_refresh.js" in page
    assert "per-dashboard outcomes" in page.lower() and f"job_run__id__exact={run.pk}" not in page  # no "0 actions"


def test_a_live_run_page_refreshes_itself_and_related_links_go_out(role_user, client, settings):
    from cleanup.models import LookerDashboard
    from console.chains import chain_links
    from sheetsync.models import SyncTarget

    settings.LOOKER_UI_URL = "https://acme.looker.com"
    client.force_login(role_user("Viewer", username="vic"))
    live = _run(job="sheets_sync", status="running", progress="3 of 9 targets")
    page = client.get(reverse("admin:orchestration_jobrun_change", args=[live.pk])).content.decode()
    assert 'data-live-refresh="5"' in page and "3 of 9 targets" in page and "<script>" not in page

    dashboard = LookerDashboard.objects.create(looker_id="102", title="Old sales")
    links = dict((label, url) for label, url in chain_links(dashboard))
    assert links["open dashboard 102 in Looker"] == "https://acme.looker.com/dashboards/102"
    target = SyncTarget.objects.create(name="t", spreadsheet_id="1AbC_x", source_kind="file", source_file="store:a",
                                       key_columns="id")  # fmt: skip
    assert ("open the sheet 1AbC_x in Google Sheets", "https://docs.google.com/spreadsheets/d/1AbC_x") in chain_links(
        target
    )


def test_link_visibility_holds_under_a_script_prefix(role_user):
    """Served under a sub-path (``SCRIPT_NAME=/dataops``), reverse() prefixes every link: an admin page the user
    may not view is still hidden, one they may view still shown (the prefix is not part of what resolve() reads)."""
    from django.urls import set_script_prefix

    from console.links import link_visible

    viewer = role_user("Viewer")
    try:
        set_script_prefix("/dataops/")
        allowed = reverse("admin:orchestration_jobrun_changelist")
        hidden = reverse("admin:accounts_apitoken_changelist")
        assert allowed.startswith("/dataops/admin/")
        assert link_visible(viewer, allowed) is True
        assert link_visible(viewer, hidden) is False
        assert link_visible(viewer, "/dataops/no/such/page/") is False
    finally:
        set_script_prefix("/")

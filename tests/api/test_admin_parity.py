"""What a person does in the admin, a script does through /api/v1/ with the same rules and the same audit trail:
a dashboard's detail, filters, backups, pin and unpin; the cleanup plan's preview and confirmed run (approvals
above the guard); a report's charts' data and publish state; a user's detail; a job run's outcome."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from cleanup.models import DashboardBackup, DashboardPin, LookerDashboard
from orchestration.models import JobRun
from tests.rolewalk.objects import build
from tests.tokens import api_token_for

pytestmark = pytest.mark.django_db
FUTURE = (timezone.now() + timedelta(days=30)).isoformat()


def _auth(user, scope: str = "write") -> dict:
    return {"HTTP_AUTHORIZATION": f"Token {api_token_for(user, scope=scope)}"}


def _post(client, url, body, auth, method="post"):
    return getattr(client, method)(url, json.dumps(body), content_type="application/json", **auth)


def test_pin_and_unpin_go_through_the_audited_service_and_show_on_the_dashboard(client, role_user):
    dashboard = build(LookerDashboard)
    viewer, content = _auth(role_user("Viewer")), _auth(role_user("Content Admin", "cora"))
    detail = reverse("api-dashboard-detail", kwargs={"looker_id": dashboard.looker_id})
    pin = reverse("api-dashboard-pin", kwargs={"looker_id": dashboard.looker_id})
    assert client.get(detail, **viewer).json()["pin"] is None
    assert _post(client, pin, {"reason": "quarterly board", "expires_at": FUTURE}, viewer).status_code == 403
    past = _post(client, pin, {"reason": "x", "expires_at": "2000-01-01T00:00:00Z"}, content)
    assert past.status_code == 400 and "expires_at" in past.json()
    created = _post(client, pin, {"reason": "quarterly board", "expires_at": FUTURE}, content)
    assert created.status_code == 201 and created.json()["active"] is True
    assert created.json()["created_by"] == "cora"
    event = AuditEvent.objects.get(action="cleanup.dashboardpin_created")
    assert event.object_id == str(created.json()["id"]) and event.actor_label == "cora"
    shown = client.get(detail, **viewer).json()
    assert shown["pin"]["reason"] == "quarterly board" and shown["backups"] == 0
    listed = client.get(reverse("api-dashboard-list") + "?pinned=true", **viewer).json()["results"]
    assert [d["looker_id"] for d in listed] == [dashboard.looker_id]
    assert client.get(reverse("api-dashboard-list") + "?pinned=maybe", **viewer).status_code == 400
    assert _post(client, pin, {}, viewer, method="delete").status_code == 403
    removed = _post(client, pin, {}, content, method="delete")
    assert removed.status_code == 200 and removed.json() == {"removed": 1} and not DashboardPin.objects.exists()
    assert AuditEvent.objects.filter(action="cleanup.dashboardpin_deleted").count() == 1
    again = _post(client, pin, {}, content, method="delete")
    assert again.status_code == 409 and "not pinned" in again.json()["detail"]
    assert client.get(reverse("api-dashboard-detail", kwargs={"looker_id": "nope"}), **viewer).status_code == 404


def test_backups_are_listed_per_dashboard_and_read_verified(client, role_user):
    from cleanup.backups import backup_write_verified

    dashboard = build(LookerDashboard)
    stored = backup_write_verified(looker_id=dashboard.looker_id, dashboard_json='{"title": "Sales"}', lookml=None)
    good = DashboardBackup.objects.create(dashboard=dashboard, storage_name=stored.storage_name, sha256=stored.sha256,
                                          size_bytes=stored.size_bytes, verified_at=timezone.now())  # fmt: skip
    bad = DashboardBackup.objects.create(dashboard=dashboard, storage_name="missing.json", sha256="0" * 64,
                                         size_bytes=1, verified_at=timezone.now())  # fmt: skip
    build(DashboardBackup)  # another dashboard's: not listed
    content = _auth(role_user("Content Admin"), "read")
    url = reverse("api-dashboard-backups", kwargs={"looker_id": dashboard.looker_id})
    assert client.get(url, **_auth(role_user("Viewer"), "read")).status_code == 403  # backups are Content Admins'
    listed = client.get(url, **content).json()["results"]
    assert sorted(b["id"] for b in listed) == sorted([good.pk, bad.pk])
    read = client.get(reverse("api-dashboardbackup-detail", kwargs={"pk": good.pk}), **content).json()
    assert read["content_error"] == "" and read["content"]["looker_id"] == dashboard.looker_id
    broken = client.get(reverse("api-dashboardbackup-detail", kwargs={"pk": bad.pk}), **content).json()
    assert broken["content"] is None and "cannot read backup" in broken["content_error"]


def test_cleanup_preview_then_run_exactly_the_plan_read(
    looker, client, role_user, settings, django_capture_on_commit_callbacks
):
    from cleanup.models import ProtectedFolder
    from cleanup.services import cleanup_plan_preview
    from tests.looker_estate import EXPECTED_PLAN

    ProtectedFolder.objects.create(folder_id="6", name="Protected", reason="certified")  # as tests/cleanup set up
    settings.CLEANUP_APPROVAL_THRESHOLD = 3  # the estate's plan is above it: a second Content Admin approves
    auth = _auth(role_user("Content Admin", "carol"))
    params: dict = {}  # the defaults, as the admin form starts
    assert _post(client, reverse("api-cleanup-preview"), {"params": params},
                 _auth(role_user("Analyst"))).status_code == 403  # fmt: skip
    bad = _post(client, reverse("api-cleanup-preview"), {"params": {"inactive_days": 0}}, auth)
    assert bad.status_code == 400 and "inactive_days" in bad.json()["params"]
    preview = _post(client, reverse("api-cleanup-preview"), {"params": params}, auth)
    assert preview.status_code == 200, preview.content
    body = preview.json()
    admin_preview = cleanup_plan_preview(params=params)  # what the admin's confirmation shows
    assert body["planned"] == admin_preview.planned == len(EXPECTED_PLAN)
    assert body["owners"] == admin_preview.owners >= 1 and body["plan_sha256"] == admin_preview.plan_sha256
    assert body["needs_approval"] and "CLEANUP_APPROVAL_THRESHOLD" in body["needs_approval"][0]
    stale = _post(client, reverse("api-cleanup-run"), {"params": params, "plan_sha256": "0" * 64}, auth)
    assert stale.status_code == 409 and stale.json()["plan_sha256"] == body["plan_sha256"]
    assert not JobRun.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        ran = _post(client, reverse("api-cleanup-run"), {"params": params, "plan_sha256": body["plan_sha256"]}, auth)
    assert ran.status_code == 202 and ran.json()["trigger"] == "api"
    run = client.get(reverse("api-jobrun-detail", kwargs={"pk": ran.json()["id"]}), **auth).json()
    assert run["outcome"]["key"] == "awaiting_approval", run
    from approvals.models import ApprovalRequest

    assert ApprovalRequest.objects.get(action="cleanup.run").inputs["plan_ids"] == EXPECTED_PLAN
    assert not any(looker.store.dashboard(i)["deleted"] for i in EXPECTED_PLAN)  # nothing before the approval


def _sales_run(report_status: str):
    from sales.models import QueryRun, SalesQuery, SalesReport

    run = JobRun.objects.create(job="sales_report", trigger="api", status=JobRun.Status.SUCCEEDED)
    query = SalesQuery.objects.first() or build(SalesQuery)
    query_run = QueryRun.objects.create(job_run=run, query=query, purpose=QueryRun.Purpose.REPORT, status="succeeded")
    rows = [
        {"day": "2026-10-01", "region": "EMEA", "orders": 5, "revenue": 100.0},
        {"day": "2026-10-02", "region": "EMEA", "orders": 6, "revenue": 50.5},
        {"day": "2026-10-01", "region": "APAC", "orders": 7, "revenue": 300.0},
        {"day": "2026-10-02", "region": "APAC", "orders": "suppressed", "revenue": "suppressed"},
    ]
    report = SalesReport.objects.create(query_run=query_run, rows=rows, status=report_status, sheet_id="sales-dash")
    return run, report


def test_report_charts_data_publish_state_and_the_run_outcome(client, role_user):
    from sales.charts import revenue_by_day_series, revenue_by_region_totals

    run, report = _sales_run("pending_review")
    viewer = _auth(role_user("Viewer"), "read")
    charts = client.get(reverse("api-salesreport-charts", kwargs={"pk": report.pk}), **viewer).json()
    assert {s["region"]: {p["day"]: p["revenue"] for p in s["points"]} for s in charts["revenue_by_day"]} == (
        revenue_by_day_series(report.rows)  # the admin's chart's data
    )
    assert [(r["region"], r["revenue"]) for r in charts["revenue_by_region"]] == [("APAC", 300.0), ("EMEA", 150.5)]
    assert {r["region"]: r["revenue"] for r in charts["revenue_by_region"]} == revenue_by_region_totals(report.rows)
    assert charts["suppressed_rows"] == 1 and charts["revenue_by_region"][0]["colour"].startswith("#")
    state = client.get(reverse("api-salesreport-publish-state", kwargs={"pk": report.pk}), **viewer).json()
    assert state["status"] == "pending_review" and state["outcome"] == "awaiting_review"
    assert state["job_run"] == run.pk and state["can_request_override"] is False
    listed = client.get(reverse("api-jobrun-list") + "?job=sales_report", **viewer).json()["results"]
    assert listed[0]["outcome"] == {"key": "awaiting_review", "label": "Awaiting review", "live": False}
    refused = _post(client, reverse("api-salesreport-override", kwargs={"pk": report.pk}), {"reason": "x"},
                    _auth(role_user("Analyst")))  # fmt: skip
    assert refused.status_code == 409 and "only a report blocked by a failed quality gate" in refused.json()["detail"]


def test_user_detail_for_platform_admins_and_superusers_out_of_reach(client, role_user, django_user_model):
    admin = _auth(role_user("Platform Admin", "pat"), "read")
    someone = role_user("Analyst", "ann")
    root = django_user_model.objects.create_superuser("root", "root@example.com", "x")
    shown = client.get(reverse("api-user-detail", kwargs={"pk": someone.pk}), **admin).json()
    assert shown["username"] == "ann" and shown["roles"] == ["Analyst"]
    assert client.get(reverse("api-user-detail", kwargs={"pk": root.pk}), **admin).status_code == 404
    assert client.get(reverse("api-user-detail", kwargs={"pk": someone.pk}),
                      **_auth(role_user("Viewer"), "read")).status_code == 403  # fmt: skip


def test_any_other_api_url_is_a_json_404(client, role_user):
    viewer = _auth(role_user("Viewer"), "read")
    missing = client.get("/api/v1/approvals/null/approve/", **viewer)
    assert missing.status_code == 404 and missing["Content-Type"] == "application/json"
    assert missing.json() == {"detail": "Not found."}
    assert client.post("/api/v1/no-such-thing/", **viewer).status_code == 404
    assert client.get("/api/v1/job-runs", **viewer).status_code == 301  # APPEND_SLASH still leads to the list


def test_restores_and_cleanup_actions_are_read_as_in_the_admin(client, role_user):
    from cleanup.models import CleanupAction, DashboardRestore

    restore, action = build(DashboardRestore), build(CleanupAction)
    build(CleanupAction)  # another run's
    viewer = _auth(role_user("Viewer"), "read")
    shown = client.get(reverse("api-dashboardrestore-detail", kwargs={"pk": restore.pk}), **viewer).json()
    assert shown["looker_id"] == restore.dashboard.looker_id and shown["status"] == restore.status
    listed = client.get(reverse("api-cleanupaction-list") + f"?job_run={action.job_run_id}", **viewer).json()
    assert [a["id"] for a in listed["results"]] == [action.pk]
    assert listed["results"][0]["looker_id"] == action.dashboard.looker_id

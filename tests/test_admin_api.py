"""Admin screens and the REST API: permissions first, then the happy path; query counts on list pages."""

from __future__ import annotations

import pytest

from cleanup.models import LookerDashboard, ProtectedFolder
from orchestration.models import JobRun
from tests.cleanup.test_cleanup_job import run_job
from tests.tokens import api_token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def inventory(looker):
    ProtectedFolder.objects.create(folder_id="6", reason="certified")
    assert run_job("looker_cleanup", "--dry-run")[0] == 0
    return looker


def test_viewer_browses_but_cannot_act(client, role_user, inventory, django_assert_max_num_queries):
    client.force_login(role_user("Viewer"))
    with django_assert_max_num_queries(20):
        page = client.get("/admin/cleanup/lookerdashboard/?inactive=90-180&q=inactive")
    assert page.status_code == 200
    body = page.content.decode()
    assert "(102)" not in body and "(103)" in body  # 102 is 200 days inactive, 103 is 120
    assert "restore_selected" not in body
    assert client.get("/admin/audit/auditevent/").status_code == 403
    assert client.get("/admin/orchestration/jobrun/trigger/looker_cleanup/").status_code == 403
    assert client.post("/admin/orchestration/jobrun/trigger/looker_cleanup/", {"dry_run": "on"}).status_code == 403


def test_dashboard_filters_and_search(client, role_user, inventory):
    client.force_login(role_user("Auditor"))
    deleted = client.get("/admin/cleanup/lookerdashboard/?deleted__exact=1").content.decode()
    assert "(110)" in deleted and "(101)" not in deleted
    by_owner = client.get("/admin/cleanup/lookerdashboard/?q=owner.five").content.decode()
    assert "(102)" in by_owner and "(108)" not in by_owner  # 108's owner is gone from Looker
    owned = client.get("/admin/cleanup/lookerdashboard/?owner=owner.five%40example.com").content.decode()
    assert "(102)" in owned and "(109)" not in owned
    unowned = client.get("/admin/cleanup/lookerdashboard/?owner=(none)").content.decode()
    assert "(108)" in unowned and "(109)" in unowned and "(102)" not in unowned
    folder = client.get("/admin/cleanup/lookerdashboard/?folder_name=Protected").content.decode()
    assert "(105)" in folder and "(102)" not in folder
    over_a_year = client.get("/admin/cleanup/lookerdashboard/?inactive=gt365").content.decode()
    assert "(105)" in over_a_year and "(101)" not in over_a_year
    assert client.get("/admin/audit/auditevent/").status_code == 200


def test_content_admin_previews_the_plan_from_the_admin(
    client, content_admin_user, inventory, django_capture_on_commit_callbacks
):
    client.force_login(content_admin_user)
    form = client.get("/admin/orchestration/jobrun/trigger/looker_cleanup/")
    assert form.status_code == 200 and b"inactive_days" in form.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/orchestration/jobrun/trigger/looker_cleanup/",
            {"inactive_days": "90", "max_deletions": "100", "dry_run": "on"},
        )
    assert response.status_code == 302
    response = client.get(response["Location"])
    run = JobRun.objects.order_by("-pk").first()
    assert run.trigger == "admin" and run.actor == content_admin_user and run.dry_run
    assert run.status == "succeeded"
    body = response.content.decode()
    assert "DRY RUN: nothing changed" in body and "newly planned" in body
    bad = client.post("/admin/orchestration/jobrun/trigger/looker_cleanup/", {"inactive_days": "-5"})
    assert bad.status_code == 200 and b"errorlist" in bad.content


@pytest.fixture
def content_admin_user(role_user):
    return role_user("Content Admin")


def test_api_job_runs(client, role_user, content_admin_user, inventory, django_capture_on_commit_callbacks):
    assert client.get("/api/job-runs/").status_code == 401
    viewer = api_token_for(role_user("Viewer"))  # write scope: the refusal below is the role's, not the token's
    v = {"HTTP_AUTHORIZATION": f"Token {viewer}"}
    assert client.get("/api/job-runs/?job=looker_cleanup", **v).json()["count"] == 1
    assert (
        client.post(
            "/api/job-runs/", {"job": "looker_cleanup", "dry_run": True}, content_type="application/json", **v
        ).status_code
        == 403
    )
    admin = api_token_for(content_admin_user)
    a = {"HTTP_AUTHORIZATION": f"Token {admin}"}
    bad = client.post(
        "/api/job-runs/",
        {"job": "looker_cleanup", "params": {"inactive_days": "x"}},
        content_type="application/json",
        **a,
    )
    assert bad.status_code == 400 and "not a valid int" in bad.json()["params"]
    unknown = client.post("/api/job-runs/", {"job": "nope"}, content_type="application/json", **a)
    assert unknown.status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        ok = client.post(
            "/api/job-runs/",
            {"job": "looker_cleanup", "dry_run": True, "params": {"inactive_days": "200"}},
            content_type="application/json",
            **a,
        )
    assert ok.status_code == 202 and ok.json()["status"] == "queued" and ok.json()["trigger"] == "api"
    assert JobRun.objects.get(pk=ok.json()["id"]).status == "succeeded"
    detail = client.get(f"/api/job-runs/{ok.json()['id']}/", **v).json()
    assert detail["params"] == {"inactive_days": 200, "max_deletions": 100}
    dashboards = client.get("/api/dashboards/?deleted=true", **v).json()
    assert [d["looker_id"] for d in dashboards["results"]] == ["110"]
    assert (
        client.get("/api/dashboards/?search=owner.five", **v).json()["count"]
        == LookerDashboard.objects.filter(owner_email="owner.five@example.com").count()
    )


def test_openapi_schema_and_health(client, role_user):
    assert client.get("/health/").json() == {"ok": True, "database": True}
    assert client.get("/api/schema/").status_code == 401  # the schema and the docs need a login (issue 10)
    client.force_login(role_user("Viewer"))
    assert client.get("/api/schema/").status_code == 200


def test_platform_admin_manages_users_but_cannot_escalate(client, role_user, django_user_model):
    admin = role_user("Platform Admin")
    boss = django_user_model.objects.create_superuser("boss", "boss@example.com", "x")
    client.force_login(admin)
    assert client.get(f"/admin/auth/user/{boss.pk}/change/").status_code in (302, 404)  # superusers out of reach
    page = client.get(f"/admin/auth/user/{admin.pk}/change/")
    assert page.status_code == 200 and b'name="is_superuser"' not in page.content
    assert b'name="groups"' in page.content  # roles are theirs to manage
    assert client.get("/admin/accounts/apitoken/add/").status_code == 403  # a key is its owner's only
    admin.refresh_from_db()
    assert not admin.is_superuser

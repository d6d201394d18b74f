"""Each role's home: what waits for them (a real review from a dirty sales run), what failed, the last run of each
job with what it came to, the sync targets in trouble; each line a link; a bounded number of queries."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from orchestration.models import JobRun
from orchestration.services import job_run_create, job_run_execute
from quality.models import ReviewItem
from sheetsync.models import SyncTarget

pytestmark = pytest.mark.django_db
OCTOBER = {"start": "2026-10-01", "end": "2026-10-31"}


def _dirty_review(role_user, capture) -> ReviewItem:
    analyst = role_user("Analyst", username="ann")
    queued = job_run_create(job="sales_report", actor=analyst, params=OCTOBER)
    with capture(execute=True):
        job_run_execute(job_run_id=queued.pk)
    return ReviewItem.objects.get()


def _trouble():
    now = timezone.now()
    failed = JobRun.objects.create(job="looker_cleanup", trigger="cli", status="failed", error="Looker said 500\nmore",
                                   started_at=now, finished_at=now)  # fmt: skip
    target = SyncTarget.objects.create(
        name="regional-sales", spreadsheet_id="sheet-1", source_kind="file", source_file="store:x.csv",
        key_columns="id", broken=True, broken_reason="the spreadsheet was deleted or is no longer shared",
    )  # fmt: skip
    return failed, target


def _login(client, user):
    client.force_login(user)
    return client


def test_a_steward_home_lists_the_review_waiting_and_links_it(
    dirty_bigquery, sheet, role_user, django_capture_on_commit_callbacks, client
):
    item = _dirty_review(role_user, django_capture_on_commit_callbacks)
    failed, target = _trouble()
    steward = role_user("Data Steward", username="stella")
    page = _login(client, steward).get(reverse("admin:index"))
    body = page.content.decode()
    assert page.status_code == 200
    assert "1 item waits for you" in body
    assert f'href="/admin/quality/reviewitem/{item.pk}/change/"' in body
    assert f'href="/admin/orchestration/jobrun/{failed.pk}/change/"' in body and "Looker said 500" in body
    assert f'href="/admin/sheetsync/synctarget/{target.pk}/change/"' in body and "no longer shared" in body
    # The sales run waits for the review: its last run says so, never "Succeeded".
    run = JobRun.objects.get(job="sales_report")
    assert run.status == "succeeded"
    home_last = body.split('id="home-last_runs"')[1]
    assert "Awaiting review" in home_last and f"/admin/orchestration/jobrun/{run.pk}/change/" in home_last
    assert 'id="all-apps"' in body  # the app list stays below


def test_the_requester_is_not_offered_their_own_review_and_an_auditor_gets_exports(
    dirty_bigquery, sheet, role_user, django_capture_on_commit_callbacks, client
):
    item = _dirty_review(role_user, django_capture_on_commit_callbacks)
    analyst = role_user("Analyst", username="ann")
    body = _login(client, analyst).get(reverse("admin:index")).content.decode()
    assert f"/admin/quality/reviewitem/{item.pk}/change/" not in body.split('id="home-last_runs"')[0]
    assert "Nothing waits for you" in body
    auditor = role_user("Auditor", username="audrey")
    body = _login(client, auditor).get(reverse("admin:index")).content.decode()
    assert reverse("admin:audit_auditevent_export", args=["csv"]) in body
    assert "Quality reviews you may decide" not in body


def test_the_home_costs_a_bounded_number_of_queries(role_user, client, django_assert_max_num_queries):
    steward = role_user("Data Steward", username="stella")
    _login(client, steward)
    _trouble_many(0)
    client.get(reverse("admin:index"))  # warm: the session's zone, content types
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("admin:index"))
    for i in range(1, 25):
        _trouble_many(i)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(reverse("admin:index"))
    assert page.content.decode().count("/admin/orchestration/jobrun/") > 10


def _trouble_many(i: int) -> None:
    now = timezone.now()
    JobRun.objects.create(job="sheets_sync", trigger="cli", status="failed", error=f"boom {i}", started_at=now,
                          finished_at=now)  # fmt: skip
    SyncTarget.objects.create(name=f"t-{i}", spreadsheet_id=f"s-{i}", source_kind="file", source_file="store:x.csv",
                              key_columns="id", consecutive_failures=1, last_outcome="failed")  # fmt: skip


def test_view_site_leads_home_and_a_403_names_the_missing_permission(role_user, client):
    viewer = role_user("Viewer", username="vic")
    _login(client, viewer)
    assert client.get("/").url == reverse("admin:index")
    refused = client.get(reverse("admin:audit_auditevent_changelist"))
    assert refused.status_code == 403
    body = refused.content.decode()
    assert "audit.view_auditevent" in body and 'href="/admin/"' in body


def test_the_browser_default_zone_is_saved_and_times_carry_their_zone(role_user, client):
    from audit.models import AuditEvent
    from console.models import UserProfile

    viewer = role_user("Viewer", username="vic")
    _login(client, viewer)
    reply = client.post(reverse("console-timezone"), {"time_zone": "Europe/Paris", "source": "browser"})
    assert reply.status_code == 200 and reply.json() == {"time_zone": "Europe/Paris"}
    assert UserProfile.objects.get(user=viewer).time_zone == "Europe/Paris"
    assert AuditEvent.objects.filter(action="console.time_zone_set", actor=viewer).count() == 1
    # A chosen zone wins over a later browser default; a bad zone is refused with a clear error.
    client.post(reverse("console-timezone"), {"time_zone": "Asia/Tokyo", "source": "chosen"})
    client.post(reverse("console-timezone"), {"time_zone": "Europe/Paris", "source": "browser"})
    assert UserProfile.objects.get(user=viewer).time_zone == "Asia/Tokyo"
    bad = client.post(reverse("console-timezone"), {"time_zone": "Mars/Olympus", "source": "browser"})
    assert bad.status_code == 400 and "unknown time zone" in bad.json()["error"]
    JobRun.objects.create(job="audit_anchor", trigger="cli", status="succeeded")
    body = client.get(reverse("admin:orchestration_jobrun_changelist")).content.decode()
    assert "JST" in body

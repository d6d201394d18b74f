"""The rest of the monitoring admin through /api/v1/: SLAs (create, detail, edit; never deleted), SLA checks,
escalation ladders, notifications, run records, API usage, host samples, feedback and weekly performance reports.
The admin's permissions (a Viewer sees none of these but gives feedback), its services and so its audit events,
the model's validation (400 naming the field) and strict filters."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from monitoring.models import (
    ApiUsage,
    EscalationStep,
    Feedback,
    HostSample,
    Incident,
    Notification,
    PerformanceReport,
    RunRecord,
    Sla,
    SlaCheck,
)
from orchestration.models import JobRun
from sales.models import SalesReport
from tests.rolewalk.objects import build
from tests.tokens import api_token_for

JSON = "application/json"


def _auth(user, scope: str = "write") -> dict:
    return {"HTTP_AUTHORIZATION": f"Token {api_token_for(user, scope=scope)}"}


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def _events(action: str, obj) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, object_id=str(obj.pk)).order_by("seq"))


# --- SLAs ----------------------------------------------------------------------------------------------------------


def test_an_sla_is_created_and_edited_through_sla_save_with_the_models_validation(client, role_user):
    viewer, auditor = _auth(role_user("Viewer")), _auth(role_user("Auditor"))
    admin_user = role_user("Platform Admin")
    admin, admin_read = _auth(admin_user), _auth(admin_user, "read")
    url = reverse("api-sla-list")
    body = {"name": "sales-latency", "job": "sales_report", "kind": "latency", "within_minutes": 90,
            "objective_percent": 95, "description": "reports within 90 minutes"}  # fmt: skip

    assert client.post(url, body, content_type=JSON).status_code == 401
    assert client.post(url, body, content_type=JSON, **viewer).status_code == 403
    assert client.post(url, body, content_type=JSON, **auditor).status_code == 403  # reads SLAs, adds none
    refused = client.post(url, body, content_type=JSON, **admin_read)
    assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
    for bad, field in (
        ({**body, "kind": "deadline", "within_minutes": None}, "day_of_month"),  # a deadline needs its day
        ({**body, "kind": "deadline", "day_of_month": 31}, "day_of_month"),  # 1..28, every month has it
        ({**body, "within_minutes": None}, "within_minutes"),  # latency: within how many minutes
        ({**body, "within_minutes": 0}, "within_minutes"),
        ({**body, "objective_percent": 150}, "objective_percent"),
        ({**body, "objective_percent": "NaN"}, "objective_percent"),
        ({**body, "kind": "weekly"}, "kind"),
        ({**body, "name": "not a slug"}, "name"),
        ({**body, "day_of_month": 70000}, "day_of_month"),  # beyond the column (SQLite would have taken it)
    ):
        response = client.post(url, bad, content_type=JSON, **admin)
        assert response.status_code == 400 and field in response.json(), (field, response.content)
    assert not Sla.objects.filter(name="sales-latency").exists()  # (the migrations seed the default SLAs)
    assert not AuditEvent.objects.filter(action="sla.created").exists()

    created = client.post(url, body, content_type=JSON, **admin)
    assert created.status_code == 201, created.content
    sla = Sla.objects.get(name="sales-latency")
    assert created.json() == {**body, "id": sla.pk, "day_of_month": None, "objective_percent": 95.0,
                              "enabled": True, "created_at": created.json()["created_at"]}  # fmt: skip
    (event,) = _events("sla.created", sla)
    assert event.object_type == "monitoring.sla" and event.actor_label == admin_user.username
    assert event.data["kind"] == "latency" and event.data["within_minutes"] == 90
    duplicate = client.post(url, body, content_type=JSON, **admin)
    assert duplicate.status_code == 400 and "name" in duplicate.json()

    detail = reverse("api-sla-detail", kwargs={"pk": sla.pk})
    assert client.get(detail, **viewer).status_code == 403
    shown = client.get(detail, **auditor)
    assert shown.status_code == 200 and shown.json() == created.json()
    assert client.get(reverse("api-sla-detail", kwargs={"pk": sla.pk + 1000}), **auditor).status_code == 404

    assert client.patch(detail, {"enabled": False}, content_type=JSON, **auditor).status_code == 403
    assert client.patch(detail, {"enabled": False}, content_type=JSON, **admin_read).status_code == 403
    bad = client.patch(detail, {"kind": "deadline"}, content_type=JSON, **admin)  # no day: Sla.clean refuses
    assert bad.status_code == 400 and "day_of_month" in bad.json()
    assert Sla.objects.get(pk=sla.pk).kind == "latency" and not _events("sla.changed", sla)
    changed = client.patch(detail, {"enabled": False}, content_type=JSON, **admin)
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert Sla.objects.get(pk=sla.pk).enabled is False
    (event,) = _events("sla.changed", sla)
    assert event.data["enabled"] is False and event.data["kind"] == "latency"
    monthly = client.patch(detail, {"kind": "deadline", "day_of_month": 5}, content_type=JSON, **admin)
    assert monthly.status_code == 200 and monthly.json()["day_of_month"] == 5
    assert len(_events("sla.changed", sla)) == 2

    # No delete, as in the admin (disable instead): 405 for who may edit it, 403 for who may not even see it.
    assert client.delete(detail, **admin).status_code == 405
    assert client.delete(detail, **viewer).status_code == 403
    assert client.put(detail, body, content_type=JSON, **admin).status_code == 405
    assert Sla.objects.filter(pk=sla.pk).exists()


def test_the_api_and_the_admin_record_the_same_sla_event(client, role_user):
    """The admin's change form and the API's PATCH go through sla_save: the same action and payload."""
    user = role_user("Platform Admin")
    sla = Sla.objects.create(name="fresh", job="sheets_sync", kind="freshness", within_minutes=30)
    client.force_login(user)
    form = {"name": "fresh", "job": "sheets_sync", "kind": "freshness", "within_minutes": 45,
            "objective_percent": 99, "enabled": "on", "description": ""}  # fmt: skip
    response = client.post(reverse("admin:monitoring_sla_change", args=[sla.pk]), form)
    assert response.status_code == 302, response.content[:2000]
    client.logout()
    api = client.patch(reverse("api-sla-detail", kwargs={"pk": sla.pk}), {"within_minutes": 60}, content_type=JSON,
                       **_auth(user))  # fmt: skip
    assert api.status_code == 200
    by_admin, by_api = _events("sla.changed", sla)
    assert (by_admin.object_type, by_admin.actor_label) == (by_api.object_type, by_api.actor_label)
    assert {**by_admin.data, "within_minutes": 60} == by_api.data and by_admin.data["within_minutes"] == 45


def test_sla_checks_are_listed_newest_first_in_cursor_pages(client, role_user):
    sla, other = build(Sla), build(Sla)
    now = timezone.now()
    met = SlaCheck.objects.create(sla=sla, subject="2026-05", due_at=now, met=True)
    missed = SlaCheck.objects.create(sla=sla, subject="2026-06", due_at=now, met=False, detail="late")
    elsewhere = SlaCheck.objects.create(sla=other, subject="run:42", due_at=now, met=True)
    auditor = _auth(role_user("Auditor"), "read")
    url = reverse("api-slacheck-list")
    assert client.get(url, **_auth(role_user("Viewer"))).status_code == 403
    assert _ids(client.get(url, **auditor)) == [elsewhere.pk, missed.pk, met.pk]
    rows = client.get(url, {"met": "false"}, **auditor).json()["results"]
    assert rows == [{"id": missed.pk, "sla": sla.pk, "sla_name": sla.name, "subject": "2026-06",
                     "due_at": rows[0]["due_at"], "met": False, "measured": None, "detail": "late",
                     "checked_at": rows[0]["checked_at"], "job_run": None}]  # fmt: skip
    assert _ids(client.get(url, {"sla": other.pk}, **auditor)) == [elsewhere.pk]
    assert _ids(client.get(url, {"subject": "2026-05"}, **auditor)) == [met.pk]
    first = client.get(url, {"page_size": 2}, **auditor).json()
    assert [r["id"] for r in first["results"]] == [elsewhere.pk, missed.pk] and first["next"]
    assert _ids(client.get(first["next"], **auditor)) == [met.pk]
    for bad in ({"met": "perhaps"}, {"sla": "x"}, {"breached": "true"}, {"ordering": "due_at"}):
        response = client.get(url, bad, **auditor)
        assert response.status_code == 400 and set(bad) <= set(response.json()), (bad, response.content)


# --- escalation ladders ------------------------------------------------------------------------------------------


def test_escalation_steps_are_added_changed_and_removed_through_the_audited_services(client, role_user):
    EscalationStep.objects.all().delete()  # the seeded default ladder (if no flush emptied it): a known start
    default = EscalationStep.objects.create(job="", level=1, audience="owner", after_occurrences=1)
    viewer, auditor = _auth(role_user("Viewer")), _auth(role_user("Auditor"))
    admin_user = role_user("Platform Admin")
    admin, admin_read = _auth(admin_user), _auth(admin_user, "read")
    url = reverse("api-escalationstep-list")
    assert client.get(url, **viewer).status_code == 403
    rows = client.get(url, **auditor).json()["results"]
    assert rows == [{"id": default.pk, "job": "", "level": 1, "audience": "owner", "after_occurrences": 1,
                     "after_minutes": None}]  # fmt: skip

    body = {"job": "sales_report", "level": 2, "audience": "Platform Admin", "after_minutes": 60}
    assert client.post(url, body, content_type=JSON, **auditor).status_code == 403
    assert client.post(url, body, content_type=JSON, **admin_read).status_code == 403
    for bad, field in (({**body, "audience": "everyone"}, "audience"), ({**body, "level": -1}, "level"),
                       ({**body, "level": None}, "level"), ({**body, "after_minutes": -5}, "after_minutes"),
                       ({**body, "job": "j" * 51}, "job"), ({**body, "job": "", "level": 1}, "level")):  # fmt: skip
        response = client.post(url, bad, content_type=JSON, **admin)
        assert response.status_code == 400 and field in response.json(), (field, response.content)
    taken = client.post(url, {**body, "job": "", "level": 1}, content_type=JSON, **admin)
    assert "default ladder already has a level 1 rung" in str(taken.json()["level"])
    assert EscalationStep.objects.count() == 1 and not AuditEvent.objects.filter(action__startswith="escalation.")

    created = client.post(url, body, content_type=JSON, **admin)
    assert created.status_code == 201, created.content
    step = EscalationStep.objects.get(job="sales_report")
    assert created.json() == {**body, "id": step.pk, "after_occurrences": None}
    (event,) = _events("escalation.step_created", step)
    assert event.data == {"job": "sales_report", "level": 2, "audience": "Platform Admin", "after_occurrences": None,
                          "after_minutes": 60} and event.actor_label == admin_user.username  # fmt: skip
    assert _ids(client.get(url, {"job": "sales_report"}, **auditor)) == [step.pk]
    assert _ids(client.get(url, {"audience": "owner"}, **auditor)) == [default.pk]
    assert client.get(url, {"audience": "everyone"}, **auditor).status_code == 400

    detail = reverse("api-escalationstep-detail", kwargs={"pk": step.pk})
    assert client.get(detail, **auditor).json() == created.json()
    assert client.patch(detail, {"after_minutes": 30}, content_type=JSON, **auditor).status_code == 403
    clash = client.patch(detail, {"job": "", "level": 1}, content_type=JSON, **admin)
    assert clash.status_code == 400 and "level" in clash.json()
    changed = client.patch(detail, {"after_minutes": 30}, content_type=JSON, **admin)
    assert changed.status_code == 200 and changed.json()["after_minutes"] == 30
    assert EscalationStep.objects.get(pk=step.pk).after_minutes == 30
    (event,) = _events("escalation.step_changed", step)
    assert event.data["after_minutes"] == 30 and event.data["level"] == 2

    assert client.delete(detail, **auditor).status_code == 403
    refused = client.delete(detail, **admin_read)
    assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
    assert client.delete(detail, **admin).status_code == 204
    assert not EscalationStep.objects.filter(pk=step.pk).exists()
    (event,) = _events("escalation.step_deleted", step)
    assert event.data["audience"] == "Platform Admin" and event.object_type == "monitoring.escalationstep"
    assert client.get(detail, **auditor).status_code == 404


# --- notifications, run records, API usage, host samples, weekly reports (read-only) -----------------------------


def test_notifications_are_listed_and_shown_with_their_recipients(client, role_user):
    incident, other = build(Incident), build(Incident)
    sent = Notification.objects.create(incident=incident, level=1, channel="email", recipients=["ops@example.com"],
                                       subject="sales_report failed", body="the body", status="sent")  # fmt: skip
    failed = Notification.objects.create(incident=other, level=2, channel="webhook", recipients=["http://hook"],
                                         subject="again", body="b", status="failed", error="timeout")  # fmt: skip
    auditor, url = _auth(role_user("Auditor"), "read"), reverse("api-notification-list")
    assert client.get(url, **_auth(role_user("Analyst"))).status_code == 403
    assert _ids(client.get(url, **auditor)) == [failed.pk, sent.pk]
    assert _ids(client.get(url, {"status": "failed"}, **auditor)) == [failed.pk]
    assert _ids(client.get(url, {"channel": "email", "incident": incident.pk}, **auditor)) == [sent.pk]
    assert _ids(client.get(url, {"level": 2}, **auditor)) == [failed.pk]
    row = client.get(url, {"status": "sent"}, **auditor).json()["results"][0]
    assert row["subject"] == "sales_report failed" and "body" not in row and "recipients" not in row
    for bad in ({"status": "lost"}, {"channel": "pigeon"}, {"incident": "x"}):
        assert client.get(url, bad, **auditor).status_code == 400, bad
    detail = client.get(reverse("api-notification-detail", kwargs={"pk": sent.pk}), **auditor)
    assert detail.status_code == 200
    assert detail.json()["recipients"] == ["ops@example.com"] and detail.json()["body"] == "the body"
    assert client.delete(reverse("api-notification-detail", kwargs={"pk": sent.pk}), **_auth(
        role_user("Platform Admin"))).status_code == 405  # fmt: skip


def _record(job: str, status: str, finished_at, **extra) -> RunRecord:
    run = JobRun.objects.create(job=job, trigger="api", status=status)
    return RunRecord.objects.create(job_run=run, job=job, status=status, requested_at=finished_at,
                                    finished_at=finished_at, **extra)  # fmt: skip


def test_run_records_are_filtered_by_job_outcome_and_finish_time(client, role_user):
    now = timezone.now()
    old = _record("sales_report", "succeeded", now - timedelta(days=3), rows=10)
    failed = _record("sheets_sync", "failed", now - timedelta(hours=1), failure_class="transient")
    dry = _record("sales_report", "succeeded", now, dry_run=True)
    auditor, url = _auth(role_user("Auditor"), "read"), reverse("api-runrecord-list")
    assert client.get(url, **_auth(role_user("Viewer"))).status_code == 403
    assert _ids(client.get(url, **auditor)) == [dry.pk, failed.pk, old.pk]
    assert _ids(client.get(url, {"job": "sales_report"}, **auditor)) == [dry.pk, old.pk]
    assert _ids(client.get(url, {"status": "failed"}, **auditor)) == [failed.pk]
    assert _ids(client.get(url, {"failure_class": "transient"}, **auditor)) == [failed.pk]
    assert _ids(client.get(url, {"dry_run": "true"}, **auditor)) == [dry.pk]
    window = {"finished_after": (now - timedelta(days=1)).isoformat(), "finished_before": now.isoformat()}
    assert _ids(client.get(url, window, **auditor)) == [failed.pk]  # the end is exclusive
    row = client.get(url, {"job": "sheets_sync"}, **auditor).json()["results"][0]
    assert row["job_run"] == failed.job_run_id and row["failure_class"] == "transient" and row["dry_run"] is False
    for bad in ({"finished_after": "yesterday"}, {"dry_run": "maybe"}, {"failure_class": "cosmic"}, {"jobs": "x"}):
        response = client.get(url, bad, **auditor)
        assert response.status_code == 400 and set(bad) <= set(response.json()), (bad, response.content)


def test_api_usage_and_host_samples_are_listed_for_who_reads_monitoring(client, role_user):
    now = timezone.now().replace(second=0, microsecond=0)
    looker = ApiUsage.objects.create(system="looker", minute=now - timedelta(minutes=5), requests=7, errors=1)
    bigquery = ApiUsage.objects.create(system="bigquery", minute=now, requests=2, bytes_billed=1024)
    auditor, viewer = _auth(role_user("Auditor"), "read"), _auth(role_user("Viewer"))
    url = reverse("api-apiusage-list")
    assert client.get(url, **viewer).status_code == 403
    assert _ids(client.get(url, **auditor)) == [bigquery.pk, looker.pk]
    rows = client.get(url, {"system": "looker"}, **auditor).json()["results"]
    assert [(r["id"], r["requests"], r["errors"]) for r in rows] == [(looker.pk, 7, 1)]
    window = {"minute_from": (now - timedelta(minutes=5)).isoformat(), "minute_before": now.isoformat()}
    assert _ids(client.get(url, window, **auditor)) == [looker.pk]
    assert client.get(url, {"minute_from": "soon"}, **auditor).status_code == 400

    a = HostSample.objects.create(host="web-1", taken_at=now, cpu_percent=12.5, memory_percent=40, memory_used_bytes=1,
                                  disk_percent=50, disk_used_bytes=2, net_sent_bytes=3, net_recv_bytes=4)  # fmt: skip
    b = HostSample.objects.create(host="worker-1", taken_at=now, cpu_percent=90, memory_percent=40, memory_used_bytes=1,
                                  disk_percent=50, disk_used_bytes=2, net_sent_bytes=3, net_recv_bytes=4)  # fmt: skip
    url = reverse("api-hostsample-list")
    assert client.get(url, **viewer).status_code == 403
    assert _ids(client.get(url, **auditor)) == [b.pk, a.pk]
    rows = client.get(url, {"host": "web-1"}, **auditor).json()["results"]
    assert [(r["id"], r["cpu_percent"]) for r in rows] == [(a.pk, 12.5)]
    assert client.get(url, {"hostname": "web-1"}, **auditor).status_code == 400


def test_weekly_reports_are_listed_without_their_text_and_shown_with_it(client, role_user):
    now = timezone.now()
    week = timedelta(days=7)
    older = PerformanceReport.objects.create(period_start=now - 2 * week, period_end=now - week, figures={"runs": 3},
                                             body="older", recipients=["a@example.com"])  # fmt: skip
    figures = {"runs": 5, "jobs": {"sales_report": 2}}
    latest = PerformanceReport.objects.create(period_start=now - week, period_end=now, figures=figures,
                                              body="Last week: 5")  # fmt: skip
    auditor, url = _auth(role_user("Auditor"), "read"), reverse("api-performancereport-list")
    assert client.get(url, **_auth(role_user("Data Steward"))).status_code == 403
    rows = client.get(url, **auditor).json()["results"]
    assert [r["id"] for r in rows] == [latest.pk, older.pk] and "body" not in rows[0] and "figures" not in rows[0]
    detail = client.get(reverse("api-performancereport-detail", kwargs={"pk": latest.pk}), **auditor)
    assert detail.status_code == 200
    assert detail.json()["body"] == "Last week: 5" and detail.json()["figures"] == {
        "runs": 5,
        "jobs": {"sales_report": 2},
    }
    assert (
        client.get(reverse("api-performancereport-detail", kwargs={"pk": latest.pk + 99}), **auditor).status_code == 404
    )


# --- feedback ------------------------------------------------------------------------------------------------------


def test_feedback_is_given_through_the_same_service_and_permission_as_the_button(client, role_user):
    report = build(SalesReport)
    viewer_user = role_user("Viewer")
    viewer, viewer_read, auditor = _auth(viewer_user), _auth(viewer_user, "read"), _auth(role_user("Auditor"))
    url = reverse("api-feedback-list")
    body = {"content_type": "sales.salesreport", "object_id": str(report.pk), "useful": False, "comment": "wrong month"}

    assert client.post(url, body, content_type=JSON, **auditor).status_code == 403  # reads feedback, gives none
    assert client.post(url, body, content_type=JSON, **viewer_read).status_code == 403
    for bad, field in (({**body, "content_type": "auth.user"}, "content_type"),
                       ({**body, "object_id": str(report.pk + 1000)}, "object_id"),
                       ({**body, "object_id": "not-a-number"}, "object_id"),
                       ({**body, "useful": "sometimes"}, "useful"),
                       ({**body, "comment": "x" * 2001}, "comment")):  # fmt: skip
        response = client.post(url, bad, content_type=JSON, **viewer)
        assert response.status_code == 400 and field in response.json(), (field, response.content)
    assert not Feedback.objects.exists() and not AuditEvent.objects.filter(action="feedback.recorded").exists()

    given = client.post(url, body, content_type=JSON, **viewer)
    assert given.status_code == 201, given.content
    feedback = Feedback.objects.get()
    assert given.json() == {"id": feedback.pk, "content_type": "sales.salesreport", "object_id": str(report.pk),
                            "user": viewer_user.username, "useful": False, "comment": "wrong month",
                            "created_at": given.json()["created_at"]}  # fmt: skip
    (event,) = _events("feedback.recorded", report)
    assert event.object_type == "sales.salesreport" and event.data == {"useful": False, "comment": "wrong month",
                                                                       "changed": False}  # fmt: skip
    again = client.post(url, {**body, "useful": True, "comment": ""}, content_type=JSON, **viewer)
    assert again.status_code == 200 and again.json()["id"] == feedback.pk and again.json()["useful"] is True
    assert Feedback.objects.get().useful is True and len(_events("feedback.recorded", report)) == 2

    # The feedback button (monitoring-feedback) records the same event for the same person and object.
    client.force_login(viewer_user)
    button = client.post(reverse("monitoring-feedback", args=["sales.salesreport", report.pk]), {"useful": "yes"})
    assert button.status_code == 302
    actions = {(e.action, e.object_type, e.object_id, e.actor_label) for e in _events("feedback.recorded", report)}
    assert actions == {("feedback.recorded", "sales.salesreport", str(report.pk), viewer_user.username)}
    # An id that is not a number is no such object there either (it was a 500).
    assert client.post(reverse("monitoring-feedback", args=["sales.salesreport", "abc"]), {}).status_code == 404
    client.logout()

    # Reading everyone's feedback needs view_feedback (Auditors, Platform Admins), not add_feedback.
    assert client.get(url, **viewer).status_code == 403
    rows = client.get(url, **auditor).json()["results"]
    assert [(r["id"], r["content_type"], r["useful"]) for r in rows] == [(feedback.pk, "sales.salesreport", True)]
    assert _ids(client.get(url, {"content_type": "sales.salesreport", "object_id": report.pk}, **auditor)) == [
        feedback.pk
    ]
    assert _ids(client.get(url, {"content_type": "quality.reviewitem"}, **auditor)) == []
    assert _ids(client.get(url, {"useful": "false"}, **auditor)) == []
    for bad in ({"content_type": "auth.user"}, {"useful": "meh"}, {"user": "viewer"}):
        response = client.get(url, bad, **auditor)
        assert response.status_code == 400 and set(bad) <= set(response.json()), (bad, response.content)

"""/api/v1/incidents/ and /api/v1/slas/: the admin's permissions and services (timeline and audit events), strict
filters (400 naming the field) and 409 when the incident's state refuses the action."""

from __future__ import annotations

from django.urls import reverse

from audit.models import AuditEvent
from monitoring.constants import IncidentStatus
from monitoring.models import Incident, IncidentEvent, Sla
from tests.rolewalk.objects import build
from tests.tokens import api_token_for


def _auth(user, scope: str = "write") -> dict:
    return {"HTTP_AUTHORIZATION": f"Token {api_token_for(user, scope=scope)}"}


def _audited(action: str, incident: Incident) -> int:
    return AuditEvent.objects.filter(action=action, object_id=str(incident.pk)).count()


def test_incidents_are_listed_filtered_and_acknowledged_through_the_service(client, role_user):
    incident = build(Incident)
    other = build(Incident)
    Incident.objects.filter(pk=other.pk).update(status=IncidentStatus.RESOLVED, job="sales_report")
    viewer, analyst = _auth(role_user("Viewer")), _auth(role_user("Analyst"))
    url = reverse("api-incident-list")
    assert client.get(url).status_code == 401
    listed = client.get(url, {"status": "open"}, **viewer).json()["results"]
    assert [row["id"] for row in listed] == [incident.pk]
    assert [r["id"] for r in client.get(url, {"job": "sales_report"}, **viewer).json()["results"]] == [other.pk]
    for bad in ({"status": "nope"}, {"level": "x"}, {"state": "open"}, {"ordering": "title"}):
        response = client.get(url, bad, **viewer)
        assert response.status_code == 400 and set(bad) <= set(response.json()), (bad, response.content)
    detail = client.get(reverse("api-incident-detail", kwargs={"pk": incident.pk}), **viewer)
    assert detail.status_code == 200 and detail.json()["status"] == "open"

    ack = reverse("api-incident-acknowledge", kwargs={"pk": incident.pk})
    assert client.post(ack, {"note": "mine"}, content_type="application/json", **viewer).status_code == 403
    assert _audited("incident.acknowledged", incident) == 0
    response = client.post(ack, {"note": "mine"}, content_type="application/json", **analyst)
    assert response.status_code == 200 and response.json()["status"] == "acknowledged", response.content
    assert _audited("incident.acknowledged", incident) == 1
    assert IncidentEvent.objects.filter(incident=incident, message="mine").exists()
    assert [e["message"] for e in response.json()["timeline"]][-1:] == ["mine"]
    again = client.post(ack, {}, content_type="application/json", **analyst)
    assert again.status_code == 409 and "nothing to acknowledge" in again.json()["detail"]
    too_long = client.post(ack, {"note": "x" * 2001}, content_type="application/json", **analyst)
    assert too_long.status_code == 400 and "note" in too_long.json()
    assert client.post(reverse("api-incident-acknowledge", kwargs={"pk": 999999}), **analyst).status_code == 404


def test_fix_and_verify_and_resume_need_the_admins_rights(client, role_user):
    incident = build(Incident)  # about audit_anchor: rerunning it needs that job's permission
    analyst, steward, admin = (_auth(role_user(r)) for r in ("Analyst", "Data Steward", "Platform Admin"))
    fix = reverse("api-incident-fix", kwargs={"pk": incident.pk})
    resume = reverse("api-incident-resume", kwargs={"pk": incident.pk})
    assert client.post(fix, {"note": "patched"}, content_type="application/json", **analyst).status_code == 403
    response = client.post(fix, {"note": "patched"}, content_type="application/json", **steward)
    assert response.status_code == 200 and response.json()["status"] == "fixed"
    assert _audited("incident.fixed", incident) == 1
    assert client.post(resume, **analyst).status_code == 403  # no resume_incident
    refused = client.post(resume, **steward)  # resume_incident, but not the audit_anchor job's permission
    assert refused.status_code == 403 and "rerun" in refused.json()["detail"]
    assert _audited("incident.resume_requested", incident) == 0
    response = client.post(resume, **admin)
    assert response.status_code == 200, response.content
    assert response.json()["status"] in ("verifying", "resolved", "open")
    assert response.json()["resume_job_run"] is not None
    assert _audited("incident.resume_requested", incident) == 1


def test_slas_are_listed_for_who_may_see_them(client, role_user):
    sla = build(Sla)
    url = reverse("api-sla-list")
    assert client.get(url, **_auth(role_user("Viewer"), "read")).status_code == 403
    rows = client.get(url, **_auth(role_user("Auditor"), "read")).json()["results"]
    assert sorted(row["name"] for row in rows) == sorted(Sla.objects.values_list("name", flat=True))
    assert sla.name in [row["name"] for row in rows]
    response = client.get(url, {"enabled": "maybe"}, **_auth(role_user("Auditor"), "read"))
    assert response.status_code == 400 and "enabled" in response.json()


def test_protected_folders_are_changed_through_the_audited_service(client, role_user):
    from cleanup.models import ProtectedFolder

    viewer, content = _auth(role_user("Viewer")), _auth(role_user("Content Admin"))
    url = reverse("api-protectedfolder-list")
    body = {"folder_id": "f-42", "name": "Finance", "reason": "board packs"}
    assert client.post(url, body, content_type="application/json", **viewer).status_code == 403
    created = client.post(url, body, content_type="application/json", **content)
    assert created.status_code == 201, created.content
    folder = ProtectedFolder.objects.get(folder_id="f-42")
    assert created.json()["created_by"] and folder.created_by is not None
    events = AuditEvent.objects.filter(object_id=str(folder.pk))
    assert events.filter(action="cleanup.protectedfolder_created").count() == 1
    duplicate = client.post(url, body, content_type="application/json", **content)
    assert duplicate.status_code == 400 and "folder_id" in duplicate.json()
    missing = client.post(url, {"folder_id": "f-43"}, content_type="application/json", **content)
    assert missing.status_code == 400 and "reason" in missing.json()
    assert [r["folder_id"] for r in client.get(url, **viewer).json()["results"]] == ["f-42"]
    assert client.get(url, {"folder": "f"}, **viewer).status_code == 400

    detail = reverse("api-protectedfolder-detail", kwargs={"pk": folder.pk})
    assert client.patch(detail, {"reason": "x"}, content_type="application/json", **viewer).status_code == 403
    changed = client.patch(detail, {"reason": "still board packs"}, content_type="application/json", **content)
    assert changed.status_code == 200 and changed.json()["reason"] == "still board packs"
    assert events.filter(action="cleanup.protectedfolder_changed").count() == 1
    assert client.patch(detail, {"reason": ""}, content_type="application/json", **content).status_code == 400
    assert client.delete(detail, **viewer).status_code == 403
    assert client.delete(detail, **content).status_code == 204
    assert not ProtectedFolder.objects.filter(pk=folder.pk).exists()
    assert AuditEvent.objects.filter(action="cleanup.protectedfolder_deleted").count() == 1


def test_subject_requests_are_made_by_data_protection_through_the_service(client, role_user):
    from privacy.models import SubjectRequest

    auditor, dpo = _auth(role_user("Auditor")), _auth(role_user("Data Protection"))
    url = reverse("api-subjectrequest-list")
    body = {"identifier": "Someone@Example.com", "kind": "pseudonymise", "reason": "ticket DSR-7"}
    assert client.post(url, body, content_type="application/json", **auditor).status_code == 403
    assert client.post(reverse("api-subject-search"), body, content_type="application/json",
                       **auditor).status_code == 403  # fmt: skip
    found = client.post(reverse("api-subject-search"), body, content_type="application/json", **dpo)
    assert found.status_code == 200 and found.json()["subject"] and "users" in found.json()["found"]
    assert AuditEvent.objects.filter(action="privacy.subject_searched").count() == 1
    assert "someone@example.com" not in found.content.decode().lower()
    created = client.post(url, body, content_type="application/json", **dpo)
    assert created.status_code == 201, created.content
    request = SubjectRequest.objects.get()
    assert created.json()["subject"] == request.subject and request.requested_by is not None
    assert AuditEvent.objects.filter(action="privacy.subject_erased").count() == 1
    for bad, field in (({**body, "identifier": "not an id"}, "identifier"), ({**body, "kind": "shred"}, "kind"),
                       ({**body, "reason": "for someone@example.com"}, "reason")):  # fmt: skip
        response = client.post(url, bad, content_type="application/json", **dpo)
        assert response.status_code == 400 and field in response.json(), (field, response.content)
    assert SubjectRequest.objects.count() == 1
    rows = client.get(url, **auditor).json()["results"]
    assert [r["id"] for r in rows] == [request.pk]
    assert client.get(reverse("api-subjectrequest-detail", kwargs={"pk": request.pk}), **auditor).status_code == 200
    assert client.get(url, {"kind": "burn"}, **auditor).status_code == 400


def test_lineage_outbox_is_listed_and_retried_as_the_admin_does(client, role_user):
    from lineage.models import LineageOutbox

    failed = build(LineageOutbox)
    LineageOutbox.objects.filter(pk=failed.pk).update(status=LineageOutbox.Status.FAILED)
    auditor, admin = _auth(role_user("Auditor")), _auth(role_user("Platform Admin"))
    rows = client.get(reverse("api-lineageoutbox-list"), {"status": "failed"}, **auditor).json()["results"]
    assert [r["id"] for r in rows] == [failed.pk] and rows[0]["event_type"]
    assert client.get(reverse("api-lineageoutbox-list"), {"status": "lost"}, **auditor).status_code == 400
    assert client.get(reverse("api-lineageoutbox-list"), **_auth(role_user("Viewer"))).status_code == 403
    retry = reverse("api-lineageoutbox-retry")
    assert client.post(retry, {"ids": [failed.pk]}, content_type="application/json", **auditor).status_code == 403
    unknown = client.post(retry, {"ids": [failed.pk, 999999]}, content_type="application/json", **admin)
    assert unknown.status_code == 400 and "999999" in str(unknown.json()["ids"])
    assert client.post(retry, {"ids": []}, content_type="application/json", **admin).status_code == 400
    assert AuditEvent.objects.filter(action="lineage.delivery_retried").count() == 0
    done = client.post(retry, {"ids": [failed.pk]}, content_type="application/json", **admin)
    assert done.status_code == 200 and done.json() == {"due": 1}
    assert LineageOutbox.objects.get(pk=failed.pk).status == LineageOutbox.Status.PENDING
    assert AuditEvent.objects.filter(action="lineage.delivery_retried", object_id=str(failed.pk)).count() == 1


def test_platform_admins_list_and_clear_lockouts_audited(client, role_user):
    from axes.models import AccessAttempt

    attempt = AccessAttempt.objects.create(username="ann", ip_address="10.0.0.7", user_agent="ua", path_info="/x",
                                           http_accept="*/*", get_data="", post_data="password=secret",
                                           failures_since_start=9)  # fmt: skip
    viewer, admin = _auth(role_user("Viewer")), _auth(role_user("Platform Admin"))
    url = reverse("api-lockout-list")
    assert client.get(url, **viewer).status_code == 403
    listing = client.get(url, {"username": "ann"}, **admin)
    assert listing.status_code == 200 and [r["id"] for r in listing.json()["results"]] == [attempt.pk]
    assert listing.json()["results"][0]["locked_out"] is True and "secret" not in listing.content.decode()
    assert client.get(url, {"user": "ann"}, **admin).status_code == 400
    # Not an address: 400 naming the field (PostgreSQL's inet column would have answered a DataError, a 500).
    bad_ip = client.get(url, {"ip_address": "x"}, **admin)
    assert bad_ip.status_code == 400 and "ip_address" in bad_ip.json()
    assert [r["id"] for r in client.get(url, {"ip_address": "10.0.0.7"}, **admin).json()["results"]] == [attempt.pk]
    detail = reverse("api-lockout-detail", kwargs={"pk": attempt.pk})
    assert client.delete(detail, **viewer).status_code == 403
    assert client.delete(detail, **admin).status_code == 204
    assert not AccessAttempt.objects.filter(pk=attempt.pk).exists()
    cleared = AuditEvent.objects.get(action="accounts.login_lockout_cleared", object_id=str(attempt.pk))
    assert cleared.data["username"] == "ann" and cleared.data["failures"] == 9


def test_a_sales_query_is_edited_with_the_admins_validation_and_audit(client, role_user):
    from sales.models import SalesQuery

    query = build(SalesQuery)
    SalesQuery.objects.filter(pk=query.pk).update(sql="SELECT region, SUM(amount) FROM t GROUP BY region")
    analyst, admin = _auth(role_user("Analyst")), _auth(role_user("Platform Admin"))
    url = reverse("api-salesquery-detail", kwargs={"pk": query.pk})
    assert client.get(url, **analyst).status_code == 200
    assert client.patch(url, {"title": "x"}, content_type="application/json", **analyst).status_code == 403
    bad_name = client.patch(url, {"name": "not a slug!"}, content_type="application/json", **admin)
    assert bad_name.status_code == 400 and "name" in bad_name.json()
    assert client.put(url, {"title": "x"}, content_type="application/json", **admin).status_code == 405
    assert AuditEvent.objects.filter(action="sales.query_changed").count() == 0
    done = client.patch(url, {"title": "Monthly sales"}, content_type="application/json", **admin)
    assert done.status_code == 200 and done.json()["title"] == "Monthly sales" and done.json()["updated_by"]
    event = AuditEvent.objects.get(action="sales.query_changed", object_id=str(query.pk))
    assert event.data["changed"] == ["title"]

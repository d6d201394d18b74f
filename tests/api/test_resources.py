"""The /api/v1/ resources: 401/403/404, the admin's services behind
every write (audited, four-eyes), and the audit trail's exports."""

from __future__ import annotations

import csv
import io
import json

from django.urls import reverse

from approvals.models import ApprovalRequest
from audit.models import AuditEvent
from audit.services import audit_log
from cleanup.models import CleanupAction, DashboardBackup, DashboardRestore, LookerDashboard
from orchestration.models import JobRun
from quality.models import QualityRun, QuarantinedRow, ReviewItem
from sales.models import QueryRun, SalesQuery, SalesReport
from sheetsync.models import SyncEvent, SyncTarget
from tests.rolewalk.objects import build
from tests.tokens import api_token_for

LISTS = {
    "api-jobrun-list": JobRun,
    "api-approval-list": ApprovalRequest,
    "api-reviewitem-list": ReviewItem,
    "api-qualityrun-list": QualityRun,
    "api-quarantinedrow-list": QuarantinedRow,
    "api-synctarget-list": SyncTarget,
    "api-syncevent-list": SyncEvent,
    "api-auditevent-list": AuditEvent,
    "api-salesquery-list": SalesQuery,
    "api-queryrun-list": QueryRun,
    "api-salesreport-list": SalesReport,
    "api-user-list": None,  # users
    "api-dashboard-list": LookerDashboard,
    "api-dashboard-backups": DashboardBackup,
    "api-dashboardrestore-list": DashboardRestore,
    "api-cleanupaction-list": CleanupAction,
    # Issue 10, the rest of the admin: incidents, SLAs, protected folders, subject requests, the lineage outbox,
    # login lockouts (imported where the rows are built: their apps load with Django).
    "api-incident-list": "monitoring.Incident",
    "api-sla-list": "monitoring.Sla",
    "api-protectedfolder-list": "cleanup.ProtectedFolder",
    "api-subjectrequest-list": "privacy.SubjectRequest",
    "api-lineageoutbox-list": "lineage.LineageOutbox",
    "api-lockout-list": "axes.AccessAttempt",
    # The rest of the monitoring admin (tests/api/test_monitoring_api_more.py).
    "api-slacheck-list": "monitoring.SlaCheck",
    "api-escalationstep-list": "monitoring.EscalationStep",
    "api-notification-list": "monitoring.Notification",
    "api-runrecord-list": "monitoring.RunRecord",
    "api-apiusage-list": "monitoring.ApiUsage",
    "api-hostsample-list": "monitoring.HostSample",
    "api-feedback-list": "monitoring.Feedback",
    "api-performancereport-list": "monitoring.PerformanceReport",
}
# The query counts of every list (found from the URL patterns) are measured in test_query_counts.py.


def _auth(user, scope: str = "read") -> dict:
    return {"HTTP_AUTHORIZATION": f"Token {api_token_for(user, scope=scope)}"}


def test_viewer_reads_but_the_right_role_acts_and_unknown_ids_are_404(client, role_user):
    target = build(SyncTarget)
    viewer, steward = _auth(role_user("Viewer"), "write"), _auth(role_user("Data Steward"), "write")
    pause = reverse("api-synctarget-pause", kwargs={"pk": target.pk})
    assert client.post(pause).status_code == 401
    assert client.get(reverse("api-synctarget-list"), **viewer).status_code == 200
    assert client.post(pause, **viewer).status_code == 403
    assert client.post(pause, **steward).json() == {"changed": 1}
    assert client.post(pause, **steward).json() == {"changed": 0}  # already paused
    assert AuditEvent.objects.filter(action="sheetsync.target_paused", object_id=str(target.pk)).count() == 1
    assert client.post(reverse("api-synctarget-resume", kwargs={"pk": target.pk}), **steward).json() == {"changed": 1}
    assert client.post(reverse("api-synctarget-pause", kwargs={"pk": 999999}), **steward).status_code == 404
    assert client.get(reverse("api-synctarget-detail", kwargs={"pk": 999999}), **viewer).status_code == 404
    assert client.get(reverse("api-auditevent-list"), **viewer).status_code == 403  # the trail is the Auditor's
    bad = client.get(reverse("api-synctarget-list") + "?enabled=perhaps", **viewer)
    assert bad.status_code == 400 and "enabled" in bad.json()


def test_sync_targets_are_created_and_edited_through_the_audited_service(client, role_user):
    steward = _auth(role_user("Data Steward"), "write")
    url = reverse("api-synctarget-list")
    missing = client.post(url, {}, content_type="application/json", **steward)
    assert missing.status_code == 400 and {"name", "spreadsheet_id", "source_kind"} <= set(missing.json())
    body = {"name": "api-target", "spreadsheet_id": "sheet-1", "range": "Sheet1!A1", "source_kind": "file",
            "source_file": "orders.csv", "key_columns": "id"}  # fmt: skip
    created = client.post(url, body, content_type="application/json", **steward)
    if created.status_code == 400:  # the source file must exist where the sources live: say which field
        assert set(created.json()) <= {"source_file", "source_kind", "range"}, created.json()
        return
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert AuditEvent.objects.filter(action="sheetsync.target_created", object_id=str(pk)).exists()
    edited = client.patch(reverse("api-synctarget-detail", kwargs={"pk": pk}), {"description": "by API"},
                          content_type="application/json", **steward)  # fmt: skip
    assert edited.status_code == 200 and edited.json()["description"] == "by API"
    changed = AuditEvent.objects.get(action="sheetsync.target_changed", object_id=str(pk))
    assert changed.data["changed"] == ["description"]


def test_approvals_keep_the_four_eyes_rule(client, role_user, django_capture_on_commit_callbacks):
    from approvals.actions import roles_grant_request

    admin, other = role_user("Platform Admin", "pat"), role_user("Platform Admin", "paula")
    viewer = role_user("Viewer", "vic")
    request = roles_grant_request(user=viewer, roles=["Analyst"], actor=admin, reason="reports")
    approve = reverse("api-approval-approve", kwargs={"pk": request.pk})
    assert client.post(approve, **_auth(viewer, "write")).status_code == 403  # not the approver's role
    own = client.post(approve, **_auth(admin, "write"))
    assert own.status_code == 409 and "four-eyes" in own.json()["detail"]  # the requester never approves
    reject = reverse("api-approval-reject", kwargs={"pk": request.pk})
    no_reason = client.post(reject, {}, content_type="application/json", **_auth(other, "write"))
    assert no_reason.status_code == 400 and "reason" in no_reason.json()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(approve, **_auth(other, "write"))
    assert done.status_code == 200 and done.json()["status"] == "approved"
    assert viewer.groups.filter(name="Analyst").exists()
    listed = client.get(
        reverse("api-approval-list") + "?status=approved&action=accounts.roles_grant", **_auth(viewer)
    ).json()
    assert [r["id"] for r in listed["results"]] == [request.pk]


def test_audit_trail_filters_pages_and_exports(client, role_user):
    for n in range(5):
        audit_log(action="job.started", object_type="walk", object_id=str(n), data={"attempt": n})
    auditor = _auth(role_user("Auditor"))
    url = reverse("api-auditevent-list")
    page = client.get(url + "?object_type=walk&page_size=2", **auditor).json()
    assert [e["object_id"] for e in page["results"]] == ["4", "3"] and page["next"]
    rest = client.get(page["next"], **auditor).json()
    assert [e["object_id"] for e in rest["results"]] == ["2", "1"]
    bad = client.get(url + "?seq_from=abc", **auditor)
    assert bad.status_code == 400 and "seq_from" in bad.json()
    assert client.get(url + "?cursor=garbage", **auditor).status_code == 404
    export = reverse("api-auditevent-export")
    jsonl = client.get(export + "?format=jsonl&object_type=walk", **auditor)
    assert jsonl["Content-Type"] == "application/jsonl" and jsonl.streaming
    lines = [json.loads(line) for line in b"".join(jsonl.streaming_content).decode().splitlines()]
    assert [line["object_id"] for line in lines] == ["0", "1", "2", "3", "4"] and lines[0]["data"] == {"attempt": 0}
    csv_rows = list(csv.DictReader(io.StringIO(b"".join(client.get(
        export + "?format=csv&object_type=walk", **auditor).streaming_content).decode())))  # fmt: skip
    assert [r["object_id"] for r in csv_rows] == ["0", "1", "2", "3", "4"] and json.loads(csv_rows[4]["data"])
    assert client.get(export + "?format=xml", **auditor).status_code == 400
    chain = client.get(reverse("api-auditevent-chain"), **auditor).json()
    assert chain["ok"] is True and chain["head_seq"] >= 5


def test_roles_through_the_api_wait_for_approval_above_viewer(client, role_user, django_user_model):
    admin = _auth(role_user("Platform Admin", "pat"), "write")
    target = django_user_model.objects.create_user("newbie", "n@example.com", "x", is_staff=True)
    url = reverse("api-user-roles", kwargs={"pk": target.pk})
    assert client.post(url, {"roles": ["Viewer"]}, content_type="application/json",
                       **_auth(role_user("Viewer"), "write")).status_code == 403  # fmt: skip
    bad = client.post(url, {"roles": ["Wizard"]}, content_type="application/json", **admin)
    assert bad.status_code == 400 and "roles" in bad.json()
    viewer = client.post(url, {"roles": ["Viewer"]}, content_type="application/json", **admin)
    assert viewer.status_code == 200 and viewer.json()["roles"] == ["Viewer"]
    asked = client.post(url, {"roles": ["Viewer", "Analyst"], "reason": "reports"}, content_type="application/json",
                        **admin)  # fmt: skip
    assert asked.status_code == 202 and asked.json()["pending"] == ["Analyst"] and asked.json()["approval"]
    assert not target.groups.filter(name="Analyst").exists()
    users = client.get(reverse("api-user-list") + "?username=newbie", **admin).json()["results"]
    assert users[0]["roles"] == ["Viewer"]


def test_only_a_failed_trigger_is_retried(client, role_user):
    run = JobRun.objects.create(job="audit_anchor", trigger="api", status="succeeded")
    url = reverse("api-jobrun-retry", kwargs={"pk": run.pk})
    assert client.post(url, **_auth(role_user("Viewer"), "write")).status_code == 403
    refused = client.post(url, **_auth(role_user("Platform Admin"), "write"))
    assert refused.status_code == 409 and "only a failed trigger" in refused.json()["detail"]


def test_a_sync_target_is_deleted_through_the_admins_service_and_its_sheet_released(client, role_user):
    from approvals.models import DestinationWriter
    from approvals.services import destination_register
    from sheetsync.models import target_writer

    target = build(SyncTarget)
    destination_register(spreadsheet_id=target.spreadsheet_id, sheet="Sheet1", writer=target_writer(target))
    url = reverse("api-synctarget-detail", kwargs={"pk": target.pk})
    steward = role_user("Data Steward", "stew")
    writers = DestinationWriter.objects.filter(writer=target_writer(target))
    assert writers.exists()
    assert client.delete(url, **_auth(role_user("Viewer"), "write")).status_code == 403
    assert client.delete(url, **_auth(steward, "read")).status_code == 403  # a read-scope token never writes
    assert SyncTarget.objects.filter(pk=target.pk).exists()
    done = client.delete(url, **_auth(steward, "write"))
    assert done.status_code == 204 and not SyncTarget.objects.filter(pk=target.pk).exists()
    event = AuditEvent.objects.get(action="sheetsync.target_deleted", object_id=str(target.pk))
    assert event.actor_label == "stew" and event.data["name"] == target.name
    assert not writers.exists()  # the sheet's range is free for another writer
    assert client.delete(url, **_auth(steward, "write")).status_code == 404

"""/api/v1/ for login security (django-axes' access logs), roles, reveals of masked values, the destinations'
writers, a job's cost estimate and Airflow's DAGs: the admin's permissions and services (the same audit events and
approval requests), strict filters (400 naming the field), read-scope tokens refused on writes, and Airflow down or
unconfigured answering a documented 503 / 409 instead of a 500."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from axes.models import AccessFailureLog, AccessLog
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest, DestinationWriter
from audit.models import AuditEvent
from orchestration.approvals import DAG_CHANGE_ACTION
from security.models import RevealGrant
from tests.rolewalk.objects import build
from tests.tokens import api_token_for

pytestmark = pytest.mark.django_db


def _auth(user, scope: str = "write") -> dict:
    return {"HTTP_AUTHORIZATION": f"Token {api_token_for(user, scope=scope)}"}


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def _post(client, url, data, auth):
    return client.post(url, data, content_type="application/json", **auth)


# --- login security ---------------------------------------------------------------------------------------------


def _log(model, username: str, ip: str, minutes_ago: int, **extra):
    row = model.objects.create(username=username, ip_address=ip, user_agent="curl", http_accept="*/*",
                               path_info="/admin/login/", **extra)  # fmt: skip
    model.objects.filter(pk=row.pk).update(attempt_time=timezone.now() - timedelta(minutes=minutes_ago))
    return row


def test_access_logs_are_platform_admins_read_only_and_filtered(client, role_user):
    old = _log(AccessLog, "ann", "10.0.0.1", 120)
    new = _log(AccessLog, "bob", "10.0.0.2", 5)
    admin, auditor = _auth(role_user("Platform Admin")), _auth(role_user("Auditor"))
    url = reverse("api-accesslog-list")
    assert client.get(url).status_code == 401
    assert client.get(url, **auditor).status_code == 403  # the admin shows axes' logs to Platform Admins only
    assert _ids(client.get(url, **admin)) == [new.pk, old.pk]  # newest first
    assert _ids(client.get(url, {"username": "ann"}, **admin)) == [old.pk]
    assert _ids(client.get(url, {"ip_address": "10.0.0.2"}, **admin)) == [new.pk]
    since = (timezone.now() - timedelta(minutes=30)).isoformat()
    assert _ids(client.get(url, {"attempt_after": since}, **admin)) == [new.pk]
    assert _ids(client.get(url, {"attempt_before": since}, **admin)) == [old.pk]
    for bad in ({"ip_address": "x"}, {"attempt_after": "yesterday"}, {"user": "ann"}, {"ordering": "username"}):
        response = client.get(url, bad, **admin)
        assert response.status_code == 400 and set(bad) <= set(response.json()), (bad, response.content)
    detail = client.get(reverse("api-accesslog-detail", kwargs={"pk": new.pk}), **admin)
    assert detail.status_code == 200 and detail.json()["username"] == "bob" and "session_hash" not in detail.json()
    # Read-only, as in the admin: no write, whatever the token; a read-scope token is refused before that.
    detail_url = reverse("api-accesslog-detail", kwargs={"pk": new.pk})
    assert client.delete(detail_url, **admin).status_code == 405
    read = client.delete(detail_url, **_auth(role_user("Platform Admin", "pa-read"), scope="read"))
    assert read.status_code == 403 and "read-only" in read.json()["detail"]
    assert AccessLog.objects.filter(pk=new.pk).exists()


def test_access_failure_logs_filter_by_lockout(client, role_user):
    failed = _log(AccessFailureLog, "ann", "10.0.0.1", 3, locked_out=False)
    locked = _log(AccessFailureLog, "ann", "10.0.0.1", 1, locked_out=True)
    admin = _auth(role_user("Platform Admin"))
    url = reverse("api-accessfailurelog-list")
    assert _ids(client.get(url, **admin)) == [locked.pk, failed.pk]
    assert _ids(client.get(url, {"locked_out": "true"}, **admin)) == [locked.pk]
    bad = client.get(url, {"locked_out": "maybe"}, **admin)
    assert bad.status_code == 400 and "locked_out" in bad.json()
    assert client.get(url, **_auth(role_user("Data Protection"))).status_code == 403
    assert client.post(url, {}, content_type="application/json", **admin).status_code == 405


# --- roles ------------------------------------------------------------------------------------------------------


def test_roles_are_listed_with_their_permissions_and_members_read_only(client, role_user):
    from accounts.roles import ROLE_PERMISSIONS

    auditor = role_user("Auditor")
    role_user("Viewer", "v1")
    role_user("Viewer", "v2")
    url = reverse("api-group-list")
    assert client.get(url, **_auth(role_user("Data Steward"))).status_code == 403  # no auth.view_group
    rows = client.get(url, {"page_size": 100}, **_auth(auditor)).json()["results"]
    by_name = {row["name"]: row for row in rows}
    assert set(ROLE_PERMISSIONS) <= set(by_name) and [r["name"] for r in rows] == sorted(by_name)
    viewer = by_name["Viewer"]
    assert viewer["is_role"] is True and viewer["member_count"] == 2
    assert "cleanup.view_lookerdashboard" in viewer["permissions"] and viewer["permissions"] == sorted(
        viewer["permissions"]
    )
    assert "auth.view_group" not in viewer["permissions"]
    assert _ids(client.get(url, {"name": "Auditor"}, **_auth(auditor))) == [Group.objects.get(name="Auditor").pk]
    detail_url = reverse("api-group-detail", kwargs={"pk": viewer["id"]})
    assert client.get(detail_url, **_auth(auditor)).json() == viewer
    # Roles come from accounts/roles.py; other groups are written by superusers only (no role holds
    # auth.*_group but view): a Platform Admin with a write token is refused (tests/api/test_api_users_groups.py).
    admin = _auth(role_user("Platform Admin"))
    assert client.patch(detail_url, {"name": "x"}, content_type="application/json", **admin).status_code == 403
    assert client.delete(detail_url, **admin).status_code == 403
    assert _post(client, url, {"name": "new"}, admin).status_code == 403
    assert Group.objects.filter(name="Viewer").exists() and not Group.objects.filter(name__in=["x", "new"]).exists()


# --- reveals ----------------------------------------------------------------------------------------------------


def test_revealing_a_quarantined_row_is_the_admins_reveal(client, role_user):
    from quality.models import QuarantinedRow

    row = build(QuarantinedRow)
    steward = role_user("Data Steward")
    url = reverse("api-quarantinedrow-reveal", kwargs={"pk": row.pk})
    assert _post(client, url, {"reason": "checking a customer's complaint"}, {}).status_code == 401
    viewer = _post(client, url, {"reason": "checking a customer's complaint"}, _auth(role_user("Viewer")))
    assert viewer.status_code == 403  # does not see quarantined rows
    analyst = _post(client, url, {"reason": "checking a customer's complaint"}, _auth(role_user("Analyst")))
    assert analyst.status_code == 403 and "security.reveal_value" in analyst.json()["detail"]
    read = _post(client, url, {"reason": "checking a customer's complaint"}, _auth(steward, scope="read"))
    assert read.status_code == 403 and "read-only" in read.json()["detail"]
    auth = _auth(steward)
    short = _post(client, url, {"reason": " no "}, auth)
    assert short.status_code == 400 and "reason" in short.json()
    missing = _post(client, url, {}, auth)
    assert missing.status_code == 400 and "reason" in missing.json()
    assert _post(client, reverse("api-quarantinedrow-reveal", kwargs={"pk": 999999}), {"reason": "a reason"},
                 auth).status_code == 404  # fmt: skip
    assert not RevealGrant.objects.exists() and not AuditEvent.objects.filter(action="security.value_revealed").exists()

    response = _post(client, url, {"reason": "checking a customer's complaint"}, auth)
    assert response.status_code == 201, response.content
    grant = RevealGrant.objects.get()
    body = response.json()
    assert body["id"] == grant.pk and body["user"] == steward.username and body["object_ref"] == str(row.pk)
    assert body["dataset_or_model"] == "quality.quarantinedrow" and grant.expires_at > timezone.now()
    event = AuditEvent.objects.get(action="security.value_revealed")
    assert event.actor_id == steward.pk and event.object_id == str(grant.pk)
    assert event.data["object"] == f"quality.quarantinedrow:{row.pk}"
    assert event.data["reason"] == "checking a customer's complaint"

    # The admin's reveal form writes the same event with the same keys (one service).
    client.force_login(steward)
    client.post(reverse("admin:quality_quarantinedrow_reveal", args=[row.pk]), {"reason": "the same, by the admin"})
    admin_event = AuditEvent.objects.filter(action="security.value_revealed").order_by("-seq").first()
    assert admin_event.pk != event.pk and set(admin_event.data) == set(event.data)


def test_a_reveal_the_service_refuses_answers_409(client, role_user, monkeypatch):
    from quality.models import QuarantinedRow
    from security import api as security_api
    from security.reveal import RevealRefused

    def refuse(**kwargs):
        raise RevealRefused("revealing is suspended")

    monkeypatch.setattr(security_api, "value_reveal", refuse)
    row = build(QuarantinedRow)
    url = reverse("api-quarantinedrow-reveal", kwargs={"pk": row.pk})
    response = _post(client, url, {"reason": "checking a complaint"}, _auth(role_user("Data Steward")))
    assert response.status_code == 409 and response.json() == {"detail": "revealing is suspended"}


def test_reveal_grants_are_listed_for_auditors_and_filtered(client, role_user):
    steward, other = role_user("Data Steward"), role_user("Data Steward", "steward2")
    from security.reveal import value_reveal

    mine = value_reveal(user=steward, dataset_or_model="quality.quarantinedrow", object_ref="1", reason="a reason")
    theirs = value_reveal(user=other, dataset_or_model="quality.quarantinedrow", object_ref="2", reason="a reason")
    RevealGrant.objects.filter(pk=theirs.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    auditor = _auth(role_user("Auditor"))
    url = reverse("api-revealgrant-list")
    assert client.get(url, **_auth(steward)).status_code == 403  # revealing is not reading others' reveals
    assert _ids(client.get(url, **auditor)) == [theirs.pk, mine.pk]
    assert _ids(client.get(url, {"user": steward.username}, **auditor)) == [mine.pk]
    assert _ids(client.get(url, {"active": "true"}, **auditor)) == [mine.pk]
    assert _ids(client.get(url, {"active": "false"}, **auditor)) == [theirs.pk]
    for bad in ({"active": "soon"}, {"created_after": "x"}, {"expires": "1"}):
        response = client.get(url, bad, **auditor)
        assert response.status_code == 400 and set(bad) <= set(response.json()), (bad, response.content)
    detail = client.get(reverse("api-revealgrant-detail", kwargs={"pk": mine.pk}), **auditor)
    assert detail.status_code == 200 and detail.json()["reason"] == "a reason"
    assert client.delete(reverse("api-revealgrant-detail", kwargs={"pk": mine.pk}), **_auth(
        role_user("Platform Admin"))).status_code == 405  # fmt: skip


# --- destination writers ----------------------------------------------------------------------------------------


def test_destination_writers_are_read_only_as_in_the_admin(client, role_user):
    from approvals.services import destination_register

    admin_user = role_user("Platform Admin")
    b = destination_register(spreadsheet_id="sheet-b", sheet="Report", writer="sales_report", actor=admin_user)
    a = destination_register(spreadsheet_id="sheet-a", sheet="Data", writer="sheetsync:t1", actor=admin_user)
    viewer = _auth(role_user("Viewer"))
    url = reverse("api-destinationwriter-list")
    assert _ids(client.get(url, **viewer)) == [a.pk, b.pk]  # by spreadsheet, sheet
    assert _ids(client.get(url, {"writer": "sales_report"}, **viewer)) == [b.pk]
    bad = client.get(url, {"owner": "x"}, **viewer)
    assert bad.status_code == 400 and "owner" in bad.json()
    detail = client.get(reverse("api-destinationwriter-detail", kwargs={"pk": b.pk}), **viewer).json()
    assert detail["registered_by"] == admin_user.username and detail["writer"] == "sales_report"
    norole = role_user("Viewer", "nobody")
    norole.groups.clear()
    assert client.get(url, **_auth(norole)).status_code == 403
    # The admin's DestinationWriterAdmin adds, changes and deletes nothing: neither does the API.
    admin = _auth(admin_user)
    assert _post(client, url, {"spreadsheet_id": "s", "sheet": "t", "writer": "w"}, admin).status_code == 405
    assert client.delete(reverse("api-destinationwriter-detail", kwargs={"pk": b.pk}), **admin).status_code == 405
    read = _post(client, url, {}, _auth(admin_user, scope="read"))
    assert read.status_code == 403 and "read-only" in read.json()["detail"]
    assert DestinationWriter.objects.count() == 2


# --- a job's cost estimate --------------------------------------------------------------------------------------


def test_a_jobs_estimate_checks_the_form_and_the_right_to_run_it(client, role_user, monkeypatch):
    from connectors.errors import ConnectorTransientError
    from sales import params as sales_params
    from sales import services as sales_services

    analyst = _auth(role_user("Analyst"))
    url = reverse("api-job-estimate", kwargs={"job": "sales_report"})
    assert client.get(url, **_auth(role_user("Viewer"))).status_code == 403
    assert client.get(url, **_auth(role_user("Content Admin"))).status_code == 403  # may not run sales_report
    missing = client.get(url, **analyst)
    assert missing.status_code == 400 and {"start", "end"} <= set(missing.json()), missing.content
    bad = client.get(url, {"start": "2026-01-10", "end": "2026-01-01", "grain": "hour"}, **analyst)
    assert bad.status_code == 400 and "grain" in bad.json(), bad.content
    unknown = client.get(url, {"start": "2026-01-01", "end": "2026-01-02", "colour": "red"}, **analyst)
    assert unknown.status_code == 400 and "colour" in unknown.json()
    assert client.get(reverse("api-job-estimate", kwargs={"job": "no_such_job"}), **analyst).status_code == 404
    no_estimate = client.get(reverse("api-job-estimate", kwargs={"job": "audit_anchor"}),
                             **_auth(role_user("Platform Admin")))  # fmt: skip
    assert no_estimate.status_code == 404 and "no cost estimate" in no_estimate.json()["detail"]

    class Estimate:
        def text(self) -> str:
            return "reads 1 MiB, bills 10 MiB"

        def as_dict(self) -> dict:
            return {"bytes_processed": 1048576, "bytes_billed": 10485760, "over_limit": False}

    seen = {}

    def estimator(*, params):
        seen["params"] = params
        return Estimate()

    def no_data(**kwargs):
        raise ConnectorTransientError("BigQuery unreachable")

    monkeypatch.setattr(sales_params, "sales_data_availability", no_data)
    down = client.get(url, {"start": "2026-01-01", "end": "2026-01-31"}, **analyst)
    assert down.status_code == 400 and "could not ask BigQuery" in str(down.json()), down.content  # as the admin's form

    held = sales_params.DataAvailability(first_day=date(2025, 1, 1), last_day=date(2026, 6, 30), regions=("EU", "US"))
    monkeypatch.setattr(sales_services, "sales_cost_estimate", estimator)
    monkeypatch.setattr(sales_params, "sales_data_availability", lambda **kwargs: held)
    response = client.get(url, {"start": "2026-01-01", "end": "2026-01-31", "grain": "week"}, **analyst)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "job": "sales_report", "text": "reads 1 MiB, bills 10 MiB", "data_error": "",
        "data": {"first_day": "2025-01-01", "last_day": "2026-06-30", "regions": ["EU", "US"]},
        "estimate": {"bytes_processed": 1048576, "bytes_billed": 10485760, "over_limit": False},
    }  # fmt: skip
    assert str(seen["params"]["start"]) == "2026-01-01" and seen["params"]["grain"] == "week"

    def down(*, params):
        raise ConnectorTransientError("BigQuery is down")

    monkeypatch.setattr(sales_services, "sales_cost_estimate", down)
    conflict = client.get(url, {"start": "2026-01-01", "end": "2026-01-31"}, **analyst)
    assert conflict.status_code == 409 and "BigQuery is down" in conflict.json()["detail"]


# --- Airflow ----------------------------------------------------------------------------------------------------


@pytest.fixture
def airflow(settings, monkeypatch):
    """Airflow "configured" at a closed port, its client's calls faked (as tests/airflow/test_dag_guard.py)."""
    from connectors import airflow as connector
    from connectors.airflow import AirflowDag, AirflowDagRun

    settings.AIRFLOW_API_URL = "http://127.0.0.1:9"
    settings.AIRFLOW_PASSWORD = "pw"
    calls: list[tuple[str, bool]] = []
    dags = [
        AirflowDag(dag_id="sheets_sync", is_paused=False, schedule="@hourly", tags=("dataops",), owners=("dataops",),
                   has_import_errors=False),
        AirflowDag(dag_id="looker_cleanup", is_paused=True, schedule="@monthly", tags=("dataops",),
                   owners=("dataops",), has_import_errors=False),
    ]  # fmt: skip
    monkeypatch.setattr(connector.AirflowClient, "dags_list", lambda self, **kw: dags)
    monkeypatch.setattr(
        connector.AirflowClient,
        "dag_runs_recent",
        lambda self, *, dag_id, limit: [AirflowDagRun(dag_id=dag_id, run_id=f"{dag_id}-1", state="success")],
    )
    monkeypatch.setattr(
        connector.AirflowClient, "dag_pause_set", lambda self, *, dag_id, paused: calls.append((dag_id, paused))
    )
    return calls


def test_airflow_dags_are_listed_for_platform_admins(airflow, client, role_user):
    url = reverse("api-airflow-dag-list")
    assert client.get(url, **_auth(role_user("Auditor"))).status_code == 403
    response = client.get(url, **_auth(role_user("Platform Admin")))
    assert response.status_code == 200, response.content
    dags = response.json()["dags"]
    assert [d["dag_id"] for d in dags] == ["looker_cleanup", "sheets_sync"]
    assert dags[0]["destructive"] is True and dags[0]["is_paused"] is True and dags[1]["destructive"] is False
    assert dags[1]["recent_runs"] == [{"run_id": "sheets_sync-1", "state": "success", "start_date": None,
                                       "end_date": None}]  # fmt: skip


def test_pausing_a_dag_is_the_admins_service_and_a_destructive_one_asks_an_approval(airflow, client, role_user):
    pat = role_user("Platform Admin", "pat")
    auth = _auth(pat)
    pause = reverse("api-airflow-dag-pause", kwargs={"dag_id": "sheets_sync"})
    assert _post(client, pause, {}, _auth(role_user("Data Steward"))).status_code == 403
    read = _post(client, pause, {}, _auth(pat, scope="read"))
    assert read.status_code == 403 and "read-only" in read.json()["detail"]
    assert airflow == []
    response = _post(client, pause, {}, auth)
    assert response.status_code == 200, response.content
    assert response.json() == {"dag_id": "sheets_sync", "operation": "pause", "done": True, "approval": None}
    assert airflow == [("sheets_sync", True)]
    events = list(AuditEvent.objects.filter(object_type="airflow.dag").order_by("seq").values_list(
        "object_id", "action", "actor_id", "data"))  # fmt: skip
    assert events == [
        ("sheets_sync", "airflow.dag_pause_requested", pat.pk, {"dag_id": "sheets_sync", "paused": True}),
        ("sheets_sync", "airflow.dag_paused", pat.pk, {"dag_id": "sheets_sync"}),
    ]  # the admin's events (tests/airflow/test_dag_guard.py)

    unpause = reverse("api-airflow-dag-unpause", kwargs={"dag_id": "looker_cleanup"})
    no_reason = _post(client, unpause, {}, auth)
    assert no_reason.status_code == 400 and "reason" in no_reason.json()
    assert not ApprovalRequest.objects.filter(action=DAG_CHANGE_ACTION).exists()
    asked = _post(client, unpause, {"reason": "monthly cleanup resumes"}, auth)
    assert asked.status_code == 202, asked.content
    approval = ApprovalRequest.objects.get(action=DAG_CHANGE_ACTION)
    assert asked.json() == {"dag_id": "looker_cleanup", "operation": "unpause", "done": False,
                            "approval": approval.pk}  # fmt: skip
    assert approval.inputs == {"dag_id": "looker_cleanup", "operation": "unpause"}
    assert approval.requested_by == pat and approval.status == "pending"
    assert airflow == [("sheets_sync", True)]  # nothing done until a second Platform Admin approves
    bad_id = _post(client, reverse("api-airflow-dag-pause", kwargs={"dag_id": "no such dag!"}), {}, auth)
    assert bad_id.status_code == 404


def test_airflow_down_answers_503_and_a_deployment_without_it_409_never_500(settings, client, role_user):
    admin = role_user("Platform Admin")
    auth = _auth(admin)
    url, pause = reverse("api-airflow-dag-list"), reverse("api-airflow-dag-pause", kwargs={"dag_id": "sales_report"})
    settings.AIRFLOW_API_URL = ""  # jobs run through Celery: a state of this deployment, not an outage
    for response in (client.get(url, **auth), _post(client, pause, {}, auth)):
        assert response.status_code == 409 and "not configured" in response.json()["detail"]
    settings.AIRFLOW_API_URL, settings.AIRFLOW_PASSWORD, settings.AIRFLOW_TIMEOUT = "http://127.0.0.1:9", "pw", 2.0
    listed = client.get(url, **auth)
    assert listed.status_code == 503 and "unreachable" in listed.json()["detail"]
    paused = _post(client, pause, {}, auth)
    assert paused.status_code == 503 and "unreachable" in paused.json()["detail"]
    actions = list(AuditEvent.objects.filter(object_type="airflow.dag", object_id="sales_report").order_by("seq")
                   .values_list("action", flat=True))  # fmt: skip
    assert actions == ["airflow.dag_pause_requested", "airflow.dag_pause_failed"]  # audited, as in the admin

"""Issue 10, the rest of the admin through /api/v1/: a sales query's create and delete, every dashboard pin, lineage
datasets and events, the compliance evidence, the sync's spreadsheets and a sync target's test. Each endpoint: the
right role gets the right body, another role 403, a read-scope token 403 on writes, bad input 400 naming the field,
and the writes leave the same audit events as the admin's."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from cleanup.models import DashboardPin, LookerDashboard
from lineage.models import LineageDataset, LineageEvent, LineageIO
from sales.models import QueryRun, SalesQuery
from sheetsync.models import SyncSpreadsheet
from tests.rolewalk.objects import build
from tests.sheetsync.conftest import files, make_target, sheets  # noqa: F401 - fixtures for the target's test
from tests.tokens import api_token_for

pytestmark = pytest.mark.django_db


def _auth(user, scope: str = "write") -> dict:
    return {"HTTP_AUTHORIZATION": f"Token {api_token_for(user, scope=scope)}"}


def _send(client, method: str, url: str, body: dict | None, auth: dict):
    return client.generic(method, url, json.dumps(body or {}), content_type="application/json", **auth)


def _no_role(username: str = "norole"):
    return get_user_model().objects.create_user(username, f"{username}@example.com", "x", is_staff=True)


# --- sales queries: create, edit, delete -------------------------------------------------------------------------

NEW_QUERY = {"name": "revenue-by-region", "title": "Revenue by region",
             "sql": "SELECT region, SUM(revenue) AS revenue FROM sales.order_lines GROUP BY region"}  # fmt: skip


def test_a_sales_query_is_created_as_the_admin_creates_it(client, role_user):
    admin, viewer = role_user("Platform Admin", "pam"), role_user("Viewer", "vic")
    url = reverse("api-salesquery-list")
    assert client.post(url, NEW_QUERY, content_type="application/json").status_code == 401
    assert _send(client, "POST", url, NEW_QUERY, _auth(viewer)).status_code == 403
    assert _send(client, "POST", url, NEW_QUERY, _auth(admin, "read")).status_code == 403
    assert not SalesQuery.objects.exists()
    bad = _send(client, "POST", url, {**NEW_QUERY, "name": "not a slug!"}, _auth(admin))
    assert bad.status_code == 400 and set(bad.json()) == {"name"}
    missing = _send(client, "POST", url, {"name": "x"}, _auth(admin))
    assert missing.status_code == 400 and set(missing.json()) == {"title", "sql"}
    # The model's own check (the admin form's): a classified column would reach the sheet unmasked.
    leak = _send(client, "POST", url, {**NEW_QUERY, "sql": "SELECT customer_email FROM sales.order_lines"},
                 _auth(admin))  # fmt: skip
    assert leak.status_code == 400 and set(leak.json()) == {"sql"} and "customer_email" in leak.json()["sql"][0]
    # SQL that does not even tokenize (an unclosed quote) is judged closed, never a 500 (schemathesis found one).
    unclosed = _send(client, "POST", url, {**NEW_QUERY, "sql": "SELECT `customer_email FROM sales.order_lines"},
                     _auth(admin))  # fmt: skip
    assert unclosed.status_code == 400 and set(unclosed.json()) == {"sql"}
    assert not SalesQuery.objects.exists() and not AuditEvent.objects.filter(action__startswith="sales.").exists()

    created = _send(client, "POST", url, NEW_QUERY, _auth(admin))
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["name"] == "revenue-by-region" and body["active"] is True and body["updated_by"] == "pam"
    query = SalesQuery.objects.get(pk=body["id"])
    assert query.sql == NEW_QUERY["sql"] and query.updated_by == admin
    event = AuditEvent.objects.get(action="sales.query_created", object_id=str(query.pk))
    assert event.actor_label == "pam" and event.data["sql_sha256_before"] is None

    taken = _send(client, "POST", url, NEW_QUERY, _auth(admin))
    assert taken.status_code == 400 and set(taken.json()) == {"name"}

    # The admin's add form, with the same input, records the same event (same fields changed, same SQL hash).
    client.force_login(admin)
    form = {**NEW_QUERY, "name": "revenue-by-region-2", "description": "", "active": "on"}
    assert client.post("/admin/sales/salesquery/add/", form).status_code == 302
    by_admin = AuditEvent.objects.get(action="sales.query_created", object_repr="Revenue by region",
                                      object_id=str(SalesQuery.objects.get(name="revenue-by-region-2").pk))  # fmt: skip
    assert set(by_admin.data) == set(event.data)
    assert by_admin.data["changed"] == event.data["changed"] == ["name", "sql", "title"]
    assert by_admin.data["sql_sha256"] == event.data["sql_sha256"]


def test_a_sales_query_edit_is_validated_and_audited(client, role_user):
    admin = role_user("Platform Admin", "pam")
    query = SalesQuery.objects.create(name="q1", title="Q1", sql="SELECT 1 AS n")
    url = reverse("api-salesquery-detail", kwargs={"pk": query.pk})
    assert _send(client, "PATCH", url, {"title": "x"}, _auth(role_user("Analyst"))).status_code == 403
    assert _send(client, "PATCH", url, {"title": "x"}, _auth(admin, "read")).status_code == 403
    leak = _send(client, "PATCH", url, {"sql": "SELECT * FROM sales.order_lines"}, _auth(admin))
    assert leak.status_code == 400 and set(leak.json()) == {"sql"}
    query.refresh_from_db()
    assert query.sql == "SELECT 1 AS n"
    edited = _send(client, "PATCH", url, {"title": "Q one", "active": False}, _auth(admin))
    assert edited.status_code == 200 and edited.json()["title"] == "Q one" and edited.json()["active"] is False
    event = AuditEvent.objects.get(action="sales.query_changed", object_id=str(query.pk))
    assert event.data["changed"] == ["active", "title"] and event.data["sql_sha256_before"] == event.data["sql_sha256"]


def test_a_sales_query_is_deleted_through_the_audited_service_unless_runs_keep_it(client, role_user):
    admin = role_user("Platform Admin", "pam")
    unused = SalesQuery.objects.create(name="unused", title="Unused", sql="SELECT 1 AS n")
    ran = build(QueryRun).query
    url = reverse("api-salesquery-detail", kwargs={"pk": unused.pk})
    assert _send(client, "DELETE", url, None, _auth(role_user("Data Steward"))).status_code == 403
    assert _send(client, "DELETE", url, None, _auth(admin, "read")).status_code == 403
    kept = _send(client, "DELETE", reverse("api-salesquery-detail", kwargs={"pk": ran.pk}), None, _auth(admin))
    assert kept.status_code == 409 and "1 run(s)" in kept.json()["detail"]
    assert SalesQuery.objects.filter(pk=ran.pk).exists()
    assert not AuditEvent.objects.filter(action="sales.query_deleted").exists()  # rolled back with the refusal
    gone = _send(client, "DELETE", url, None, _auth(admin))
    assert gone.status_code == 204 and not SalesQuery.objects.filter(pk=unused.pk).exists()
    event = AuditEvent.objects.get(action="sales.query_deleted")
    assert event.object_id == str(unused.pk) and event.actor_label == "pam" and event.data["name"] == "unused"
    assert _send(client, "DELETE", url, None, _auth(admin)).status_code == 404


# --- dashboard pins ----------------------------------------------------------------------------------------------


def test_every_pin_is_listed_with_the_admins_filters(client, role_user):
    cora, other = role_user("Content Admin", "cora"), role_user("Content Admin", "carl")
    sales, ops = build(LookerDashboard), build(LookerDashboard)
    now = timezone.now()
    holding = DashboardPin.objects.create(dashboard=sales, reason="board", expires_at=now + timedelta(days=9),
                                          created_by=cora)  # fmt: skip
    later = DashboardPin.objects.create(dashboard=ops, reason="audit", expires_at=now + timedelta(days=30),
                                        created_by=other)  # fmt: skip
    expired = DashboardPin.objects.create(dashboard=sales, reason="old", expires_at=now - timedelta(days=1),
                                          created_by=cora)  # fmt: skip
    url = reverse("api-dashboardpin-list")
    assert client.get(url, **_auth(_no_role(), "read")).status_code == 403
    viewer = _auth(role_user("Viewer"), "read")
    listed = client.get(url, **viewer).json()
    assert [p["id"] for p in listed["results"]] == [later.pk, holding.pk, expired.pk]  # latest expiry first
    old = listed["results"][2]
    assert old == {"id": expired.pk, "looker_id": sales.looker_id, "reason": "old", "expires_at": old["expires_at"],
                   "active": False, "created_by": "cora", "created_at": old["created_at"]}  # fmt: skip
    assert datetime.fromisoformat(old["expires_at"]) == expired.expires_at
    ids = lambda q: [p["id"] for p in client.get(url + q, **viewer).json()["results"]]  # noqa: E731
    assert ids("?active=true") == [later.pk, holding.pk]
    assert ids("?active=false") == [expired.pk]
    assert ids(f"?dashboard={sales.looker_id}") == [holding.pk, expired.pk]
    assert ids("?created_by=carl") == [later.pk]
    assert ids("?search=board") == [holding.pk]
    bad = client.get(url + "?active=maybe", **viewer)
    assert bad.status_code == 400 and "active" in bad.json()
    nul = client.get(url + "?search=a%00b", **viewer)  # DRF's own answer was a bare list, not naming the field
    assert nul.status_code == 400 and nul.json() == {"search": "null characters are not allowed"}
    assert client.post(url, {}, **_auth(role_user("Content Admin", "cora"))).status_code == 405


# --- lineage: datasets and events --------------------------------------------------------------------------------


def _event(kind: str, job: str, run: str, at: datetime, reads=(), writes=()) -> LineageEvent:
    event = LineageEvent.objects.create(event_type=kind, event_time=at, run_id=run, job_namespace="dataops",
                                        job_name=job, payload={"eventType": kind, "run": {"runId": run}})  # fmt: skip
    for direction, datasets in (("input", reads), ("output", writes)):
        for d in datasets:
            LineageIO.objects.create(event=event, dataset=d, direction=direction, event_time=at, run_id=run)
    return event


def test_lineage_datasets_and_events_read_only_with_filters_and_cursor_pages(client, role_user):
    orders = LineageDataset.objects.create(namespace="bigquery", name="proj.sales.order_lines")
    report = LineageDataset.objects.create(namespace="dataops", name="sales.report")
    sheet = LineageDataset.objects.create(namespace="sheets", name="budget")
    t0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
    start = _event("START", "sales_report", "r1", t0)
    done = _event("COMPLETE", "sales_report", "r1", t0 + timedelta(minutes=5), reads=[orders], writes=[report])
    synced = _event("COMPLETE", "sheets_sync", "r2", t0 + timedelta(days=1), reads=[report], writes=[sheet])
    viewer = _auth(role_user("Viewer"), "read")
    datasets, events = reverse("api-lineagedataset-list"), reverse("api-lineageevent-list")
    assert client.get(datasets, **_auth(_no_role(), "read")).status_code == 403
    assert client.get(events, **_auth(_no_role("nobody"), "read")).status_code == 403
    listed = client.get(datasets, **viewer).json()
    assert [d["name"] for d in listed["results"]] == ["proj.sales.order_lines", "sales.report", "budget"]
    assert [d["id"] for d in client.get(datasets + "?namespace=sheets", **viewer).json()["results"]] == [sheet.pk]
    assert [d["id"] for d in client.get(datasets + "?search=sales", **viewer).json()["results"]] == [
        orders.pk, report.pk]  # fmt: skip
    one = client.get(reverse("api-lineagedataset-detail", kwargs={"pk": report.pk}), **viewer).json()
    assert one["namespace"] == "dataops" and one["name"] == "sales.report"

    page = client.get(events + "?page_size=2", **viewer).json()
    assert [e["id"] for e in page["results"]] == [synced.pk, done.pk] and "payload" not in page["results"][0]
    rest = client.get(page["next"], **viewer).json()
    assert [e["id"] for e in rest["results"]] == [start.pk] and rest["next"] is None
    ids = lambda q: [e["id"] for e in client.get(events + q, **viewer).json()["results"]]  # noqa: E731
    assert ids("?job=sales_report") == [done.pk, start.pk]
    assert ids("?run=r2") == [synced.pk]
    assert ids("?event_type=START") == [start.pk]
    after, before = (t0 + timedelta(minutes=1)).isoformat(), (t0 + timedelta(hours=1)).isoformat()
    assert ids(f"?event_time_after={after.replace('+', '%2B')}&event_time_before={before.replace('+', '%2B')}") == [
        done.pk]  # fmt: skip
    bad = client.get(events + "?event_time_after=yesterday", **viewer)
    assert bad.status_code == 400 and "event_time_after" in bad.json()
    detail = client.get(reverse("api-lineageevent-detail", kwargs={"pk": done.pk}), **viewer).json()
    assert detail["payload"] == {"eventType": "COMPLETE", "run": {"runId": "r1"}}
    assert {(d["name"], d["direction"]) for d in detail["datasets"]} == {
        ("proj.sales.order_lines", "input"), ("sales.report", "output")}  # fmt: skip
    assert _send(client, "POST", events, {}, _auth(role_user("Platform Admin"))).status_code == 405


# --- compliance evidence -----------------------------------------------------------------------------------------


def test_compliance_evidence_as_json_or_csv_audited_as_in_the_admin(client, role_user):
    auditor = role_user("Auditor", "aude")
    auth = _auth(auditor, "read")
    url = lambda report: reverse("api-compliance-evidence", kwargs={"report": report})  # noqa: E731
    SalesQuery.objects.create(name="q1", title="Q1", sql="SELECT 1 AS n")
    from sales.services import sales_query_save

    sales_query_save(query=SalesQuery.objects.get(name="q1"), actor=auditor, created=False, changed_fields=["sql"])
    assert client.get(url("sox")).status_code == 401
    assert client.get(url("sox"), **_auth(role_user("Viewer"), "read")).status_code == 403
    assert client.get(url("nope"), **auth).status_code == 404
    bad = client.get(url("sox") + "?format=xml", **auth)
    assert bad.status_code == 400 and "format" in bad.json()
    assert not AuditEvent.objects.filter(action="privacy.evidence_exported").exists()

    sox = client.get(url("sox"), **auth)
    assert sox.status_code == 200, sox.content[:300]
    body = sox.json()
    assert body["report"] == "sox" and body["title"] == "SOX change-management evidence"
    assert body["headers"][:4] == ["seq", "at", "category", "action"]
    queries = [r for r in body["rows"] if r[2] == "query"]  # (role grants made by the test are rows too)
    assert [(r[3], r[6]) for r in queries] == [("sales.query_changed", "aude")]
    assert body["chain"]["ok"] is True and body["chain"]["text"].startswith("intact up to #")
    assert body["chain"]["broken_seq"] is None
    event = AuditEvent.objects.get(action="privacy.evidence_exported")
    assert event.actor_label == "aude" and event.object_id == "sox"
    assert event.data == {"report": "sox", "format": "json", "rows": len(body["rows"]), "chain_ok": True,
                          "chain_seq": event.data["chain_seq"]}  # fmt: skip

    access = client.get(url("access") + "?format=json", **auth)
    assert access.status_code == 200 and access.json()["report"] == "access" and access.json()["headers"][2] == "reader"
    gdpr = client.get(url("gdpr") + "?format=csv", **_auth(role_user("Data Protection", "dora"), "read"))
    assert gdpr.status_code == 200 and gdpr["Content-Type"].startswith("text/csv")
    assert gdpr["Content-Disposition"].startswith('attachment; filename="evidence-gdpr-')
    lines = list(csv.reader(io.StringIO(gdpr.content.decode())))
    assert lines[0][0] == "# GDPR record of processing" and lines[1][0].startswith("# audit chain: intact")
    assert lines[2][0] == "dataset" and any(row[0] == "quality.quarantinedrow" for row in lines[3:])

    # The admin's evidence page records the same event for the same export.
    client.force_login(auditor)
    assert client.get("/admin/privacy/subjectrequest/evidence/?report=gdpr&format=csv").status_code == 200
    api_csv, admin_csv = AuditEvent.objects.filter(action="privacy.evidence_exported", object_id="gdpr").order_by("seq")
    assert api_csv.actor_label == "dora" and admin_csv.actor_label == "aude"
    assert {k: v for k, v in api_csv.data.items() if k != "chain_seq"} == {
        k: v for k, v in admin_csv.data.items() if k != "chain_seq"} == {
        "report": "gdpr", "format": "csv", "rows": admin_csv.data["rows"], "chain_ok": True}  # fmt: skip


# --- the sync's spreadsheets and a target's test ----------------------------------------------------------------


def test_sync_spreadsheets_are_listed_read_only(client, role_user):
    live = SyncSpreadsheet.objects.create(spreadsheet_id="b-live", drive_version=7)
    trashed = SyncSpreadsheet.objects.create(spreadsheet_id="a-trashed", trashed=True, deleted_at=timezone.now())
    viewer = _auth(role_user("Viewer"), "read")
    url = reverse("api-syncspreadsheet-list")
    assert client.get(url, **_auth(_no_role(), "read")).status_code == 403
    listed = client.get(url, **viewer).json()["results"]
    assert [s["spreadsheet_id"] for s in listed] == ["a-trashed", "b-live"]
    assert [s["id"] for s in client.get(url + "?trashed=false", **viewer).json()["results"]] == [live.pk]
    assert client.get(url + "?trashed=perhaps", **viewer).status_code == 400
    one = client.get(reverse("api-syncspreadsheet-detail", kwargs={"pk": trashed.pk}), **viewer).json()
    assert one["trashed"] is True and one["drive_version"] is None and one["deleted_at"]


def test_a_target_test_reads_the_source_and_sheet_and_writes_nothing(client, role_user, make_target, sheets):  # noqa: F811
    target = make_target("t1", [[1, "EMEA", 10.0], [2, "APAC", 20.0]])
    before = sheets.store.values("s1", "Sheet1")
    url = reverse("api-synctarget-test", kwargs={"pk": target.pk})
    steward = role_user("Data Steward", "stew")
    viewer, read, write = _auth(role_user("Viewer")), _auth(steward, "read"), _auth(steward)
    events = AuditEvent.objects.count()  # (users and tokens made above are audited)
    assert client.post(url).status_code == 401
    assert client.post(url, **viewer).status_code == 403
    assert client.post(url, **read).status_code == 403
    assert client.post(reverse("api-synctarget-test", kwargs={"pk": 999999}), **write).status_code == 404
    found = client.post(url, **write)
    assert found.status_code == 200, found.content[:500]
    body = found.json()
    # What the admin's test page says for the same target: 9 cells, 2 rows added, nothing removed or kept.
    assert body["error"] == "" and body["cells"] == 9 and body["rows_added"] == 2
    assert body["rows_removed"] == 0 and body["rows_kept"] == 0 and body["source_total"] == 2
    assert [r[1] for r in body["source_rows"]] == ["EMEA", "APAC"]
    assert body["writes"][0]["cell"] == "A1" and body["writes"][0]["now"] == ""
    assert sheets.store.values("s1", "Sheet1") == before and AuditEvent.objects.count() == events

    target.source_file = target.source_file + ".missing"
    target.save(update_fields=["source_file"])
    broken = client.post(url, **write).json()
    assert broken["error"].startswith("the source could not be read") and broken["cells"] == 0


def test_one_pin_is_changed_and_removed_through_the_admins_pin_service(client, role_user):
    from datetime import timedelta

    from django.utils import timezone

    from cleanup.models import DashboardPin, LookerDashboard
    from tests.rolewalk.objects import build

    pin = DashboardPin.objects.create(dashboard=build(LookerDashboard), reason="board pack",
                                      expires_at=timezone.now() + timedelta(days=10))  # fmt: skip
    url = reverse("api-dashboardpin-detail", kwargs={"pk": pin.pk})
    content, viewer = role_user("Content Admin", "cora"), role_user("Viewer")
    assert client.get(url, **_auth(viewer)).json()["reason"] == "board pack"
    assert _send(client, "PATCH", url, {"reason": "x"}, _auth(viewer)).status_code == 403
    assert _send(client, "PATCH", url, {"reason": "x"}, _auth(content, "read")).status_code == 403
    past = _send(client, "PATCH", url, {"expires_at": "2001-01-01T00:00:00Z"}, _auth(content))
    assert past.status_code == 400 and set(past.json()) == {"expires_at"}
    later = (timezone.now() + timedelta(days=40)).isoformat()
    changed = _send(client, "PATCH", url, {"reason": "quarterly pack", "expires_at": later}, _auth(content))
    assert changed.status_code == 200 and changed.json()["reason"] == "quarterly pack" and changed.json()["active"]
    event = AuditEvent.objects.get(action="cleanup.dashboardpin_changed", object_id=str(pin.pk))
    assert event.actor_label == "cora" and event.data["reason"] == "quarterly pack"
    assert client.delete(url, **_auth(viewer)).status_code == 403
    assert client.delete(url, **_auth(content)).status_code == 204
    assert not DashboardPin.objects.filter(pk=pin.pk).exists()
    assert AuditEvent.objects.filter(action="cleanup.dashboardpin_deleted", object_id=str(pin.pk)).exists()


def test_a_target_test_whose_emulator_cannot_start_answers_the_error_not_a_500(
    client, role_user, settings, monkeypatch
):
    import sandbox.runner
    from sheetsync.models import SyncTarget

    def no_emulator(name: str, **kwargs):
        raise RuntimeError(f"the {name} emulator did not become healthy")

    settings.BIGQUERY_EMULATOR_AUTOSTART = True
    monkeypatch.setattr(sandbox.runner, "ensure_running", no_emulator)
    target = SyncTarget.objects.create(name="bq-target", spreadsheet_id="s1", range="T!A1", source_kind="bigquery",
                                       source_query="SELECT 1 AS id", key_columns="id")  # fmt: skip
    answer = _send(client, "POST", reverse("api-synctarget-test", kwargs={"pk": target.pk}), {},
                   _auth(role_user("Data Steward")))  # fmt: skip
    assert answer.status_code == 200, answer.content
    assert "bigquery emulator is not available" in answer.json()["error"]
    client.force_login(role_user("Data Steward", "steward2"))  # the admin's test page: the same, not a 500
    page = client.post(reverse("admin:sheetsync_synctarget_test", args=[target.pk]))
    assert page.status_code == 200 and "emulator is not available" in page.content.decode()

"""Governance actions as lineage (restore, approval, quarantine release, a failed run), the admin's lineage page
and the graph API (401/403/404/400 before the graph)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from lineage.models import LineageDataset, LineageEvent
from orchestration.models import JobRun
from tests.cleanup.test_cleanup_job import run_job
from tests.cleanup.test_restore import restore_via_admin
from tests.sales.test_sales_job import OCTOBER

pytestmark = pytest.mark.django_db
API = "/api/v1/lineage/graph/"


@pytest.fixture
def cleaned(looker):
    assert run_job("looker_cleanup")[0] == 0
    return JobRun.objects.get()


def test_a_restore_ties_the_dashboard_to_the_person_who_asked(looker, cleaned, client, content_admin):
    restore_via_admin(client, content_admin, ["102"])
    event = LineageEvent.objects.get(job_name="governance.restore")
    governance = event.payload["run"]["facets"]["governance"]
    assert governance["action"] == "restore" and governance["actor"] == content_admin.username
    assert event.actor == content_admin.username
    assert [o["name"] for o in event.payload["outputs"]] == ["dashboards/102"]
    # The soft delete before it named the run that did it, and the run's principal.
    soft = LineageEvent.objects.get(job_name="governance.soft_delete", payload__outputs__0__name="dashboards/102")
    assert soft.job_run_id == cleaned.pk and soft.payload["run"]["facets"]["parent"]["job"]["name"] == "looker_cleanup"


def test_an_approval_is_a_governance_event_of_its_approver(role_user, django_capture_on_commit_callbacks):
    from approvals.actions import roles_grant_request
    from approvals.services import approval_approve

    admin = role_user("Platform Admin", username="pat")
    paula = role_user("Platform Admin", username="paula")
    grantee = get_user_model().objects.create_user("sam", "sam@example.com", "pw", is_staff=True)
    request = roles_grant_request(user=grantee, roles=["Data Steward"], actor=admin, reason="new steward")
    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=request.pk, actor=paula)
    event = LineageEvent.objects.get(job_name="governance.approval")
    governance = event.payload["run"]["facets"]["governance"]
    assert governance["actor"] == "paula" and governance["details"]["approved"] is True
    assert governance["objectType"] == "approvals.approvalrequest" and governance["objectId"] == str(request.pk)
    assert event.payload["outputs"][0]["namespace"].startswith("dataops://")


def test_a_quarantine_release_names_the_warehouse_table(role_user):
    from lineage.services import lineage_quarantine_release
    from quality.models import QualityRun, QuarantinedRow

    steward = role_user("Data Steward", username="stew")
    quality = QualityRun.objects.create(dataset="sales.order_lines", rows=10, score=90.0, gate="review")
    row = QuarantinedRow.objects.create(quality_run=quality, dataset="sales.order_lines", row_key="o1|1", data={})
    lineage_quarantine_release(rows=[row], actor=steward, counts={"passed": 1, "still_failing": 0})
    event = LineageEvent.objects.get(job_name="governance.quarantine_release")
    assert event.actor == "stew"
    assert event.payload["outputs"][0]["namespace"] == "bigquery"
    assert event.payload["outputs"][0]["name"].endswith(".sales.order_lines")
    # Nothing released, nothing to record.
    lineage_quarantine_release(rows=[row], actor=steward, counts={"passed": 0, "still_failing": 1})
    assert LineageEvent.objects.filter(job_name="governance.quarantine_release").count() == 1


def test_a_refused_run_fails_with_its_error_message(bigquery, sheet, settings):
    settings.SALES_MAX_BYTES = 1024
    code, out = run_job(*OCTOBER)
    assert code == 1
    fail = LineageEvent.objects.get(job_name="sales_report", event_type="FAIL").payload
    assert "refused before running" in fail["run"]["facets"]["errorMessage"]["message"]
    assert fail["run"]["facets"]["errorMessage"]["programmingLanguage"] == "python"
    stages = LineageEvent.objects.filter(job_name__startswith="sales_report.", event_type="ABORT")
    assert stages.count() == 4


def test_the_graph_api_checks_before_it_answers(looker, cleaned, client, role_user):
    dashboard = LineageDataset.objects.get(namespace__startswith="looker://", name="dashboards/102")
    params = {"namespace": dashboard.namespace, "name": dashboard.name}
    assert client.get(API, params).status_code in (401, 403)  # not logged in
    nobody = get_user_model().objects.create_user("nobody", "n@example.com", "pw", is_staff=True)
    client.force_login(nobody)
    assert client.get(API, params).status_code == 403
    client.force_login(role_user("Viewer", username="vic"))
    assert client.get(API, {"namespace": dashboard.namespace}).status_code == 400
    assert client.get(API, {**params, "date": "1 November"}).status_code == 400
    assert client.get(API, {**params, "name": "dashboards/nope"}).status_code == 404
    body = client.get(API, params).json()
    kinds = {(n["kind"], n["label"]) for n in body["nodes"]}
    assert ("run", f"looker_cleanup #{cleaned.pk}") in kinds and ("dataset", "dashboards/102") in kinds
    assert any(n["kind"] == "person" for n in body["nodes"]) and body["edges"]
    assert all(e["source"] in {n["id"] for n in body["nodes"]} for e in body["edges"])
    other_day = client.get(API, {**params, "date": "2026-11-01"}).json()
    assert [
        n for n in other_day["nodes"] if n["kind"] == "run"
    ] == [] or timezone.localdate().isoformat() == "2026-11-01"


def test_the_admin_draws_the_dashboard_lineage_as_svg_links(
    looker, cleaned, client, role_user, django_assert_max_num_queries
):
    dashboard = LineageDataset.objects.get(namespace__startswith="looker://", name="dashboards/102")
    client.force_login(role_user("Viewer", username="vic"))
    url = f"/admin/lineage/lineagedataset/{dashboard.pk}/change/"
    with django_assert_max_num_queries(60):
        response = client.get(url)
    html = response.content.decode()
    assert response.status_code == 200
    start = html.index('class="lineage-graph"')
    svg = html[start : html.index("</svg>", start)]
    assert "<script" not in svg and "http" not in svg.replace("http://www.w3.org/2000/svg", "")
    links = re.findall(r'<a href="([^"]+)" class="node node-(\w+)', svg)
    kinds = {k for _, k in links}
    assert kinds == {"dataset", "run", "person"}
    assert f"/admin/orchestration/jobrun/{cleaned.pk}/change/" in [h for h, _ in links]
    assert "looker_cleanup #" in svg and "dashboards/102" in svg
    # Another day: no run; a bad date: said so, every run shown.
    assert "No run read or wrote this dataset on" in client.get(url, {"date": "2001-01-01"}).content.decode()
    bad = client.get(url, {"date": "yesterday"}).content.decode()
    assert "is not a date" in bad and 'class="lineage-graph"' in bad


def test_an_openlineage_yml_file_transport_receives_the_events(role_user, tmp_path, monkeypatch):
    """The library's own configuration file (OPENLINEAGE_CONFIG) picks the destination: here a JSON-lines file."""
    import json
    from datetime import timedelta

    from lineage.models import LineageOutbox
    from lineage.services import lineage_outbox_deliver, lineage_quarantine_release
    from quality.models import QualityRun, QuarantinedRow

    log = tmp_path / "events.jsonl"
    config = tmp_path / "openlineage.yml"
    config.write_text(f"transport:\n  type: file\n  log_file_path: {log}\n  append: true\n")
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    monkeypatch.setenv("OPENLINEAGE_CONFIG", str(config))
    steward = role_user("Data Steward", username="stew")
    quality = QualityRun.objects.create(dataset="sales.order_lines", rows=1, score=90.0, gate="review")
    row = QuarantinedRow.objects.create(quality_run=quality, dataset="sales.order_lines", row_key="o1|1", data={})
    lineage_quarantine_release(rows=[row], actor=steward, counts={"passed": 1, "still_failing": 0})
    assert LineageOutbox.objects.get().status == "pending"
    assert lineage_outbox_deliver(now=timezone.now() + timedelta(minutes=1))["delivered"] == 1
    (line,) = log.read_text().splitlines()
    assert json.loads(line) == LineageEvent.objects.get().payload
    # Nothing configured: events are only stored, nothing waits for delivery.
    monkeypatch.delenv("OPENLINEAGE_CONFIG")
    lineage_quarantine_release(rows=[row], actor=steward, counts={"passed": 1, "still_failing": 0})
    assert LineageEvent.objects.count() == 2 and LineageOutbox.objects.count() == 1

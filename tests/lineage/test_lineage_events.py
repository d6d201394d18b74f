"""Lineage end to end: real job runs emit OpenLineage events through openlineage-python's HTTP transport to a
local receiver; each event validates against the vendored spec; the graph follows datasets across runs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from openlineage.client.uuid import generate_static_uuid
from werkzeug import Response

from lineage.models import LineageDataset, LineageEvent, LineageOutbox
from lineage.naming import airflow_namespace
from lineage.selectors import lineage_graph
from lineage.services import lineage_outbox_deliver
from orchestration.models import JobRun
from tests.cleanup.test_cleanup_job import run_job
from tests.lineage.validation import registry, validate_event
from tests.looker_estate import EXPECTED_PLAN, OWNER_EMAIL
from tests.sales.test_sales_job import OCTOBER

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(httpserver, monkeypatch):
    """An OpenLineage backend on loopback (Marquez's endpoint), configured the library's way: OPENLINEAGE_URL."""
    received: list[dict] = []

    def handle(request):
        received.append(json.loads(request.data))
        return Response("{}", status=201, content_type="application/json")

    httpserver.expect_request("/api/v1/lineage", method="POST").respond_with_handler(handle)
    monkeypatch.setenv("OPENLINEAGE_URL", httpserver.url_for("/").rstrip("/"))
    monkeypatch.delenv("OPENLINEAGE_CONFIG", raising=False)
    return received


def deliver_all() -> dict[str, int]:
    return lineage_outbox_deliver(now=timezone.now() + timedelta(days=1))


def test_every_sales_event_reaches_the_receiver_and_is_valid_openlineage(bigquery, sheet, receiver):
    code, out = run_job(*OCTOBER)
    assert code == 0, out
    stored = list(LineageEvent.objects.order_by("pk"))
    assert LineageOutbox.objects.filter(status="pending").count() == len(stored)
    assert deliver_all()["delivered"] == len(stored)
    assert not LineageOutbox.objects.exclude(status="delivered").exists()
    # In event-time order (the publish, inside the run, comes before its COMPLETE), each stored event once.
    assert sorted(json.dumps(e, sort_keys=True) for e in receiver) == sorted(
        json.dumps(e.payload, sort_keys=True) for e in stored
    )
    reg = registry(settings.SITE_URL)
    for event in receiver:
        validate_event(event, site_url=settings.SITE_URL, reg=reg)

    by_job = {(e["job"]["name"], e["eventType"]) for e in receiver}
    assert {("sales_report", "START"), ("sales_report", "COMPLETE")} <= by_job
    for stage in ("extraction", "transformation", "validation", "loading"):
        assert (f"sales_report.{stage}", "START") in by_job and (f"sales_report.{stage}", "COMPLETE") in by_job
    complete = next(e for e in receiver if e["job"]["name"] == "sales_report" and e["eventType"] == "COMPLETE")
    run = JobRun.objects.get()
    facets = complete["run"]["facets"]
    assert facets["dataops"]["jobRunId"] == run.pk
    assert int(facets["queryCost"]["bytesBilled"]) == run.counters["bytes_billed"]
    assert complete["job"]["facets"]["sql"]["query"].count("`fx.usd_rates`") == 1
    lines = next(i for i in complete["inputs"] if i["name"].endswith(".sales.order_lines"))
    assert lines["namespace"] == "bigquery" and lines["name"] == f"{settings.GOOGLE_CLOUD_PROJECT}.sales.order_lines"
    assertions = lines["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert assertions and all("success" in a for a in assertions)
    assert lines["inputFacets"]["dataQualityMetrics"]["rowCount"] == run.counters["lines_checked"]
    # Each stage is a child of the job's run, with its rows and outcome.
    stage_events = [
        e for e in receiver if e["job"]["name"].startswith("sales_report.") and e["eventType"] == "COMPLETE"
    ]
    for event in stage_events:
        parent = event["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == complete["run"]["runId"] and parent["job"]["name"] == "sales_report"
        assert event["run"]["facets"]["stage"]["outcome"] == "succeeded"
    transformation = next(e for e in stage_events if e["job"]["name"] == "sales_report.transformation")
    assert transformation["run"]["facets"]["stage"]["rowsOut"] == len(run.query_runs.get(purpose="report").report.rows)
    assert transformation["run"]["facets"]["stage"]["durationSeconds"] > 0
    # The publish is a governance event: the sheet, the person (the run's principal) and the run.
    publish = next(e for e in receiver if e["job"]["name"] == "governance.publish")
    assert publish["outputs"] == [
        {"namespace": "sheets://sales-dash", "name": "Report!A:D", "facets": {}, "outputFacets": {}}
    ] or (publish["outputs"][0]["namespace"] == "sheets://sales-dash" and publish["outputs"][0]["name"] == "Report!A:D")
    assert publish["run"]["facets"]["governance"]["jobRunId"] == run.pk
    assert publish["run"]["facets"]["parent"]["run"]["runId"] == complete["run"]["runId"]


def test_the_sheet_traces_back_to_order_lines_and_usd_rates_with_column_lineage(bigquery, sheet):
    code, out = run_job(*OCTOBER)
    assert code == 0, out
    sheet_ds = LineageDataset.objects.get(namespace="sheets://sales-dash", name="Report!A:D")
    today = timezone.localdate()
    graph = lineage_graph(dataset=sheet_ds, day=today)
    runs = [n for n in graph.nodes.values() if n.kind == "run"]
    upstream = {n.label for n in graph.nodes.values() if n.kind == "dataset" and n.level < 0}
    project = settings.GOOGLE_CLOUD_PROJECT
    assert {f"{project}.sales.order_lines", f"{project}.fx.usd_rates"} <= upstream
    assert any(r.label.startswith("sales_report #") for r in runs)
    # "What fed the sheet on 1 November?" Nothing: this run was today.
    assert not [n for n in lineage_graph(dataset=sheet_ds, day=date(2026, 11, 1)).nodes.values() if n.kind == "run"]
    # Column lineage: each report column from its source columns.
    complete = LineageEvent.objects.get(job_name="sales_report", event_type="COMPLETE").payload
    out = next(o for o in complete["outputs"] if o["namespace"] == "sheets://sales-dash")
    fields = out["facets"]["columnLineage"]["fields"]
    feeds = {
        col: {(f["name"].rsplit(".", 1)[-1], f["field"]) for f in spec["inputFields"]} for col, spec in fields.items()
    }
    assert feeds["revenue"] >= {("order_lines", "revenue"), ("usd_rates", "usd_per_unit")}
    assert feeds["orders"] == {("order_lines", "order_id")}
    assert feeds["day"] == {("order_lines", "order_ts")}
    assert {f["name"] for f in out["facets"]["schema"]["fields"]} == {"day", "region", "orders", "revenue"}


def test_a_cleanup_run_graph_shows_each_dashboard_its_backup_and_the_owner_mail(looker, content_admin):
    code, out = run_job("looker_cleanup")
    assert code == 0, out
    run = JobRun.objects.get()
    complete = LineageEvent.objects.get(job_name="looker_cleanup", event_type="COMPLETE")
    outputs = {(o["namespace"], o["name"]) for o in complete.payload["outputs"]}
    assert ("mailto://" + OWNER_EMAIL.split("@")[1].lower(), OWNER_EMAIL.lower()) in outputs
    for looker_id in EXPECTED_PLAN:
        dashboard = LineageDataset.objects.get(namespace__startswith="looker://", name=f"dashboards/{looker_id}")
        graph = lineage_graph(dataset=dashboard)
        labels = {(n.kind, n.label) for n in graph.nodes.values()}
        assert ("run", f"looker_cleanup #{run.pk}") in labels
        backup = run.cleanup_actions.get(dashboard__looker_id=looker_id).backup
        assert any(k == "dataset" and label.endswith(backup.storage_name) for k, label in labels)
        assert ("dataset", OWNER_EMAIL.lower()) in labels
        # The soft delete: a governance event ties the dashboard to the run and its person.
        soft = [n for n in graph.nodes.values() if n.kind == "run" and n.label.startswith("governance.soft_delete")]
        assert soft and any(e.kind == "actor" for e in graph.edges if e.target == soft[0].id)
    governance = LineageEvent.objects.filter(job_name="governance.soft_delete")
    assert governance.count() == len(EXPECTED_PLAN)
    assert all(e.payload["run"]["facets"]["governance"]["jobRunId"] == run.pk for e in governance)


def test_an_airflow_triggered_run_has_its_dag_run_as_parent(bigquery, sheet):
    dag_run_id = "manual__2026-11-01T06:00:00+00:00"
    code, out = run_job(*OCTOBER, "--trigger", "airflow", "--airflow-dag-id", "sales_report",
                        "--airflow-dag-run-id", dag_run_id)  # fmt: skip
    assert code == 0, out
    namespace = airflow_namespace()
    assert namespace.startswith("airflow://")
    expected = str(
        generate_static_uuid(instant=datetime(2026, 11, 1, 6, tzinfo=UTC), data=f"{namespace}.sales_report.0".encode())
    )
    for event in LineageEvent.objects.filter(job_name="sales_report"):
        parent = event.payload["run"]["facets"]["parent"]
        assert (parent["job"]["namespace"], parent["job"]["name"]) == (namespace, "sales_report")
        assert parent["run"]["runId"] == expected
    stage = LineageEvent.objects.filter(job_name="sales_report.loading").first().payload
    assert stage["run"]["facets"]["parent"]["root"]["run"]["runId"] == expected


def test_a_failing_receiver_never_fails_the_job_and_is_retried(bigquery, sheet, httpserver, monkeypatch, settings):
    settings.LINEAGE_DELIVERY_MAX_ATTEMPTS = 2
    httpserver.expect_request("/api/v1/lineage").respond_with_data("down", status=503)
    monkeypatch.setenv("OPENLINEAGE_URL", httpserver.url_for("/").rstrip("/"))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "http")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__URL", httpserver.url_for("/").rstrip("/"))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__RETRY", json.dumps({"total": 0}))
    code, out = run_job(*OCTOBER)
    assert code == 0, out
    assert JobRun.objects.get().status == "succeeded"
    first = deliver_all()
    assert first["delivered"] == 0 and first["retrying"] == LineageOutbox.objects.count() > 0
    row = LineageOutbox.objects.first()
    assert row.attempts == 1 and "503" in row.last_error and row.next_attempt_at > timezone.now()
    assert deliver_all()["failed"] == LineageOutbox.objects.count()
    # Back up: an admin's retry makes them due again and they are delivered.
    httpserver.clear()
    httpserver.expect_request("/api/v1/lineage").respond_with_data("{}", status=201)
    from django.contrib.auth import get_user_model

    from lineage.services import lineage_outbox_retry

    admin = get_user_model().objects.create_superuser("ops", "ops@example.com", "x")
    assert lineage_outbox_retry(rows=LineageOutbox.objects.all(), actor=admin) == LineageOutbox.objects.count()
    assert deliver_all()["delivered"] == LineageOutbox.objects.count()


def test_lineage_never_breaks_the_job_when_storing_fails(bigquery, sheet, monkeypatch):
    import lineage.services

    def broken(**kwargs):
        raise RuntimeError("lineage store down")

    monkeypatch.setattr(lineage.services, "lineage_event_store", broken)
    monkeypatch.setattr("lineage.transport.DatabaseTransport.emit", lambda self, event: broken())
    code, out = run_job(*OCTOBER)
    assert code == 0, out
    assert JobRun.objects.get().status == "succeeded" and not LineageEvent.objects.exists()


def test_a_retry_of_many_deliveries_audits_every_id_and_leaves_delivered_ones_alone():
    from django.contrib.auth import get_user_model

    from audit.models import AuditEvent
    from lineage.models import LineageEvent
    from lineage.services import lineage_outbox_retry

    event = LineageEvent.objects.create(event_type="COMPLETE", event_time=timezone.now(), payload={})
    LineageOutbox.objects.bulk_create(
        LineageOutbox(event=event, status=LineageOutbox.Status.FAILED, next_attempt_at=timezone.now())
        for _ in range(120)
    )
    rows = list(LineageOutbox.objects.order_by("pk"))
    LineageOutbox.objects.filter(pk=rows[0].pk).update(status=LineageOutbox.Status.DELIVERED)  # delivered meanwhile
    admin = get_user_model().objects.create_superuser("ops", "ops@example.com", "x")
    assert lineage_outbox_retry(rows=rows, actor=admin) == 119
    assert LineageOutbox.objects.get(pk=rows[0].pk).status == LineageOutbox.Status.DELIVERED
    audited = list(AuditEvent.objects.filter(action="lineage.delivery_retried").order_by("seq"))
    assert [e.data["count"] for e in audited] == [100, 19]  # one event per 100 ids: each list kept whole
    assert [pk for e in audited for pk in e.data["ids"]] == [r.pk for r in rows[1:]]
    assert all(len(e.object_id) <= 255 for e in audited) and audited[0].object_id.startswith(f"{rows[1].pk},")


def test_unconfigured_events_are_stored_exactly_as_the_client_would_store_them(monkeypatch, tmp_path):
    """Without openlineage-python's configuration, lineage.services stores events without its client (issue 15:
    the client's import is a sixth of a small job); here both ways build the same payload from the same events,
    including the client's defaults, so an upgrade that adds or enables another default fails this test instead
    of changing the events silently. Run inside a git checkout with a remote and a commit (what the client's
    sourceCodeLocation facet would read if it were on), whatever the checkout the suite runs from."""
    import copy
    import os
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("remote", "add", "origin", "https://example.com/dataops.git")
    (tmp_path / "f").write_text("x")
    git("add", "f")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "x")
    monkeypatch.chdir(tmp_path)

    from openlineage.client import OpenLineageClient
    from openlineage.client.serde import Serde
    from openlineage.client.transport.transport import Transport

    from lineage import services
    from lineage.facets import DataOpsRunFacet, StageRunFacet
    from lineage.naming import DatasetName

    for name in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(name)
    assert not services.lineage_library_configured()
    seen: list[dict] = []

    class Capture(Transport):
        kind = "capture"

        def emit(self, event):
            seen.append(Serde.to_dict(event))

    events = [
        services.RunEvent(
            eventType=services.RunState.COMPLETE,
            eventTime="2026-12-01T10:00:00+00:00",
            run=services.Run(runId=str(generate_static_uuid(instant=datetime(2026, 12, 1, tzinfo=UTC), data=b"x")),
                             facets={"dataops": DataOpsRunFacet(jobRunId=7, job="sales_report", trigger="api"),
                                     "stage": StageRunFacet(stage="loading", outcome="succeeded", rowsIn=3)}),
            job=services._job("sales_report", {"jobType": services.job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="DATAOPS", jobType="JOB")}),
            inputs=[services.dataset_input(DatasetName("bigquery", "proj.sales.order_lines"))],
            outputs=[services.dataset_output(DatasetName("gsheets", "sheet-1/Report"))],
        ),
        services.RunEvent(eventType=services.RunState.START, eventTime="2026-12-01T09:00:00+00:00",
                          run=services.Run(runId=str(generate_static_uuid(
                              instant=datetime(2026, 12, 1, tzinfo=UTC), data=b"y"))),
                          job=services._job("governance.restore"), inputs=[], outputs=[]),
    ]  # fmt: skip
    client = OpenLineageClient(transport=Capture())
    for event in events:
        client.emit(copy.deepcopy(event))
        ours = Serde.to_dict(services._as_the_client_emits(copy.deepcopy(event)))
        assert ours == seen[-1]
        assert ours["run"]["facets"]["tags"]["tags"][0]["key"] == "openlineage_client_version"

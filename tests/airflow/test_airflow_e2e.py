"""End to end with a real Airflow 3.3: the control plane triggers DAGs that run ``manage.py run_job``.

The Airflow task processes use the test database (PostgreSQL pass), this module's BigQuery and Sheets
emulators and its sync file root, so the whole path runs: service -> apache-airflow-client -> api-server ->
scheduler -> LocalExecutor -> python task -> run_job -> emulators -> JobRun (for ``sales_report`` and ``sheets_sync``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from connectors.airflow import AirflowClient
from orchestration.models import JobRun
from orchestration.services import job_run_airflow_sync, job_run_airflow_trigger, job_run_request
from sandbox.common import FaultRule
from sheetsync.models import SyncEvent, SyncTarget

pytestmark = [pytest.mark.postgres, pytest.mark.airflow, pytest.mark.django_db(transaction=True)]

PARAMS = {"start": "2026-10-01", "end": "2026-10-31"}


@pytest.fixture(scope="module")
def emulators(tmp_path_factory):
    """BigQuery (small generated sales set) and Sheets emulators shared by the module (Airflow lives as long)."""
    from sandbox.bigquery.testing import running_bigquery_emulator
    from sandbox.salesdata import write_sales_dataset
    from sandbox.sheets.testing import running_sheets_emulator

    data = tmp_path_factory.mktemp("airflow-sales")
    write_sales_dataset(data, rows=3_000, seed=5, end=date(2026, 10, 31), dirty_share=0.0)
    with running_bigquery_emulator(data_dir=data) as bigquery, running_sheets_emulator() as sheets:
        sheets.store.create_spreadsheet("Sales dashboard", {"Report": [["old"]]}, spreadsheet_id="sales-dash")
        yield bigquery, sheets


@pytest.fixture(scope="module")
def sync_file_root(tmp_path_factory) -> Path:
    """The directory ``sheets_sync`` file sources may be read from, in this process and in Airflow's tasks."""
    return tmp_path_factory.mktemp("airflow-sync-files")


@pytest.fixture(scope="module")
def airflow_task_env(emulators, sync_file_root, django_db_setup, django_db_blocker, tmp_path_factory) -> dict[str, str]:
    """The env of Airflow's task processes: the test database, the emulators and the sync file root.

    DATABASE_URL makes the tasks' settings non-embedded, so SHEETS_EMULATOR_AUTOSTART stays off and
    SHEETS_API_ENDPOINT (this module's Sheets + Drive emulator) is used as is.
    """
    bigquery, sheets = emulators
    with django_db_blocker.unblock():
        db = connection.settings_dict
    if connection.vendor != "postgresql":
        return {}
    return {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        # The same key as this process, so the audit events the tasks write are signed with its AUDIT key.
        "DJANGO_SECRET_KEY": django_settings.SECRET_KEY,
        "BIGQUERY_EMULATOR_HOST": bigquery.base_url,
        "SHEETS_API_ENDPOINT": sheets.base_url,
        "SALES_SHEET_ID": "sales-dash",
        "SHEETS_MAX_ATTEMPTS": "2",
        "SHEETS_BACKOFF_BASE": "0.01",
        "SHEETS_RATE_LIMIT_PER_MINUTE": "0",
        "SHEETS_SYNC_PROJECT_RATE_LIMIT_PER_MINUTE": "0",
        "SHEETS_SYNC_RATE_LIMIT_PAUSE_S": "0.01",
        "SHEETS_SYNC_FILE_ROOTS": str(sync_file_root),
        "LOOKERSDK_BASE_URL": "http://127.0.0.1:9",
        "BACKUP_STORAGE_URL": f"file://{tmp_path_factory.mktemp('airflow-backups')}",
        "EMAIL_URL": "dummymail://",
    }


@pytest.fixture
def airflow(require_postgres, local_airflow, emulators, settings):
    """The control plane pointed at the module's Airflow, with sales_report unpaused and parsed."""
    bigquery, sheets = emulators
    settings.AIRFLOW_API_URL = local_airflow.base_url
    settings.AIRFLOW_USERNAME = local_airflow.username
    settings.AIRFLOW_PASSWORD = local_airflow.password
    settings.AIRFLOW_TOKEN = ""
    settings.AIRFLOW_UI_URL = ""
    settings.BIGQUERY_EMULATOR_HOST = bigquery.base_url
    settings.SHEETS_API_ENDPOINT = sheets.base_url
    client = AirflowClient()
    deadline = time.monotonic() + 60
    while True:  # the dag-processor parses dags/ every few seconds after start
        dags = {d.dag_id: d for d in client.dags_list(tags=["dataops"])}
        if "sales_report" in dags or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "sales_report" in dags, local_airflow.logs("dag-processor")
    if dags["sales_report"].is_paused:
        client.dag_pause_set(dag_id="sales_report", paused=False)
    bigquery.faults.clear()
    yield local_airflow


@pytest.fixture
def sheets_sync_dag(airflow, sync_file_root, settings) -> Iterator[AirflowClient]:
    """sheets_sync unpaused (the scheduler makes no scheduled runs here: only the test's own run syncs), with
    the control plane's sync settings matching its tasks'; paused again after."""
    settings.SHEETS_EMULATOR_AUTOSTART = False
    settings.SHEETS_SYNC_FILE_ROOTS = [str(sync_file_root)]
    client = AirflowClient()
    dags = {d.dag_id: d for d in client.dags_list(tags=["dataops"])}
    assert "sheets_sync" in dags, airflow.logs("dag-processor")
    client.dag_pause_set(dag_id="sheets_sync", paused=False)
    try:
        yield client
    finally:
        client.dag_pause_set(dag_id="sheets_sync", paused=True)


def wait_finished(run: JobRun, airflow, timeout: float = 90) -> JobRun:
    """Follow the JobRun through the service (as the periodic task does) until its DAG run is finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = job_run_airflow_sync(job_run_id=run.pk)
        if run.airflow_state in ("success", "failed"):
            return run
        time.sleep(0.3)
    raise AssertionError(f"{run} not finished: {run.status} {run.airflow_state}\n{airflow.logs()}")


def test_sales_report_runs_in_airflow_and_the_job_run_follows(airflow, role_user, capsys):
    analyst = role_user("Analyst")
    started = time.monotonic()
    run = job_run_request(job="sales_report", params=PARAMS, actor=analyst)
    run.refresh_from_db()
    assert run.dag_id == "sales_report" and run.dag_run_id == f"dataops__{run.pk}"
    assert run.status in (JobRun.Status.TRIGGERED, JobRun.Status.RUNNING, JobRun.Status.SUCCEEDED), run.error
    run = wait_finished(run, airflow)
    latency = time.monotonic() - started
    with capsys.disabled():  # shown in the suite's output, not only with -s
        print(f"\n[airflow] sales_report trigger-to-success latency: {latency:.2f} s (JobRun {run.pk})")
    assert run.status == JobRun.Status.SUCCEEDED, f"{run.error}\n{airflow.logs()}"
    assert run.airflow_state == "success" and run.trigger == "admin" and run.actor == analyst
    (task,) = run.airflow_tasks
    assert task["task_id"] == "run_job" and task["state"] == "success" and task["try_number"] == 1
    assert task["tries"][-1]["duration_s"] > 0 and "/dags/sales_report/runs/dataops__" in task["log_url"]
    assert run.counters and run.attempts == 1
    # Lineage (issue 13): the run's events, emitted by run_job inside Airflow's task, carry the DAG run as parent.
    from openlineage.client.uuid import generate_static_uuid

    from lineage.models import LineageEvent

    events = list(LineageEvent.objects.filter(job_run=run, job_name="sales_report"))
    assert {e.event_type for e in events} == {"START", "COMPLETE"}
    for event in events:
        parent = event.payload["run"]["facets"]["parent"]
        namespace = parent["job"]["namespace"]
        assert namespace.startswith("airflow://") and parent["job"]["name"] == "sales_report"
        dag_run = generate_static_uuid(instant=run.created_at, data=f"{namespace}.sales_report.0".encode())
        assert parent["run"]["runId"] == str(dag_run)  # dataops__<pk> has no logical date: the JobRun's creation

    # A retried trigger (double click, a retry after a timeout) never starts a second DAG run.
    JobRun.objects.filter(pk=run.pk).update(status=JobRun.Status.FAILED_TO_TRIGGER)
    again = job_run_airflow_trigger(job_run_id=run.pk)
    assert again.status == JobRun.Status.TRIGGERED
    runs = AirflowClient().dag_runs_recent(dag_id="sales_report", limit=50)
    assert [r.run_id for r in runs].count(run.dag_run_id) == 1


def test_a_task_failing_once_is_retried_and_both_tries_show(airflow, emulators, role_user):
    bigquery, _ = emulators
    # The first query job the sales run submits is refused: try 1 fails, Airflow retries, try 2 succeeds.
    bigquery.faults.add(FaultRule(method="POST", path_pattern="*/jobs", status=403, times=1))
    run = job_run_request(job="sales_report", params=PARAMS, actor=role_user("Analyst"))
    run = wait_finished(run, airflow, timeout=120)
    assert run.status == JobRun.Status.SUCCEEDED, f"{run.error}\n{airflow.logs()}"
    (task,) = run.airflow_tasks
    assert task["try_number"] == 2, task
    assert [t["try_number"] for t in task["tries"]] == [1, 2]
    assert [t["state"] for t in task["tries"]] == ["failed", "success"]
    assert run.attempts == 2  # the same JobRun executed by both tries


def test_wrong_password_and_unknown_dag_give_failed_to_trigger(airflow, settings, role_user):
    settings.AIRFLOW_PASSWORD = "wrong"
    run = job_run_request(job="sales_report", params=PARAMS, actor=role_user("Analyst"))
    run.refresh_from_db()
    assert run.status == JobRun.Status.FAILED_TO_TRIGGER and "credentials" in run.error, run.error
    settings.AIRFLOW_PASSWORD = airflow.password
    settings.AIRFLOW_DAGS = {**settings.AIRFLOW_DAGS, "sales_report": "no_such_dag"}
    run = job_run_request(job="sales_report", params=PARAMS, actor=role_user("Analyst"))
    run.refresh_from_db()
    assert run.status == JobRun.Status.FAILED_TO_TRIGGER and "no DAG 'no_such_dag'" in run.error, run.error


def test_sheets_sync_runs_in_airflow_and_fills_the_sheet(
    sheets_sync_dag, airflow, emulators, sync_file_root, role_user, capsys
):
    import polars as pl

    _, sheets = emulators
    sheets.store.create_spreadsheet("Sync plan", {"Sheet1": []}, spreadsheet_id="sync-plan")
    source = sync_file_root / "plan" / "plan.parquet"
    source.parent.mkdir(exist_ok=True)
    rows = [[1, "EMEA", 10.5], [2, "NA", 20.0], [3, "APAC", 30.25]]
    pl.DataFrame(rows, schema=["id", "region", "amount"], orient="row").write_parquet(source)
    target = SyncTarget(
        name="plan",
        spreadsheet_id="sync-plan",
        range="Sheet1!A1",
        source_kind=SyncTarget.SourceKind.FILE,
        source_file=str(source),
        key_columns="id",
    )
    target.full_clean()
    target.save()

    steward = role_user("Data Steward")
    started = time.monotonic()
    run = job_run_request(job="sheets_sync", params={"targets": ["plan"]}, actor=steward)
    run.refresh_from_db()
    assert run.dag_id == "sheets_sync" and run.dag_run_id == f"dataops__{run.pk}"
    assert run.status in (JobRun.Status.TRIGGERED, JobRun.Status.RUNNING, JobRun.Status.SUCCEEDED), run.error
    run = wait_finished(run, airflow)
    latency = time.monotonic() - started
    with capsys.disabled():
        print(f"\n[airflow] sheets_sync trigger-to-success latency: {latency:.2f} s (JobRun {run.pk})")
    assert run.status == JobRun.Status.SUCCEEDED, f"{run.error}\n{airflow.logs()}"
    assert run.airflow_state == "success" and run.trigger == "admin" and run.actor == steward
    (task,) = run.airflow_tasks
    assert task["task_id"] == "run_job" and task["state"] == "success" and task["try_number"] == 1
    assert [t["try_number"] for t in task["tries"]] == [1] and task["tries"][-1]["duration_s"] > 0
    assert "/dags/sheets_sync/runs/dataops__" in task["log_url"] and run.attempts == 1

    assert sheets.store.values("sync-plan", "Sheet1") == [
        ["id", "region", "amount"],
        [1, "EMEA", 10.5],
        [2, "NA", 20],
        [3, "APAC", 30.25],
    ]
    (event,) = SyncEvent.objects.filter(target=target, outcome="changed")
    assert event.job_run_id == run.pk and (event.cells_written, event.rows_added) == (12, 3)
    assert event.drive_version_after == sheets.store.version("sync-plan")


def test_pausing_and_unpausing_a_dag_from_the_admin_is_audited(airflow, client, role_user):
    from audit.models import AuditEvent
    from audit.selectors import audit_chain_verify

    admin = role_user("Platform Admin")
    client.force_login(admin)
    page = "/admin/orchestration/jobrun/airflow/"
    assert client.post(page, {"dag_id": "audit_anchor", "action": "unpause"}).status_code == 302
    assert not {d.dag_id: d for d in AirflowClient().dags_list(tags=["dataops"])}["audit_anchor"].is_paused
    assert client.post(page, {"dag_id": "audit_anchor", "action": "pause"}).status_code == 302
    assert {d.dag_id: d for d in AirflowClient().dags_list(tags=["dataops"])}["audit_anchor"].is_paused
    events = AuditEvent.objects.filter(object_type="airflow.dag", object_id="audit_anchor").order_by("seq")
    assert [(e.action, e.actor_id) for e in events] == [
        ("airflow.dag_pause_requested", admin.pk),
        ("airflow.dag_unpaused", admin.pk),
        ("airflow.dag_pause_requested", admin.pk),
        ("airflow.dag_paused", admin.pk),
    ]
    assert audit_chain_verify(read_anchors=False).ok

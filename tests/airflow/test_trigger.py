"""Triggering through Airflow without a running Airflow: the clear failed-to-trigger state, and no double run."""

from __future__ import annotations

import pytest

from orchestration.models import JobRun
from orchestration.services import job_run_airflow_trigger, job_run_for_dag_run, job_run_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def airflow_down(settings):
    """AIRFLOW_API_URL set, but nothing listens there (Airflow stopped)."""
    settings.AIRFLOW_API_URL = "http://127.0.0.1:9"
    settings.AIRFLOW_PASSWORD = "pw"
    settings.AIRFLOW_TIMEOUT = 2.0


def test_airflow_stopped_gives_failed_to_trigger_with_the_reason(
    airflow_down, role_user, django_capture_on_commit_callbacks
):
    from audit.models import AuditEvent

    with django_capture_on_commit_callbacks(execute=True):
        run = job_run_request(job="audit_anchor", dry_run=True, actor=role_user("Auditor"))
    run.refresh_from_db()
    assert run.status == JobRun.Status.FAILED_TO_TRIGGER and run.is_finished
    assert "could not reach Airflow at http://127.0.0.1:9" in run.error and "unreachable" in run.error
    assert run.dag_id == "audit_anchor" and run.dag_run_id == f"dataops__{run.pk}" and not run.celery_task_id
    assert AuditEvent.objects.filter(job_run_id=run.pk, action="job.trigger_failed").exists()
    # Retrying keeps the same DAG run id (so Airflow could never run it twice) and the same clear state.
    again = job_run_airflow_trigger(job_run_id=run.pk)
    assert again.status == JobRun.Status.FAILED_TO_TRIGGER and again.dag_run_id == run.dag_run_id


def test_without_airflow_jobs_still_run_through_celery(role_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = job_run_request(job="audit_anchor", actor=role_user("Auditor"))
    run.refresh_from_db()
    assert run.status == JobRun.Status.SUCCEEDED and not run.dag_run_id, run.error
    assert run.details["anchor"]["name"].startswith("audit-anchors/")


def test_a_retried_airflow_try_reuses_the_dag_runs_job_run():
    first = job_run_for_dag_run(
        job="audit_anchor", params={}, dry_run=False, dag_id="audit_anchor", dag_run_id="scheduled__2026-11-01"
    )
    second = job_run_for_dag_run(
        job="audit_anchor", params={}, dry_run=False, dag_id="audit_anchor", dag_run_id="scheduled__2026-11-01"
    )
    assert first.pk == second.pk and first.trigger == JobRun.Trigger.AIRFLOW


def test_airflow_admin_page_is_for_platform_admins_and_says_when_airflow_is_down(airflow_down, client, role_user):
    client.force_login(role_user("Analyst"))
    assert client.get("/admin/orchestration/jobrun/airflow/").status_code == 403
    client.force_login(role_user("Platform Admin"))
    page = client.get("/admin/orchestration/jobrun/airflow/")
    assert page.status_code == 200 and b"unreachable" in page.content


def test_a_timed_out_trigger_that_landed_counts_as_triggered(
    airflow_down, role_user, monkeypatch, django_capture_on_commit_callbacks
):
    """The trigger's reply was lost (timeout), but the DAG run exists: triggered, not failed-to-trigger."""
    from connectors import airflow
    from connectors.errors import ConnectorTransientError

    def lost_reply(self, **kwargs):
        raise ConnectorTransientError("Airflow: triggering timed out")

    monkeypatch.setattr(airflow.AirflowClient, "dag_run_trigger", lost_reply)
    monkeypatch.setattr(
        airflow.AirflowClient,
        "dag_run_get",
        lambda self, dag_id, dag_run_id: airflow.AirflowDagRun(dag_id, dag_run_id, "queued"),
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = job_run_request(job="audit_anchor", actor=role_user("Auditor"))
    run.refresh_from_db()
    assert run.status == JobRun.Status.TRIGGERED and not run.error


def test_a_triggered_run_that_airflow_lost_is_failed_after_a_grace_period(airflow_down, role_user, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from connectors import airflow
    from connectors.errors import ConnectorNotFound
    from orchestration.services import job_run_airflow_sync

    def gone(self, **kwargs):
        raise ConnectorNotFound("Airflow: no such DAG run")

    monkeypatch.setattr(airflow.AirflowClient, "dag_run_get", gone)
    monkeypatch.setattr(airflow.AirflowClient, "task_instances", gone)
    run = JobRun.objects.create(
        job="audit_anchor",
        trigger="admin",
        status=JobRun.Status.TRIGGERED,
        dag_id="audit_anchor",
        dag_run_id="dataops__1",
    )
    assert job_run_airflow_sync(job_run_id=run.pk).status == JobRun.Status.TRIGGERED  # young: could still appear
    JobRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=1))
    synced = job_run_airflow_sync(job_run_id=run.pk)
    assert synced.status == JobRun.Status.FAILED and "no DAG run" in synced.error


def test_pausing_a_dag_when_airflow_refuses_is_audited(airflow_down, client, role_user):
    """The request and its failure are both in the chain (the success path runs against a real Airflow in e2e).
    A DAG that is not destructive: pausing looker_cleanup waits for an approval (tests/airflow/test_dag_guard.py)."""
    from audit.models import AuditEvent

    admin = role_user("Platform Admin")
    client.force_login(admin)
    page = client.post("/admin/orchestration/jobrun/airflow/", {"dag_id": "sales_report", "action": "pause"})
    assert page.status_code == 200 and b"unreachable" in page.content
    events = list(
        AuditEvent.objects.filter(object_type="airflow.dag", object_id="sales_report")
        .order_by("seq")
        .values_list("action", "actor_id", "data")
    )
    assert [(a, actor) for a, actor, _ in events] == [
        ("airflow.dag_pause_requested", admin.pk),
        ("airflow.dag_pause_failed", admin.pk),
    ]
    assert events[0][2] == {"dag_id": "sales_report", "paused": True} and events[1][2]["error"]

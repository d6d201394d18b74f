"""The incident page (timeline, who did what, acknowledge, verify and resume), the Sheets sync's escalation as a
client of the incident ladder, feedback on reports, the weekly report, and structured logs."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import pytest
from django.core import mail

from audit.models import AuditEvent
from monitoring.logs import LogContextFilter, logging_config
from monitoring.models import Feedback, Incident, PerformanceReport
from monitoring.services import monitoring_tick
from sales.models import SalesReport
from sandbox.common import FaultRule
from tests.monitoring.conftest import execute, incident_mail, timeline
from tests.sheetsync.conftest import ROWS, run_cycle, set_source

pytestmark = pytest.mark.django_db
OCTOBER = {"start": "2026-10-01", "end": "2026-10-31"}


@pytest.fixture
def auth_incident(looker, ladder, django_capture_on_commit_callbacks):
    looker.faults.add(FaultRule(method="POST", path_pattern="/api/4.0/login", status=401, times=None))
    with django_capture_on_commit_callbacks(execute=True):
        execute("looker_cleanup", actor=ladder["owner"])
    return Incident.objects.get()


def test_incident_page_shows_the_timeline_and_who_may_act(
    client, role_user, auth_incident, ladder, django_assert_max_num_queries
):
    url = f"/admin/monitoring/incident/{auth_incident.pk}/change/"
    client.force_login(role_user("Viewer"))
    page = client.get(url).content.decode()
    assert "Timeline" in page and "Detected" in page and 'id="acknowledge"' not in page
    assert client.post(f"/admin/monitoring/incident/{auth_incident.pk}/act/acknowledge/").status_code == 403
    assert Incident.objects.get().status == "open"

    client.force_login(ladder["owner"])  # a Content Admin: the first rung acknowledges
    with django_assert_max_num_queries(30):
        page = client.get(url).content.decode()
    assert 'id="acknowledge"' in page and 'id="resume"' not in page  # resuming is for stewards and admins
    response = client.post(f"/admin/monitoring/incident/{auth_incident.pk}/act/acknowledge/", {"note": "on it"})
    assert response.status_code == 302
    incident = Incident.objects.get()
    assert incident.status == "acknowledged" and incident.acknowledged_by == ladder["owner"]
    assert AuditEvent.objects.filter(action="incident.acknowledged", actor=ladder["owner"]).exists()
    with django_assert_max_num_queries(20):
        assert client.get("/admin/monitoring/incident/?status__exact=acknowledged").status_code == 200


def test_verify_and_resume_reruns_the_job_and_closes_the_incident(
    client, looker, auth_incident, ladder, django_capture_on_commit_callbacks
):
    client.force_login(ladder["admin"])
    looker.faults.clear()  # the credentials are fixed
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/admin/monitoring/incident/{auth_incident.pk}/act/fix/", {"note": "rotated the API key"})
        response = client.post(f"/admin/monitoring/incident/{auth_incident.pk}/act/resume/")
    assert response.status_code == 302
    incident = Incident.objects.get()
    assert incident.status == "resolved" and incident.resume_job_run.status == "succeeded"
    assert incident.resume_job_run.actor == ladder["admin"]
    kinds = timeline(incident)
    assert kinds[kinds.index("acknowledged") :] == [
        "acknowledged", "fixed", "resume_requested", "verified", "resumed", "resolved",
    ]  # fmt: skip
    actors = dict(incident.events.values_list("kind", "actor_label"))
    assert actors["fixed"] == "admin" and actors["resume_requested"] == "admin" and actors["detected"] == "monitoring"
    assert incident.time_to_acknowledge_s is not None and incident.time_to_resolve_s >= incident.time_to_acknowledge_s
    page = client.get(f"/admin/monitoring/incident/{incident.pk}/change/").content.decode()
    assert "Verify and resume requested" in page and "rotated the API key" in page and 'id="resume"' not in page


def test_sheets_sync_escalation_is_an_incident_that_climbs_and_resumes(
    make_target, files, sheets, ladder, settings, django_capture_on_commit_callbacks
):
    target = make_target("flaky", ROWS, spreadsheet_id="s1", owner=ladder["owner"])
    run_cycle()
    (files / "flaky.parquet").unlink()
    for _ in range(settings.SHEETS_SYNC_FAILURE_ESCALATION):
        with django_capture_on_commit_callbacks(execute=True):
            run_cycle()
    incident = Incident.objects.get(kind="sync_target")
    assert incident.level == 1 and incident_mail()[0][1] == {"owner@example.com"}
    assert "failed 3 cycles in a row" in incident.title and "fallback" in timeline(incident)
    with django_capture_on_commit_callbacks(execute=True):
        monitoring_tick(now=incident.detected_at + timedelta(minutes=31))
        monitoring_tick(now=incident.detected_at + timedelta(minutes=121))
    assert [to for _s, to in incident_mail()] == [{"owner@example.com"}, {"steward@example.com"}, {"admin@example.com"}]

    set_source(target, ROWS)  # the file is back
    from monitoring.services import incident_verify_and_resume

    with django_capture_on_commit_callbacks(execute=True):
        incident = incident_verify_and_resume(incident=incident, actor=ladder["steward"])
    incident.refresh_from_db()
    assert incident.status == "resolved" and "verify-and-resume run" in incident.events.get(kind="verified").message
    target.refresh_from_db()
    assert target.consecutive_failures == 0


def test_feedback_on_a_report_feeds_satisfaction(
    client, bigquery, sheet, ladder, role_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        execute("sales_report", actor=ladder["owner"], params=OCTOBER)
    report = SalesReport.objects.get()
    viewer = role_user("Viewer")
    client.force_login(viewer)
    page = client.get(f"/admin/sales/salesreport/{report.pk}/change/").content.decode()
    assert "Was this useful?" in page
    response = client.post(f"/feedback/sales.salesreport/{report.pk}/", {"useful": "yes", "comment": "clear"})
    assert response.status_code == 302
    client.post(f"/feedback/sales.salesreport/{report.pk}/", {"useful": "no"})  # changed their mind: one answer
    client.force_login(ladder["owner"])
    client.post(f"/feedback/sales.salesreport/{report.pk}/", {"useful": "yes"})
    assert Feedback.objects.count() == 2 and Feedback.objects.filter(useful=True).count() == 1
    assert AuditEvent.objects.filter(action="feedback.recorded").count() == 3
    assert client.post("/feedback/auth.user/1/", {"useful": "yes"}).status_code == 404
    client.force_login(role_user("Auditor"))  # reads everything, answers nothing
    assert client.post(f"/feedback/sales.salesreport/{report.pk}/", {"useful": "yes"}).status_code == 403

    from monitoring.selectors import metrics_figures

    assert metrics_figures()["satisfaction"] == (1, 2)


def test_weekly_report_is_kept_and_mailed_to_the_platform_admins(ladder, looker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        execute("audit_anchor")
        looker.faults.add(FaultRule(method="POST", path_pattern="/api/4.0/login", status=401, times=None))
        execute("looker_cleanup", actor=ladder["owner"])
        run = execute("monitoring_weekly_report")
    assert run.status == "succeeded", run.error
    report = PerformanceReport.objects.get()
    assert report.recipients == ["admin@example.com"] and report.sent_at is not None
    assert report.figures["jobs"]["audit_anchor"]["success_rate"] == 100.0
    assert report.figures["jobs"]["looker_cleanup"]["failed"] == 1
    assert report.figures["incidents"]["opened"] == 1 and report.figures["incidents"]["by_class"] == {
        "authentication": 1
    }
    mailed = [m for m in mail.outbox if m.subject.startswith("DataOps weekly performance report")]
    assert len(mailed) == 1 and mailed[0].to == ["admin@example.com"] and "looker_cleanup: 1 runs" in mailed[0].body


def test_json_logs_carry_the_run_id_job_and_actor(looker, ladder):
    config = logging_config(fmt="json", level="INFO")["formatters"]["json"]
    from pythonjsonlogger.json import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(fmt=config["fmt"], rename_fields=config["rename_fields"]))
    handler.addFilter(LogContextFilter())
    connector_logger = logging.getLogger("connectors.looker")
    connector_logger.addHandler(handler)
    try:
        looker.faults.add(FaultRule(method="GET", path_pattern="/api/4.0/dashboards/search", status=503, times=1))
        run = execute("looker_cleanup", actor=ladder["owner"], dry_run=True)  # one retry logs a warning
    finally:
        connector_logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines, "the retry should have logged"
    assert all(
        line["run_id"] == run.pk and line["job"] == "looker_cleanup" and line["actor"] == "owner" for line in lines
    )
    assert lines[0]["level"] == "WARNING" and "retrying" in lines[0]["message"] and "time" in lines[0]

"""Each failure class, injected through an emulator, handled end to end by the incident mechanism.

transient (BigQuery 503) and quota (Looker 429): retried with backoff by the tick, and the passing retry closes the
incident. authentication (Looker login 401): escalated rung by rung to the Platform Admins. not found (Sheets 404):
acknowledged, which stops the escalation, then verified and resumed, which re-publishes and closes it. bad data
(Sheets answers nonsense): the previous report stays on the sheet (fallback) and the owner is told. bug (Looker
refuses our request, 422): escalated at once.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitoring.models import Incident, Notification, RunRecord
from monitoring.services import (
    incident_acknowledge,
    incident_verify_and_resume,
    monitoring_tick,
)
from sandbox.common import FaultRule
from tests.monitoring.conftest import execute, incident_mail, timeline, webhook_posts
from tests.sales.conftest import OLD_SHEET, report_values

pytestmark = pytest.mark.django_db
OCTOBER = {"start": "2026-10-01", "end": "2026-10-31"}


def test_transient_bigquery_failure_is_retried_with_backoff_and_the_retry_closes_it(
    bigquery, sheet, ladder, django_capture_on_commit_callbacks
):
    bigquery.faults.add(FaultRule(method="POST", path_pattern="*/jobs", status=503, times=2))  # both client tries
    with django_capture_on_commit_callbacks(execute=True):
        failed = execute("sales_report", actor=ladder["owner"], params=OCTOBER)
    assert failed.status == "failed"
    incident = Incident.objects.get()
    assert (incident.failure_class, incident.handling, incident.status) == ("transient", "retry", "open")
    assert incident.next_retry_at is not None and incident.level == 0 and incident_mail() == []  # nobody paged yet
    assert RunRecord.objects.get(job_run=failed).failure_class == "transient"

    with django_capture_on_commit_callbacks(execute=True):
        early = monitoring_tick(now=incident.detected_at + timedelta(seconds=5))
    assert early["retries"] == 0  # the backoff has not passed
    with django_capture_on_commit_callbacks(execute=True):
        counts = monitoring_tick(now=incident.next_retry_at + timedelta(seconds=1))
    assert counts["retries"] == 1
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.retries == 1 and incident.level == 0
    assert timeline(incident) == ["detected", "retry_scheduled", "retried", "fixed", "verified", "resumed", "resolved"]
    assert incident.time_to_resolve_s is not None and incident.time_to_acknowledge_s is None
    assert report_values(sheet)[0][:4] == ["day", "region", "orders", "revenue"]  # the retry published


def test_quota_failure_waits_longer_and_escalates_when_retries_run_out(
    looker, ladder, settings, django_capture_on_commit_callbacks
):
    settings.MONITORING_RETRY_MAX = 1
    looker.faults.add(
        FaultRule(method="GET", path_pattern="/api/4.0/dashboards/search", status=429, retry_after=0, times=None)
    )
    with django_capture_on_commit_callbacks(execute=True):
        execute("looker_cleanup", actor=ladder["owner"])
    incident = Incident.objects.get()
    assert (incident.failure_class, incident.handling) == ("quota", "retry")
    wait = (incident.next_retry_at - incident.detected_at).total_seconds()
    assert wait >= settings.MONITORING_QUOTA_RETRY_DELAY_S > settings.MONITORING_RETRY_DELAY_S
    with django_capture_on_commit_callbacks(execute=True):
        monitoring_tick(now=incident.next_retry_at + timedelta(seconds=1))  # the retry hits the same quota
    incident.refresh_from_db()
    assert incident.occurrences == 2 and incident.retries == 1 and incident.next_retry_at is None
    assert incident.level == 1 and incident_mail()[-1][1] == {"owner@example.com"}  # retries used up: escalated
    assert "retry_scheduled" in timeline(incident) and "retried" in timeline(incident)


def test_authentication_failure_climbs_the_ladder_to_the_platform_admins(
    looker, ladder, webhook, django_capture_on_commit_callbacks
):
    looker.faults.add(FaultRule(method="POST", path_pattern="/api/4.0/login", status=401, times=None))
    with django_capture_on_commit_callbacks(execute=True):
        run = execute("looker_cleanup", actor=ladder["owner"])
    assert run.status == "failed" and "login refused" in run.error
    incident = Incident.objects.get()
    assert (incident.failure_class, incident.handling, incident.level) == ("authentication", "escalate", 1)
    assert incident_mail() == [(incident_mail()[0][0], {"owner@example.com"})]

    start = incident.detected_at
    with django_capture_on_commit_callbacks(execute=True):
        monitoring_tick(now=start + timedelta(minutes=10))  # before the Data Stewards' 30 minutes
    assert Incident.objects.get().level == 1
    with django_capture_on_commit_callbacks(execute=True):
        monitoring_tick(now=start + timedelta(minutes=31))
    with django_capture_on_commit_callbacks(execute=True):
        monitoring_tick(now=start + timedelta(minutes=121))
    incident.refresh_from_db()
    assert incident.level == 3 and incident.status == "open"
    assert [to for _subject, to in incident_mail()] == [
        {"owner@example.com"},
        {"steward@example.com"},
        {"admin@example.com"},
    ]
    from django.core import mail

    assert all("Authentication or permission" in m.body and "login refused" in m.body for m in mail.outbox)
    posts = webhook_posts(webhook)
    assert [p["incident"]["level"] for p in posts] == [1, 2, 3]
    assert all(p["text"].startswith("[DataOps incident") and p["blocks"][0]["type"] == "section" for p in posts)
    assert Notification.objects.filter(status="sent").count() == 6  # 3 e-mails + 3 webhook posts
    kinds = timeline(incident)
    assert kinds[:2] == ["detected", "alerted"] and kinds.count("escalated") == 2 and kinds.count("notified") == 6


def test_not_found_is_acknowledged_then_verified_and_resumed(
    bigquery, sheet, ladder, webhook, django_capture_on_commit_callbacks
):
    sheet.faults.add(FaultRule(path_pattern="/v4/spreadsheets/sales-dash*", status=404, times=None))
    with django_capture_on_commit_callbacks(execute=True):
        failed = execute("sales_report", actor=ladder["owner"], params=OCTOBER)
    assert failed.status == "failed" and "publish failed" in failed.error
    incident = Incident.objects.get()
    assert (incident.failure_class, incident.handling, incident.level) == ("not_found", "escalate", 1)

    incident = incident_acknowledge(incident=incident, actor=ladder["owner"], note="looking at the sheet's sharing")
    with django_capture_on_commit_callbacks(execute=True):
        monitoring_tick(now=incident.detected_at + timedelta(hours=5))  # long past every rung
    incident.refresh_from_db()
    assert incident.level == 1 and len(incident_mail()) == 1 and len(webhook_posts(webhook)) == 1  # stopped
    assert incident.time_to_acknowledge_s is not None and incident.acknowledged_by == ladder["owner"]

    sheet.faults.clear()  # the fix: the sheet is back
    with django_capture_on_commit_callbacks(execute=True):
        incident = incident_verify_and_resume(incident=incident, actor=ladder["admin"])
    assert incident.status == "resolved" and incident.resume_job_run is None  # the failed step (publish) re-ran
    assert report_values(sheet)[0][:4] == ["day", "region", "orders", "revenue"]
    assert timeline(incident)[-6:] == ["acknowledged", "fixed", "resume_requested", "verified", "resumed", "resolved"]
    assert incident.time_to_resolve_s >= incident.time_to_acknowledge_s


def test_bad_data_keeps_the_previous_report_and_tells_the_owner(
    bigquery, sheet, ladder, django_capture_on_commit_callbacks
):
    sheet.faults.add(
        FaultRule(method="POST", path_pattern="/v4/spreadsheets/sales-dash/values:batchUpdate", status=200,
                  body={"unexpected": "reply"}, times=None)
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        failed = execute("sales_report", actor=ladder["owner"], params=OCTOBER)
    assert failed.status == "failed"
    incident = Incident.objects.get()
    assert (incident.failure_class, incident.handling, incident.level) == ("bad_data", "fallback", 1)
    fallback = incident.events.get(kind="fallback")
    assert "nothing was published" in fallback.message
    assert report_values(sheet) == OLD_SHEET  # the last good values stay
    assert incident_mail()[0][1] == {"owner@example.com"}


def test_a_bug_is_escalated_at_once(looker, ladder, django_capture_on_commit_callbacks):
    looker.faults.add(FaultRule(method="GET", path_pattern="/api/4.0/dashboards/search", status=422, times=None))
    with django_capture_on_commit_callbacks(execute=True):
        execute("looker_cleanup", actor=ladder["owner"])
    incident = Incident.objects.get()
    assert (incident.failure_class, incident.handling, incident.level) == ("bug", "escalate", 1)
    assert incident.next_retry_at is None and len(incident_mail()) == 1


def test_repeat_failures_count_on_one_incident_and_a_success_closes_it(
    looker, ladder, django_capture_on_commit_callbacks
):
    rule = looker.faults.add(FaultRule(method="GET", path_pattern="/api/4.0/dashboards/search", status=422, times=None))
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            execute("looker_cleanup", actor=ladder["owner"])
    incident = Incident.objects.get()
    assert incident.occurrences == 3 and incident.level == 2  # the Data Stewards' rung fires after 3 failures
    looker.faults.clear()
    rule.times = 0
    with django_capture_on_commit_callbacks(execute=True):
        ok = execute("looker_cleanup", actor=ladder["owner"], dry_run=True)
    assert ok.status == "succeeded" and Incident.objects.get().status == "open"  # a dry run proves nothing
    with django_capture_on_commit_callbacks(execute=True):
        ok = execute("looker_cleanup", actor=ladder["owner"])
    assert ok.status == "succeeded"
    incident.refresh_from_db()
    assert incident.status == "resolved" and f"run #{ok.pk} succeeded" in incident.events.get(kind="verified").message

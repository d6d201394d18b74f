"""Retries of the same run, overlapping runs, a run taken over, and the policy re-checked at delete time."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from cleanup import services
from cleanup.models import CleanupAction, DashboardPin, LookerDashboard
from orchestration.models import JobRun
from orchestration.services import JobAbandoned, _claim, job_run_create, job_run_heartbeat
from sandbox.common import FaultRule
from tests.cleanup.conftest import patch_count
from tests.cleanup.test_cleanup_job import run_job
from tests.looker_estate import EXPECTED_PLAN

pytestmark = pytest.mark.django_db


def test_retrying_the_same_run_repeats_nothing(looker):
    """An Airflow retry or a redelivered Celery task executes the same JobRun again."""
    looker.faults.add(FaultRule(method="PATCH", path_pattern="/api/4.0/dashboards/102", status=500, times=None))
    assert run_job("looker_cleanup")[0] == 1
    run = JobRun.objects.get()
    patches = patch_count(looker)
    deleted_events = AuditEvent.objects.filter(action="cleanup.dashboard_soft_deleted").count()
    looker.faults.clear()

    code, out = run_job("looker_cleanup", "--job-run-id", str(run.pk))
    assert code == 0, out
    run.refresh_from_db()
    assert run.status == "succeeded" and run.attempts == 2
    assert patch_count(looker) == patches + 1  # only 102, which had failed
    assert AuditEvent.objects.filter(action="cleanup.dashboard_soft_deleted").count() == deleted_events + 1
    assert CleanupAction.objects.filter(job_run=run, status="deleted").count() == len(EXPECTED_PLAN)
    assert CleanupAction.objects.filter(job_run=run).count() == len(EXPECTED_PLAN) + 1  # + the LookML report


def test_a_succeeded_run_is_not_executed_again(looker):
    from django.core.management.base import CommandError

    assert run_job("looker_cleanup")[0] == 0
    run = JobRun.objects.get()
    with pytest.raises(CommandError, match="already succeeded"):
        run_job("looker_cleanup", "--job-run-id", str(run.pk))


def test_policy_is_checked_again_just_before_the_delete(looker, content_admin, monkeypatch):
    """A pin added, or a favourite made, after the plan was built keeps the dashboard."""
    real_commit = services.cleanup_actions_commit

    def commit_then_people_act(*, job_run, plan):
        actions = real_commit(job_run=job_run, plan=plan)
        DashboardPin.objects.create(
            dashboard=LookerDashboard.objects.get(looker_id="106"),
            reason="just now",
            expires_at=timezone.now() + timedelta(days=7),
            created_by=content_admin,
        )
        looker.store.record_activity("102", favorite_count=2)
        looker.store.record_activity("112", viewed_at=timezone.now())
        return actions

    monkeypatch.setattr(services, "cleanup_actions_commit", commit_then_people_act)
    code, out = run_job("looker_cleanup")
    assert code == 0, out
    kept = (("106", "pinned after the plan"), ("102", "favourited after the plan"), ("112", "viewed after the plan"))
    for looker_id, reason in kept:
        action = CleanupAction.objects.get(dashboard__looker_id=looker_id)
        assert action.status == "skipped" and action.error.startswith(reason) and action.backup is not None
        assert looker.store.dashboard(looker_id)["deleted"] is False
    assert JobRun.objects.get().counters["kept_at_last_check"] == 3


def test_a_run_taken_over_stops_and_does_not_overwrite_its_successor(looker, settings):
    first = job_run_create(job="looker_cleanup")
    first = _claim(first.pk)
    JobRun.objects.filter(pk=first.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    second = job_run_create(job="looker_cleanup")
    second = _claim(second.pk)  # takes over: the first looked dead
    first_row = JobRun.objects.get(pk=first.pk)
    assert first_row.status == "failed" and first_row.error.startswith("abandoned")
    with pytest.raises(JobAbandoned):
        job_run_heartbeat(job_run=first, progress="still going")
    from orchestration.services import _finish

    assert _finish(first, status="succeeded", summary="late").status == "failed"
    assert JobRun.objects.get(pk=second.pk).status == "running"


def test_only_one_claim_wins_a_race(looker):
    runs = [job_run_create(job="looker_cleanup") for _ in range(2)]
    _claim(runs[0].pk)
    from orchestration.services import JobConflict

    with pytest.raises(JobConflict):
        _claim(runs[1].pk)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_on_postgres_one_wins(require_postgres, looker):
    """READ COMMITTED cannot see the other's uncommitted row: the partial unique index decides."""
    from orchestration.services import JobConflict

    runs = [job_run_create(job="looker_cleanup") for _ in range(4)]
    barrier = threading.Barrier(len(runs))
    results: list[str] = []

    def claim(pk: int) -> None:
        try:
            barrier.wait()
            _claim(pk)
            results.append("won")
        except JobConflict:
            results.append("lost")
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(r.pk,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["lost", "lost", "lost", "won"]
    assert JobRun.objects.filter(job="looker_cleanup", status="running").count() == 1


def test_report_mail_outage_does_not_fail_a_good_run(looker, content_admin, monkeypatch):
    from cleanup import notifications

    real = notifications.send_mail

    def flaky(subject, body, sender, recipients, **kwargs):
        if recipients == [content_admin.email]:
            raise ConnectionRefusedError("smtp down")
        return real(subject, body, sender, recipients, **kwargs)

    monkeypatch.setattr(notifications, "send_mail", flaky)
    code, out = run_job("looker_cleanup")
    assert code == 0, out
    assert not [m for m in mail.outbox if m.to == [content_admin.email]]


def test_plain_text_mail_is_not_html_escaped(looker):
    looker.store.update_dashboard("102", {"title": "Sales & <Ops> O'Brien"}, actor_id="1")
    assert run_job("looker_cleanup")[0] == 0
    body = next(m.body for m in mail.outbox if "Sales & <Ops> O'Brien" in m.body)
    assert "&amp;" not in body and "&#x27;" not in body

"""Guarded cleanup runs: the admin shows the plan and asks for confirmation; a plan above
CLEANUP_APPROVAL_THRESHOLD (or a raised per-run cap) waits for a second Content Admin, then runs exactly once and
deletes only what was approved. Runs without a person carry a principal the four-eyes rule applies to."""

from __future__ import annotations

import pytest

from approvals.models import ApprovalRequest
from approvals.services import ApprovalError, approval_approve, approval_execute, approvals_sweep
from cleanup.models import CleanupAction
from orchestration.models import JobRun
from tests.cleanup.test_cleanup_job import run_job
from tests.looker_estate import EXPECTED_PLAN

pytestmark = pytest.mark.django_db
URL = "/admin/orchestration/jobrun/trigger/looker_cleanup/"
FORM = {"inactive_days": "90", "max_deletions": "100"}


def _deleted(looker) -> list[str]:
    return sorted(i for i in EXPECTED_PLAN if looker.store.dashboard(i)["deleted"])


def test_a_real_run_from_the_admin_shows_the_plan_and_asks_for_confirmation(
    looker, client, role_user, django_capture_on_commit_callbacks
):
    client.force_login(role_user("Content Admin"))
    page = client.post(URL, {**FORM, "_run": "1"})
    body = page.content.decode()
    assert page.status_code == 200 and 'id="plan"' in body and f"Confirm: soft-delete {len(EXPECTED_PLAN)}" in body
    assert not JobRun.objects.exists() and _deleted(looker) == []
    stale = client.post(URL, {**FORM, "_run": "1", "_confirm": "1", "plan_sha256": "0" * 64})
    assert stale.status_code == 200 and "The plan changed" in stale.content.decode() and not JobRun.objects.exists()
    sha = body.split('name="plan_sha256" value="')[1].split('"')[0]
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(URL, {**FORM, "_run": "1", "_confirm": "1", "plan_sha256": sha})
    assert done.status_code == 302
    assert JobRun.objects.get().status == "succeeded" and _deleted(looker) == EXPECTED_PLAN


def test_a_large_plan_waits_for_a_second_content_admin_then_runs_once(
    looker, role_user, settings, django_capture_on_commit_callbacks
):
    settings.CLEANUP_APPROVAL_THRESHOLD = 3
    carol, dave = role_user("Content Admin", username="carol"), role_user("Content Admin", username="dave")
    code, out = run_job("looker_cleanup", "--principal", "cli:carol")
    assert code == 0 and "NOT RUN" in out and "CLEANUP_APPROVAL_THRESHOLD" in out
    assert _deleted(looker) == [] and not CleanupAction.objects.filter(status="deleted").exists()
    request = ApprovalRequest.objects.get()
    assert request.requested_by == carol and request.inputs["plan_ids"] == EXPECTED_PLAN
    with pytest.raises(ApprovalError, match="other than the requester"):
        approval_approve(request_id=request.pk, actor=carol)  # the shell user who started it
    with pytest.raises(ApprovalError, match="Content Admin"):
        approval_approve(request_id=request.pk, actor=role_user("Data Steward"))
    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=request.pk, actor=dave)
    request.refresh_from_db()
    assert request.execution == "done", request.execution_outcome
    run = JobRun.objects.get(approval=request)
    assert run.actor == carol and run.status == "succeeded" and run.counters["deleted"] == len(EXPECTED_PLAN)
    assert _deleted(looker) == EXPECTED_PLAN
    approval_execute(request_id=request.pk)
    approvals_sweep()
    assert JobRun.objects.filter(approval=request).count() == 1  # exactly once


def test_only_the_approved_dashboards_are_deleted(looker, role_user, settings, django_capture_on_commit_callbacks):
    settings.CLEANUP_APPROVAL_THRESHOLD = 3
    role_user("Content Admin", username="carol")
    run_job("looker_cleanup", "--principal", "cli:carol")
    request = ApprovalRequest.objects.get()
    # The approver saw 7 dashboards; one is favourited before the run: the fresh check keeps it.
    looker.store.record_activity("102", favorite_count=1)
    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=request.pk, actor=role_user("Content Admin", username="dave"))
    assert _deleted(looker) == [i for i in EXPECTED_PLAN if i != "102"]


def test_raising_the_per_run_cap_is_itself_guarded(looker, role_user, settings):
    settings.CLEANUP_MAX_DELETIONS = 100
    code, out = run_job("looker_cleanup", "--param", "max_deletions=5000")
    assert code == 0 and "NOT RUN" in out and "CLEANUP_MAX_DELETIONS" in out
    request = ApprovalRequest.objects.get()
    assert request.inputs["params"]["max_deletions"] == 5000
    assert request.requested_by is None and request.quorum == 2  # a shell user with no account: two approvers
    assert _deleted(looker) == []


def test_a_scheduled_run_answers_to_the_schedule_owner(looker, role_user, settings):
    settings.CLEANUP_APPROVAL_THRESHOLD = 3
    settings.DATAOPS_SCHEDULE_PRINCIPAL = "olga"
    olga = role_user("Content Admin", username="olga")
    code, _ = run_job("looker_cleanup", "--trigger", "schedule")
    assert code == 0
    run = JobRun.objects.get()
    assert run.principal == olga and run.principal_label == "schedule:olga"
    with pytest.raises(ApprovalError, match="other than the requester"):
        approval_approve(request_id=ApprovalRequest.objects.get().pk, actor=olga)


def test_the_sweeper_leaves_an_approved_cleanup_that_is_still_running_alone(looker, role_user, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.CLEANUP_APPROVAL_THRESHOLD = 3
    settings.APPROVALS_STUCK_AFTER_S = 60
    role_user("Content Admin", username="carol")
    run_job("looker_cleanup", "--principal", "cli:carol")
    request = ApprovalRequest.objects.get()
    approval_approve(request_id=request.pk, actor=role_user("Content Admin", username="dave"))
    # Its worker claimed it long ago and the cleanup run it started is still alive (fresh heartbeat).
    long_ago = timezone.now() - timedelta(hours=1)
    ApprovalRequest.objects.filter(pk=request.pk).update(
        execution="running", execution_attempts=1, execution_started_at=long_ago
    )
    JobRun.objects.create(job="looker_cleanup", trigger="approval", approval=request, status="running",
                          heartbeat_at=timezone.now(), started_at=long_ago)  # fmt: skip
    approvals_sweep()
    request.refresh_from_db()
    assert request.execution == "running" and request.execution_started_at > long_ago  # not failed, not re-run
    assert JobRun.objects.filter(approval=request).count() == 1 and _deleted(looker) == []


def test_a_real_cleanup_through_the_api_needs_the_plan_it_read(
    looker, client, role_user, django_capture_on_commit_callbacks
):
    from rest_framework.authtoken.models import Token

    user = role_user("Content Admin", username="carol")
    auth = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"}
    first = client.post("/api/job-runs/", {"job": "looker_cleanup"}, content_type="application/json", **auth)
    assert first.status_code == 409 and first.json()["planned"] == len(EXPECTED_PLAN) and not JobRun.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        ok = client.post(
            "/api/job-runs/",
            {"job": "looker_cleanup", "plan_sha256": first.json()["plan_sha256"]},
            content_type="application/json",
            **auth,
        )
    assert ok.status_code == 202 and _deleted(looker) == EXPECTED_PLAN

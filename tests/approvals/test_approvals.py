"""The approvals mechanism itself: pinned inputs, four-eyes (requester and shapers), quorum, expiry, exactly-once
execution from the durable row, the sweeper, the queue's "what I can approve" and the outcome shown as it is."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.registry import ApprovalAction, ApprovalExecutionFailed, approval_action_register
from approvals.selectors import approvals_decidable_by
from approvals.services import (
    ApprovalError,
    approval_approve,
    approval_execute,
    approval_reject,
    approval_request_create,
    approvals_sweep,
)
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db
RUNS: list[dict] = []


def _echo(*, request) -> str:
    RUNS.append(request.inputs)
    if request.inputs.get("fail"):
        raise ApprovalExecutionFailed("the sheet refused the write (HTTP 403)")
    return f"echoed {request.inputs['n']}"


def _decided(*, request, actor, reason) -> None:
    RUNS.append({"decided": request.status, "reason": reason})


approval_action_register(
    ApprovalAction(
        name="tests.echo",
        title="Echo for tests",
        approver_permission="cleanup.run_cleanup",
        approver_role="Content Admin",
        execute=_echo,
        on_decided=_decided,
    )
)


@pytest.fixture(autouse=True)
def _runs():
    RUNS.clear()
    yield


@pytest.fixture
def people(role_user):
    return {
        "requester": role_user("Content Admin", username="req"),
        "shaper": role_user("Content Admin", username="shaper"),
        "a1": role_user("Content Admin", username="a1"),
        "a2": role_user("Content Admin", username="a2"),
        "viewer": role_user("Viewer", username="vic"),
    }


def _request(people, **kw):
    kw.setdefault("inputs", {"n": 1})
    kw.setdefault("reason", "because")
    return approval_request_create(
        action="tests.echo", requested_by=people["requester"], shapers=[people["shaper"]], **kw
    )


def test_requester_shaper_and_wrong_role_never_approve(people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = _request(people)
    assert {tuple(m.to) for m in mail.outbox} == {("a1@example.com", "a2@example.com")}  # not the requester/shaper
    refusals = [("requester", "other than the requester"), ("shaper", "you changed"), ("viewer", "Content Admin")]
    for who, match in refusals:
        with pytest.raises(ApprovalError, match=match):
            approval_approve(request_id=request.pk, actor=people[who])
    assert set(approvals_decidable_by(user=people["a1"])) == {request}
    assert not approvals_decidable_by(user=people["shaper"]).exists()
    assert not approvals_decidable_by(user=people["viewer"]).exists()
    assert RUNS == []


def test_quorum_two_needs_two_distinct_people_and_runs_once(people, django_capture_on_commit_callbacks):
    request = _request(people, quorum=2)
    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=request.pk, actor=people["a1"])
    assert ApprovalRequest.objects.get().status == "pending" and RUNS == []
    with pytest.raises(ApprovalError, match="already approved"):
        approval_approve(request_id=request.pk, actor=people["a1"])
    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=request.pk, actor=people["a2"])
    request.refresh_from_db()
    assert request.status == "approved" and request.execution == "done" and request.execution_outcome == "echoed 1"
    # A redelivered task and a sweep find it done: it never runs twice.
    approval_execute(request_id=request.pk)
    approvals_sweep()
    assert [r for r in RUNS if "n" in r] == [{"n": 1}]
    events = AuditEvent.objects.filter(object_type="approvals.approvalrequest").order_by("seq")
    actions = list(events.values_list("action", flat=True))
    assert actions == ["approval.requested", "approval.approval_recorded", "approval.approved",
                       "approval.execution_started", "approval.executed"]  # fmt: skip


def test_unattributed_request_needs_two_approvers(people):
    request = approval_request_create(action="tests.echo", inputs={"n": 2}, reason="cron", requested_by_label="cli:x")
    assert request.quorum == 2


def test_reject_needs_a_reason_and_never_runs(people, django_capture_on_commit_callbacks):
    request = _request(people)
    with pytest.raises(ApprovalError, match="needs a reason"):
        approval_reject(request_id=request.pk, actor=people["a1"], reason=" ")
    with django_capture_on_commit_callbacks(execute=True):
        approval_reject(request_id=request.pk, actor=people["a1"], reason="not this month")
    request.refresh_from_db()
    assert request.status == "rejected" and request.execution == "not_started"
    assert RUNS == [{"decided": "rejected", "reason": "not this month"}]
    told = [m for m in mail.outbox if m.to == ["req@example.com"] and "rejected" in m.subject]
    assert told and "not this month" in told[0].body
    with pytest.raises(ApprovalError, match="already rejected"):
        approval_approve(request_id=request.pk, actor=people["a2"])


def test_expired_request_never_runs_and_its_requester_is_told(people, django_capture_on_commit_callbacks, settings):
    settings.APPROVALS_EXPIRY_HOURS = 72
    request = _request(people)
    assert timedelta(hours=71) < request.expires_at - timezone.now() <= timedelta(hours=72)
    ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ApprovalError, match="expired"):
        approval_approve(request_id=request.pk, actor=people["a1"])
    request.refresh_from_db()
    assert request.status == "expired" and request.execution == "not_started"
    assert any(m.to == ["req@example.com"] and "expired" in m.subject for m in mail.outbox)
    # The sweeper expires the others the same way.
    other = _request(people, inputs={"n": 3})
    ApprovalRequest.objects.filter(pk=other.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert approvals_sweep()["expired"] == 1
    assert [r for r in RUNS if "n" in r] == []


def test_inputs_changed_after_approval_never_run(people):
    request = _request(people, inputs={"n": 4})
    ApprovalRequest.objects.filter(pk=request.pk).update(inputs={"n": 5})  # someone edits the row
    approval_approve(request_id=request.pk, actor=people["a1"])
    request = approval_execute(request_id=request.pk)
    assert request.execution == "failed" and "no longer match" in request.execution_outcome
    assert RUNS == [{"decided": "approved", "reason": ""}]


def test_inputs_and_hash_rewritten_together_are_caught_by_the_audit_trail(people):
    from approvals.services import inputs_sha256

    request = _request(people, inputs={"n": 11})
    forged = {"n": 12}
    ApprovalRequest.objects.filter(pk=request.pk).update(inputs=forged, inputs_sha256=inputs_sha256(forged))
    approval_approve(request_id=request.pk, actor=people["a1"])
    request = approval_execute(request_id=request.pk)
    assert request.execution == "failed" and "audit trail" in request.execution_outcome
    assert [r for r in RUNS if "n" in r] == []


def test_sweeper_runs_an_approval_a_crash_left_unrun_and_takes_over_a_stuck_one(people, settings):
    settings.APPROVALS_SWEEP_GRACE_S = 0
    settings.APPROVALS_STUCK_AFTER_S = 60
    unrun = _request(people, inputs={"n": 6})
    approval_approve(request_id=unrun.pk, actor=people["a1"])  # the queued task is lost (no on_commit here)
    stuck = _request(people, inputs={"n": 7})
    approval_approve(request_id=stuck.pk, actor=people["a1"])
    ApprovalRequest.objects.filter(pk=stuck.pk).update(
        execution="running", execution_attempts=1, execution_started_at=timezone.now() - timedelta(minutes=5)
    )
    fresh = _request(people, inputs={"n": 8})
    approval_approve(request_id=fresh.pk, actor=people["a1"])
    ApprovalRequest.objects.filter(pk=fresh.pk).update(
        execution="running", execution_attempts=1, execution_started_at=timezone.now()
    )
    out = __import__("io").StringIO()
    call_command("approvals_sweep", stdout=out)
    assert "executed=2" in out.getvalue() and "taken_over=1" in out.getvalue()
    assert [r["n"] for r in RUNS if "n" in r] == [6, 7]  # the live one is left to its process
    assert ApprovalRequest.objects.get(pk=stuck.pk).execution_attempts == 2
    assert ApprovalRequest.objects.get(pk=fresh.pk).execution == "running"


def test_a_failed_action_is_shown_as_failed_in_the_queue(people, client, django_capture_on_commit_callbacks):
    request = _request(people, inputs={"n": 9, "fail": True})
    client.force_login(people["a1"])
    queue = client.get("/admin/approvals/approvalrequest/?can_approve=yes").content.decode()
    assert f"/approvalrequest/{request.pk}/change/" in queue
    page = client.get(f"/admin/approvals/approvalrequest/{request.pk}/change/").content.decode()
    assert 'id="approve"' in page and "&quot;fail&quot;: true" in page  # the exact inputs are shown
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/admin/approvals/approvalrequest/{request.pk}/decide/", {"decision": "approve"})
    page = client.get(f"/admin/approvals/approvalrequest/{request.pk}/change/").content.decode()
    assert "Failed" in page and "the sheet refused the write" in page and 'id="approve"' not in page
    assert any("failed" in m.subject and "a1@example.com" in m.to for m in mail.outbox)
    client.force_login(people["requester"])
    page = client.get(f"/admin/approvals/approvalrequest/{request.pk}/change/").content.decode()
    assert 'id="approve"' not in page


def test_the_decide_message_never_says_success_for_a_failure(people, rf):
    from django.contrib import messages

    from approvals.admin import decision_message

    request = _request(people, inputs={"n": 10, "fail": True})
    approval_approve(request_id=request.pk, actor=people["a1"])
    text, level = decision_message(approval_execute(request_id=request.pk))
    assert level == messages.ERROR and "FAILED" in text and "HTTP 403" in text

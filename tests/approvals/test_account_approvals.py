"""Granting a role above Viewer and issuing a write-scope API token need a second Platform Admin; neither the
requester nor the person the grant is for approves it (the issue's "second account approves itself" bypass)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from approvals.actions import api_token_write_request, roles_grant_request, roles_need_approval
from approvals.services import ApprovalError, approval_approve
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_a_platform_admin_cannot_make_their_second_account_a_steward_alone(
    role_user, django_capture_on_commit_callbacks
):
    admin = role_user("Platform Admin", username="pat")
    second = get_user_model().objects.create_user("pat2", "pat2@example.com", "pw", is_staff=True)
    assert roles_need_approval(["Data Steward"]) and not roles_need_approval(["Viewer"])
    with pytest.raises(ApprovalError, match="reason"):
        roles_grant_request(user=second, roles=["Data Steward"], actor=admin, reason="")
    request = roles_grant_request(user=second, roles=["Data Steward"], actor=admin, reason="new steward")
    assert not second.groups.exists()  # nothing changes before the approval
    with pytest.raises(ApprovalError, match="other than the requester"):
        approval_approve(request_id=request.pk, actor=admin)
    second.is_staff = True
    with pytest.raises(ApprovalError):
        approval_approve(request_id=request.pk, actor=second)  # not a Platform Admin, and the grantee
    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=request.pk, actor=role_user("Platform Admin", username="paula"))
    request.refresh_from_db()
    assert request.execution == "done", request.execution_outcome
    assert list(second.groups.values_list("name", flat=True)) == ["Data Steward"]
    assert AuditEvent.objects.filter(action="approval.executed", object_id=str(request.pk)).exists()


def test_the_grantee_never_approves_their_own_grant(role_user):
    admin = role_user("Platform Admin", username="pat")
    other_admin = role_user("Platform Admin", username="paula")
    request = roles_grant_request(user=other_admin, roles=["Auditor"], actor=admin, reason="audit season")
    with pytest.raises(ApprovalError, match="you changed"):
        approval_approve(request_id=request.pk, actor=other_admin)


def test_a_write_token_waits_for_a_second_platform_admin(role_user, django_capture_on_commit_callbacks):
    from rest_framework.authtoken.models import Token

    admin, analyst = role_user("Platform Admin", username="pat"), role_user("Analyst", username="ann")
    request = api_token_write_request(user=analyst, scopes=["write"], actor=admin, reason="ETL client")
    assert not Token.objects.filter(user=analyst).exists()
    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=request.pk, actor=role_user("Platform Admin", username="paula"))
    request.refresh_from_db()
    assert request.execution == "done" and Token.objects.filter(user=analyst).exists()

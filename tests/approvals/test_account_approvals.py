"""Granting a role above Viewer and issuing a write-scope API token need a second Platform Admin; neither the
requester nor the person the grant is for approves it (the issue's "second account approves itself" bypass).

The seam between the two halves of issue 9: the approved actions apply the change through the audited account
services (``user_roles_set`` / ``api_token_create``), which refuse it without the approved request; the admin
asks through ``user_roles_request`` / ``api_token_request`` and says truthfully that the change waits.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import (
    ApprovalRequired,
    api_token_collect,
    api_token_create,
    api_token_request,
    user_roles_request,
    user_roles_set,
)
from approvals.actions import api_token_write_request, roles_grant_request, roles_need_approval
from approvals.models import ApprovalRequest
from approvals.services import ApprovalError, approval_approve, approval_execute
from audit.models import AuditEvent
from audit.selectors import audit_chain_verify

pytestmark = pytest.mark.django_db
USERS = "/admin/auth/user/"


def _approve(request_id, actor, capture):
    with capture(execute=True):
        approval_approve(request_id=request_id, actor=actor)
    return ApprovalRequest.objects.get(pk=request_id)


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
    paula = role_user("Platform Admin", username="paula")
    request = _approve(request.pk, paula, django_capture_on_commit_callbacks)
    assert request.execution == "done", request.execution_outcome
    assert list(second.groups.values_list("name", flat=True)) == ["Data Steward"]
    assert AuditEvent.objects.filter(action="approval.executed", object_id=str(request.pk)).exists()
    # The grant itself is the audited service's event (one name, one shape), carrying the approval.
    grants = AuditEvent.objects.filter(action="accounts.user_roles_changed", object_id=str(second.pk))
    [(actor, data)] = grants.values_list("actor_id", "data")
    assert actor == paula.pk and data["granted"] == ["Data Steward"] and data["approval"] == request.pk
    assert not AuditEvent.objects.filter(action="accounts.roles_set").exists()  # the fallback's name is gone
    # Run again (a redelivered task, the sweeper after a crash): nothing more is granted or recorded.
    ApprovalRequest.objects.filter(pk=request.pk).update(execution="running", execution_started_at=None)
    again = approval_execute(request_id=request.pk, stuck_before=timezone.now())
    assert again.execution == "done" and "already held" in again.execution_outcome
    assert AuditEvent.objects.filter(action="accounts.user_roles_changed", object_id=str(second.pk)).count() == 1


def test_the_grantee_never_approves_their_own_grant(role_user):
    admin = role_user("Platform Admin", username="pat")
    other_admin = role_user("Platform Admin", username="paula")
    request = roles_grant_request(user=other_admin, roles=["Auditor"], actor=admin, reason="audit season")
    with pytest.raises(ApprovalError, match="you changed"):
        approval_approve(request_id=request.pk, actor=other_admin)


def test_the_services_refuse_a_grant_or_write_token_without_its_approval(role_user):
    """Whatever calls them (a new admin page, a script), the account services apply no guarded change alone."""
    admin, analyst = role_user("Platform Admin", username="pat"), role_user("Analyst", username="ann")
    with pytest.raises(ApprovalRequired, match="Content Admin"):
        user_roles_set(user=analyst, roles=["Analyst", "Content Admin"], actor=admin)
    with pytest.raises(ApprovalRequired):
        api_token_create(user=analyst, actor=None, name="etl", scope="write")
    # An approval of something else does not stand in: another user's grant, or another action.
    other = roles_grant_request(user=admin, roles=["Content Admin"], actor=analyst, reason="x")
    ApprovalRequest.objects.filter(pk=other.pk).update(status="approved", decided_at=timezone.now())
    other.refresh_from_db()
    with pytest.raises(ApprovalRequired):
        user_roles_set(user=analyst, roles=["Content Admin"], actor=admin, approval=other)
    with pytest.raises(ApprovalRequired):
        api_token_create(user=admin, actor=None, name="etl", scope="write", approval=other)
    assert list(analyst.groups.values_list("name", flat=True)) == ["Analyst"]
    assert not ApiToken.objects.exists()
    # What needs no approval applies: revoking, and Viewer.
    change = user_roles_set(user=analyst, roles=["Viewer"], actor=admin)
    assert change.granted == ("Viewer",) and change.revoked == ("Analyst",)


def test_a_custom_group_above_viewer_is_guarded_like_a_role(role_user):
    """A superuser's group carrying more than Viewer's permissions is a role in all but name: a Platform Admin
    cannot hand it to their second account without a second Platform Admin; a view-only group applies at once."""
    from django.contrib.auth.models import Permission

    admin = role_user("Platform Admin", username="pat")
    second = get_user_model().objects.create_user("pat2", "pat2@example.com", "pw", is_staff=True)
    power = Group.objects.create(name="Night shift")
    power.permissions.set([Permission.objects.get(codename="run_cleanup")])
    readers = Group.objects.create(name="Readers")
    readers.permissions.set(Group.objects.get(name="Viewer").permissions.all()[:3])
    with pytest.raises(ApprovalRequired, match="Night shift"):
        user_roles_set(user=second, roles=[power], actor=admin)
    outcome = user_roles_request(user=second, roles=[power, readers], actor=admin, reason="nights")
    assert outcome.pending == ("Night shift",) and list(second.groups.values_list("name", flat=True)) == ["Readers"]


def test_asking_for_roles_applies_revocations_and_viewer_at_once_and_the_rest_waits(role_user):
    admin = role_user("Platform Admin", username="pat")
    steward = role_user("Data Steward", username="stew")
    outcome = user_roles_request(
        user=steward, roles=["Viewer", "Auditor", "Content Admin"], actor=admin, reason="moves to audit"
    )
    assert set(steward.groups.values_list("name", flat=True)) == {"Viewer"}  # Data Steward revoked, Viewer granted
    assert outcome.applied.revoked == ("Data Steward",) and outcome.pending == ("Auditor", "Content Admin")
    assert outcome.approval.inputs["grant"] == ["Auditor", "Content Admin"]
    assert "waits for a second Platform Admin" in outcome.message
    # Asking again for the same opens nothing new.
    again = user_roles_request(user=steward, roles=["Viewer", "Auditor", "Content Admin"], actor=admin, reason="x")
    assert again.approval.pk == outcome.approval.pk and ApprovalRequest.objects.count() == 1


def test_the_user_admin_says_a_grant_waits_and_applies_the_rest(client, role_user, django_capture_on_commit_callbacks):
    admin = role_user("Platform Admin", username="pat")
    analyst = role_user("Analyst", username="ann")
    viewer, steward = Group.objects.get(name="Viewer"), Group.objects.get(name="Data Steward")
    client.force_login(admin)
    form = {"username": "ann", "email": analyst.email, "is_active": "on", "is_staff": "on",
            "groups": [viewer.pk, steward.pk], "role_grant_reason": "joins the stewards"}  # fmt: skip
    page = client.post(f"{USERS}{analyst.pk}/change/", form, follow=True).content.decode()
    assert "Data Steward: <a" in page and "waits for a second Platform Admin" in page
    assert "nothing is granted until then" in page and "was changed successfully" not in page
    assert set(analyst.groups.values_list("name", flat=True)) == {"Viewer"}  # Analyst revoked, Viewer granted
    request = ApprovalRequest.objects.get()
    assert f"/admin/approvals/approvalrequest/{request.pk}/change/" in page  # the user page lists what waits
    # The requester's own decide form refuses; a second Platform Admin's applies it.
    client.post(f"/admin/approvals/approvalrequest/{request.pk}/decide/", {"decision": "approve"})
    assert ApprovalRequest.objects.get().status == "pending"
    paula = role_user("Platform Admin", username="paula")
    client.force_login(paula)
    with django_capture_on_commit_callbacks(execute=True):
        decided = client.post(
            f"/admin/approvals/approvalrequest/{request.pk}/decide/", {"decision": "approve"}, follow=True
        )
    assert f"Approval #{request.pk} approved" in decided.content.decode()  # it runs on commit, after this test's
    assert ApprovalRequest.objects.get().execution == "done"  # transaction; then the page shows its outcome
    outcome = client.get(f"/admin/approvals/approvalrequest/{request.pk}/change/").content.decode()
    assert ">Done</strong>" in outcome and "ann now has Data Steward, Viewer" in outcome
    assert set(analyst.groups.values_list("name", flat=True)) == {"Viewer", "Data Steward"}
    # Someone who may never decide a role grant (a Data Steward) is refused the form outright.
    client.force_login(role_user("Data Steward", username="stew"))
    assert client.post(f"/admin/approvals/approvalrequest/{request.pk}/decide/", {}).status_code == 403
    assert audit_chain_verify(read_anchors=False).ok


def test_a_write_token_waits_for_a_second_platform_admin_and_only_its_owner_sees_the_key(
    client, role_user, django_capture_on_commit_callbacks, mailoutbox
):
    admin, analyst = role_user("Platform Admin", username="pat"), role_user("Analyst", username="ann")
    # The owner asks on their own tokens page; a write scope needs a reason and then waits.
    client.force_login(analyst)
    mine = "/admin/accounts/apitoken/mine/"
    page = client.post(mine, {"op": "create", "name": "etl", "scope": "write", "days": "30", "reason": ""})
    assert "needs a reason" in page.content.decode() and not ApprovalRequest.objects.exists()
    page = client.post(
        mine, {"op": "create", "name": "etl", "scope": "write", "days": "30", "reason": "ETL client"}, follow=True
    ).content.decode()
    assert "waits for a second Platform Admin" in page and not ApiToken.objects.filter(user=analyst).exists()
    request = ApprovalRequest.objects.get(inputs__user_id=analyst.pk)
    assert request.inputs["name"] == "etl" and request.inputs["days"] == 30
    with pytest.raises(ApprovalError):  # the owner never approves their own token
        approval_approve(request_id=request.pk, actor=analyst)
    request = _approve(request.pk, admin, django_capture_on_commit_callbacks)
    assert request.execution == "done", request.execution_outcome
    token = ApiToken.objects.get(user=analyst)
    assert token.scope == "write" and token.issued_at is None and token.knox_token is None  # no key exists yet
    [to_owner] = [m for m in mailoutbox if m.to == [analyst.email] and m.subject == "Your API token is ready"]
    assert mine in to_owner.body
    # Nobody but the owner collects the key; the owner does, once.
    with pytest.raises(PermissionError):
        api_token_collect(token=token, actor=admin)
    shown = client.post(mine, {"op": "collect", "token": token.pk})
    key = shown.content.decode().split('id="api-token-key">')[1].split("<")[0]
    assert len(key) == 64 and "no-store" in shown["Cache-Control"]
    again = client.post(mine, {"op": "collect", "token": token.pk}, follow=True).content.decode()
    assert key not in again and "never shown again" in again
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}
    written = client.post("/api/job-runs/", {"job": "nope"}, content_type="application/json", **auth)
    assert written.status_code == 400  # past the scope check: a write token writes (the job is unknown)
    created = AuditEvent.objects.filter(action="accounts.api_token_created").order_by("seq").last()
    assert created.actor_id == admin.pk and created.data["scope"] == "write" and created.data["approval"] == request.pk
    assert AuditEvent.objects.filter(action="accounts.api_token_key_shown", actor=analyst).count() == 1


def test_token_names_are_unique_per_user_and_an_approval_issues_once(role_user, django_capture_on_commit_callbacks):
    """Several tokens per user, one live token per name; a crash re-run of an approval creates nothing new."""
    admin, analyst = role_user("Platform Admin", username="pat"), role_user("Analyst", username="ann")
    token, key, approval = api_token_request(user=analyst, actor=analyst, name="a", scope="read")
    assert token is not None and key and approval is None
    assert api_token_request(user=analyst, actor=analyst, name="b", scope="read")[0] is not None
    with pytest.raises(ValueError, match="already has a token named"):
        api_token_request(user=analyst, actor=analyst, name="a", scope="read")
    with pytest.raises(ApprovalError, match="already has a token named"):
        api_token_write_request(user=analyst, actor=analyst, reason="more", name="a")
    with pytest.raises(PermissionError):  # a Platform Admin never makes (and sees) someone else's key
        api_token_request(user=analyst, actor=admin, name="c", scope="read")
    # A token of that name made while the write request waited: the approved request fails, saying what to do.
    viewer = role_user("Viewer", username="vic")
    request = api_token_write_request(user=viewer, actor=viewer, reason="ETL", name="etl")
    api_token_create(user=viewer, actor=viewer, name="etl", scope="read")
    request = _approve(request.pk, admin, django_capture_on_commit_callbacks)
    assert request.execution == "failed" and "revoke it or pick a name, then ask again" in request.execution_outcome
    # Idempotent: the approval that created a token, run again after a crash, reports it instead of failing.
    auditor = role_user("Auditor", username="aud")
    request = api_token_write_request(user=auditor, actor=auditor, reason="ETL", name="etl")
    request = _approve(request.pk, admin, django_capture_on_commit_callbacks)
    assert request.execution == "done"
    ApprovalRequest.objects.filter(pk=request.pk).update(execution="running", execution_started_at=None)
    again = approval_execute(request_id=request.pk, stuck_before=timezone.now())
    assert again.execution == "done" and "already created" in again.execution_outcome
    assert ApiToken.objects.filter(user=auditor).count() == 1

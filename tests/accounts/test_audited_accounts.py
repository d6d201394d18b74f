"""Users, roles, permissions and API tokens change through audited services only (issue 9).

The bypass: a Platform Admin created a second account, made it a Data Steward and used it to approve their
own request; the chain showed only the approval. Now every step of that is in the chain, with its actor.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import RequestFactory

from audit.models import AuditEvent
from audit.selectors import audit_chain_verify
from privacy.pseudonym import pseudonymise
from sales.models import SalesQuery

pytestmark = pytest.mark.django_db

USERS = "/admin/auth/user/"


def _events(**filters) -> list[tuple[str, int | None, dict]]:
    return list(AuditEvent.objects.filter(**filters).order_by("seq").values_list("action", "actor_id", "data"))


def _change_form(user, **overrides) -> dict:
    """The user change form as the admin renders it, with some fields changed."""
    form = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "groups": [g.pk for g in user.groups.all()],
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v not in ("", None)}


def test_second_account_made_steward_is_in_the_chain(
    client, role_user, django_user_model, django_capture_on_commit_callbacks
):
    """The bypass, step by step: the second account is created and edited at once (audited), but the Data Steward
    grant waits for a second Platform Admin; the one who asked and the account itself cannot approve it."""
    from approvals.models import ApprovalRequest
    from approvals.services import ApprovalError, approval_approve

    platform = role_user("Platform Admin")
    client.force_login(platform)
    response = client.post(
        f"{USERS}add/",
        {"username": "alt", "usable_password": "true", "password1": "Zx9-long-pass", "password2": "Zx9-long-pass"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    alt = django_user_model.objects.get(username="alt")
    steward = Group.objects.get(name="Data Steward")
    form = _change_form(alt, is_staff="on", email="alt@example.com", groups=[steward.pk])
    no_reason = client.post(f"{USERS}{alt.pk}/change/", form)
    assert no_reason.status_code == 200 and "needs a reason" in no_reason.content.decode()
    response = client.post(
        f"{USERS}{alt.pk}/change/", {**form, "role_grant_reason": "covers the review queue"}, follow=True
    )
    page = response.content.decode()
    assert "waits for a second Platform Admin" in page and "was changed successfully" not in page
    alt.refresh_from_db()
    assert alt.is_staff and not alt.groups.exists()  # the profile saved; the role did not
    request = ApprovalRequest.objects.get(action="accounts.roles_grant")
    assert request.inputs == {"user_id": alt.pk, "username": "alt", "grant": ["Data Steward"]}
    with pytest.raises(ApprovalError, match="other than the requester"):
        approval_approve(request_id=request.pk, actor=platform)
    with pytest.raises(ApprovalError):
        approval_approve(request_id=request.pk, actor=alt)  # the grantee: not a Platform Admin, and it shaped it
    second = role_user("Platform Admin", "second_admin")
    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=request.pk, actor=second)
    request.refresh_from_db()
    assert request.execution == "done", request.execution_outcome
    assert list(alt.groups.values_list("name", flat=True)) == ["Data Steward"]
    events = _events(object_type="auth.user", object_id=str(alt.pk))
    assert [(a, actor) for a, actor, _ in events] == [
        ("accounts.user_created", platform.pk),
        ("accounts.user_changed", platform.pk),
        ("accounts.user_flags_changed", platform.pk),
        ("accounts.user_roles_changed", second.pk),
    ]
    created, changed, flags, roles = (data for _, _, data in events)
    assert created["username"] == "alt" and created["password_usable"] and not created["is_staff"]
    # Personal data enters the chain as pseudonyms only (issue 12).
    assert changed == {"changes": {"email": ["", pseudonymise("alt@example.com", domain="email")]}}
    assert flags == {"changes": {"is_staff": [False, True]}}
    assert roles == {"username": "alt", "granted": ["Data Steward"], "revoked": [], "roles": ["Data Steward"],
                     "approval": request.pk}  # fmt: skip
    [(_, asker, asked)] = _events(action="approval.requested", object_id=str(request.pk))
    assert asker == platform.pk and asked["shapers"] == ["alt"] and asked["reason"] == "covers the review queue"
    assert "Zx9-long-pass" not in str(events) and alt.password not in str(events)
    assert audit_chain_verify(read_anchors=False).ok


def test_deactivate_reactivate_and_password_change_are_audited(client, role_user):
    platform = role_user("Platform Admin")
    analyst = role_user("Analyst")
    client.force_login(platform)
    assert client.post(f"{USERS}{analyst.pk}/change/", _change_form(analyst, is_active="")).status_code == 302
    analyst.refresh_from_db()
    assert not analyst.is_active
    assert client.post(f"{USERS}{analyst.pk}/change/", _change_form(analyst, is_active="on")).status_code == 302
    response = client.post(
        f"{USERS}{analyst.pk}/password/",
        {"usable_password": "true", "password1": "N3w-secret-pw", "password2": "N3w-secret-pw"},
    )
    assert response.status_code == 302
    analyst.refresh_from_db()
    assert analyst.check_password("N3w-secret-pw")
    events = _events(object_id=str(analyst.pk), actor=platform)
    assert [a for a, _, _ in events] == [
        "accounts.user_deactivated",
        "accounts.user_activated",
        "accounts.user_password_changed",
    ]
    assert events[-1][2] == {"username": "analyst", "usable": True}
    assert "N3w-secret-pw" not in str(events) and analyst.password not in str(events)


def test_platform_admin_cannot_escalate_with_a_crafted_post(client, role_user, django_user_model):
    platform = role_user("Platform Admin")
    boss = django_user_model.objects.create_superuser("boss", "boss@example.com", "x")
    client.force_login(platform)
    every = list(Permission.objects.values_list("pk", flat=True)[:5])
    client.post(
        f"{USERS}{platform.pk}/change/",
        _change_form(platform, is_superuser="on", user_permissions=every),
    )
    platform.refresh_from_db()
    assert not platform.is_superuser and not platform.user_permissions.exists()
    # The superuser's account, its password page included, is out of reach.
    assert client.get(f"{USERS}{boss.pk}/password/").status_code in (302, 404)
    client.post(
        f"{USERS}{boss.pk}/password/", {"usable_password": "true", "password1": "Own3d-pw!", "password2": "Own3d-pw!"}
    )
    boss.refresh_from_db()
    assert not boss.check_password("Own3d-pw!")
    assert not AuditEvent.objects.filter(action="accounts.user_flags_changed").exists()


def test_superuser_flags_and_per_user_permissions_are_audited(admin_client, admin_user, role_user):
    viewer = role_user("Viewer")
    perm = Permission.objects.get(codename="run_cleanup")
    response = admin_client.post(
        f"{USERS}{viewer.pk}/change/",
        _change_form(
            viewer,
            is_superuser="on",
            user_permissions=[perm.pk],
            last_login="",
            date_joined_0=viewer.date_joined.date().isoformat(),
            date_joined_1=viewer.date_joined.time().strftime("%H:%M:%S"),
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    events = {a: (actor, data) for a, actor, data in _events(object_id=str(viewer.pk), actor=admin_user)}
    assert events["accounts.user_flags_changed"][1] == {"changes": {"is_superuser": [False, True]}}
    assert events["accounts.user_permissions_changed"][1]["granted"] == ["cleanup.run_cleanup"]


def test_role_groups_are_read_only_and_other_groups_are_audited(
    admin_client, admin_user, role_user, django_capture_on_commit_callbacks
):
    viewer_group = Group.objects.get(name="Viewer")
    before = set(viewer_group.permissions.values_list("pk", flat=True))
    run_cleanup = Permission.objects.get(codename="run_cleanup")
    page = admin_client.get(f"/admin/auth/group/{viewer_group.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content  # shown, never saved
    refused = admin_client.post(
        f"/admin/auth/group/{viewer_group.pk}/change/", {"name": "Viewer", "permissions": [run_cleanup.pk]}
    )
    assert refused.status_code == 403
    assert set(viewer_group.permissions.values_list("pk", flat=True)) == before
    assert admin_client.get(f"/admin/auth/group/{viewer_group.pk}/delete/").status_code == 403
    response = admin_client.post("/admin/auth/group/add/", {"name": "Night shift", "permissions": [run_cleanup.pk]})
    assert response.status_code == 302
    shift = Group.objects.get(name="Night shift")
    viewer = role_user("Viewer")
    admin_client.post(
        f"{USERS}{viewer.pk}/change/",
        _change_form(
            viewer,
            groups=[viewer_group.pk, shift.pk],
            role_grant_reason="covers the night cleanup",
            date_joined_0=viewer.date_joined.date().isoformat(),
            date_joined_1=viewer.date_joined.time().strftime("%H:%M:%S"),
        ),
    )
    # A group with a permission Viewer lacks is a role above Viewer in all but name: its grant waits too.
    assert not viewer.groups.filter(name="Night shift").exists()
    from approvals.models import ApprovalRequest
    from approvals.services import approval_approve

    request = ApprovalRequest.objects.get(action="accounts.roles_grant")
    assert request.inputs["grant"] == ["Night shift"]
    platform = role_user("Platform Admin")
    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=request.pk, actor=platform)
    assert viewer.groups.filter(name="Night shift").exists()
    assert admin_client.post(f"/admin/auth/group/{shift.pk}/delete/", {"post": "yes"}).status_code == 302
    actions = [(a, d) for a, _, d in _events(actor=admin_user)]
    assert ("accounts.group_created", {"name": "Night shift"}) in actions
    granted = [d for a, d in actions if a == "accounts.group_permissions_changed"]
    assert granted and granted[0]["granted"] == ["cleanup.run_cleanup"]
    roles = [d for a, _, d in _events(actor=platform, action="accounts.user_roles_changed")]
    assert roles and roles[0]["granted"] == ["Night shift"] and roles[0]["approval"] == request.pk
    deleted = [d for a, d in actions if a == "accounts.group_deleted"]
    assert deleted == [{"name": "Night shift", "members": ["viewer"], "permissions": ["cleanup.run_cleanup"]}]


def test_api_tokens_are_created_by_their_owner_shown_once_hashed_and_revoked_audited(client, role_user):
    """The key is shown once, to its owner, and stored only as knox's digest; Platform Admins see and revoke."""
    from knox.models import AuthToken

    from accounts.models import ApiToken

    analyst = role_user("Analyst")
    client.force_login(analyst)
    mine = "/admin/accounts/apitoken/mine/"
    page = client.get(mine)
    assert page.status_code == 200 and b"You have no API token yet" in page.content
    shown = client.post(mine, {"op": "create", "name": "reports", "scope": "read", "days": "30"})
    key = shown.content.decode().split('id="api-token-key">')[1].split("<")[0]
    assert len(key) == 64 and "no-store" in shown["Cache-Control"]
    token = ApiToken.objects.get(user=analyst)
    stored = AuthToken.objects.get(pk=token.knox_token_id)
    assert key not in stored.digest and key.startswith(stored.token_key)  # hashed at rest
    assert 29 <= (token.expires_at - token.issued_at).days <= 30
    listing = client.get(mine).content.decode()
    assert key not in listing and "reports" in listing and "active" in listing
    assert client.post(mine, {"op": "create", "name": "x", "scope": "read", "days": "9999"}).status_code == 200
    assert not ApiToken.objects.filter(name="x").exists()  # past API_TOKEN_MAX_DAYS
    # A Platform Admin sees everyone's tokens (never a key) and revokes them.
    platform = role_user("Platform Admin")
    client.force_login(platform)
    assert key not in client.get("/admin/accounts/apitoken/").content.decode()
    assert key not in client.get(f"/admin/accounts/apitoken/{token.pk}/change/").content.decode()
    assert client.get("/admin/accounts/apitoken/add/").status_code == 403  # keys are their owners' only
    assert client.post(f"/admin/accounts/apitoken/{token.pk}/delete/", {"post": "yes"}).status_code == 302
    token.refresh_from_db()
    assert token.revoked_by == platform and token.status == "revoked" and not AuthToken.objects.exists()
    client.logout()
    assert client.get("/api/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401
    events = _events(object_type="accounts.apitoken")
    assert [(a, actor) for a, actor, _ in events] == [
        ("accounts.api_token_created", analyst.pk),
        ("accounts.api_token_revoked", platform.pk),
    ]
    assert events[0][2]["user"] == analyst.username and events[0][2]["scope"] == "read" and key not in str(events)


def test_a_viewer_sees_only_their_own_tokens(client, role_user):
    client.force_login(role_user("Viewer"))
    assert client.get("/admin/accounts/apitoken/").status_code == 403
    assert client.get("/admin/accounts/apitoken/mine/").status_code == 200


def test_deleting_a_user_is_audited(client, role_user, django_user_model):
    platform = role_user("Platform Admin")
    leaver = role_user("Analyst", "leaver")
    client.force_login(platform)
    assert client.post(f"{USERS}{leaver.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not django_user_model.objects.filter(username="leaver").exists()
    [(action, actor, data)] = _events(action="accounts.user_deleted")
    email = pseudonymise("leaver@example.com", domain="email")
    assert actor == platform.pk and data == {"username": "leaver", "email": email, "roles": ["Analyst"]}


def test_editing_a_sales_querys_sql_is_audited(client, role_user):
    platform = role_user("Platform Admin")
    query = SalesQuery.objects.create(name="q1", title="Q1", sql="SELECT 1")
    client.force_login(platform)
    response = client.post(
        f"/admin/sales/salesquery/{query.pk}/change/",
        {"name": "q1", "title": "Q1", "description": "", "sql": "SELECT 2 -- changed", "active": "on"},
    )
    assert response.status_code == 302
    [(action, actor, data)] = _events(action="sales.query_changed")
    assert actor == platform.pk and data["changed"] == ["sql"] and data["sql"] == "SELECT 2 -- changed"
    assert data["sql_sha256_before"] != data["sql_sha256"]


def test_every_admin_that_writes_goes_through_a_service(admin_user):
    """A ModelAdmin that lets anyone add, change or delete must save and delete through its own (audited)
    code, not the stock ModelAdmin's ``obj.save()``: a new admin that forgets fails here."""
    from django.contrib.admin import ModelAdmin
    from django.contrib.auth.admin import GroupAdmin, UserAdmin

    stock = (ModelAdmin, UserAdmin, GroupAdmin)
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    missing = []
    for model, model_admin in admin.site._registry.items():
        cls = type(model_admin)
        writes = model_admin.has_add_permission(request) or model_admin.has_change_permission(request)
        if writes:
            for name in ("save_model",) + (("save_related",) if model._meta.many_to_many else ()):
                if any(getattr(cls, name) is getattr(base, name) for base in stock):
                    missing.append(f"{model._meta.label}: {name}")
        if model_admin.has_delete_permission(request):
            for name in ("delete_model", "delete_queryset"):
                if any(getattr(cls, name) is getattr(base, name) for base in stock):
                    missing.append(f"{model._meta.label}: {name}")
    assert not missing, missing


def test_changing_ones_own_password_is_audited(client, role_user):
    viewer = role_user("Viewer")
    client.force_login(viewer)
    response = client.post(
        "/admin/password_change/",
        {"old_password": "pw-viewer", "new_password1": "Fresh-0wn-pass", "new_password2": "Fresh-0wn-pass"},
    )
    assert response.status_code == 302
    viewer.refresh_from_db()
    assert viewer.check_password("Fresh-0wn-pass")
    assert _events(action="accounts.user_password_changed") == [
        ("accounts.user_password_changed", viewer.pk, {"username": "viewer", "usable": True})
    ]


def test_a_superuser_saving_a_user_unchanged_records_nothing(admin_client, role_user):
    """The form re-renders last_login/date_joined to the second: an untouched save is not a change."""
    from django.utils import timezone

    viewer = role_user("Viewer")
    type(viewer).objects.filter(pk=viewer.pk).update(last_login=timezone.now())
    viewer.refresh_from_db()
    before = AuditEvent.objects.count()
    response = admin_client.post(
        f"{USERS}{viewer.pk}/change/",
        _change_form(
            viewer,
            last_login_0=viewer.last_login.date().isoformat(),
            last_login_1=viewer.last_login.time().strftime("%H:%M:%S"),
            date_joined_0=viewer.date_joined.date().isoformat(),
            date_joined_1=viewer.date_joined.time().strftime("%H:%M:%S"),
            # date_joined has a callable default: the browser posts its rendered initial value too
            **{
                "initial-date_joined_0": viewer.date_joined.date().isoformat(),
                "initial-date_joined_1": viewer.date_joined.time().strftime("%H:%M:%S"),
            },
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert AuditEvent.objects.count() == before
    stored = type(viewer).objects.get(pk=viewer.pk)
    assert stored.last_login == viewer.last_login  # not truncated to the second either


def test_removing_an_escalation_rung_is_audited(client, role_user):
    """Found by the test above after monitoring merged: a ladder rung deleted in the admin left no trace."""
    from monitoring.models import EscalationStep
    from tests.rolewalk.objects import build

    platform = role_user("Platform Admin")
    # The default ladder comes with a migration (a transactional test's flush may have emptied it).
    step = EscalationStep.objects.order_by("pk").first() or build(EscalationStep)
    client.force_login(platform)
    url = f"/admin/monitoring/escalationstep/{step.pk}/delete/"
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not EscalationStep.objects.filter(pk=step.pk).exists()
    [(action, actor, data)] = _events(action="escalation.step_deleted")
    assert actor == platform.pk and data["level"] == step.level and data["audience"] == step.audience

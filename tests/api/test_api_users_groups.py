"""Users created, edited and deleted through /api/v1/ as the admin's user forms do (Platform Admins, the same audited
services, superusers out of reach), and groups that are not roles (superusers only; roles stay read-only)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from audit.models import AuditEvent
from tests.tokens import api_token_for

pytestmark = pytest.mark.django_db
User = get_user_model()


def _auth(user, scope: str = "write") -> dict:
    return {"HTTP_AUTHORIZATION": f"Token {api_token_for(user, scope=scope)}"}


def _send(client, method: str, url: str, body: dict, auth: dict):
    return getattr(client, method)(url, json.dumps(body), content_type="application/json", **auth)


def _actions(user) -> list[str]:
    return list(AuditEvent.objects.filter(object_type="auth.user", object_id=str(user.pk)).order_by("seq")
                .values_list("action", flat=True))  # fmt: skip


def test_a_platform_admin_creates_a_user_as_the_admin_form_does(client, role_user):
    admin = role_user("Platform Admin", "pat")
    url = reverse("api-user-list")
    body = {"username": "newbie", "email": "newbie@example.com", "first_name": "New", "password": "a-long-Passphrase-9"}
    assert _send(client, "post", url, body, _auth(role_user("Data Steward"))).status_code == 403
    assert _send(client, "post", url, body, _auth(admin, "read")).status_code == 403  # a read token never writes
    weak = _send(client, "post", url, {**body, "password": "123"}, _auth(admin))
    assert weak.status_code == 400 and set(weak.json()) == {"password"}  # the site's password validators
    bad = _send(client, "post", url, {"username": "no spaces allowed!"}, _auth(admin))
    assert bad.status_code == 400 and set(bad.json()) == {"username"}
    assert not User.objects.filter(username="newbie").exists()

    created = _send(client, "post", url, body, _auth(admin))
    assert created.status_code == 201, created.json()
    out = created.json()
    assert out["username"] == "newbie" and out["roles"] == [] and "password" not in out
    user = User.objects.get(username="newbie")
    assert user.check_password("a-long-Passphrase-9") and not user.is_superuser
    assert _actions(user) == ["accounts.user_created", "accounts.user_password_changed"]
    assert AuditEvent.objects.get(action="accounts.user_created", object_id=str(user.pk)).actor_label == "pat"
    taken = _send(client, "post", url, {"username": "newbie"}, _auth(admin))
    assert taken.status_code == 400 and set(taken.json()) == {"username"}

    without = _send(client, "post", url, {"username": "sso-only"}, _auth(admin))
    assert without.status_code == 201 and not User.objects.get(username="sso-only").has_usable_password()


def test_a_user_is_edited_and_deleted_through_the_audited_services(client, role_user):
    admin = role_user("Platform Admin", "pat")
    user = User.objects.create_user("edna", email="edna@example.com", password="an-Old-passphrase-1")
    detail = reverse("api-user-detail", kwargs={"pk": user.pk})
    assert _send(client, "patch", detail, {"first_name": "Ed"}, _auth(role_user("Viewer"))).status_code == 403
    edited = _send(client, "patch", detail, {"first_name": "Ed", "is_active": False}, _auth(admin))
    assert edited.status_code == 200 and edited.json()["first_name"] == "Ed" and edited.json()["is_active"] is False
    assert _actions(user) == ["accounts.user_changed", "accounts.user_deactivated"]
    weak = _send(client, "patch", detail, {"password": "edna"}, _auth(admin))  # too like the username, too short
    assert weak.status_code == 400 and set(weak.json()) == {"password"}
    user.refresh_from_db()
    assert user.check_password("an-Old-passphrase-1")
    assert _send(client, "patch", detail, {"password": "a-New-passphrase-22"}, _auth(admin)).status_code == 200
    user.refresh_from_db()
    assert user.check_password("a-New-passphrase-22") and _actions(user)[-1] == "accounts.user_password_changed"
    assert _send(client, "patch", detail, {"is_superuser": True}, _auth(admin)).status_code == 200
    user.refresh_from_db()
    assert not user.is_superuser  # not a field here: the superuser flag stays in the admin, for superusers

    user.groups.add(Group.objects.get(name="Viewer"))
    assert client.delete(detail, **_auth(role_user("Viewer"))).status_code == 403
    assert client.delete(detail, **_auth(admin, "read")).status_code == 403
    assert client.delete(detail, **_auth(admin)).status_code == 204
    assert not User.objects.filter(pk=user.pk).exists()
    deleted = AuditEvent.objects.get(action="accounts.user_deleted", object_id=str(user.pk))
    assert deleted.data["username"] == "edna" and deleted.data["roles"] == ["Viewer"]
    assert client.delete(detail, **_auth(admin)).status_code == 404


def test_superusers_are_out_of_a_platform_admins_reach(client, role_user):
    admin = role_user("Platform Admin")
    root = User.objects.create_superuser("root", "root@example.com", "x-Root-passphrase-1")
    detail = reverse("api-user-detail", kwargs={"pk": root.pk})
    assert _send(client, "patch", detail, {"is_active": False}, _auth(admin)).status_code == 404
    assert client.delete(detail, **_auth(admin)).status_code == 404
    root.refresh_from_db()
    assert root.is_active


def test_groups_other_than_roles_are_written_by_superusers_only_and_roles_never(client, role_user):
    root = User.objects.create_superuser("root", "root@example.com", "x-Root-passphrase-1")
    url = reverse("api-group-list")
    body = {"name": "contractors", "permissions": ["cleanup.view_lookerdashboard"]}
    assert _send(client, "post", url, body, _auth(role_user("Platform Admin"))).status_code == 403  # no role holds it
    role = _send(client, "post", url, {"name": "Viewer"}, _auth(root))
    assert role.status_code == 400 and set(role.json()) == {"name"}
    unknown = _send(client, "post", url, {"name": "x", "permissions": ["cleanup.fly"]}, _auth(root))
    assert unknown.status_code == 400 and "cleanup.fly" in str(unknown.json()["permissions"])

    created = _send(client, "post", url, body, _auth(root))
    assert created.status_code == 201 and created.json()["permissions"] == ["cleanup.view_lookerdashboard"]
    group = Group.objects.get(name="contractors")
    assert [e.action for e in AuditEvent.objects.filter(object_type="auth.group", object_id=str(group.pk))
            .order_by("seq")] == ["accounts.group_created", "accounts.group_permissions_changed"]  # fmt: skip
    detail = reverse("api-group-detail", kwargs={"pk": group.pk})
    renamed = _send(client, "patch", detail, {"name": "vendors", "permissions": []}, _auth(root))
    assert renamed.status_code == 200 and renamed.json() == {**renamed.json(), "name": "vendors", "permissions": []}
    assert AuditEvent.objects.filter(action="accounts.group_renamed", object_id=str(group.pk)).exists()

    viewer = Group.objects.get(name="Viewer")
    viewer_url = reverse("api-group-detail", kwargs={"pk": viewer.pk})
    assert _send(client, "patch", viewer_url, {"name": "Watchers"}, _auth(root)).status_code == 403
    assert client.delete(viewer_url, **_auth(root)).status_code == 403
    assert Group.objects.filter(name="Viewer").exists()
    assert client.delete(detail, **_auth(root)).status_code == 204
    assert AuditEvent.objects.filter(action="accounts.group_deleted", object_id=str(group.pk)).exists()

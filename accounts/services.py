"""Users, roles, permissions and API tokens: every change is one transaction with its audit event.

The admin (``accounts/admin.py``), ``demo_setup`` and any later API call these; nothing else changes a user's
flags, password, groups or permissions, or issues a token. ``user_roles_set`` is the only place group
memberships change, so a rule on role grants (an approval before granting a role above Viewer) goes there.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from rest_framework.authtoken.models import Token

from audit.services import audit_log

from .roles import ROLE_PERMISSIONS

PROFILE_FIELDS = ("username", "first_name", "last_name", "email", "last_login", "date_joined")
FLAG_FIELDS = ("is_staff", "is_superuser")


@dataclass(frozen=True)
class RoleChange:
    """What ``user_roles_set`` applied: the roles granted and revoked, and the user's roles after."""

    user_id: int
    granted: tuple[str, ...]
    revoked: tuple[str, ...]
    roles: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.granted or self.revoked)


@dataclass(frozen=True)
class PermissionChange:
    user_id: int
    granted: tuple[str, ...]
    revoked: tuple[str, ...]
    permissions: tuple[str, ...]


def _perm_name(p: Permission) -> str:
    return f"{p.content_type.app_label}.{p.codename}"


def _value(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def _locked(user: Any) -> Any:
    return get_user_model().objects.select_for_update().get(pk=user.pk)


def user_create(*, user: Any, actor: Any, roles: Iterable[str | Group] = ()) -> Any:
    """Save a new user (validated by the caller's form, password already set or unusable), audited; then roles."""
    with transaction.atomic():
        user.save()
        audit_log(
            action="accounts.user_created",
            obj=user,
            actor=actor,
            data={
                "username": user.get_username(),
                "email": user.email,
                "is_active": user.is_active,
                "is_staff": user.is_staff,
                "is_superuser": user.is_superuser,
                "password_usable": user.has_usable_password(),
            },
        )
        if roles:
            user_roles_set(user=user, roles=roles, actor=actor)
    return user


def user_update(*, user: Any, actor: Any, fields: Sequence[str] | None = None) -> dict[str, list[Any]]:
    """Save an edited user (fields set by the caller's form), with one audit event per kind of change.

    Compared with the row as stored: profile fields -> ``user_changed``; ``is_active`` -> ``user_activated`` or
    ``user_deactivated``; ``is_staff``/``is_superuser`` -> ``user_flags_changed``; a new password hash ->
    ``user_password_changed``. ``fields``: only these (a form's ``changed_data``; a form re-renders datetimes to
    the second, so fields it did not change are neither saved nor reported). Returns ``{field: [before, after]}``.
    """
    known = (*PROFILE_FIELDS, "is_active", *FLAG_FIELDS)
    candidates = known if fields is None else [f for f in known if f in fields]
    with transaction.atomic():
        stored = _locked(user)
        changes = {
            f: [_value(getattr(stored, f)), _value(getattr(user, f))]
            for f in candidates
            if getattr(stored, f) != getattr(user, f)
        }
        password_changed = (fields is None or "password" in fields) and stored.password != user.password
        fields = [*changes, *(["password"] if password_changed else [])]
        if not fields:
            return {}
        user.save(update_fields=fields)
        profile = {f: v for f, v in changes.items() if f in PROFILE_FIELDS}
        if profile:
            audit_log(action="accounts.user_changed", obj=user, actor=actor, data={"changes": profile})
        if "is_active" in changes:
            action = "accounts.user_activated" if user.is_active else "accounts.user_deactivated"
            audit_log(action=action, obj=user, actor=actor, data={"username": user.get_username()})
        flags = {f: v for f, v in changes.items() if f in FLAG_FIELDS}
        if flags:
            audit_log(action="accounts.user_flags_changed", obj=user, actor=actor, data={"changes": flags})
        if password_changed:
            _password_audit(user, actor)
    return changes


def _password_audit(user: Any, actor: Any) -> None:
    audit_log(
        action="accounts.user_password_changed",
        obj=user,
        actor=actor,
        data={"username": user.get_username(), "usable": user.has_usable_password()},
    )


def user_password_set(*, user: Any, password: str | None, actor: Any) -> Any:
    """Set a user's password (``None``: no password login at all), audited; never the password or its hash."""
    with transaction.atomic():
        _locked(user)
        if password is None:
            user.set_unusable_password()
        else:
            user.set_password(password)
        user.save(update_fields=["password"])
        _password_audit(user, actor)
    return user


def user_delete(*, user: Any, actor: Any) -> None:
    """Delete a user, audited with who they were and the roles they held. Their audit events stay."""
    with transaction.atomic():
        roles = sorted(user.groups.values_list("name", flat=True))
        audit_log(
            action="accounts.user_deleted",
            obj=user,
            actor=actor,
            data={"username": user.get_username(), "email": user.email, "roles": roles},
        )
        user.delete()


def user_roles_set(*, user: Any, roles: Iterable[str | Group], actor: Any, approval: Any = None) -> RoleChange:
    """Give the user exactly these roles (groups); returns what was granted and revoked.

    The one place group memberships change: the admin, ``demo_setup`` and user creation all come here, so a
    rule on grants (roles above Viewer, ``roles.PRIVILEGED_ROLES``, needing a second Platform Admin's approval)
    is added in one place. ``approval``: the approved request this applies, recorded in the audit event.
    """
    wanted = [r if isinstance(r, Group) else Group.objects.get(name=r) for r in roles]
    with transaction.atomic():
        locked = _locked(user)
        before = set(locked.groups.values_list("name", flat=True))
        after = {g.name for g in wanted}
        change = RoleChange(
            user_id=user.pk,
            granted=tuple(sorted(after - before)),
            revoked=tuple(sorted(before - after)),
            roles=tuple(sorted(after)),
        )
        if change.changed:
            locked.groups.set(wanted)
            audit_log(
                action="accounts.user_roles_changed",
                obj=user,
                actor=actor,
                data={
                    "username": user.get_username(),
                    "granted": list(change.granted),
                    "revoked": list(change.revoked),
                    "roles": list(change.roles),
                    **({"approval": approval.pk} if approval is not None else {}),
                },
            )
    return change


def user_permissions_set(*, user: Any, permissions: Iterable[Permission], actor: Any) -> PermissionChange:
    """Give the user exactly these per-user permissions (beside their roles); audited."""
    wanted = list(permissions)
    with transaction.atomic():
        locked = _locked(user)
        before = {_perm_name(p) for p in locked.user_permissions.select_related("content_type")}
        after = {_perm_name(p) for p in Permission.objects.filter(pk__in=[p.pk for p in wanted]).select_related(
            "content_type"
        )}  # fmt: skip
        change = PermissionChange(
            user_id=user.pk,
            granted=tuple(sorted(after - before)),
            revoked=tuple(sorted(before - after)),
            permissions=tuple(sorted(after)),
        )
        if change.granted or change.revoked:
            locked.user_permissions.set(wanted)
            audit_log(
                action="accounts.user_permissions_changed",
                obj=user,
                actor=actor,
                data={
                    "username": user.get_username(),
                    "granted": list(change.granted),
                    "revoked": list(change.revoked),
                    "permissions": list(change.permissions),
                },
            )
    return change


# --- groups (roles come from roles.py; other groups are edited in the admin) ------------------------------------


def group_save(*, group: Group, actor: Any, permissions: Iterable[Permission] | None = None) -> Group:
    """Create or rename a group and set its permissions, audited. Role groups are defined by roles.py only."""
    with transaction.atomic():
        created = group.pk is None
        if not created:
            stored = Group.objects.select_for_update().get(pk=group.pk)
            if stored.name in ROLE_PERMISSIONS:
                raise ValueError(f"{stored.name} is a role: its name and permissions come from accounts/roles.py")
        if group.name in ROLE_PERMISSIONS and created:
            raise ValueError(f"{group.name} is a role name; roles are created by migrations from accounts/roles.py")
        before_name = None if created else stored.name
        group.save()
        before = set() if created else {_perm_name(p) for p in stored.permissions.select_related("content_type")}
        if created:
            audit_log(action="accounts.group_created", obj=group, actor=actor, data={"name": group.name})
        elif before_name != group.name:
            audit_log(
                action="accounts.group_renamed",
                obj=group,
                actor=actor,
                data={"before": before_name, "after": group.name},
            )
        if permissions is not None:
            wanted = list(permissions)
            after = {_perm_name(p) for p in Permission.objects.filter(pk__in=[p.pk for p in wanted]).select_related(
                "content_type"
            )}  # fmt: skip
            if after != before:
                group.permissions.set(wanted)
                audit_log(
                    action="accounts.group_permissions_changed",
                    obj=group,
                    actor=actor,
                    data={
                        "name": group.name,
                        "granted": sorted(after - before),
                        "revoked": sorted(before - after),
                        "permissions": sorted(after),
                    },
                )
    return group


def group_delete(*, group: Group, actor: Any) -> None:
    """Delete a (non-role) group, audited with its members, whose memberships end with it."""
    if group.name in ROLE_PERMISSIONS:
        raise ValueError(f"{group.name} is a role defined in accounts/roles.py; it cannot be deleted")
    with transaction.atomic():
        audit_log(
            action="accounts.group_deleted",
            obj=group,
            actor=actor,
            data={
                "name": group.name,
                "members": sorted(group.user_set.values_list("username", flat=True)),
                "permissions": sorted(_perm_name(p) for p in group.permissions.select_related("content_type")),
            },
        )
        group.delete()


# --- API tokens -----------------------------------------------------------------------------------------------


def token_fingerprint(key: str) -> str:
    """What the audit trail and the admin show of a token: enough to tell tokens apart, useless to log in."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def api_token_create(*, user: Any, actor: Any, scopes: Sequence[str] = (), approval: Any = None) -> Token:
    """Issue the user's API token (one per user), audited with its fingerprint; the key is shown once by the caller.

    A token acts as its user, so issuing one for someone else is recorded with both names. A write-scoped token
    is a guarded action (it needs an approval): ``scopes`` and the approved request (``approval``) are recorded.
    """
    with transaction.atomic():
        if Token.objects.select_for_update().filter(user=user).exists():
            raise ValueError(f"{user.get_username()} already has an API token: revoke it first")
        token = Token.objects.create(user=user)
        audit_log(
            action="accounts.api_token_created",
            object_type="authtoken.token",
            object_id=token_fingerprint(token.key),
            object_repr=f"API token of {user.get_username()}",
            actor=actor,
            data={
                "user": user.get_username(),
                "fingerprint": token_fingerprint(token.key),
                "scopes": sorted(scopes),
                **({"approval": approval.pk} if approval is not None else {}),
            },
        )
    return token


def api_token_revoke(*, token: Token, actor: Any) -> None:
    """Delete an API token (its user can no longer call the API with it), audited."""
    with transaction.atomic():
        audit_log(
            action="accounts.api_token_revoked",
            object_type="authtoken.token",
            object_id=token_fingerprint(token.key),
            object_repr=f"API token of {token.user.get_username()}",
            actor=actor,
            data={"user": token.user.get_username(), "fingerprint": token_fingerprint(token.key)},
        )
        Token.objects.filter(key=token.key).delete()  # by key: TokenProxy.pk is its user id


# --- demo -----------------------------------------------------------------------------------------------------


def role_user_ensure(*, username: str, role: str, email: str, password: str | None = None) -> tuple[object, str]:
    """Create (or reset) a staff user holding exactly one role; returns the user and its new password."""
    if role not in ROLE_PERMISSIONS:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLE_PERMISSIONS)}")
    password = password or secrets.token_urlsafe(9)
    User = get_user_model()
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username, defaults={"email": email})
        user.email = email
        user.is_staff = True
        user.is_active = True
        user.set_password(password)
        user.save()
        audit_log(
            action="accounts.role_user_created" if created else "accounts.role_user_reset",
            obj=user,
            data={"role": role, "email": email},
        )
        user_roles_set(user=user, roles=[role], actor=None)
    return user, password

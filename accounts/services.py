"""Users, roles, permissions and API tokens: every change is one transaction with its audit event.

The admin (``accounts/admin.py``), ``demo_setup`` and any later API call these; nothing else changes a user's
flags, password, groups or permissions, or issues a token. ``user_roles_set`` is the only place group
memberships change, and it refuses to grant a role above Viewer (``groups_above_viewer``) without the approved
request that asked for it; ``user_roles_request`` is what a person asking for a change calls (revocations and
Viewer apply at once, the rest opens an approval). Likewise ``api_token_create`` refuses a write-scope token
without its approval, and ``api_token_request`` is the entry point. A user holds several named tokens
(django-rest-knox: hashed at rest, each with an expiry); the key is shown once, to its owner only.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.mail import send_mail
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from audit.services import audit_log
from privacy.pseudonym import EMAIL, audit_profile_changes, pseudonymise

from .models import ApiToken
from .roles import PRIVILEGED_ROLES, ROLE_PERMISSIONS, VIEWER

logger = logging.getLogger(__name__)

# The approvals app's action names for the two guarded account changes (registered in approvals/actions.py).
ROLES_GRANT_ACTION = "accounts.roles_grant"
TOKEN_WRITE_ACTION = "accounts.api_token_write"  # noqa: S105 - an action name, not a secret
TOKEN_SCOPES = tuple(ApiToken.Scope.values)


class ApprovalRequired(PermissionError):
    """The change is a guarded action: it applies only through its approved request."""


class TokenExists(ValueError):
    """The user already has a live API token of that name: revoke it or pick another name."""

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
                "email": pseudonymise(user.email, domain=EMAIL),
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
            changed = {"changes": audit_profile_changes(profile)}  # personal fields as pseudonyms
            audit_log(action="accounts.user_changed", obj=user, actor=actor, data=changed)
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
            data={"username": user.get_username(), "email": pseudonymise(user.email, domain=EMAIL), "roles": roles},
        )
        user.delete()


def groups_above_viewer(groups: Iterable[str | Group]) -> list[str]:
    """The names among ``groups`` that give more than Viewer: a role of ``roles.PRIVILEGED_ROLES``, or any other
    group holding a permission the Viewer role does not (a custom group is a role in all but name)."""
    named = [g if isinstance(g, Group) else Group.objects.get(name=g) for g in groups]
    viewer = Group.objects.filter(name=VIEWER).values_list("permissions", flat=True)
    out = []
    for group in named:
        if group.name == VIEWER:
            continue
        if group.name in PRIVILEGED_ROLES or group.permissions.exclude(pk__in=[p for p in viewer if p]).exists():
            out.append(group.name)
    return sorted(out)


def _approved(approval: Any, *, action: str, user: Any) -> bool:
    """``approval`` is an approved request for ``action`` about ``user`` (what its handler passes in)."""
    return (
        approval is not None
        and getattr(approval, "action", None) == action
        and getattr(approval, "status", None) == "approved"
        and (approval.inputs or {}).get("user_id") == user.pk
    )


def user_roles_set(
    *, user: Any, roles: Iterable[str | Group], actor: Any, approval: Any = None, _unguarded: bool = False
) -> RoleChange:
    """Give the user exactly these roles (groups); returns what was granted and revoked.

    The one place group memberships change. Granting a role above Viewer (``roles.PRIVILEGED_ROLES``, or any
    group with a permission Viewer lacks: ``groups_above_viewer``) needs ``approval``: the approved
    ``accounts.roles_grant`` request for this user naming those roles (recorded in the audit event); without it
    ``ApprovalRequired`` is raised and nothing changes. People asking for a change call
    ``user_roles_request``, which applies what may apply at once and opens the request for the rest.
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
        guarded = groups_above_viewer(g for g in wanted if g.name in change.granted)
        if guarded and not _unguarded:
            approved = set(approval.inputs.get("grant", [])) if _approved(
                approval, action=ROLES_GRANT_ACTION, user=user
            ) else set()  # fmt: skip
            if not set(guarded) <= approved:
                raise ApprovalRequired(
                    f"granting {', '.join(guarded)} to {user.get_username()} needs a second Platform Admin's "
                    "approval: ask for it (user_roles_request) and it applies once approved"
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


@dataclass(frozen=True)
class RoleRequestOutcome:
    """What ``user_roles_request`` did: the change applied at once, and the approval opened for the rest."""

    applied: RoleChange
    approval: Any  # approvals.ApprovalRequest | None
    pending: tuple[str, ...]  # roles that wait for the approval

    @property
    def message(self) -> str:
        """What to tell the person who asked, truthfully."""
        if not self.pending:
            return ""
        return (
            f"{', '.join(self.pending)}: requested as approval #{self.approval.pk}; waits for a second Platform "
            "Admin (not granted yet)"
        )


def user_roles_request(*, user: Any, roles: Iterable[str | Group], actor: Any, reason: str = "") -> RoleRequestOutcome:
    """A person asks for the user to hold exactly these roles: revocations and Viewer apply at once (audited); a
    grant of a role above Viewer opens an approval request for a second Platform Admin (the user and ``actor``
    never approve it) and applies when approved. Raises ``approvals.services.ApprovalError`` (e.g. no reason)."""
    from approvals.actions import roles_grant_request

    wanted = {r if isinstance(r, Group) else Group.objects.get(name=r) for r in roles}
    with transaction.atomic():
        held = set(_locked(user).groups.values_list("name", flat=True))
        pending = groups_above_viewer(g for g in wanted if g.name not in held)
        applied = user_roles_set(user=user, roles=[g for g in wanted if g.name not in pending], actor=actor)
        approval = roles_grant_request(user=user, roles=pending, actor=actor, reason=reason) if pending else None
    return RoleRequestOutcome(applied=applied, approval=approval, pending=tuple(pending))


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


def token_fingerprint(token: ApiToken) -> str:
    """What the audit trail and the admin show of a token: its number and the key's first characters (knox keeps
    those in clear to find the token; they are useless to log in)."""
    return f"#{token.pk} {token.token_key[:8]}".strip()


def _token_days(days: int | None) -> int:
    days = settings.API_TOKEN_DEFAULT_DAYS if days is None else days
    if not 1 <= days <= settings.API_TOKEN_MAX_DAYS:
        raise ValueError(f"a token lives 1 to {settings.API_TOKEN_MAX_DAYS} days, not {days}")
    return days


def _token_facts(token: ApiToken) -> dict[str, Any]:
    """What every token audit event carries (never the key)."""
    return {"object_type": "accounts.apitoken", "object_id": str(token.pk), "object_repr": str(token)}


def _token_data(token: ApiToken) -> dict[str, Any]:
    return {"user": token.user.get_username(), "name": token.name, "fingerprint": token_fingerprint(token)}


def _token_issue(token: ApiToken) -> str:
    """Make the knox token (only its digest is stored) and return the key: the one time it exists in clear."""
    knox_token, key = AuthToken.objects.create(user=token.user, expiry=timedelta(days=token.lifetime_days))
    token.knox_token = knox_token
    token.token_key = knox_token.token_key
    token.issued_at = knox_token.created
    token.expires_at = knox_token.expiry
    token.save(update_fields=["knox_token", "token_key", "issued_at", "expires_at"])
    return key


def api_token_create(
    *,
    user: Any,
    actor: Any,
    name: str,
    scope: str = "read",
    days: int | None = None,
    approval: Any = None,
    issue: bool = True,
) -> tuple[ApiToken, str]:
    """Create a named API token for ``user``, audited; with ``issue`` its key is made and returned (once: only its
    digest is stored). Without ``issue`` (an approved write scope) the owner collects the key later
    (``api_token_collect``), so nobody else ever sees it.

    A write-scope token needs ``approval``, the approved ``accounts.api_token_write`` request for this user
    (``ApprovalRequired`` otherwise). Raises ``TokenExists`` when the user has a live token of that name,
    ``ValueError`` for a bad scope, name or lifetime, ``PermissionError`` when someone else would see the key.
    """
    name = (name or "").strip()
    if not name:
        raise ValueError("a token needs a name (what it is for)")
    if scope not in TOKEN_SCOPES:
        raise ValueError(f"unknown token scope {scope!r}; scopes: {', '.join(TOKEN_SCOPES)}")
    days = _token_days(days)
    if scope == ApiToken.Scope.WRITE and not (
        _approved(approval, action=TOKEN_WRITE_ACTION, user=user) and approval.inputs.get("scope") == scope
    ):
        raise ApprovalRequired(f"a write-scope API token for {user.get_username()} needs a second Platform Admin's "
                               "approval: ask for it and it is issued once approved")  # fmt: skip
    if issue and actor is not None and actor.pk != user.pk:
        raise PermissionError("only a token's owner is shown its key: they create their own tokens")
    with transaction.atomic():
        _locked(user)
        if ApiToken.objects.filter(user=user, name=name, revoked_at__isnull=True).exists():
            raise TokenExists(f"{user.get_username()} already has a token named {name!r}: revoke it or pick a name")
        token = ApiToken.objects.create(
            user=user,
            name=name,
            scope=scope,
            lifetime_days=days,
            approval_id=approval.pk if approval is not None else None,
            issued_by=actor,
        )
        key = _token_issue(token) if issue else ""
        audit_log(
            action="accounts.api_token_created",
            actor=actor,
            **_token_facts(token),
            data={
                **_token_data(token),
                "scope": scope,
                "lifetime_days": days,
                "issued": issue,
                **({"approval": approval.pk} if approval is not None else {}),
            },
        )
        if not issue:
            transaction.on_commit(lambda: _mail_token_owner(user.pk))
    return token, key


def api_token_request(
    *, user: Any, actor: Any, name: str, scope: str, days: int | None = None, reason: str = ""
) -> tuple[ApiToken | None, str, Any]:
    """A person asks for a token of their own: read scope is issued at once (the key returned, shown once);
    write scope opens an approval request for a second Platform Admin and is collected once approved.

    Returns ``(token, key, None)`` or ``(None, "", approval)``. Raises ``TokenExists``, ``ValueError``,
    ``PermissionError`` (a token for someone else), or ``ApprovalError`` (write scope without a reason).
    """
    from approvals.actions import api_token_write_request

    if actor is not None and actor.pk != user.pk:
        raise PermissionError("only a token's owner is shown its key: they create their own tokens")
    if scope == ApiToken.Scope.WRITE:
        if ApiToken.objects.filter(user=user, name=(name or "").strip(), revoked_at__isnull=True).exists():
            raise TokenExists(f"{user.get_username()} already has a token named {name!r}: revoke it or pick a name")
        approval = api_token_write_request(
            user=user, scope=scope, actor=actor, reason=reason, name=(name or "").strip(), days=_token_days(days)
        )
        return None, "", approval
    token, key = api_token_create(user=user, actor=actor, name=name, scope=scope, days=days)
    return token, key, None


def api_token_collect(*, token: ApiToken, actor: Any) -> str:
    """The owner collects an approved write-scope token: its key is made and shown once (audited).

    Raises ``PermissionError`` for anyone but the owner, ``ValueError`` when there is nothing to collect.
    """
    if actor.pk != token.user_id:
        raise PermissionError("only the token's owner collects its key")
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
        if token.revoked_at is not None or token.issued_at is not None:
            raise ValueError("this token's key was shown already (or the token was revoked): it is never shown again")
        key = _token_issue(token)
        audit_log(action="accounts.api_token_key_shown", actor=actor, **_token_facts(token), data=_token_data(token))
    return key


def api_token_revoke(*, token: ApiToken, actor: Any) -> None:
    """Revoke an API token (its key stops working at once; the record stays), audited. Revoking twice is a no-op."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
        if token.revoked_at is not None:
            return
        if token.knox_token_id:
            AuthToken.objects.filter(pk=token.knox_token_id).delete()
        token.knox_token = None
        token.revoked_at = timezone.now()
        token.revoked_by = actor
        token.save(update_fields=["knox_token", "revoked_at", "revoked_by"])
        audit_log(action="accounts.api_token_revoked", actor=actor, **_token_facts(token), data=_token_data(token))


def api_token_mark_used(*, token_id: int) -> None:
    """Record that a token was just used (at most once a minute per token: reads should not all write)."""
    now = timezone.now()
    ApiToken.objects.filter(pk=token_id).filter(
        models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lt=now - timedelta(minutes=1))
    ).update(last_used_at=now)


def _mail_token_owner(user_id: int) -> None:
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not user.email:
        return
    url = settings.SITE_URL.rstrip("/") + reverse("admin:accounts_apitoken_mine")
    try:
        send_mail(
            "Your API token is ready",
            f"Your write-scope API token was approved. Collect its key (shown to you once) here: {url}\n",
            settings.DEFAULT_FROM_EMAIL,
            [user.email],
        )
    except Exception as exc:  # noqa: BLE001 - the token page shows it whatever the mail does
        logger.warning("token mail to %s could not be sent: %s", user.get_username(), exc)


# --- failed-login lockouts (django-axes) ----------------------------------------------------------------------


def login_lockouts_clear(*, attempts: Sequence[Any], actor: Any) -> int:
    """Clear failed-login records (a lockout ends with its record), audited one by one; returns how many."""
    with transaction.atomic():
        for attempt in attempts:
            audit_log(
                action="accounts.login_lockout_cleared",
                object_type="axes.accessattempt",
                object_id=str(attempt.pk),
                object_repr=f"failed logins of {attempt.username}",
                actor=actor,
                data={"username": attempt.username, "ip_address": attempt.ip_address,
                      "failures": attempt.failures_since_start},
            )  # fmt: skip
            attempt.delete()
    return len(attempts)


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
            data={"role": role, "email": pseudonymise(email, domain=EMAIL)},
        )
        # Shell access (demo_setup, tests) is the operator's: no approval is asked; the chain records it.
        user_roles_set(user=user, roles=[role], actor=None, _unguarded=True)
    return user, password

"""Guarded actions with no app of their own to register them: granting a role above Viewer and creating an API
token with write scope. A second Platform Admin approves; the person the grant or token is for never does.

Seam: the audited account services (``accounts.services.user_roles_set`` and ``api_token_create``) are being
written on the audit branch. When they exist these actions call them; until then they apply the change here with
its audit event. Either way, whoever changes roles or issues write tokens calls ``roles_grant_request`` /
``api_token_write_request`` first, and only the approved request changes anything.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import reverse

from accounts.roles import PLATFORM_ADMIN, ROLE_PERMISSIONS, VIEWER
from audit.services import audit_log

from .registry import ApprovalAction, ApprovalExecutionFailed, approval_action_register

ROLES_GRANT_ACTION = "accounts.roles_grant"
TOKEN_WRITE_ACTION = "accounts.api_token_write"  # noqa: S105 - an action name, not a secret
WRITE_SCOPES = {"write", "admin"}


def roles_need_approval(roles: list[str]) -> bool:
    """Granting any role above Viewer is a guarded action."""
    return any(role != VIEWER for role in roles)


def roles_grant_request(*, user: Any, roles: list[str], actor: Any, reason: str) -> Any:
    """Ask a second Platform Admin to give ``user`` exactly ``roles`` (the user never approves their own grant)."""
    from .services import ApprovalError, approval_request_create

    unknown = sorted(set(roles) - set(ROLE_PERMISSIONS))
    if unknown:
        raise ApprovalError(f"unknown role(s): {', '.join(unknown)}")
    return approval_request_create(
        action=ROLES_GRANT_ACTION,
        inputs={"user_id": user.pk, "username": user.get_username(), "roles": sorted(set(roles))},
        reason=reason,
        requested_by=actor,
        shapers=[user],
        title=f"Give {user.get_username()} the role(s) {', '.join(sorted(set(roles)))}",
    )


def api_token_write_request(*, user: Any, scopes: list[str], actor: Any, reason: str) -> Any:
    """Ask a second Platform Admin to issue ``user`` an API token with write scope."""
    from .services import approval_request_create

    return approval_request_create(
        action=TOKEN_WRITE_ACTION,
        inputs={"user_id": user.pk, "username": user.get_username(), "scopes": sorted(set(scopes))},
        reason=reason,
        requested_by=actor,
        shapers=[user],
        title=f"Issue {user.get_username()} an API token with scope(s) {', '.join(sorted(set(scopes)))}",
    )


def _user(request: Any) -> Any:
    user = get_user_model().objects.filter(pk=request.inputs["user_id"]).first()
    if user is None or user.get_username() != request.inputs["username"]:
        raise ApprovalExecutionFailed(f"user {request.inputs['username']} no longer exists as approved")
    return user


def roles_grant_execute(*, request: Any) -> str:
    """Set the user's roles to exactly the approved ones (idempotent)."""
    from accounts import services as account_services

    user, roles = _user(request), request.inputs["roles"]
    approvers = [d.actor for d in request.decisions.select_related("actor")]
    seam = getattr(account_services, "user_roles_set", None)
    if seam is not None:
        seam(user=user, roles=roles, actor=approvers[-1] if approvers else None, approval=request)
        return f"{user.get_username()} now has {', '.join(roles)}"
    with transaction.atomic():
        before = sorted(user.groups.values_list("name", flat=True))
        user.groups.set(list(Group.objects.filter(name__in=roles)))
        audit_log(
            action="accounts.roles_set",
            obj=user,
            actor=approvers[-1] if approvers else None,
            data={"before": before, "after": roles, "approval": request.pk},
        )
    return f"{user.get_username()} now has {', '.join(roles)}"


def api_token_write_execute(*, request: Any) -> str:
    """Issue the approved token (once: an existing token of the user is kept, not replaced)."""
    from rest_framework.authtoken.models import Token

    from accounts import services as account_services

    user, scopes = _user(request), request.inputs["scopes"]
    if Token.objects.filter(user=user).exists():
        if request.execution_attempts > 1:  # an earlier attempt of this approval issued it before a crash
            return f"token already issued to {user.get_username()}"
        raise ApprovalExecutionFailed(f"{user.get_username()} already has an API token: revoke it, then ask again")
    approvers = [d.actor for d in request.decisions.select_related("actor")]
    seam = getattr(account_services, "api_token_create", None)
    if seam is not None:
        seam(user=user, scopes=scopes, actor=approvers[-1] if approvers else None, approval=request)
        return f"token with scope(s) {', '.join(scopes)} issued to {user.get_username()}"
    with transaction.atomic():
        token, created = Token.objects.get_or_create(user=user)
        if created:
            audit_log(action="accounts.api_token_created", obj=user, data={"scopes": scopes, "approval": request.pk})
    return f"token {'issued to' if created else 'already held by'} {user.get_username()} (its key shows to them only)"


def _user_link(*, request: Any) -> tuple[str, str] | None:
    return request.inputs["username"], reverse("admin:auth_user_change", args=[request.inputs["user_id"]])


approval_action_register(
    ApprovalAction(
        name=ROLES_GRANT_ACTION,
        title="Grant a role above Viewer",
        approver_permission="auth.change_user",
        approver_role=PLATFORM_ADMIN,
        execute=roles_grant_execute,
        reason_required=True,
        link=_user_link,
    )
)
approval_action_register(
    ApprovalAction(
        name=TOKEN_WRITE_ACTION,
        title="Create an API token with write scope",
        approver_permission="auth.change_user",
        approver_role=PLATFORM_ADMIN,
        execute=api_token_write_execute,
        reason_required=True,
        link=_user_link,
    )
)

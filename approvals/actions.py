"""Guarded actions with no app of their own to register them: granting a role above Viewer and creating an API
token with write scope. A second Platform Admin approves; the person the grant or token is for never does, nor
does the requester.

The changes themselves are the audited account services: once approved, ``accounts.services.user_roles_set``
and ``api_token_create`` run with the approved request, and they refuse the change without one. People ask for
a change through ``accounts.services.user_roles_request`` / ``api_token_request`` (the admin does), which apply
what needs no approval at once and call ``roles_grant_request`` / ``api_token_write_request`` for the rest.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts.roles import PLATFORM_ADMIN, VIEWER
from accounts.services import ROLES_GRANT_ACTION, TOKEN_WRITE_ACTION

from .registry import ApprovalAction, ApprovalExecutionFailed, approval_action_register

__all__ = ["ROLES_GRANT_ACTION", "TOKEN_WRITE_ACTION", "api_token_write_request", "roles_grant_request"]


def roles_need_approval(roles: list[str]) -> bool:
    """Granting any role above Viewer is a guarded action (for any group, see ``groups_above_viewer``)."""
    return any(role != VIEWER for role in roles)


def _pending_same(action: str, inputs: dict[str, Any]) -> Any:
    """An identical request still waiting (asking twice opens nothing new)."""
    from .models import ApprovalRequest
    from .services import inputs_sha256

    pending = ApprovalRequest.objects.filter(action=action, status=ApprovalRequest.Status.PENDING)
    return pending.filter(inputs_sha256=inputs_sha256(inputs)).order_by("pk").first()


def roles_grant_request(*, user: Any, roles: list[str], actor: Any, reason: str) -> Any:
    """Ask a second Platform Admin to grant ``user`` these roles (added to what they hold when it runs)."""
    from django.contrib.auth.models import Group

    from accounts.services import groups_above_viewer

    from .services import ApprovalError, approval_request_create

    grant = sorted(set(roles))
    unknown = sorted(set(grant) - set(Group.objects.filter(name__in=grant).values_list("name", flat=True)))
    if unknown:
        raise ApprovalError(f"unknown role(s): {', '.join(unknown)}")
    if set(grant) - set(groups_above_viewer(grant)):
        raise ApprovalError(f"{VIEWER} (or a group with no more than its permissions) needs no approval")
    inputs = {"user_id": user.pk, "username": user.get_username(), "grant": grant}
    existing = _pending_same(ROLES_GRANT_ACTION, inputs)
    if existing is not None:
        return existing
    return approval_request_create(
        action=ROLES_GRANT_ACTION,
        inputs=inputs,
        reason=reason,
        requested_by=actor,
        shapers=[user],
        title=f"Grant {user.get_username()} the role(s) {', '.join(grant)}",
        obj=user,
    )


def api_token_write_request(
    *, user: Any, actor: Any, reason: str, scope: str = "write", name: str = "write token", days: int | None = None
) -> Any:
    """Ask a second Platform Admin to approve a write-scope API token ``name`` for ``user`` (its owner collects
    the key once approved)."""
    from django.conf import settings

    from accounts.models import ApiToken

    from .services import ApprovalError, approval_request_create

    if scope != "write":
        raise ApprovalError("only a write-scope token is asked for; a read-scope token is issued at once")
    if ApiToken.objects.filter(user=user, name=name, revoked_at__isnull=True).exists():
        raise ApprovalError(f"{user.get_username()} already has a token named {name!r}: revoke it or pick a name")
    inputs = {
        "user_id": user.pk,
        "username": user.get_username(),
        "scope": scope,
        "name": name,
        "days": days or settings.API_TOKEN_DEFAULT_DAYS,
    }
    existing = _pending_same(TOKEN_WRITE_ACTION, inputs)
    if existing is not None:
        return existing
    return approval_request_create(
        action=TOKEN_WRITE_ACTION,
        inputs=inputs,
        reason=reason,
        requested_by=actor,
        shapers=[user],
        title=f"Issue {user.get_username()} an API token with write scope ({name})",
        obj=user,
    )


def _user(request: Any) -> Any:
    user = get_user_model().objects.filter(pk=request.inputs["user_id"]).first()
    if user is None or user.get_username() != request.inputs["username"]:
        raise ApprovalExecutionFailed(f"user {request.inputs['username']} no longer exists as approved")
    if not user.is_active:
        raise ApprovalExecutionFailed(f"{user.get_username()} was deactivated since: nothing granted")
    return user


def _last_approver(request: Any) -> Any:
    decisions = [d.actor for d in request.decisions.filter(decision="approve").select_related("actor")]
    return decisions[-1] if decisions else None


def roles_grant_execute(*, request: Any) -> str:
    """Add the approved roles to what the user holds (idempotent: a re-run grants nothing new)."""
    from accounts.services import ApprovalRequired, user_roles_set

    user, grant = _user(request), request.inputs["grant"]
    held = list(user.groups.values_list("name", flat=True))
    try:
        change = user_roles_set(user=user, roles=sorted({*held, *grant}), actor=_last_approver(request),
                                approval=request)  # fmt: skip
    except ApprovalRequired as exc:  # their roles changed while it ran: nothing applied, ask again
        raise ApprovalExecutionFailed(str(exc)) from exc
    if not change.granted:
        return f"{user.get_username()} already held {', '.join(grant)}"
    return f"{user.get_username()} now has {', '.join(change.roles)}"


def api_token_write_execute(*, request: Any) -> str:
    """Create the approved write-scope token, waiting for its owner to collect the key (once: a re-run after a
    crash finds the token this approval created)."""
    from accounts.models import ApiToken
    from accounts.services import TokenExists, api_token_create

    user = _user(request)
    if ApiToken.objects.filter(user=user, approval_id=request.pk).exists():
        return f"write-scope token already created for {user.get_username()}"
    try:
        api_token_create(
            user=user,
            actor=_last_approver(request),
            name=request.inputs.get("name") or "write token",
            scope=request.inputs["scope"],
            days=request.inputs.get("days"),
            approval=request,
            issue=False,
        )
    except TokenExists as exc:
        raise ApprovalExecutionFailed(f"{exc}, then ask again") from exc
    return (
        f"write-scope token created for {user.get_username()}; they collect its key (shown once) on their API "
        f"tokens page ({reverse('admin:accounts_apitoken_mine')})"
    )


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

"""API tokens for tests, issued through the audited service (a write scope with an approved request, as the
approvals app would hand it over, without walking a second Platform Admin through it each time)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone


def api_token_for(user: Any, *, scope: str = "write", name: str = "", days: int | None = None) -> str:
    """Issue ``user`` an API token of ``scope`` (django-rest-knox, named ``name``) and return its key."""
    from accounts.models import ApiToken
    from accounts.services import TOKEN_WRITE_ACTION, api_token_create
    from approvals.models import ApprovalRequest
    from approvals.services import inputs_sha256

    approval = None
    if scope == "write":
        inputs = {"user_id": user.pk, "username": user.get_username(), "scope": "write", "name": name or "tests"}
        approval = ApprovalRequest.objects.create(
            action=TOKEN_WRITE_ACTION,
            title=f"test token for {user.get_username()}",
            inputs=inputs,
            inputs_sha256=inputs_sha256(inputs),
            reason="tests",
            approver_role="Platform Admin",
            approver_permission="auth.change_user",
            requested_by_label="tests",
            status=ApprovalRequest.Status.APPROVED,
            decided_at=timezone.now(),
            expires_at=timezone.now() + timedelta(hours=1),
        )
    name = name or f"tests {scope} {ApiToken.objects.filter(user=user).count() + 1}"
    return api_token_create(user=user, actor=None, name=name, scope=scope, days=days, approval=approval)[1]

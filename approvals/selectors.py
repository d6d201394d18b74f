"""Reads of the approvals app."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import ApprovalRequest


def approvals_decidable_by(*, user: Any) -> QuerySet[ApprovalRequest]:
    """Pending, unexpired requests ``user`` may decide: holds the approver permission, did not ask for or shape
    them, and has not approved them already."""
    pending = ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING, expires_at__gt=timezone.now())
    if user is None or not user.is_active:
        return pending.none()
    if user.is_superuser:
        perms = list(pending.values_list("approver_permission", flat=True).distinct())
    else:
        held = Permission.objects.filter(Q(user=user) | Q(group__user=user)).values_list(
            "content_type__app_label", "codename"
        )
        perms = [f"{app}.{code}" for app, code in held]
    return (
        pending.filter(approver_permission__in=perms)
        .exclude(requested_by=user)
        .exclude(shapers=user)
        .exclude(decisions__actor=user)
        .distinct()
    )

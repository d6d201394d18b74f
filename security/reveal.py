"""Revealing masked values: a deliberate, reasoned, time-limited and audited action (issue 12)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .classification import dataset_level
from .models import RevealGrant

REVEAL_PERMISSION = "security.reveal_value"


class RevealRefused(PermissionError):
    """The user may not reveal, or gave no reason."""


def reveal_allowed(user: Any) -> bool:
    return bool(user is not None and user.is_active and user.has_perm(REVEAL_PERMISSION))


def value_reveal(*, user: Any, dataset_or_model: str, object_ref: str, reason: str) -> RevealGrant:
    """Let ``user`` read ``object_ref``'s masked values in clear for ``SECURITY_REVEAL_MINUTES``; audited."""
    from audit.services import audit_log

    reason = (reason or "").strip()
    if not reveal_allowed(user):
        raise RevealRefused("revealing masked values needs a role that allows it (security.reveal_value)")
    if len(reason) < 5:
        raise RevealRefused("say why you need to see the values (a reason of at least 5 characters)")
    level = dataset_level(dataset_or_model)
    expires = timezone.now() + timedelta(minutes=settings.SECURITY_REVEAL_MINUTES)
    with transaction.atomic():
        grant = RevealGrant.objects.create(
            user=user,
            dataset_or_model=dataset_or_model,
            object_ref=str(object_ref),
            level=level,
            reason=reason[:2000],
            expires_at=expires,
        )
        audit_log(
            action="security.value_revealed",
            obj=grant,
            actor=user,
            data={
                "subject": user.get_username(),
                "object": f"{dataset_or_model}:{object_ref}",
                "level": level,
                "reason": reason[:500],
                "until": expires.isoformat(),
            },
        )
    return grant


def reveal_active(user: Any, dataset_or_model: str, object_ref: str) -> RevealGrant | None:
    """The user's unexpired reveal of this record, if any."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return (
        RevealGrant.objects.filter(
            user=user, dataset_or_model=dataset_or_model, object_ref=str(object_ref), expires_at__gt=timezone.now()
        )
        .order_by("-expires_at")
        .first()
    )

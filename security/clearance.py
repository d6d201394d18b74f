"""Clearance: the most sensitive classification level a user may read in clear (issue 12).

A user's clearance is the highest of their roles' clearances; superusers are ``restricted``, a user with no role
(or anonymous) ``public``. ``SECURITY_ROLE_CLEARANCE`` (settings) may change a role's level per deployment.
"""

from __future__ import annotations

from typing import Any

from .classification import CONFIDENTIAL, INTERNAL, PUBLIC, RESTRICTED, level_max, level_rank

DATA_PROTECTION = "Data Protection"  # the role issue 12's privacy half adds to accounts/roles.py

ROLE_CLEARANCE: dict[str, str] = {
    "Viewer": INTERNAL,
    "Analyst": CONFIDENTIAL,
    "Data Steward": CONFIDENTIAL,
    "Content Admin": INTERNAL,
    "Auditor": CONFIDENTIAL,
    "Platform Admin": CONFIDENTIAL,
    DATA_PROTECTION: RESTRICTED,
}


def role_clearance(role: str) -> str:
    """The clearance of one role (``public`` for a role this module does not know)."""
    from django.conf import settings

    overrides = getattr(settings, "SECURITY_ROLE_CLEARANCE", None) or {}
    level = overrides.get(role, ROLE_CLEARANCE.get(role, PUBLIC))
    level_rank(level)
    return level


def clearance_for(user: Any) -> str:
    """The highest level ``user`` may read in clear."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", True):
        return PUBLIC
    if user.is_superuser:
        return RESTRICTED
    cached = getattr(user, "_security_clearance", None)
    if cached is not None:
        return cached
    roles = list(user.groups.values_list("name", flat=True))
    level = level_max(role_clearance(r) for r in roles)
    user._security_clearance = level
    return level


def cleared_for(user: Any, level: str) -> bool:
    """Whether ``user`` may read a value of ``level`` in clear."""
    return level_rank(clearance_for(user)) >= level_rank(level)

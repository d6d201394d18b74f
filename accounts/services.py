"""Users and roles."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from audit.services import audit_log

from .roles import ROLE_PERMISSIONS


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
        user.groups.set([Group.objects.get(name=role)])
        audit_log(
            action="accounts.role_user_created" if created else "accounts.role_user_reset",
            obj=user,
            data={"role": role, "email": email},
        )
    return user, password

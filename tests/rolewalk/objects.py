"""One row of every model the admin shows, built from the model's own fields (a new model needs nothing here)."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from django.contrib import admin
from django.db import models
from django.utils import timezone

_counter = itertools.count(1)

# Field values a model's walk row needs beyond "any valid value" (e.g. an incident about a real job, so that
# "verify and resume" has something to check the rights against).
OVERRIDES: dict[str, dict[str, Any]] = {
    "monitoring.incident": {"job": "audit_anchor"},
    # A request a Platform Admin decides (its decide form is walked against auth.change_user).
    # A registered action (the API's approve/reject look its handler up).
    "approvals.approvalrequest": {
        "approver_permission": "auth.change_user",
        "approver_role": "Platform Admin",
        "action": "accounts.roles_grant",
        "inputs": {"user_id": 1, "username": "walk", "grant": ["Analyst"]},
    },
}


def _special(model: type[models.Model]) -> models.Model | None:
    """Rows that must look a certain way for the walk to mean something."""
    label = model._meta.label_lower
    if label == "auth.user":
        from django.contrib.auth import get_user_model

        # A plain staff account (superusers are out of Platform Admins' reach by design).
        return get_user_model().objects.create_user(f"walk-target-{next(_counter)}", "target@example.com", "x")
    if label == "auth.group":
        from django.contrib.auth.models import Group

        return Group.objects.create(name=f"walk group {next(_counter)}")  # not a role: roles are read-only
    if label == "accounts.apitoken":
        from accounts.services import api_token_create

        return api_token_create(user=build(admin_user_model()), actor=None, name=f"walk {next(_counter)}")[0]
    if label == "audit.auditevent":
        from audit.services import audit_log

        return audit_log(action="job.started", object_type="walk", object_id="1", data={"attempt": 1})
    return None


def admin_user_model() -> type[models.Model]:
    from django.contrib.auth import get_user_model

    return get_user_model()


def _value(f: models.Field) -> Any:
    n = next(_counter)
    if f.choices:
        return f.choices[0][0]
    if isinstance(f, models.BooleanField):
        return False
    if isinstance(f, models.DateTimeField):
        return timezone.now()
    if isinstance(f, models.DateField):
        return date.today()
    if isinstance(f, models.IntegerField | models.BigIntegerField | models.PositiveBigIntegerField):
        return n
    if isinstance(f, models.FloatField | models.DecimalField):
        return 1
    if isinstance(f, models.JSONField):
        return {}
    if isinstance(f, models.CharField | models.TextField):
        text = f"walk-{f.name}-{n}"
        return text[: f.max_length] if f.max_length else text
    raise TypeError(f"the role walk cannot fill {f.model._meta.label}.{f.name} ({type(f).__name__}): add a case")


def build(model: type[models.Model]) -> models.Model:
    """A saved row of ``model``: required fields filled by type, relations built the same way."""
    special = _special(model)
    if special is not None:
        return special
    kwargs: dict[str, Any] = dict(OVERRIDES.get(model._meta.label_lower, {}))
    for f in model._meta.concrete_fields:
        if f.name in kwargs:
            continue
        if f.primary_key or f.null or f.has_default() or getattr(f, "auto_now", False):
            continue
        if getattr(f, "auto_now_add", False) or (f.blank and isinstance(f, models.CharField | models.TextField)):
            continue
        kwargs[f.name] = build(f.related_model) if f.is_relation else _value(f)
    return model.objects.create(**kwargs)


def build_all() -> dict[str, models.Model]:
    """One row per model registered in the admin, keyed by ``app_label.modelname``."""
    return {model._meta.label_lower: build(model) for model in admin.site._registry}

"""Writing audit events. ``audit_log`` is the one entry point; ``audit_context`` carries the actor."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from .hashing import event_hash, json_normalized
from .models import AuditChainHead, AuditEvent


@dataclass(frozen=True)
class AuditActor:
    """Who is acting: a user, or a named system actor (``airflow``, ``scheduler``, ``cli:root``)."""

    user: Any = None
    label: str = "system"
    job_run_id: int | None = None


_current_actor: contextvars.ContextVar[AuditActor] = contextvars.ContextVar(
    "audit_actor",
    default=AuditActor(),  # noqa: B039 - a frozen dataclass, never mutated
)


@contextlib.contextmanager
def audit_context(*, user: Any = None, label: str | None = None, job_run_id: int | None = None) -> Iterator[None]:
    """Make every ``audit_log`` inside the block default to this actor and job run."""
    if label is None:
        label = user.get_username() if user is not None else "system"
    token = _current_actor.set(AuditActor(user=user, label=label, job_run_id=job_run_id))
    try:
        yield
    finally:
        _current_actor.reset(token)


def audit_log(
    *,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    data: dict[str, Any] | None = None,
    actor: Any = None,
    job_run_id: int | None = None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    Call it in the same ``transaction.atomic`` block as the state change it records, so both commit or
    neither does.
    """
    ctx = _current_actor.get()
    user = actor if actor is not None else ctx.user
    label = user.get_username() if actor is not None else ctx.label
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = str(obj)[:255]
    else:
        object_repr = ""
    job_run_id = job_run_id if job_run_id is not None else ctx.job_run_id
    payload = json_normalized(data or {})

    with transaction.atomic():
        AuditChainHead.objects.get_or_create(pk=1)
        # Take the write lock on the head before reading it, so concurrent writers queue up here.
        AuditChainHead.objects.filter(pk=1).update(seq=F("seq") + 1)
        head = AuditChainHead.objects.select_for_update().get(pk=1)
        created_at = timezone.now()
        digest = event_hash(
            seq=head.seq,
            created_at=created_at,
            actor_id=user.pk if user is not None else None,
            actor_label=label,
            action=action,
            object_type=object_type,
            object_id=object_id,
            object_repr=object_repr,
            job_run_id=job_run_id,
            data=payload,
            prev_hash=head.hash,
        )
        event = AuditEvent.objects.create(
            seq=head.seq,
            created_at=created_at,
            actor=user,
            actor_label=label,
            action=action,
            object_type=object_type,
            object_id=object_id,
            object_repr=object_repr,
            job_run_id=job_run_id,
            data=payload,
            prev_hash=head.hash,
            hash=digest,
        )
        head.hash = digest
        head.save(update_fields=["hash"])
    return event

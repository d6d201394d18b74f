"""Writing audit events. ``audit_log`` is the one entry point; ``audit_context`` carries the actor."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from .events import event_type
from .hashing import GENESIS_HASH, event_hash, json_normalized
from .models import AuditChainHead, AuditEvent
from .signing import AuditSigner


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


class AuditVocabularyError(ValueError):
    """An undeclared action or payload key: declare it in ``audit/events.py`` first."""


_MARK = "\u2026[truncated: "


def _cut_string(value: str, max_chars: int) -> str:
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{value[:max_chars]}{_MARK}{len(value)} chars, sha256 {digest}]"


def _bound_value(value: Any, *, max_chars: int, max_items: int) -> Any:
    if isinstance(value, str):
        return _cut_string(value, max_chars) if len(value) > max_chars else value
    if isinstance(value, list):
        items = [_bound_value(v, max_chars=max_chars, max_items=max_items) for v in value[:max_items]]
        if len(value) > max_items:
            items.append(f"{_MARK}{len(value)} items]")
        return items
    if isinstance(value, dict):
        bounded = {
            (k if len(k) <= 200 else _cut_string(k, 200)): _bound_value(v, max_chars=max_chars, max_items=max_items)
            for k, v in list(value.items())[:max_items]
        }
        if len(value) > max_items:
            bounded[_MARK.strip()] = f"{len(value)} keys"
        return bounded
    return value


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=True))


def audit_payload_bound(data: dict[str, Any]) -> dict[str, Any]:
    """A payload that fits: long strings, lists and objects cut with a marker (their length and SHA-256 kept),
    then the largest values replaced by a marker until the JSON is at most ``AUDIT_PAYLOAD_MAX_BYTES``."""
    max_bytes = settings.AUDIT_PAYLOAD_MAX_BYTES
    bounded = _bound_value(
        json_normalized(data), max_chars=settings.AUDIT_VALUE_MAX_CHARS, max_items=settings.AUDIT_VALUE_MAX_ITEMS
    )
    while _size(bounded) > max_bytes:
        key = max((k for k in bounded if not _is_marker(bounded[k])), key=lambda k: _size(bounded[k]), default=None)
        if key is None:
            break
        raw = json.dumps(bounded[key], sort_keys=True, separators=(",", ":"))
        bounded[key] = f"{_MARK}{len(raw)} bytes of JSON, sha256 {hashlib.sha256(raw.encode()).hexdigest()[:16]}]"
    return bounded


def _is_marker(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(_MARK)


def audit_event_check(*, action: str, data: dict[str, Any]) -> None:
    """Refuse an undeclared action or a payload key its event does not declare (``audit/events.py``)."""
    declared = event_type(action)
    if declared is None:
        raise AuditVocabularyError(f"audit action {action[:100]!r} is not declared in audit/events.py")
    unknown = sorted(str(k)[:100] for k in data if k not in declared.fields)
    if unknown:
        raise AuditVocabularyError(
            f"audit action {action} does not declare payload key(s) {', '.join(unknown)}; "
            f"declared: {', '.join(declared.fields) or 'none'} (audit/events.py)"
        )


def audit_log(
    *,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    data: dict[str, Any] | None = None,
    actor: Any = None,
    job_run_id: int | None = None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    Call it in the same ``transaction.atomic`` block as the state change it records, so both commit or
    neither does. The action and its payload keys must be declared in ``audit/events.py``; the payload is
    bounded (``audit_payload_bound``).
    """
    data = data or {}
    audit_event_check(action=action, data=data)
    ctx = _current_actor.get()
    user = actor if actor is not None else ctx.user
    label = user.get_username() if actor is not None else ctx.label
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    object_repr = object_repr[:255]
    job_run_id = job_run_id if job_run_id is not None else ctx.job_run_id
    payload = audit_payload_bound(data)
    signer = AuditSigner.from_settings()

    with transaction.atomic():
        AuditChainHead.objects.get_or_create(pk=1, defaults={"mac": signer.head_mac(0, GENESIS_HASH)})
        # Take the write lock on the head before reading it, so concurrent writers queue up here (a no-op
        # UPDATE: the PostgreSQL trigger lets the head stay as it is or move onto the newest event, nothing else).
        AuditChainHead.objects.filter(pk=1).update(seq=F("seq"))
        head = AuditChainHead.objects.select_for_update().get(pk=1)
        seq = head.seq + 1
        created_at = timezone.now()
        digest = event_hash(
            seq=seq,
            created_at=created_at,
            actor_id=user.pk if user is not None else None,
            actor_label=label[:150],
            action=action,
            object_type=object_type[:100],
            object_id=object_id[:255],
            object_repr=object_repr,
            job_run_id=job_run_id,
            data=payload,
            prev_hash=head.hash,
        )
        event = AuditEvent.objects.create(
            seq=seq,
            created_at=created_at,
            actor=user,
            actor_label=label[:150],
            action=action,
            object_type=object_type[:100],
            object_id=object_id[:255],
            object_repr=object_repr,
            job_run_id=job_run_id,
            data=payload,
            prev_hash=head.hash,
            hash=digest,
            mac=signer.event_mac(seq, digest),
        )
        AuditChainHead.objects.filter(pk=1).update(seq=seq, hash=digest, mac=signer.head_mac(seq, digest))
    return event

"""The canonical form of an audit event and its hash. Shared by the writer and the verifier."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

GENESIS_HASH = "0" * 64


def json_normalized(data: Any) -> Any:
    """Round-trip through JSON so what is hashed equals what the database gives back."""
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def event_hash(
    *,
    seq: int,
    created_at: datetime,
    actor_id: int | None,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    object_repr: str,
    job_run_id: int | None,
    data: Any,
    prev_hash: str,
) -> str:
    """SHA-256 over the event's canonical JSON, chained to ``prev_hash``."""
    payload = {
        "seq": seq,
        "created_at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": actor_id,
        "actor_label": actor_label,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "object_repr": object_repr,
        "job_run_id": job_run_id,
        "data": data,
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()

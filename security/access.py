"""Access audit: who read which confidential or restricted record, when and why (issue 12).

Each read writes one ``security.record_read`` event on the audit chain (hash-chained and signed like every event).
The payload names the reader, the record and its level, never the values read.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from .classification import dataset_level, level_rank

VIA_ADMIN = "admin"
VIA_API = "api"
VIA_EXPORT = "export"
VIA_EMAIL = "email"
VIA_REVEAL = "reveal"


def record_access(
    user: Any, *, dataset_or_model: str, object_ref: str, purpose: str, via: str, level: str | None = None
):
    """Record that ``user`` read ``object_ref`` of ``dataset_or_model`` (``via`` admin, api, export, email,
    reveal). ``level`` defaults to the dataset's most sensitive column. Returns the audit event."""
    from audit.services import audit_log

    if not dataset_or_model or not object_ref:
        raise ValueError("record_access needs dataset_or_model and object_ref")
    level = level or dataset_level(dataset_or_model)
    level_rank(level)
    subject = user.get_username() if user is not None and getattr(user, "is_authenticated", False) else "anonymous"
    with transaction.atomic():
        return audit_log(
            action="security.record_read",
            object_type=dataset_or_model,
            object_id=str(object_ref)[:255],
            object_repr=f"{dataset_or_model} {object_ref}",
            data={
                "subject": subject,
                "object": f"{dataset_or_model}:{object_ref}",
                "level": level,
                "via": via,
                "purpose": purpose[:200],
            },
            actor=user if subject != "anonymous" else None,
        )


def needs_access_record(dataset_or_model: str) -> bool:
    """Whether reads of this dataset's records are recorded (confidential or restricted)."""
    return level_rank(dataset_level(dataset_or_model)) >= level_rank("confidential")

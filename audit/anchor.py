"""Anchoring the audit chain outside the database.

A copy of the chain head (sequence number and hash) in the backup store lets ``audit_verify`` be checked
against something an attacker with database access alone cannot rewrite: a chain re-hashed after tampering
no longer ends in an anchored hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.utils import timezone

from orchestration.registry import JobFailed, JobResult

from .models import AuditChainHead
from .services import audit_log

ANCHOR_PREFIX = "audit-anchors"


def audit_anchor_run(*, job_run: Any, params: dict[str, Any], dry_run: bool) -> JobResult:
    """Write the current chain head to the backup store, read it back, verify it, and audit the anchor."""
    head = AuditChainHead.objects.filter(pk=1).first()
    seq, digest = (head.seq, head.hash) if head else (0, "0" * 64)
    now = timezone.now()
    document = {"seq": seq, "hash": digest, "anchored_at": now.isoformat(), "job_run_id": job_run.pk}
    payload = json.dumps(document, sort_keys=True).encode()
    checksum = hashlib.sha256(payload).hexdigest()
    name = f"{ANCHOR_PREFIX}/{now:%Y/%m/%d}/{now:%Y%m%dT%H%M%S}-seq{seq}.json"
    if dry_run:
        return JobResult(summary=f"DRY RUN: would anchor audit chain head #{seq} {digest[:16]} as {name}")
    storage = storages["backups"]
    stored_name = storage.save(name, ContentFile(payload))
    with storage.open(stored_name, "rb") as fh:
        read_back = fh.read()
    if hashlib.sha256(read_back).hexdigest() != checksum:
        raise JobFailed(f"the anchor {stored_name} read back differs from what was written; the store is unreliable")
    audit_log(
        action="audit.anchored",
        object_type="audit.auditchainhead",
        object_id="1",
        job_run_id=job_run.pk,
        data={"seq": seq, "hash": digest, "name": stored_name, "sha256": checksum},
    )
    return JobResult(
        summary=f"anchored audit chain head #{seq} {digest[:16]} as {stored_name}",
        counters={"anchored_seq": seq},
        details={"anchor": {"name": stored_name, "seq": seq, "hash": digest, "sha256": checksum}},
    )

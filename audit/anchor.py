"""Anchoring the audit chain outside the database, and reading the anchors back.

An anchor is the chain head (sequence number and hash) at a moment, signed with ``AUDIT_HMAC_KEY``, written
under ``audit-anchors/YYYY/MM/DD/`` to the backup store (``storages["backups"]``: the filesystem by default, a
GCS bucket in production), or to a store of its own when ``AUDIT_ANCHOR_STORAGE_URL`` is set. ``audit_verify``
reads every anchor back: a chain that lost events still has anchors beyond its end (truncation, tail loss), and
a chain rewritten and re-hashed no longer has the anchored hash at the anchored seq. In production the anchors'
bucket has a locked retention policy (README, "Audit trail"), so not even someone with the bucket's credentials
can delete or overwrite an anchor before it expires.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.utils import timezone

from orchestration.registry import JobFailed, JobResult

from .services import audit_log
from .signing import AuditSigner

ANCHOR_PREFIX = "audit-anchors"
ANCHOR_VERSION = 2


@dataclass(frozen=True)
class Anchor:
    name: str
    seq: int
    hash: str
    anchored_at: datetime | None
    signed: bool  # False for anchors written before anchors were signed (version 1): weaker, still compared


@dataclass(frozen=True)
class AnchorSet:
    anchors: tuple[Anchor, ...]
    invalid: tuple[tuple[str, str], ...]  # (name, why): unreadable, malformed or with a signature that fails
    error: str = ""  # the store itself could not be listed or read

    @property
    def last(self) -> Anchor | None:
        dated = [a for a in self.anchors if a.anchored_at is not None]
        return max(dated, key=lambda a: (a.anchored_at, a.seq)) if dated else None


def anchor_storage() -> Storage:
    """Where anchors live: ``storages["audit_anchors"]`` when AUDIT_ANCHOR_STORAGE_URL is set, else the backup store."""
    return storages["audit_anchors"] if "audit_anchors" in settings.STORAGES else storages["backups"]


def anchor_document(*, seq: int, digest: str, anchored_at: datetime, job_run_id: int | None) -> dict[str, Any]:
    """The signed JSON document of one anchor."""
    signer = AuditSigner.from_settings()
    when = anchored_at.isoformat()
    return {
        "version": ANCHOR_VERSION,
        "seq": seq,
        "hash": digest,
        "anchored_at": when,
        "job_run_id": job_run_id,
        "key_id": signer.key_id,
        "mac": signer.anchor_mac(seq, digest, when),
    }


def _walk(storage: Storage, path: str) -> list[str]:
    try:
        dirs, files = storage.listdir(path)
    except FileNotFoundError:
        return []
    names = [posixpath.join(path, f) for f in files if f.endswith(".json")]
    for d in dirs:
        names += _walk(storage, posixpath.join(path, d))
    return names


def anchor_parse(*, name: str, raw: bytes, signer: AuditSigner) -> Anchor:
    """One anchor from its stored bytes; ValueError saying why when it is malformed or its signature fails."""
    try:
        doc = json.loads(raw)
        seq, digest = int(doc["seq"]), str(doc["hash"])
        when = str(doc.get("anchored_at") or "")
        anchored_at = datetime.fromisoformat(when) if when else None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not an anchor document ({type(exc).__name__})") from exc
    if "mac" not in doc:
        return Anchor(name=name, seq=seq, hash=digest, anchored_at=anchored_at, signed=False)
    if not signer.anchor_valid(seq, digest, when, str(doc["mac"])):
        raise ValueError(
            f"its signature does not match (forged, or signed with key {str(doc.get('key_id'))[:12]} that is not "
            "in AUDIT_HMAC_KEY / AUDIT_HMAC_OLD_KEYS)"
        )
    return Anchor(name=name, seq=seq, hash=digest, anchored_at=anchored_at, signed=True)


def anchors_read(*, storage: Storage | None = None) -> AnchorSet:
    """Every anchor in the backup store, with the ones that cannot be trusted set apart."""
    storage = storage or anchor_storage()
    signer = AuditSigner.from_settings()
    anchors: list[Anchor] = []
    invalid: list[tuple[str, str]] = []
    try:
        names = sorted(_walk(storage, ANCHOR_PREFIX))
    except Exception as exc:  # noqa: BLE001 - any storage failure: the verdict says the anchors were not read
        return AnchorSet((), (), error=f"could not list {ANCHOR_PREFIX}/ in the backup store: {exc}"[:300])
    for name in names:
        try:
            with storage.open(name, "rb") as fh:
                raw = fh.read(64 * 1024)
        except Exception as exc:  # noqa: BLE001
            invalid.append((name, f"unreadable: {exc}"[:200]))
            continue
        try:
            anchors.append(anchor_parse(name=name, raw=raw, signer=signer))
        except ValueError as exc:
            invalid.append((name, str(exc)))
    return AnchorSet(tuple(anchors), tuple(invalid))


def audit_anchor_run(*, job_run: Any, params: dict[str, Any], dry_run: bool) -> JobResult:
    """Verify the chain, then write its head (signed) to the backup store, read it back, and audit the anchor.

    A broken chain is not anchored: anchoring it would vouch for the tampering.
    """
    from .selectors import audit_chain_verify

    verdict = audit_chain_verify()
    if not verdict.ok:
        raise JobFailed(f"not anchoring a broken audit chain: {verdict.text()}; run manage.py audit_verify")
    seq, digest = verdict.checked, verdict.head_hash
    now = timezone.now()
    document = anchor_document(seq=seq, digest=digest, anchored_at=now, job_run_id=job_run.pk)
    payload = json.dumps(document, sort_keys=True).encode()
    checksum = hashlib.sha256(payload).hexdigest()
    name = f"{ANCHOR_PREFIX}/{now:%Y/%m/%d}/{now:%Y%m%dT%H%M%S%f}-seq{seq}.json"
    if dry_run:
        return JobResult(summary=f"DRY RUN: would anchor audit chain head #{seq} {digest[:16]} as {name}")
    storage = anchor_storage()
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
        data={"seq": seq, "hash": digest, "name": stored_name, "sha256": checksum, "key_id": document["key_id"]},
    )
    return JobResult(
        summary=f"anchored audit chain head #{seq} {digest[:16]} as {stored_name}",
        counters={"anchored_seq": seq},
        details={"anchor": {"name": stored_name, "seq": seq, "hash": digest, "sha256": checksum}},
    )

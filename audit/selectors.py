"""Reading the audit chain."""

from __future__ import annotations

from dataclasses import dataclass

from .hashing import GENESIS_HASH, event_hash
from .models import AuditChainHead, AuditEvent


@dataclass(frozen=True)
class ChainVerdict:
    ok: bool
    checked: int
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""


def audit_chain_verify(*, batch_size: int = 2000) -> ChainVerdict:
    """Recompute every hash in sequence order; report the first event that does not chain.

    The head is read first and only events up to it are checked, so writers appending during the check
    (their events and head update commit together) are neither missed nor mistaken for tampering.
    """
    head = AuditChainHead.objects.filter(pk=1).first()
    head_seq = head.seq if head else 0
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    fields = (
        "seq", "created_at", "actor_id", "actor_label", "action", "object_type", "object_id", "object_repr",
        "job_run_id", "data", "prev_hash", "hash",
    )  # fmt: skip
    rows = AuditEvent.objects.filter(seq__lte=head_seq).order_by("seq").values(*fields)
    for row in rows.iterator(chunk_size=batch_size):
        seq = row["seq"]
        if seq != expected_seq:
            return ChainVerdict(
                False, checked, prev_hash, expected_seq, f"event #{expected_seq} is missing (next is #{seq})"
            )
        if row["prev_hash"] != prev_hash:
            return ChainVerdict(
                False, checked, prev_hash, seq, f"event #{seq} does not point at the hash of #{seq - 1}"
            )
        recomputed = event_hash(**{k: row[k] for k in fields if k != "hash"})
        if recomputed != row["hash"]:
            return ChainVerdict(
                False, checked, prev_hash, seq, f"event #{seq} was altered (its hash does not match its content)"
            )
        prev_hash = row["hash"]
        expected_seq += 1
        checked += 1
    if head is not None and (checked != head_seq or prev_hash != head.hash):
        return ChainVerdict(
            False, checked, prev_hash, checked + 1,
            f"chain head says #{head_seq} but the events end at #{checked}: the last events were removed",
        )  # fmt: skip
    if head is None and AuditEvent.objects.exists():
        return ChainVerdict(False, 0, prev_hash, 1, "events exist but the chain head is missing")
    return ChainVerdict(True, checked, prev_hash)

"""What a careful insider does to the audit tables, as helpers the tests share.

Each helper works on SQLite and on PostgreSQL; on PostgreSQL it first lifts the audit triggers, as the tables'
owner or a superuser could (``ALTER TABLE ... DISABLE TRIGGER USER``), so what is left to catch the tampering is
the verifier: hashes, signatures, anchors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection

from audit.hashing import GENESIS_HASH, event_hash
from audit.models import AuditChainHead, AuditEvent
from audit.signing import AuditSigner

AUDIT_TABLES = ("audit_auditevent", "audit_auditchainhead")
FIELDS = (
    "seq", "created_at", "actor_id", "actor_label", "action", "object_type", "object_id", "object_repr",
    "job_run_id", "data", "prev_hash",
)  # fmt: skip


@contextlib.contextmanager
def triggers_lifted() -> Iterator:
    """A cursor with the audit triggers disabled (PostgreSQL), as the tables' owner could."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Fire the deferred checks the test's own writes queued, else ALTER TABLE refuses.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            for table in AUDIT_TABLES:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        try:
            yield cursor
        finally:
            if connection.vendor == "postgresql":
                for table in AUDIT_TABLES:
                    cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def tamper(sql: str, params: list | None = None) -> None:
    """Run one statement on the audit tables behind the application's back."""
    with triggers_lifted() as cursor:
        cursor.execute(sql, params or [])


def head_set(*, seq: int, digest: str, mac: str | None = None) -> None:
    """Move the head by hand (keeping its old signature unless one is given)."""
    if mac is None:
        tamper("UPDATE audit_auditchainhead SET seq = %s, hash = %s WHERE id = 1", [seq, digest])
    else:
        tamper("UPDATE audit_auditchainhead SET seq = %s, hash = %s, mac = %s WHERE id = 1", [seq, digest, mac])


def rehash_from(seq: int, *, signer: AuditSigner | None = None) -> None:
    """Recompute every hash from ``seq`` on with the project's own function (and re-sign, when the insider
    also holds the key), then move the head onto the new last hash: a chain that checks out by its hashes."""
    prev = AuditEvent.objects.get(seq=seq - 1).hash if seq > 1 else GENESIS_HASH
    rows = list(AuditEvent.objects.filter(seq__gte=seq).order_by("seq").values("pk", *FIELDS))
    with triggers_lifted() as cursor:
        for row in rows:
            row["prev_hash"] = prev
            digest = event_hash(**{k: row[k] for k in FIELDS})
            mac = signer.event_mac(row["seq"], digest) if signer else ""
            cursor.execute(
                "UPDATE audit_auditevent SET prev_hash = %s, hash = %s, mac = COALESCE(NULLIF(%s, ''), mac) "
                "WHERE id = %s",
                [prev, digest, mac, row["pk"]],
            )
            prev = digest
        last = rows[-1]["seq"] if rows else seq - 1
        head_mac = signer.head_mac(last, prev) if signer else None
        if head_mac:
            cursor.execute("UPDATE audit_auditchainhead SET hash = %s, mac = %s WHERE id = 1", [prev, head_mac])
        else:
            cursor.execute("UPDATE audit_auditchainhead SET hash = %s WHERE id = 1", [prev])


def head() -> AuditChainHead:
    return AuditChainHead.objects.get(pk=1)

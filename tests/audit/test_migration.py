"""Upgrading a database that already has an audit chain: migration 0003 signs the existing events and head as they
are, so the chain verifies afterwards; on PostgreSQL the new triggers are in place once 0004 has run."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.hashing import GENESIS_HASH, event_hash
from audit.selectors import audit_chain_verify

BEFORE = [("audit", "0002_append_only_trigger")]


@pytest.mark.django_db(transaction=True)
def test_existing_chain_is_signed_by_the_upgrade():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Event, Head = old.get_model("audit", "AuditEvent"), old.get_model("audit", "AuditChainHead")
    prev = GENESIS_HASH
    for seq in (1, 2, 3):  # as the old audit_log wrote them: hash-chained, unsigned
        row = {
            "seq": seq, "created_at": timezone.now(), "actor_id": None, "actor_label": "system",
            "action": "job.started", "object_type": "thing", "object_id": str(seq), "object_repr": "",
            "job_run_id": None, "data": {"attempt": seq}, "prev_hash": prev,
        }  # fmt: skip
        digest = event_hash(**row)
        Event.objects.create(**row, hash=digest)
        prev = digest
    Head.objects.create(pk=1, seq=3, hash=prev)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    verdict = audit_chain_verify(read_anchors=False)
    assert verdict.ok and verdict.checked == 3, verdict.problems
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid IN ('audit_auditevent'::regclass, "
                "'audit_auditchainhead'::regclass) AND NOT tgisinternal ORDER BY tgname"
            )
            assert [r[0] for r in cursor.fetchall()] == [
                "audit_event_append_at_head", "audit_event_append_only", "audit_event_no_truncate",
                "audit_event_within_head", "audit_head_guard", "audit_head_no_truncate",
            ]  # fmt: skip

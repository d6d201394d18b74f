"""A careful insider against the audit chain: each bypass from issue 9 is a test, on the database(s) it names.

On PostgreSQL the triggers refuse TRUNCATE, a head moved back, a row appended off the head; when an owner or
superuser lifts them (``tests.audit.tamper``), the verifier still names what was done: signatures (a key the
database does not hold) and the anchors in the backup store (outside the database).
"""

from __future__ import annotations

import json

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from audit.anchor import ANCHOR_PREFIX, anchors_read
from audit.hashing import GENESIS_HASH, event_hash
from audit.models import AuditEvent
from audit.selectors import audit_chain_verify
from audit.services import audit_log
from audit.signing import AuditSigner
from orchestration.models import JobRun
from orchestration.services import job_run_create, job_run_execute
from tests.audit.tamper import FIELDS, head, head_set, rehash_from, tamper, triggers_lifted

pytestmark = pytest.mark.django_db


def _events(n: int) -> None:
    for i in range(n):
        audit_log(action="job.started", object_type="thing", object_id=str(i), data={"attempt": i})


def _anchor() -> JobRun:
    """Run the real anchor job (it verifies, then writes the signed head to the backup store)."""
    run = job_run_execute(job_run_id=job_run_create(job="audit_anchor").pk)
    assert run.status == JobRun.Status.SUCCEEDED, run.error
    return run


def _verify_fails(kind: str, seq: int | None):
    verdict = audit_chain_verify()
    assert not verdict.ok, verdict
    assert verdict.kind == kind, verdict.problems
    assert verdict.broken_seq == seq, verdict.problems
    with pytest.raises(CommandError, match="BROKEN"):
        call_command("audit_verify")
    return verdict


# --- PostgreSQL: the triggers refuse --------------------------------------------------------------------------


def _refused(sql: str, params: list | None = None, *, at_commit: bool = False) -> None:
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        if at_commit:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # what COMMIT would do


@pytest.mark.postgres
def test_postgres_refuses_truncate_and_a_head_moved_back(require_postgres):
    _events(3)
    top = head()
    _refused("TRUNCATE audit_auditevent")
    _refused("TRUNCATE audit_auditchainhead")
    _refused("TRUNCATE audit_auditevent, audit_auditchainhead CASCADE")
    _refused("DELETE FROM audit_auditchainhead")
    _refused("UPDATE audit_auditchainhead SET seq = 0, hash = %s", [GENESIS_HASH])  # the reset after a TRUNCATE
    _refused("UPDATE audit_auditchainhead SET seq = 2, hash = (SELECT hash FROM audit_auditevent WHERE seq = 2)")
    _refused("UPDATE audit_auditchainhead SET seq = seq + 1")  # forward, but onto no event
    _refused("UPDATE audit_auditchainhead SET id = 2")
    _refused("INSERT INTO audit_auditchainhead (id, seq, hash, mac) VALUES (2, 0, %s, '')", [GENESIS_HASH])
    _refused("UPDATE audit_auditevent SET action = 'forged' WHERE seq = 1")
    _refused("DELETE FROM audit_auditevent WHERE seq = 3")
    assert (head().seq, head().hash) == (top.seq, top.hash)
    assert AuditEvent.objects.count() == 3 and audit_chain_verify().ok


def _raw_insert(seq: int, prev_hash: str, *, sign: bool = False) -> str:
    """An event written by SQL: correct hash by the project's own function, optionally with a valid signature."""
    from django.utils import timezone

    row = {
        "seq": seq, "created_at": timezone.now(), "actor_id": None, "actor_label": "insider", "action": "job.started",
        "object_type": "thing", "object_id": "x", "object_repr": "", "job_run_id": None, "data": {},
        "prev_hash": prev_hash,
    }  # fmt: skip
    digest = event_hash(**row)
    mac = AuditSigner.from_settings().event_mac(seq, digest) if sign else ""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (seq, created_at, actor_id, actor_label, action, object_type, object_id, "
            "object_repr, job_run_id, data, prev_hash, hash, mac) VALUES (%s, %s, NULL, %s, %s, %s, %s, %s, NULL, "
            "%s, %s, %s, %s)",
            [seq, row["created_at"], "insider", "job.started", "thing", "x", "", "{}", prev_hash, digest, mac],
        )
    return digest


@pytest.mark.postgres
def test_postgres_refuses_rows_off_the_head(require_postgres):
    _events(2)
    top = head()
    with pytest.raises(DatabaseError, match="appended at the chain head"), transaction.atomic():
        _raw_insert(top.seq + 5, top.hash)
    with pytest.raises(DatabaseError, match="appended at the chain head"), transaction.atomic():
        _raw_insert(top.seq + 1, GENESIS_HASH)
    # At the head but without moving it: refused when the transaction commits (the deferred check).
    with pytest.raises(DatabaseError, match="beyond the chain head"), transaction.atomic():
        _raw_insert(top.seq + 1, top.hash)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert AuditEvent.objects.count() == 2


@pytest.mark.postgres
def test_postgres_an_append_by_the_triggers_rules_is_caught_by_its_signature(require_postgres):
    """An insider with SQL but not the key appends a well-formed event and moves the head onto it: the triggers
    allow it (it looks like audit_log), the verifier names the unsigned event."""
    _events(2)
    top = head()
    with transaction.atomic():
        digest = _raw_insert(top.seq + 1, top.hash)
        with connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditchainhead SET seq = %s, hash = %s", [top.seq + 1, digest])
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    _verify_fails("forged", 3)


@pytest.mark.postgres
def test_postgres_truncate_and_head_reset_by_a_superuser_is_reported(require_postgres):
    """The issue's first bypass: TRUNCATE + head reset used to pass and verify as 'OK: 0 events'."""
    _events(4)
    _anchor()
    _events(2)
    with triggers_lifted() as cursor:
        cursor.execute("TRUNCATE audit_auditevent")
        cursor.execute("UPDATE audit_auditchainhead SET seq = 0, hash = %s", [GENESIS_HASH])
    verdict = _verify_fails("truncated", 1)
    assert "anchor" in verdict.reason and "records event #6" in verdict.reason
    # Even with the head row deleted as well, the anchors say events existed.
    tamper("DELETE FROM audit_auditchainhead")
    _verify_fails("truncated", 1)


# --- both databases: what gets past (or around) the triggers is named by the verifier ------------------------


def test_truncate_and_head_reset_without_triggers_is_reported():
    """SQLite has no trigger at all: DELETE every event and reset the head; the anchors and the head's
    signature say so."""
    _events(3)
    _anchor()
    tamper("DELETE FROM audit_auditevent")
    head_set(seq=0, digest=GENESIS_HASH)
    verdict = _verify_fails("truncated", 1)
    assert any(p.kind == "tail_lost" for p in verdict.problems)  # the head's signature is the old one's


def test_tail_removed_and_head_moved_back_is_reported():
    """Delete the last events and move the head back onto the new last event (the issue's SQLite bypass)."""
    _events(5)
    tamper("DELETE FROM audit_auditevent WHERE seq > 3")
    head_set(seq=3, digest=AuditEvent.objects.get(seq=3).hash)
    verdict = _verify_fails("tail_lost", 4)
    assert "moved (back) by hand" in verdict.reason


def test_tail_removed_with_a_replayed_event_signature_is_reported():
    """The insider copies event #3's signature into the head: signatures are per kind, so it does not fit."""
    _events(5)
    three = AuditEvent.objects.get(seq=3)
    tamper("DELETE FROM audit_auditevent WHERE seq > 3")
    head_set(seq=3, digest=three.hash, mac=three.mac)
    _verify_fails("tail_lost", 4)


def test_tail_removed_by_an_insider_holding_the_key_is_caught_by_the_anchor():
    """With the key too (read off the app server), the head can be re-signed: the anchor is what remains."""
    _events(5)
    anchored = _anchor().details["anchor"]["seq"]
    tamper("DELETE FROM audit_auditevent WHERE seq > 3")
    three = AuditEvent.objects.get(seq=3)
    head_set(seq=3, digest=three.hash, mac=AuditSigner.from_settings().head_mac(3, three.hash))
    verdict = _verify_fails("tail_lost", 4)
    assert f"records event #{anchored}" in verdict.reason


def test_rehash_after_an_edit_is_reported_at_the_edited_event():
    """Edit #2, re-hash every later event with the project's own hash function: the chain checks out by its
    hashes, but the rewritten events carry no valid signature, and the first one named is the edited event."""
    _events(6)
    tamper("UPDATE audit_auditevent SET object_id = %s WHERE seq = %s", ["edited", 2])
    rehash_from(2)
    verdict = _verify_fails("forged", 2)
    assert "re-hashed outside the application" in verdict.reason


def test_rehash_by_an_insider_holding_the_key_is_caught_by_the_anchor():
    _events(4)
    run = _anchor()
    anchored = run.details["anchor"]["seq"]
    _events(2)
    tamper("UPDATE audit_auditevent SET object_id = %s WHERE seq = %s", ["edited", 2])
    rehash_from(2, signer=AuditSigner.from_settings())
    verdict = _verify_fails("rehashed", anchored)
    assert "after #0, at or before" in verdict.reason


def test_row_appended_beyond_the_head_is_reported():
    _events(3)
    top = head()
    with triggers_lifted():
        _raw_insert(top.seq + 1, top.hash, sign=True)  # even with a valid signature: the head never covered it
    _verify_fails("beyond_head", 4)


def test_anchor_deleted_from_the_store_is_reported():
    _events(2)
    run = _anchor()
    storages["backups"].delete(run.details["anchor"]["name"])
    verdict = _verify_fails("anchor_missing", None)
    assert run.details["anchor"]["name"] in verdict.reason


def test_anchor_forged_without_the_key_is_reported():
    """An anchor dropped into the store by someone without the key (to 'legitimise' a rewritten chain)."""
    _events(3)
    forged = {"version": 2, "seq": 3, "hash": "f" * 64, "anchored_at": "2026-01-01T00:00:00+00:00", "mac": "0" * 64}
    storages["backups"].save(f"{ANCHOR_PREFIX}/2026/01/01/forged.json", ContentFile(json.dumps(forged).encode()))
    assert anchors_read().invalid
    verdict = _verify_fails("anchor_invalid", None)
    assert "forged.json" in verdict.reason


def test_anchor_job_refuses_to_anchor_a_broken_chain():
    _events(3)
    tamper("UPDATE audit_auditevent SET object_id = %s WHERE seq = %s", ["edited", 2])
    run = job_run_execute(job_run_id=job_run_create(job="audit_anchor").pk)
    assert run.status == JobRun.Status.FAILED and "not anchoring a broken audit chain" in run.error
    assert not anchors_read().anchors


def test_intact_chain_with_anchors_verifies(capsys):
    _events(3)
    first = _anchor()
    _events(2)
    second = _anchor()
    verdict = audit_chain_verify()
    assert verdict.ok, verdict.problems
    assert verdict.anchors_checked == 2 and verdict.last_anchor_seq == second.details["anchor"]["seq"]
    assert first.details["anchor"]["seq"] < second.details["anchor"]["seq"]
    call_command("audit_verify")
    out = capsys.readouterr().out
    assert "audit chain OK" in out and "2 anchors checked" in out and "last anchored at" in out


def test_rotated_key_still_verifies_old_events_and_anchors(settings):
    settings.AUDIT_HMAC_KEY = "first-key"
    _events(2)
    _anchor()
    settings.AUDIT_HMAC_KEY = "second-key"
    verdict = audit_chain_verify()
    assert not verdict.ok and verdict.kind == "forged" and "AUDIT_HMAC_OLD_KEYS" in verdict.reason
    settings.AUDIT_HMAC_OLD_KEYS = ["first-key"]
    _events(1)
    assert audit_chain_verify().ok


def test_tamper_helpers_change_what_they_say():
    """The helpers really rewrite the rows (else the tests above would prove nothing)."""
    _events(3)
    before = list(AuditEvent.objects.order_by("seq").values_list("hash", flat=True))
    tamper("UPDATE audit_auditevent SET object_id = %s WHERE seq = %s", ["edited", 2])
    rehash_from(2)
    after = list(AuditEvent.objects.order_by("seq").values_list("hash", flat=True))
    assert after[0] == before[0] and after[1] != before[1] and after[2] != before[2]
    row = AuditEvent.objects.filter(seq=3).values(*FIELDS).get()
    assert event_hash(**row) == after[2] and head().hash == after[2]


def test_anchors_written_before_signing_are_still_compared():
    """Anchors from before this change (version 1, unsigned) keep their use: a rewrite still contradicts them."""
    _events(3)
    three = AuditEvent.objects.get(seq=3)
    legacy = {"seq": 3, "hash": three.hash, "anchored_at": "2026-11-30T00:00:00+00:00", "job_run_id": 1}
    storages["backups"].save(f"{ANCHOR_PREFIX}/2026/11/30/legacy-seq3.json", ContentFile(json.dumps(legacy).encode()))
    verdict = audit_chain_verify()
    assert verdict.ok and verdict.anchors_checked == 1 and "weaker" in verdict.warnings[0]
    tamper("UPDATE audit_auditevent SET object_id = %s WHERE seq = %s", ["edited", 3])
    rehash_from(3, signer=AuditSigner.from_settings())  # even with the key
    _verify_fails("rehashed", 3)

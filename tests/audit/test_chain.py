"""The audit chain: append-only, hash-chained, signed, verified by a command, refused changes on PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.selectors import audit_chain_verify
from audit.services import audit_context, audit_log
from tests.audit.tamper import tamper

pytestmark = pytest.mark.django_db


def _three_events(user=None):
    audit_log(action="job.started", object_type="thing", object_id="1", data={"attempt": 1})
    with audit_context(user=user, job_run_id=7):
        audit_log(
            action="job.requested", object_type="thing", object_id="2", data={"job": "2026-01-01", "params": [1, 2]}
        )
    audit_log(action="job.succeeded", object_type="thing", object_id="3")


def test_events_chain_and_verify(capsys, django_user_model):
    user = django_user_model.objects.create_user("alice")
    _three_events(user)
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    assert events[1].actor == user and events[1].actor_label == "alice" and events[1].job_run_id == 7
    assert events[0].actor_label == "system"
    verdict = audit_chain_verify()
    assert verdict.ok and verdict.checked == 3
    call_command("audit_verify")
    assert "audit chain OK: 3 events" in capsys.readouterr().out


def test_verify_names_the_first_altered_event():
    _three_events()
    tamper("UPDATE audit_auditevent SET object_id = %s WHERE seq = %s", ["999", 2])
    verdict = audit_chain_verify()
    assert not verdict.ok and verdict.broken_seq == 2 and "altered" in verdict.reason
    with pytest.raises(CommandError, match=r"BROKEN at event #2"):
        call_command("audit_verify")


def test_verify_detects_a_removed_event():
    _three_events()
    tamper("DELETE FROM audit_auditevent WHERE seq = %s", [2])
    verdict = audit_chain_verify()
    assert not verdict.ok and verdict.broken_seq == 2 and "missing" in verdict.reason


def test_verify_detects_removed_tail():
    _three_events()
    tamper("DELETE FROM audit_auditevent WHERE seq = %s", [3])
    verdict = audit_chain_verify()
    assert not verdict.ok and "removed" in verdict.reason


def test_audit_rolls_back_with_the_state_change():
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_log(action="job.started")
        raise RuntimeError("the state change failed")
    assert not AuditEvent.objects.exists()
    audit_log(action="job.succeeded")
    assert audit_chain_verify().ok


@pytest.mark.postgres
def test_postgres_trigger_refuses_update_and_delete(require_postgres):
    _three_events()
    event = AuditEvent.objects.get(seq=1)
    for attempt in (
        lambda: AuditEvent.objects.filter(pk=event.pk).update(action="forged"),
        lambda: AuditEvent.objects.filter(pk=event.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    assert AuditEvent.objects.get(seq=1).action == "job.started"
    assert audit_chain_verify().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_chain(require_postgres):
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                audit_log(action="job.started", object_id=f"{n}-{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    verdict = audit_chain_verify()
    assert verdict.ok and verdict.checked == 40


def test_admin_is_read_only_even_for_superusers(admin_client):
    audit_log(action="job.started")
    event = AuditEvent.objects.get()
    assert admin_client.get("/admin/audit/auditevent/").status_code == 200
    assert admin_client.get("/admin/audit/auditevent/add/").status_code == 403
    page = admin_client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert admin_client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()

"""Data-subject requests: find a person everywhere, erase or pseudonymise them, and the audit chain still verifies."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from audit.selectors import audit_chain_verify
from cleanup.models import LookerDashboard
from privacy.models import SubjectRequest
from privacy.pseudonym import pseudonymise
from privacy.subjects import ERASED, SubjectRequestError, identifier_parse, subject_erase, subject_search
from quality.models import QuarantinedRow
from sheetsync.models import SyncEvent
from tests.privacy import factories

pytestmark = pytest.mark.django_db
EMAIL = factories.EMAIL.lower()


@pytest.fixture
def person(role_user, django_user_model):
    """A customer who is also a staff user and a dashboard owner, with quarantined lines and a sync event."""
    officer = role_user("Data Protection", "dpo")
    staff = role_user("Viewer", "ann")
    django_user_model.objects.filter(pk=staff.pk).update(email=factories.EMAIL, first_name="Ann")
    LookerDashboard.objects.create(looker_id="7", title="Ann's", owner_email=factories.EMAIL, owner_name="Ann C")
    run = factories.quality_run()
    factories.quarantined(run, n=2)
    factories.quarantined(run, email="bob@example.com", customer="C0000099")
    factories.sync_event(details={"error": f"cell B2 = {factories.EMAIL}", "n": 1})
    factories.sync_event(details={"error": "other"})
    # An event that names the person the only way the chain may: by pseudonym.
    from accounts.services import user_delete

    ghost = role_user("Viewer", "ghost")
    django_user_model.objects.filter(pk=ghost.pk).update(email=factories.EMAIL)
    user_delete(user=django_user_model.objects.get(pk=ghost.pk), actor=officer)
    return officer


def test_identifiers_are_checked():
    assert identifier_parse(" Ann@Example.com ").kind == "email"
    assert identifier_parse("C0000042").kind == "customer_id"
    for bad, message in (("", "e-mail address or customer id"), ("a@b", "not an e-mail"), ("C 1", "no spaces")):
        with pytest.raises(SubjectRequestError, match=message):
            identifier_parse(bad)


def test_find_by_email_reaches_every_place_and_is_audited_by_pseudonym(person):
    found = subject_search(identifier=identifier_parse(factories.EMAIL), actor=person)
    counts = found.counts()
    assert counts["quarantined_rows"] == 2 and counts["sync_events"] == 1 and counts["users"] == 1
    assert counts["dashboards"] == 1 and counts["audit_events"] >= 1  # the deleted account's event, by pseudonym
    event = AuditEvent.objects.filter(action="privacy.subject_searched").get()
    assert event.data["subject"] == pseudonymise(EMAIL, domain="email") and "example.com" not in json.dumps(event.data)
    by_id = subject_search(identifier=identifier_parse(factories.CUSTOMER), actor=person).counts()
    assert by_id["quarantined_rows"] == 2 and by_id["users"] == 0


def test_erase_removes_the_person_everywhere_and_the_chain_still_verifies(person, django_user_model):
    before = AuditEvent.objects.count()
    request = subject_erase(identifier=identifier_parse(factories.EMAIL), kind="erase", reason="DSR-2026-17",
                            actor=person)  # fmt: skip
    assert request.changed["quarantined_rows"] == 2 and request.changed["users"] == 1
    assert [r.data["customer_email"] for r in QuarantinedRow.objects.all()] == ["bob@example.com"]
    assert sorted(e.details["error"] for e in SyncEvent.objects.all()) == [ERASED, "other"]
    assert not django_user_model.objects.filter(email__iexact=EMAIL).exists()
    assert django_user_model.objects.get(username="ann").first_name == ""
    assert LookerDashboard.objects.get(looker_id="7").owner_email == ""
    # Nothing about the person is left but pseudonyms on the chain, which is intact.
    again = subject_search(identifier=identifier_parse(factories.EMAIL), actor=person).counts()
    assert again.pop("audit_events") >= 1 and set(again.values()) == {0}
    assert AuditEvent.objects.count() == before + 2  # the erase and the search, nothing rewritten
    everything = json.dumps(list(AuditEvent.objects.values_list("data", "object_id", "object_repr")))
    assert EMAIL not in everything.lower()
    verdict = audit_chain_verify()
    assert verdict.ok, verdict
    event = AuditEvent.objects.get(action="privacy.subject_erased")
    assert event.object_id == str(request.pk) and event.data["subject"] == request.subject
    assert event.data["changed"]["quarantined_rows"] == 2


def test_pseudonymise_keeps_the_rows_with_tokens_that_still_join(person):
    subject_erase(identifier=identifier_parse(factories.CUSTOMER), kind="pseudonymise", reason="DSR-18", actor=person)
    rows = [r.data for r in QuarantinedRow.objects.order_by("pk")]
    assert len(rows) == 3
    assert rows[0]["customer_id"] == rows[1]["customer_id"] == pseudonymise(factories.CUSTOMER, domain="customer_id")
    assert rows[0]["customer_email"] == pseudonymise(EMAIL, domain="email")
    assert rows[2]["customer_id"] == "C0000099"
    assert audit_chain_verify().ok


def test_bad_requests_are_refused(person):
    ident = identifier_parse(factories.EMAIL)
    with pytest.raises(SubjectRequestError, match="reason is required"):
        subject_erase(identifier=ident, kind="erase", reason=" ", actor=person)
    with pytest.raises(SubjectRequestError, match="must not contain the identifier"):
        subject_erase(identifier=ident, kind="erase", reason=f"asked by {factories.EMAIL}", actor=person)
    with pytest.raises(SubjectRequestError, match="kind must be one of"):
        subject_erase(identifier=ident, kind="shred", reason="x", actor=person)
    assert not SubjectRequest.objects.exists() and QuarantinedRow.objects.count() == 3


def test_the_command_is_a_dry_run_unless_confirmed(person, capsys):
    call_command("subject_request", "erase", factories.CUSTOMER, "--reason", "DSR-19")
    out = capsys.readouterr().out
    assert "DRY RUN" in out and "Quarantined order lines (quality): 2" in out and QuarantinedRow.objects.count() == 3
    call_command("subject_request", "erase", factories.CUSTOMER, "--reason", "DSR-19", "--confirm")
    assert "quarantined_rows: 2" in capsys.readouterr().out and QuarantinedRow.objects.count() == 1
    with pytest.raises(CommandError, match="reason is required"):
        call_command("subject_request", "pseudonymise", factories.CUSTOMER, "--confirm")


def test_the_admin_page_finds_then_erases(person, client):
    client.force_login(person)
    search = "/admin/privacy/subjectrequest/search/"
    page = client.post(search, {"identifier": factories.CUSTOMER, "action": "find"}).content.decode()
    assert "Quarantined order lines (quality)</td><td>2" in page and factories.CUSTOMER in page  # the officer's input
    response = client.post(search, {"identifier": factories.CUSTOMER, "action": "erase", "reason": "DSR-20"})
    request = SubjectRequest.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{request.pk}/change/")
    assert QuarantinedRow.objects.count() == 1 and request.requested_by == person
    bad = client.post(search, {"identifier": "not an id", "action": "find"}, follow=True).content.decode()
    assert "no spaces" in bad

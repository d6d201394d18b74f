"""Pseudonyms: stable, keyed, normalised, rotatable; the audit chain holds them instead of e-mails."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditEvent
from privacy.pseudonym import (
    EMAIL,
    PseudonymError,
    is_pseudonym,
    pseudonym_candidates,
    pseudonymise,
    pseudonymise_many,
)


def test_a_pseudonym_is_stable_normalised_and_keyed(settings):
    settings.PSEUDONYM_KEY = "k1"
    token = pseudonymise(" Ann@Example.com ", domain=EMAIL)
    assert token == pseudonymise("ann@example.com", domain=EMAIL)  # joins still work
    assert is_pseudonym(token) and token.startswith("pn_email_") and "ann" not in token
    assert pseudonymise("ann@example.com", domain="customer_id") != token  # domains apart
    assert pseudonymise("", domain=EMAIL) == "" and pseudonymise(None, domain=EMAIL) == ""
    assert pseudonymise_many(["a@x.io", "", "b@x.io"], domain=EMAIL) == [
        pseudonymise("a@x.io", domain=EMAIL),
        pseudonymise("b@x.io", domain=EMAIL),
    ]
    settings.PSEUDONYM_KEY = "k2"
    assert pseudonymise("ann@example.com", domain=EMAIL) != token  # another key, another token


def test_rotation_keeps_old_tokens_findable(settings):
    settings.PSEUDONYM_KEY, settings.PSEUDONYM_OLD_KEYS = "old", []
    old = pseudonymise("c1", domain="customer_id")
    settings.PSEUDONYM_KEY, settings.PSEUDONYM_OLD_KEYS = "new", ["old"]
    new = pseudonymise("c1", domain="customer_id")
    assert new != old and pseudonym_candidates("c1", domain="customer_id") == [new, old]


def test_an_unknown_domain_is_refused():
    with pytest.raises(PseudonymError, match="unknown pseudonym domain 'phone'"):
        pseudonymise("+44 1", domain="phone")


@pytest.mark.django_db
def test_account_events_carry_pseudonyms_not_emails(role_user, django_user_model):
    from accounts.services import user_delete, user_update

    admin = role_user("Platform Admin")
    user = role_user("Viewer", "ann")
    user.email, user.first_name = "ann.new@example.com", "Ann"
    user_update(user=user, actor=admin, fields=["email", "first_name"])
    user_delete(user=django_user_model.objects.get(pk=user.pk), actor=admin)
    payloads = json.dumps(list(AuditEvent.objects.values_list("data", "object_id", "object_repr")))
    assert "@example.com" not in payloads and '"Ann"' not in payloads
    changed = AuditEvent.objects.get(action="accounts.user_changed").data["changes"]
    assert changed["email"] == [pseudonymise("ann@example.com", domain=EMAIL),
                                pseudonymise("ann.new@example.com", domain=EMAIL)]  # fmt: skip

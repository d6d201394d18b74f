"""The security contract: classification defaults, clearance per role, masking, encryption round trip, access audit."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured

from audit.models import AuditEvent
from security.access import record_access
from security.classification import LEVELS, ClassificationError, column_level, dataset_columns, personal_columns
from security.clearance import clearance_for
from security.crypto import DecryptionError, decrypt, encrypt
from security.masking import mask_row, mask_value


def test_order_lines_defaults():
    assert LEVELS == ("public", "internal", "confidential", "restricted")
    assert column_level("sales.order_lines", "customer_email") == "restricted"
    assert column_level("sales.order_lines", "customer_id") == "restricted"
    assert column_level("sales.order_lines", "revenue") == "internal"
    assert set(personal_columns("sales.order_lines")) == {"customer_email", "customer_id"}
    assert dataset_columns("sales.order_lines")["region"] == "internal"
    assert "email" in personal_columns("auth.user")
    # undeclared datasets and columns take the default
    assert column_level("nowhere.table", "x") == "internal"


def test_settings_override_and_bad_level(settings):
    settings.SECURITY_CLASSIFICATION = {"sales.order_lines": {"channel": "confidential"}}
    assert column_level("sales.order_lines", "channel") == "confidential"
    settings.SECURITY_CLASSIFICATION = {"sales.order_lines": {"channel": "secret"}}
    with pytest.raises(ClassificationError, match="unknown classification level 'secret'"):
        column_level("sales.order_lines", "channel")


EXPECTED = {
    "Viewer": "internal",
    "Analyst": "confidential",
    "Data Steward": "confidential",
    "Content Admin": "internal",
    "Auditor": "confidential",
    "Platform Admin": "confidential",
}


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_clearance_per_role(role_user, role):
    assert clearance_for(role_user(role)) == EXPECTED[role]


def test_clearance_superuser_anonymous_and_data_protection(db, django_user_model):
    from django.contrib.auth.models import Group

    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    assert clearance_for(root) == "restricted"
    assert clearance_for(AnonymousUser()) == "public"
    assert clearance_for(None) == "public"
    dpo = django_user_model.objects.create_user("dpo", "dpo@example.com", "pw", is_staff=True)
    dpo.groups.add(Group.objects.get_or_create(name="Data Protection")[0])
    assert clearance_for(dpo) == "restricted"


def test_masking_by_clearance(role_user):
    row = {"order_id": "O1", "revenue": 12.5, "customer_email": "ann@example.com", "customer_id": None}
    viewer, analyst = role_user("Viewer"), role_user("Analyst")
    assert mask_row("sales.order_lines", row, viewer) == {
        "order_id": "O1", "revenue": 12.5, "customer_email": "[restricted]", "customer_id": None,
    }  # fmt: skip
    assert mask_row("sales.order_lines", row, analyst)["customer_email"] == "[restricted]"
    assert mask_value("x", "confidential", analyst) == "x"
    assert mask_value("x", "confidential", viewer) == "[confidential]"
    assert mask_value("x", "restricted", viewer, revealed=True) == "x"


def test_crypto_round_trip_and_rotation(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.DATA_ENCRYPTION_KEYS = [old]
    token = encrypt("ann@example.com")
    assert "ann" not in token and decrypt(token) == "ann@example.com"
    settings.DATA_ENCRYPTION_KEYS = [new, old]  # the old key still decrypts
    assert decrypt(token) == "ann@example.com"
    assert decrypt(encrypt(b"bytes")) == "bytes"
    settings.DATA_ENCRYPTION_KEYS = [new]
    with pytest.raises(DecryptionError):
        decrypt(token)


def test_crypto_derived_key_without_keys_and_bad_key_refused(settings):
    from security.checks import security_deploy_checks

    settings.DATA_ENCRYPTION_KEYS = []
    settings.DEBUG = False
    assert decrypt(encrypt("x")) == "x"  # a key derived from SECRET_KEY stands in...
    assert "security.E001" in [e.id for e in security_deploy_checks()]  # ...and check --deploy refuses it
    settings.DATA_ENCRYPTION_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="entry 1 is not a Fernet key"):
        encrypt("x")
    assert "entry 1 is not a Fernet key" in security_deploy_checks()[0].msg
    settings.DATA_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert "security.E001" not in [e.id for e in security_deploy_checks()]


def test_record_access_writes_chained_event_without_values(role_user):
    analyst = role_user("Analyst")
    event = record_access(
        analyst, dataset_or_model="quality.quarantinedrow", object_ref="42", purpose="review", via="admin"
    )
    event = AuditEvent.objects.get(pk=event.pk)
    assert event.action == "security.record_read"
    assert event.data == {
        "subject": "analyst", "object": "quality.quarantinedrow:42", "level": "restricted", "via": "admin",
        "purpose": "review",
    }  # fmt: skip
    assert event.prev_hash and event.hash

"""Encryption at rest: quarantined rows and failing samples are stored encrypted, the migration converts existing
rows, keys rotate with every value still readable, dashboard backups are written encrypted."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from cleanup.backups import backup_read_verified, backup_storage, backup_write_verified
from cleanup.models import DashboardBackup, LookerDashboard
from quality.models import CheckResult, QuarantinedRow
from security.crypto import DecryptionError, decrypt

from .factories import quarantine_make

pytestmark = pytest.mark.django_db


def raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608 - test constants
        return cursor.fetchone()[0]


@pytest.fixture
def keys(settings):
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.DATA_ENCRYPTION_KEYS = [first]
    return first, second


def test_quarantine_and_samples_are_stored_encrypted(keys):
    run, rows = quarantine_make()
    stored = raw("quality_quarantinedrow", "data", rows[0].pk)
    assert "person1@example.com" not in stored and "C0000042" not in stored
    assert json.loads(decrypt(stored))["customer_email"] == "person1@example.com"
    assert QuarantinedRow.objects.get(pk=rows[0].pk).data["customer_email"] == "person1@example.com"
    check = CheckResult.objects.get(quality_run=run)
    assert "O-1" not in raw("quality_checkresult", "sample_keys", check.pk)
    assert check.sample_keys == [["O-1", 1], ["O-2", 1]]


def _backup(looker_id: str = "7") -> DashboardBackup:
    dashboard = json.dumps({"id": looker_id, "title": "Revenue", "owner_email": "ann@example.com"})
    stored = backup_write_verified(looker_id=looker_id, dashboard_json=dashboard, lookml=None)
    dash = LookerDashboard.objects.create(looker_id=looker_id, title="Revenue")
    return DashboardBackup.objects.create(
        dashboard=dash,
        storage_name=stored.storage_name,
        sha256=stored.sha256,
        size_bytes=stored.size_bytes,
        verified_at=timezone.now(),
    )


def test_backups_are_written_encrypted_and_read_back(keys):
    backup = _backup()
    with backup_storage().open(backup.storage_name, "rb") as fh:
        on_disk = fh.read()
    assert b"ann@example.com" not in on_disk and not on_disk.startswith(b"{")
    doc = backup_read_verified(storage_name=backup.storage_name, sha256=backup.sha256)
    assert doc["dashboard"]["owner_email"] == "ann@example.com"


def test_rotation_reencrypts_everything_under_the_newest_key(keys, settings):
    old, new = keys
    run, rows = quarantine_make()
    backup = _backup()
    before = raw("quality_quarantinedrow", "data", rows[0].pk)

    settings.DATA_ENCRYPTION_KEYS = [new, old]  # new key first: old values still read
    assert QuarantinedRow.objects.get(pk=rows[0].pk).data["customer_email"] == "person1@example.com"
    call_command("rotate_encryption_keys", "--dry-run", stdout=(out := __import__("io").StringIO()))
    assert "quality.quarantinedrow.data: 2 checked, would re-encrypt 2" in out.getvalue()
    assert raw("quality_quarantinedrow", "data", rows[0].pk) == before

    call_command("rotate_encryption_keys", stdout=(out := __import__("io").StringIO()))
    assert "quality.quarantinedrow.data: 2 checked, re-encrypted 2" in out.getvalue()
    assert "quality.checkresult.sample_keys: 1 checked, re-encrypted 1" in out.getvalue()
    assert "backups: 1 checked, re-encrypted 1" in out.getvalue()
    event = AuditEvent.objects.filter(action="security.keys_rotated").get()
    assert event.data["counts"]["quality.quarantinedrow.data"] == {"checked": 2, "reencrypted": 2}

    settings.DATA_ENCRYPTION_KEYS = [new]  # after rotation only the new key is needed
    assert [r.data["customer_email"] for r in QuarantinedRow.objects.order_by("pk")] == [
        "person1@example.com", "person2@example.com",
    ]  # fmt: skip
    assert CheckResult.objects.get(quality_run=run).sample_keys == [["O-1", 1], ["O-2", 1]]
    assert backup_read_verified(storage_name=backup.storage_name, sha256=backup.sha256)["dashboard"]["id"] == "7"
    with pytest.raises(DecryptionError):
        decrypt(before)

    settings.DATA_ENCRYPTION_KEYS = [new, old]  # a rerun has nothing left to do
    call_command("rotate_encryption_keys", stdout=(out := __import__("io").StringIO()))
    assert "re-encrypted 0 value(s)" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_migration_encrypts_existing_rows(keys):
    from django.db.migrations.executor import MigrationExecutor
    from django.utils import timezone

    before = [("quality", "0003_line_level_check_results")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Run, Row, Check = (old.get_model("quality", m) for m in ("QualityRun", "QuarantinedRow", "CheckResult"))
    run = Run.objects.create(dataset="sales.order_lines", rows=1, score=1.0, gate="fail", created_at=timezone.now())
    row = Row.objects.create(quality_run=run, dataset="sales.order_lines", row_key="O-9|1", reason_codes=["X"],
                             data={"customer_email": "zed@example.com"})  # fmt: skip
    check = Check.objects.create(quality_run=run, name="c", stage="s", severity="e", status="failed",
                                 sample_keys=[["O-9", 1]])  # fmt: skip
    assert "zed@example.com" in str(raw("quality_quarantinedrow", "data", row.pk))

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert "zed@example.com" not in raw("quality_quarantinedrow", "data", row.pk)
    assert QuarantinedRow.objects.get(pk=row.pk).data == {"customer_email": "zed@example.com"}
    assert CheckResult.objects.get(pk=check.pk).sample_keys == [["O-9", 1]]

    executor = MigrationExecutor(connection)  # and back
    executor.migrate(before)
    assert "zed@example.com" in str(raw("quality_quarantinedrow", "data", row.pk))
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

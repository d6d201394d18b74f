"""The backup bucket's retention policy is checked against the declared one, on the GCS emulator."""

from __future__ import annotations

import pytest
import requests
from django.core.management import CommandError, call_command

from tests.cleanup.test_backup_gcs import gcs_backups  # noqa: F401 - the emulator fixture

pytestmark = pytest.mark.django_db


def test_retention_policy_checked_on_gcs(gcs_backups, settings, capsys):  # noqa: F811
    settings.BACKUP_BUCKET_RETENTION_S = 86400
    with pytest.raises(CommandError, match="retention is 0 s, declared 86400 s"):
        call_command("security_check_storage")
    requests.patch(
        f"{gcs_backups}/storage/v1/b/backups", json={"retentionPolicy": {"retentionPeriod": "86400"}}, timeout=5
    ).raise_for_status()
    call_command("security_check_storage")
    assert "retention 86400 s as declared" in capsys.readouterr().out
    with pytest.raises(CommandError, match="not locked"):
        call_command("security_check_storage", "--require-locked")


def test_filesystem_store_has_no_retention(settings, capsys):
    settings.BACKUP_BUCKET_RETENTION_S = 0
    call_command("security_check_storage")
    assert "not a GCS bucket" in capsys.readouterr().out
    with pytest.raises(CommandError, match="declared but the store is FileSystemStorage"):
        call_command("security_check_storage", "--declared", "60")

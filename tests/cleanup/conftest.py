from __future__ import annotations

import json

import pytest

from cleanup.models import ProtectedFolder


@pytest.fixture(autouse=True)
def protected_folder(db):
    """The estate's folder 6 is protected, as an admin would set it up."""
    return ProtectedFolder.objects.create(folder_id="6", name="Protected", reason="certified content")


@pytest.fixture
def content_admin(role_user):
    return role_user("Content Admin")


def looker_json(emulator, looker_id: str) -> str:
    """The dashboard as Looker serves it, through the real SDK (what a backup holds)."""
    from connectors.looker import looker_client

    return looker_client().dashboard_get_json(dashboard_id=looker_id)


def patch_count(emulator) -> int:
    return sum(v for k, v in emulator.counters().items() if k.startswith("PATCH "))


def backup_files(settings) -> list:
    from pathlib import Path

    root = Path(settings.STORAGES["backups"]["OPTIONS"]["location"])
    return sorted(p for p in root.rglob("*.json")) if root.exists() else []


def load(path) -> dict:
    from cleanup.backups import backup_unseal  # backups are encrypted at rest (issue 12)

    return json.loads(backup_unseal(path.read_bytes()))

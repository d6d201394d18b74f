"""Dashboard backups in the backup store (filesystem or GCS through Django's storage API).

A backup file is a deterministic JSON document addressed by its SHA-256, so writing the same dashboard
twice (a rerun after a crash) lands on the same name and never duplicates anything. Every write is read
back and its checksum compared before anyone may delete the dashboard.

Backups are written encrypted (issue 12: Fernet under ``DATA_ENCRYPTION_KEYS``, ``BACKUP_ENCRYPT``): the name and
checksum are the plaintext's, so reruns still land on the same object; files written before encryption (plain
JSON) are still read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from security.crypto import decrypt_bytes, encrypt_bytes, reencrypt, under_newest_key

BACKUP_FORMAT = 1


class BackupStoreError(Exception):
    """The backup store failed, or gave back something other than what was written."""


@dataclass(frozen=True)
class StoredBackup:
    storage_name: str
    sha256: str
    size_bytes: int
    has_lookml: bool


def backup_storage() -> Storage:
    return storages["backups"]


def backup_seal(content: bytes) -> bytes:
    """What is written to the store: the document encrypted (unless BACKUP_ENCRYPT is off)."""
    from django.conf import settings

    return encrypt_bytes(content) if getattr(settings, "BACKUP_ENCRYPT", True) else content


def backup_unseal(raw: bytes) -> bytes:
    """The document a stored file holds: plain JSON as it is (older backups), else decrypted."""
    return raw if raw.lstrip()[:1] in (b"{", b"[") else decrypt_bytes(raw)


def backup_read_bytes(storage_name: str) -> bytes:
    """The plaintext document of a stored backup (decrypted), unverified."""
    with backup_storage().open(storage_name, "rb") as fh:
        return backup_unseal(fh.read())


def backup_reencrypt(storage_name: str) -> bool:
    """Rewrite one stored backup under the newest key (key rotation); False when it already is."""
    storage = backup_storage()
    with storage.open(storage_name, "rb") as fh:
        raw = fh.read()
    if raw.lstrip()[:1] in (b"{", b"["):
        sealed = backup_seal(raw)
        if sealed == raw:
            return False
    else:
        token = raw.decode()
        if under_newest_key(token):
            return False
        sealed = reencrypt(token).encode()
    storage.delete(storage_name)
    saved = storage.save(storage_name, ContentFile(sealed))
    if saved != storage_name:
        raise BackupStoreError(f"backup store saved {storage_name} as {saved!r} while re-encrypting")
    return True


def backup_document(*, looker_id: str, dashboard_json: str, lookml: str | None) -> bytes:
    """The bytes of a backup: the full dashboard JSON (elements, filters, layouts) plus its LookML."""
    doc = {
        "format": BACKUP_FORMAT,
        "system": "looker",
        "looker_id": looker_id,
        "dashboard": json.loads(dashboard_json),
        "lookml": lookml,
    }
    return json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=False).encode()


def backup_write_verified(*, looker_id: str, dashboard_json: str, lookml: str | None) -> StoredBackup:
    """Store the backup, read it back and compare checksums; raise BackupStoreError unless they match."""
    content = backup_document(looker_id=looker_id, dashboard_json=dashboard_json, lookml=lookml)
    digest = hashlib.sha256(content).hexdigest()
    safe_id = looker_id.replace("/", "_").replace("::", "__")
    name = f"looker/{safe_id}/{digest}.json"
    storage = backup_storage()
    try:
        if storage.exists(name):
            # Same content already stored by an earlier (perhaps crashed) run: verify it instead of rewriting.
            if _read_sha(storage, name) != digest:
                storage.delete(name)
        if not storage.exists(name):
            saved = storage.save(name, ContentFile(backup_seal(content)))
            if saved != name:
                raise BackupStoreError(f"backup store saved {looker_id} as {saved!r}, expected {name!r}")
        read_back = _read_sha(storage, name)
    except BackupStoreError:
        raise
    except Exception as exc:  # any storage backend failure (OSError, google.api_core errors, ...)
        raise BackupStoreError(f"backup store failed for dashboard {looker_id}: {type(exc).__name__}: {exc}") from exc
    if read_back != digest:
        raise BackupStoreError(
            f"backup of dashboard {looker_id} did not verify: wrote sha256 {digest[:12]}, read back {read_back[:12]}"
        )
    return StoredBackup(storage_name=name, sha256=digest, size_bytes=len(content), has_lookml=lookml is not None)


def backup_read_verified(*, storage_name: str, sha256: str) -> dict[str, Any]:
    """Read a backup document and check it is the one recorded; raise BackupStoreError otherwise."""
    storage = backup_storage()
    try:
        with storage.open(storage_name, "rb") as fh:
            content = backup_unseal(fh.read())
    except Exception as exc:
        raise BackupStoreError(f"cannot read backup {storage_name}: {type(exc).__name__}: {exc}") from exc
    actual = hashlib.sha256(content).hexdigest()
    if actual != sha256:
        raise BackupStoreError(f"backup {storage_name} is corrupt: sha256 {actual[:12]} != recorded {sha256[:12]}")
    return json.loads(content)


def _read_sha(storage: Storage, name: str) -> str:
    with storage.open(name, "rb") as fh:
        return hashlib.sha256(backup_unseal(fh.read())).hexdigest()

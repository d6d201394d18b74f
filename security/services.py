"""Security services: key rotation (issue 12)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import TextField, Value
from django.db.models.functions import Cast

from .crypto import configured_keys, encrypted_fields, reencrypt, under_newest_key

BATCH = 500


def _rotate_model(model, field: str, *, dry_run: bool) -> tuple[int, int]:
    """(values checked, values re-encrypted) for one encrypted column."""
    checked = rotated = 0
    raw = model.objects.exclude(**{f"{field}__isnull": True}).annotate(_raw=Cast(field, TextField()))
    pending: list[tuple[Any, str]] = []
    for pk, token in raw.values_list("pk", "_raw").iterator(chunk_size=BATCH):
        checked += 1
        if under_newest_key(token):
            continue
        rotated += 1
        if not dry_run:
            pending.append((pk, reencrypt(token)))
        if len(pending) >= BATCH:
            _write(model, field, pending)
            pending = []
    if pending:
        _write(model, field, pending)
    return checked, rotated


def _write(model, field: str, tokens: list[tuple[Any, str]]) -> None:
    # A Value expression is written as it is: the field would encrypt a plain value once more.
    with transaction.atomic():
        for pk, token in tokens:
            model.objects.filter(pk=pk).update(**{field: Value(token, output_field=TextField())})


def encryption_keys_rotate(*, dry_run: bool = False, actor: Any = None) -> dict[str, dict[str, int]]:
    """Re-encrypt every stored encrypted value (model fields and dashboard backups) under the newest key.

    Values already under it are left alone, so a rerun after a crash continues where it stopped. Returns per
    column (``app_label.model.field``, ``backups``) how many values were checked and re-encrypted.
    """
    from audit.services import audit_log
    from cleanup.backups import backup_reencrypt
    from cleanup.models import DashboardBackup

    counts: dict[str, dict[str, int]] = {}
    for model, fields in encrypted_fields():
        for field in fields:
            checked, rotated = _rotate_model(model, field, dry_run=dry_run)
            counts[f"{model._meta.label_lower}.{field}"] = {"checked": checked, "reencrypted": rotated}
    checked = rotated = 0
    for name in DashboardBackup.objects.order_by("pk").values_list("storage_name", flat=True).iterator():
        checked += 1
        if dry_run:
            from cleanup.backups import backup_storage

            with backup_storage().open(name, "rb") as fh:
                raw = fh.read()
            rotated += raw.lstrip()[:1] not in (b"{", b"[") and not under_newest_key(raw.decode())
        else:
            rotated += backup_reencrypt(name)
    counts["backups"] = {"checked": checked, "reencrypted": rotated}
    if not dry_run:
        with transaction.atomic():
            audit_log(
                action="security.keys_rotated",
                object_type="security.keys",
                actor=actor,
                data={"counts": counts, "keys": len(configured_keys())},
            )
    return counts

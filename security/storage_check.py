"""Is a backup bucket's retention policy the one declared? (issue 12)

GCS keeps an object at least as long as its bucket's retention policy says (a locked policy cannot be shortened or
removed). ``BACKUP_BUCKET_RETENTION_S`` declares the policy the backup bucket must have; this compares it with the
bucket's own, read through django-storages' GCS backend (the same client the backups use).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.files.storage import storages


@dataclass(frozen=True)
class RetentionCheck:
    storage: str
    ok: bool
    declared_s: int
    actual_s: int | None
    locked: bool
    message: str


def bucket_retention_check(*, storage_name: str = "backups", declared_s: int, require_locked: bool = False):
    """Compare the retention policy of the bucket behind ``storages[storage_name]`` with ``declared_s``."""
    storage = storages[storage_name]
    bucket = getattr(storage, "bucket", None)
    if bucket is None:
        ok = declared_s == 0
        msg = (
            f"{storage_name}: not a GCS bucket ({type(storage).__name__}); no retention policy to check"
            if ok
            else f"{storage_name}: a retention policy of {declared_s} s is declared but the store is "
            f"{type(storage).__name__}, which has none"
        )
        return RetentionCheck(storage_name, ok, declared_s, None, False, msg)
    try:
        bucket.reload(timeout=30)
    except Exception as exc:  # noqa: BLE001 - google.api_core errors: not found, forbidden, unreachable
        return RetentionCheck(
            storage_name, False, declared_s, None, False, f"{storage_name}: cannot read bucket {bucket.name}: {exc}"
        )
    actual = int(bucket.retention_period or 0)
    locked = bool(bucket.retention_policy_locked)
    problems = []
    if actual != declared_s:
        problems.append(f"retention is {actual} s, declared {declared_s} s")
    if require_locked and declared_s and not locked:
        problems.append("the policy is not locked")
    msg = f"{storage_name}: bucket {bucket.name} " + (
        "; ".join(problems) if problems else f"retention {actual} s as declared" + (" (locked)" if locked else "")
    )
    return RetentionCheck(storage_name, not problems, declared_s, actual, locked, msg)

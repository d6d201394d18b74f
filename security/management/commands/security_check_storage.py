"""Check that the backup bucket's retention policy is the declared one (BACKUP_BUCKET_RETENTION_S)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from security.storage_check import bucket_retention_check


class Command(BaseCommand):
    help = "Compare the backup bucket's GCS retention policy with BACKUP_BUCKET_RETENTION_S; exit 1 when it differs."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--storage", default="backups", help="which of settings.STORAGES (default: backups)")
        parser.add_argument("--declared", type=int, default=None, help="seconds (default: BACKUP_BUCKET_RETENTION_S)")
        parser.add_argument("--require-locked", action="store_true", help="also fail when the policy is not locked")

    def handle(self, *args, storage: str, declared: int | None, require_locked: bool, **options) -> None:
        if storage not in settings.STORAGES:
            raise CommandError(f"no storage called {storage!r} in STORAGES")
        declared_s = settings.BACKUP_BUCKET_RETENTION_S if declared is None else declared
        result = bucket_retention_check(storage_name=storage, declared_s=declared_s, require_locked=require_locked)
        if not result.ok:
            raise CommandError(result.message)
        self.stdout.write(self.style.SUCCESS(result.message))

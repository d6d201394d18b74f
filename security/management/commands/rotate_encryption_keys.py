"""Re-encrypt every stored encrypted value under the newest DATA_ENCRYPTION_KEYS key."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from audit.services import audit_context
from security.services import encryption_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt quarantined rows, failing samples and dashboard backups under the newest key of "
        "DATA_ENCRYPTION_KEYS (put the new key first; drop the old one after this has run)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count what would be re-encrypted, change nothing")

    def handle(self, *args, dry_run: bool = False, **options) -> None:
        with audit_context(label="cli:rotate_encryption_keys"):
            counts = encryption_keys_rotate(dry_run=dry_run)
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        for column, c in counts.items():
            self.stdout.write(f"{column}: {c['checked']} checked, {verb} {c['reencrypted']}")
        total = sum(c["reencrypted"] for c in counts.values())
        self.stdout.write(self.style.SUCCESS(f"{verb} {total} value(s) under the newest key"))

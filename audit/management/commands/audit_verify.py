"""Verify the audit hash chain: exit 0 when intact, 1 naming the first broken link."""

from django.core.management.base import BaseCommand, CommandError

from audit.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit event hash chain; exits non-zero and names the first broken link."

    def handle(self, *args, **options) -> None:
        verdict = audit_chain_verify()
        if not verdict.ok:
            raise CommandError(
                f"audit chain BROKEN at event #{verdict.broken_seq}: {verdict.reason} "
                f"({verdict.checked} events verified before it)"
            )
        self.stdout.write(f"audit chain OK: {verdict.checked} events, head {verdict.head_hash[:16]}")

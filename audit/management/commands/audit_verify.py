"""Verify the audit chain (hashes, signatures, anchors): exit 0 when intact, 1 naming the first bad event."""

from django.core.management.base import BaseCommand, CommandError

from audit.selectors import audit_chain_verify


class Command(BaseCommand):
    help = (
        "Verify the audit event chain against its hashes, its signatures and the anchors in the backup store; "
        "exits non-zero naming the first bad event."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--no-anchors", action="store_true", help="skip the backup store (weaker: removed events go unseen)"
        )

    def handle(self, *args, no_anchors: bool = False, **options) -> None:
        verdict = audit_chain_verify(read_anchors=not no_anchors)
        for warning in verdict.warnings:
            self.stderr.write(f"warning: {warning}")
        if not verdict.ok:
            for problem in verdict.problems[1:]:
                self.stderr.write(f"also: {problem.message}")
            raise CommandError(
                f"audit chain BROKEN at event #{verdict.broken_seq}: {verdict.reason} "
                f"({verdict.checked} events verified before it)"
                if verdict.broken_seq
                else f"audit chain BROKEN: {verdict.reason} ({verdict.checked} events verified)"
            )
        self.stdout.write(
            f"audit chain OK: {verdict.checked} events, head {verdict.head_hash[:16]}, "
            f"{verdict.anchors_checked} anchors checked"
            + (
                f", last anchored at {verdict.last_anchor_at:%Y-%m-%d %H:%M:%S} (#{verdict.last_anchor_seq})"
                if verdict.last_anchor_at
                else ""
            )
        )

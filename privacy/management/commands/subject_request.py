"""``manage.py subject_request find|erase|pseudonymise <e-mail or customer id> [--reason ...] [--confirm]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from audit.services import audit_context
from privacy.subjects import PLACES, SubjectRequestError, identifier_parse, subject_erase, subject_search


class Command(BaseCommand):
    help = (
        "Find everything stored about a person (by e-mail or customer id), then erase or pseudonymise it. "
        "erase and pseudonymise only show what they would change unless --confirm is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["find", "erase", "pseudonymise"])
        parser.add_argument("identifier", help="the person's e-mail address or customer id")
        parser.add_argument("--reason", default="", help="the reference or legal ground")
        parser.add_argument("--confirm", action="store_true", help="really change the data")

    def handle(self, *args, action: str, identifier: str, reason: str, confirm: bool, **options):
        try:
            ident = identifier_parse(identifier)
            with audit_context(label="cli:subject_request"):
                if action == "find" or not confirm:
                    found = subject_search(identifier=ident, actor=None)
                    self.stdout.write(f"subject {ident.pseudonym} ({ident.kind}): {found.total} records")
                    for place, count in found.counts().items():
                        self.stdout.write(f"  {PLACES[place]}: {count}")
                    if action != "find":
                        self.stdout.write(f"DRY RUN: nothing changed; add --confirm to {action} it")
                    return
                request = subject_erase(identifier=ident, kind=action, reason=reason, actor=None)
        except SubjectRequestError as exc:
            raise CommandError(str(exc)) from exc
        changed = ", ".join(f"{k}: {v}" for k, v in request.changed.items())
        self.stdout.write(f"request #{request.pk}: {action} {request.subject}: {changed}")

"""Data-subject requests: find everything stored about a person, then erase or pseudonymise it.

A person is named by an e-mail address or a customer id. ``subject_find`` looks in every place the project keeps
personal data: quarantined order lines, sync-event details, user accounts, the Looker dashboard mirror (owners),
incident notifications and performance reports (recipients), and the audit chain (by pseudonym, under the current
and old ``PSEUDONYM_KEY``; the chain holds pseudonyms only, see ``audit/events.py``). ``subject_erase`` changes
every place but the chain in one transaction and records it (``SubjectRequest`` and the ``privacy.subject_erased``
event) with the pseudonym only, so ``audit_verify`` still passes afterwards.

Quarantined rows are read in Python, not filtered in SQL: their values may be encrypted at rest (issue 12).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.db.models.functions import Cast

from audit.models import AuditEvent
from audit.services import audit_log
from cleanup.models import LookerDashboard
from monitoring.models import Notification, PerformanceReport
from quality.models import QuarantinedRow
from sheetsync.models import SyncEvent

from .models import SubjectRequest
from .pseudonym import CUSTOMER_ID, EMAIL, pseudonym_candidates, pseudonymise

ERASED = "[erased]"
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CUSTOMER_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
# Columns of quarantined rows that identify a person, with their pseudonym domain (the classification registry of
# the security app names the same columns personal: sales.order_lines customer_email, customer_id).
PERSONAL_ROW_COLUMNS = {"customer_email": EMAIL, "customer_id": CUSTOMER_ID}
PLACES = {
    "quarantined_rows": "Quarantined order lines (quality)",
    "sync_events": "Sync-event details (sheetsync)",
    "users": "User accounts",
    "dashboards": "Looker dashboard mirror (owner)",
    "notifications": "Incident notifications (recipients)",
    "performance_reports": "Weekly performance reports (recipients)",
    "audit_events": "Audit events holding the pseudonym (kept: the chain holds pseudonyms only)",
}


class SubjectRequestError(ValueError):
    """A malformed identifier, an unknown kind, or a missing reason."""


@dataclass(frozen=True)
class Identifier:
    kind: str  # email or customer_id
    value: str

    @property
    def pseudonym(self) -> str:
        return pseudonymise(self.value, domain=self.kind)


def identifier_parse(text: str) -> Identifier:
    """An e-mail (has an @) or a customer id; a clear error for anything else."""
    value = (text or "").strip()
    if not value:
        raise SubjectRequestError("give the person's e-mail address or customer id")
    if "@" in value:
        if not _EMAIL_RE.match(value):
            raise SubjectRequestError(f"not an e-mail address: {value[:100]!r}")
        return Identifier(EMAIL, value.lower())
    if not _CUSTOMER_RE.match(value):
        raise SubjectRequestError("a customer id is 1-100 letters, digits or _.:- (no spaces)")
    return Identifier(CUSTOMER_ID, value)


@dataclass
class Findings:
    """Where a person's data is: ids per place (audit events by sequence number)."""

    ids: dict[str, list[int]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {place: len(self.ids.get(place, [])) for place in PLACES}

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.ids.values())


def _row_matches(data: Any, ident: Identifier) -> bool:
    if not isinstance(data, dict):
        return False
    for column, domain in PERSONAL_ROW_COLUMNS.items():
        value = data.get(column)
        if domain == ident.kind and value is not None and str(value).strip().lower() == ident.value.lower():
            return True
    return False


def _text_contains(model: type[models.Model], column: str, needle: str) -> list[int]:
    qs = model.objects.annotate(_text=Cast(column, models.TextField())).filter(_text__icontains=needle)
    return sorted(qs.values_list("pk", flat=True))


def subject_find(*, identifier: Identifier) -> Findings:
    """Every record about the person, per place (a read: no audit here, see ``subject_search``)."""
    found = Findings()
    found.ids["quarantined_rows"] = [
        pk for pk, data in QuarantinedRow.objects.values_list("pk", "data").iterator(chunk_size=2000)
        if _row_matches(data, identifier)
    ]  # fmt: skip
    found.ids["sync_events"] = _text_contains(SyncEvent, "details", identifier.value)
    if identifier.kind == EMAIL:
        found.ids["users"] = sorted(
            get_user_model().objects.filter(email__iexact=identifier.value).values_list("pk", flat=True)
        )
        found.ids["dashboards"] = sorted(
            LookerDashboard.objects.filter(owner_email__iexact=identifier.value).values_list("pk", flat=True)
        )
        found.ids["notifications"] = _text_contains(Notification, "recipients", identifier.value)
        found.ids["performance_reports"] = _text_contains(PerformanceReport, "recipients", identifier.value)
    tokens = pseudonym_candidates(identifier.value, domain=identifier.kind)
    query = models.Q()
    for token in tokens:
        query |= models.Q(_text__contains=token) | models.Q(object_id=token)
    found.ids["audit_events"] = sorted(
        AuditEvent.objects.annotate(_text=Cast("data", models.TextField())).filter(query).values_list("seq", flat=True)
    )
    return found


def subject_search(*, identifier: Identifier, actor: Any) -> Findings:
    """``subject_find``, recorded on the chain (who looked up whom, by pseudonym, and what was found)."""
    found = subject_find(identifier=identifier)
    with transaction.atomic():
        audit_log(
            action="privacy.subject_searched",
            object_type="privacy.subject",
            object_id=identifier.pseudonym,
            actor=actor,
            data={"subject": identifier.pseudonym, "identifier_kind": identifier.kind, "found": found.counts()},
        )
    return found


def _replace_in(value: Any, ident: Identifier, replacement: Callable[[str], str]) -> tuple[Any, int]:
    """``value`` (JSON) with every string holding the identifier replaced; how many were."""
    if isinstance(value, str):
        if ident.value.lower() in value.lower():
            return replacement(value), 1
        return value, 0
    if isinstance(value, list):
        out, n = [], 0
        for item in value:
            new, k = _replace_in(item, ident, replacement)
            out.append(new)
            n += k
        return out, n
    if isinstance(value, dict):
        out_d, n = {}, 0
        for key, item in value.items():
            new, k = _replace_in(item, ident, replacement)
            out_d[key] = new
            n += k
        return out_d, n
    return value, 0


def subject_erase(*, identifier: Identifier, kind: str, reason: str, actor: Any) -> SubjectRequest:
    """Erase or pseudonymise everything found about the person (the audit chain excepted: it holds pseudonyms).

    erase: quarantined rows deleted; values elsewhere replaced by ``[erased]`` (recipients dropped).
    pseudonymise: quarantined rows kept with their personal columns as pseudonyms (quality figures and joins
    stay); values elsewhere replaced by the pseudonym. Both: user accounts and dashboard owners lose the e-mail
    and names (an account is kept, so its history still reads; the mirror is refreshed from Looker anyway).
    """
    if kind not in SubjectRequest.Kind.values:
        raise SubjectRequestError(f"kind must be one of {', '.join(SubjectRequest.Kind.values)}, got {kind!r}")
    reason = (reason or "").strip()
    if not reason:
        raise SubjectRequestError("a reason is required (the request's reference or legal ground)")
    if identifier.value.lower() in reason.lower():
        raise SubjectRequestError("the reason must not contain the identifier itself: it is recorded on the chain")
    token = identifier.pseudonym
    erase = kind == SubjectRequest.Kind.ERASE

    def replacement(_: str) -> str:
        return ERASED if erase else token

    with transaction.atomic():
        found = subject_find(identifier=identifier)
        changed: dict[str, int] = {}
        rows = QuarantinedRow.objects.select_for_update().filter(pk__in=found.ids["quarantined_rows"]).order_by("pk")
        if erase:
            changed["quarantined_rows"] = rows.delete()[0] if found.ids["quarantined_rows"] else 0
        else:
            n = 0
            for row in rows:
                data = dict(row.data)
                for column, domain in PERSONAL_ROW_COLUMNS.items():
                    if data.get(column) not in (None, ""):
                        data[column] = pseudonymise(data[column], domain=domain)
                row.data = data
                row.save(update_fields=["data"])
                n += 1
            changed["quarantined_rows"] = n
        n = 0
        for event in SyncEvent.objects.select_for_update().filter(pk__in=found.ids["sync_events"]).order_by("pk"):
            event.details, k = _replace_in(event.details, identifier, replacement)
            event.save(update_fields=["details"])
            n += bool(k)
        changed["sync_events"] = n
        changed["users"] = get_user_model().objects.filter(pk__in=found.ids.get("users", [])).update(
            email="", first_name="", last_name=""
        )
        changed["dashboards"] = LookerDashboard.objects.filter(pk__in=found.ids.get("dashboards", [])).update(
            owner_email="", owner_name=""
        )
        for place, model in (("notifications", Notification), ("performance_reports", PerformanceReport)):
            n = 0
            for obj in model.objects.select_for_update().filter(pk__in=found.ids.get(place, [])).order_by("pk"):
                kept = [r for r in obj.recipients if str(r).strip().lower() != identifier.value.lower()]
                obj.recipients = kept if erase else [*kept, token]
                obj.save(update_fields=["recipients"])
                n += 1
            changed[place] = n
        changed["audit_events"] = 0  # never changed: they hold the pseudonym only
        request = SubjectRequest.objects.create(
            kind=kind,
            subject=token,
            identifier_kind=identifier.kind,
            reason=reason,
            requested_by=actor,
            found=found.counts(),
            changed=changed,
        )
        audit_log(
            action="privacy.subject_erased",
            obj=request,
            actor=actor,
            data={"subject": token, "identifier_kind": identifier.kind, "kind": kind, "found": found.counts(),
                  "changed": changed, "reason": reason},
        )  # fmt: skip
    return request

"""Compliance evidence for Auditors, generated from the audit chain with its verification state.

- ``gdpr``: the record of processing: what personal data the project holds, where, why, for how long and who can
  read it (from the classification registry, the retention settings, and the roles and their clearances);
- ``sox``: change-management evidence: every change to queries, roles, jobs and sync targets, with its requester
  and approver (audit events joined with the approvals they carried);
- ``access``: who read restricted records, when (``security.record_read`` and reveals, and subject searches).

Each report carries the chain's verification at the time it was built: evidence from a broken chain says so.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.roles import ROLE_PERMISSIONS, permissions_for_role
from approvals.models import ApprovalDecision
from audit.models import AuditEvent
from audit.selectors import ChainVerdict, audit_chain_verify


@dataclass(frozen=True)
class Evidence:
    report: str
    title: str
    headers: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    chain: ChainVerdict
    generated_at: datetime

    @property
    def chain_text(self) -> str:
        return self.chain.text()


def _roles_with(permission: str) -> list[str]:
    return [role for role in ROLE_PERMISSIONS if permissions_for_role(role, [permission])]


def _clearance(role: str) -> str:
    try:
        from security.clearance import role_clearance  # issue 12, security half: levels per role
    except ImportError:
        return ""
    return role_clearance(role)


def _column_level(dataset: str, column: str, default: str) -> str:
    try:
        from security.classification import column_level
    except ImportError:
        return default
    return column_level(dataset, column)


def _readers(permission: str, level: str) -> str:
    """Roles that can open the records, and whether each reads the values in clear (clearance >= level)."""
    out = []
    for role in _roles_with(permission):
        clearance = _clearance(role)
        if not clearance:
            out.append(role)
            continue
        from security.classification import level_rank

        clear = level_rank(clearance) >= level_rank(level)
        out.append(f"{role} ({'in clear' if clear else 'masked'})")
    return "; ".join(out) or "superusers only"


def _period(days: int) -> str:
    return f"{days} days, then purged (privacy_retention_purge)"


# (dataset, columns, level if the registry does not say, where, why, how long, permission to open the records)
def _stores() -> list[tuple[str, str, str, str, str, str, str]]:
    return [
        ("sales.order_lines", "customer_email, customer_id", "restricted", "BigQuery (the source; never copied "
         "whole)", "compute and validate the sales report", "the warehouse's own retention",
         "quality.view_quarantinedrow"),
        ("quality.quarantinedrow", "customer_email, customer_id", "restricted", "this database (quarantined order "
         "lines)", "review and re-process failing lines", _period(settings.RETENTION_QUARANTINE_DAYS),
         "quality.view_quarantinedrow"),
        ("quality.checkresult", "sample_keys", "confidential", "this database (failing samples)",
         "show which rows failed a check", _period(settings.RETENTION_SAMPLES_DAYS), "quality.view_checkresult"),
        ("sheetsync.syncevent", "details", "confidential", "this database (sync diagnostics)",
         "diagnose a sync cycle", _period(settings.RETENTION_SYNC_EVENT_DETAILS_DAYS), "sheetsync.view_syncevent"),
        ("auth.user", "email, first_name, last_name, username", "confidential", "this database (staff accounts)",
         "log in, notify, attribute actions", "while the account exists (a subject request blanks it)",
         "auth.view_user"),
        ("cleanup.lookerdashboard", "owner_email, owner_name", "confidential", "this database (Looker mirror)",
         "tell owners about cleanups and restores", "while the dashboard exists in Looker",
         "cleanup.view_lookerdashboard"),
        ("monitoring.notification", "recipients", "confidential", "this database (incident notifications)",
         "deliver and retry alerts", "with the incident", "monitoring.view_notification"),
        ("audit.auditevent", "pseudonyms of e-mails and names; staff usernames", "internal",
         "this database (hash-chained audit trail)", "accountability and evidence (access records included)",
         f"kept for good (at least {settings.RETENTION_ACCESS_RECORDS_DAYS} days for access records): the chain is "
         "never cut; it holds no personal data in clear", "audit.view_auditevent"),
    ]  # fmt: skip


def evidence_gdpr() -> Evidence:
    """The record of processing (GDPR art. 30): what, where, why, how long, who can read it."""
    rows = []
    for dataset, columns, default, where, why, how_long, permission in _stores():
        first = columns.split(",")[0].strip()
        level = _column_level(dataset, first, default)
        rows.append((dataset, columns, level, where, why, how_long, _readers(permission, level)))
    try:
        from security.classification import DATASETS, personal_columns
    except ImportError:
        DATASETS, personal_columns = {}, None
    listed = {r[0] for r in rows}
    for name in sorted(DATASETS):
        personal = personal_columns(name) if personal_columns else []
        if personal and name not in listed:
            level = _column_level(name, personal[0], "confidential")
            rows.append((name, ", ".join(personal), level, DATASETS[name].description or "declared dataset",
                         "as declared in the classification registry", "see the dataset's owner", ""))  # fmt: skip
    return Evidence(
        report="gdpr",
        title="GDPR record of processing",
        headers=("dataset", "personal data", "level", "where", "why", "how long", "who can read it"),
        rows=rows,
        chain=audit_chain_verify(),
        generated_at=timezone.now(),
    )


# Changes SOX asks evidence for: queries, roles and permissions, jobs (and their DAGs), sync targets.
CHANGE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "query": ("sales.query_created", "sales.query_changed", "sales.query_deleted", "sales.query_loaded"),
    "role": ("accounts.user_roles_changed", "accounts.user_permissions_changed", "accounts.user_flags_changed",
             "accounts.group_created", "accounts.group_renamed", "accounts.group_permissions_changed",
             "accounts.group_deleted"),
    "job": ("job.requested", "airflow.dag_pause_requested", "airflow.dag_paused", "airflow.dag_unpaused"),
    "target": ("sheetsync.target_created", "sheetsync.target_changed", "sheetsync.target_deleted",
               "sheetsync.target_paused", "sheetsync.target_resumed", "sheetsync.target_repaired"),
}  # fmt: skip


def _approvers(approval_ids: set[int]) -> dict[int, str]:
    decided: dict[int, list[str]] = {}
    for request_id, username in (
        ApprovalDecision.objects.filter(request_id__in=approval_ids, decision="approve")
        .order_by("created_at")
        .values_list("request_id", "actor__username")
    ):
        decided.setdefault(request_id, []).append(username)
    return {k: ", ".join(v) for k, v in decided.items()}


def _since(qs, since: datetime | None):
    return qs.filter(created_at__gte=since) if since else qs


def evidence_sox(*, since: datetime | None = None) -> Evidence:
    """Every change to queries, roles, jobs and targets, oldest first, with requester and approver."""
    category = {action: name for name, actions in CHANGE_CATEGORIES.items() for action in actions}
    events = list(_since(AuditEvent.objects.filter(action__in=list(category)), since).order_by("seq"))
    approval_ids = {int(e.data["approval"]) for e in events if str(e.data.get("approval") or "").isdigit()}
    approvers = _approvers(approval_ids)
    rows = []
    for e in events:
        approval = e.data.get("approval")
        approval = int(approval) if str(approval or "").isdigit() else None
        rows.append((
            e.seq, e.created_at.isoformat(timespec="seconds"), category[e.action], e.action,
            f"{e.object_type}:{e.object_id}", e.object_repr, e.actor_label,
            f"#{approval}" if approval else "", approvers.get(approval, "") if approval else "", e.hash,
        ))  # fmt: skip
    return Evidence(
        report="sox",
        title="SOX change-management evidence",
        headers=("seq", "at", "category", "action", "object", "what", "requester", "approval", "approver",
                 "event hash"),  # fmt: skip
        rows=rows,
        chain=audit_chain_verify(),
        generated_at=timezone.now(),
    )


ACCESS_ACTIONS = ("security.record_read", "security.value_revealed", "privacy.subject_searched")


def evidence_access(*, since: datetime | None = None) -> Evidence:
    """Who read restricted or confidential records, when, how and why (never the values read)."""
    events = _since(AuditEvent.objects.filter(action__in=ACCESS_ACTIONS), since).order_by("seq")
    rows = []
    for e in events:
        d = e.data
        record = d.get("object") or f"{e.object_type}:{e.object_id}"
        via = d.get("via") or ("subject search" if e.action == "privacy.subject_searched" else "reveal")
        rows.append((e.seq, e.created_at.isoformat(timespec="seconds"), e.actor_label, e.action, record,
                     d.get("level", "restricted"), via, d.get("purpose") or d.get("reason") or ""))  # fmt: skip
    return Evidence(
        report="access",
        title="Access report (restricted records read)",
        headers=("seq", "at", "reader", "action", "record", "level", "via", "purpose"),
        rows=rows,
        chain=audit_chain_verify(),
        generated_at=timezone.now(),
    )


REPORTS: dict[str, Callable[[], Evidence]] = {"gdpr": evidence_gdpr, "sox": evidence_sox, "access": evidence_access}


def evidence_build(report: str) -> Evidence:
    """One report by name; ValueError naming the known ones otherwise."""
    try:
        return REPORTS[report]()
    except KeyError:
        raise ValueError(f"unknown evidence report {report[:40]!r}; known: {', '.join(REPORTS)}") from None


def evidence_csv(evidence: Evidence) -> str:
    """The report as CSV, headed by what it is and the chain's verification state."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f"# {evidence.title}", f"generated {evidence.generated_at.isoformat(timespec='seconds')}"])
    writer.writerow([f"# audit chain: {evidence.chain_text}"])
    writer.writerow(evidence.headers)
    for row in evidence.rows:
        # A cell starting with = + - @ would run as a formula in a spreadsheet: quote it (CSV injection).
        writer.writerow([f"'{c}" if isinstance(c, str) and c[:1] in "=+-@" else c for c in row])
    return out.getvalue()


def evidence_export(*, report: str, fmt: str, actor: Any) -> Evidence:
    """Build one report for ``actor`` and record that they exported it (``privacy.evidence_exported``, with the
    chain's state): the admin's evidence page and the API call this, so both leave the same trail."""
    from django.db import transaction

    from audit.services import audit_log

    evidence = evidence_build(report)
    with transaction.atomic():
        audit_log(
            action="privacy.evidence_exported",
            object_type="privacy.evidence",
            object_id=report,
            actor=actor,
            data={"report": report, "format": fmt, "rows": len(evidence.rows), "chain_ok": evidence.chain.ok,
                  "chain_seq": evidence.chain.head_seq},
        )  # fmt: skip
    return evidence

"""Roles are Django groups; this is the one place that says which permissions each role has and what it means.

Patterns are ``app_label.codename`` with shell wildcards. A migration applies them (``roles_sync``), so a
fresh database has every role, and a later migration re-applies them when a new app adds permissions.
The README's roles table is generated from here (``manage.py roles_table --write``; a test fails when it
differs), and the role-walk test (``tests/rolewalk``) checks every admin page and API endpoint against it.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

VIEWER = "Viewer"
ANALYST = "Analyst"
DATA_STEWARD = "Data Steward"
CONTENT_ADMIN = "Content Admin"
AUDITOR = "Auditor"
PLATFORM_ADMIN = "Platform Admin"

PROJECT_APPS = (
    "audit", "orchestration", "cleanup", "quality", "sales", "sheetsync", "monitoring", "approvals", "lineage",
)  # fmt: skip

_VIEW_OPERATIONS = [
    "cleanup.view_lookerdashboard",
    "cleanup.view_dashboardpin",
    "cleanup.view_protectedfolder",
    "cleanup.view_cleanupaction",
    "cleanup.view_dashboardrestore",
    "orchestration.view_jobrun",
    "quality.view_qualityrun",
    "quality.view_checkresult",
    "quality.view_reviewitem",
    "sales.view_salesquery",
    "sales.view_queryrun",
    "sales.view_salesreport",
    "sheetsync.view_synctarget",
    "sheetsync.view_syncevent",
    "sheetsync.view_syncspreadsheet",
    "approvals.view_approvalrequest",
    "approvals.view_destinationwriter",
    # Monitoring: incidents and their timelines are visible to every role; "was this useful?" on reports/reviews.
    "monitoring.view_incident",
    "monitoring.view_incidentevent",
    "monitoring.add_feedback",
    # Lineage (issue 13): every role follows a dataset to its sources, runs and people.
    "lineage.view_lineagedataset",
    "lineage.view_lineageevent",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    # Sees the estate and the runs; changes nothing.
    VIEWER: _VIEW_OPERATIONS,
    # Runs analytics jobs (the sales report) and reads their results.
    ANALYST: [
        *_VIEW_OPERATIONS,
        "orchestration.trigger_jobrun",
        "sales.run_salesquery",
        "quality.view_quarantinedrow",
        "monitoring.acknowledge_incident",  # owners of the runs they request are the first rung of the ladder
    ],
    # Owns data quality: decides the review queue (four-eyes: never their own request), reads and re-processes
    # quarantined rows. Owns the Sheets sync targets: defines them, syncs them now, and pauses, resumes and
    # repairs them (pausing stops writes to a sheet people rely on, so it stays with the people who own the data).
    DATA_STEWARD: [
        *_VIEW_OPERATIONS,
        "orchestration.trigger_jobrun",
        "quality.decide_reviewitem",
        "quality.view_quarantinedrow",
        "quality.reprocess_quarantinedrow",
        "sheetsync.*_synctarget",
        "monitoring.acknowledge_incident",  # the second rung of the escalation ladder
        "monitoring.resume_incident",
    ],
    # Owns Looker content: runs the cleanup, pins dashboards, protects folders, reads backups, restores.
    CONTENT_ADMIN: [
        *_VIEW_OPERATIONS,
        "orchestration.trigger_jobrun",
        "cleanup.run_cleanup",
        "cleanup.restore_lookerdashboard",
        "cleanup.view_dashboardbackup",
        "cleanup.*_dashboardpin",
        "cleanup.*_protectedfolder",
        "monitoring.acknowledge_incident",
    ],
    # Reads everything, the audit trail included; changes nothing.
    AUDITOR: [
        "audit.view_*",
        "orchestration.view_*",
        "cleanup.view_*",
        "quality.view_*",
        "sales.view_*",
        "sheetsync.view_*",
        "approvals.view_*",
        "monitoring.view_*",  # the operations page, metrics, incidents, SLAs, reports: read-only
        "lineage.view_*",  # lineage graphs, events and their delivery
        "auth.view_user",
        "auth.view_group",
    ],  # fmt: skip
    # Runs the platform: every permission of the project's apps, and accounts (users and their roles).
    # API tokens: they see and revoke everyone's (issue 10); each user creates their own (the key is theirs only).
    PLATFORM_ADMIN: [f"{app}.*" for app in PROJECT_APPS]
    + ["auth.*_user", "auth.view_group", "accounts.view_apitoken", "accounts.delete_apitoken"]
    # Failed-login lockouts (django-axes): see them, and clear one by deleting the attempt.
    + ["axes.view_accessattempt", "axes.delete_accessattempt", "axes.view_accessfailurelog", "axes.view_accesslog"],
}

# What each role is for, in words: the README's table says exactly this.
ROLE_DESCRIPTIONS: dict[str, str] = {
    VIEWER: "see dashboards, pins, protected folders, cleanup actions, restores, job runs, quality runs and reviews, "
    "sales queries, runs and reports, sync targets and events, incidents and the approvals queue, data lineage (and "
    "say whether a report was useful)",
    ANALYST: "Viewer + run sales reports (with the dry-run cost estimate), ask for a publish override, see "
    "quarantined rows, acknowledge incidents",
    DATA_STEWARD: "Viewer + approve or reject quality reviews and publish overrides (never their own request or a run "
    "they shaped), re-process quarantined rows, define, sync now, pause, resume and repair Sheets sync targets, "
    "acknowledge incidents, mark them fixed and verify and resume",
    CONTENT_ADMIN: "Viewer + run the cleanup (plan shown, confirmation asked), approve another Content Admin's large "
    "cleanup, pin dashboards, protect folders, read and download backups, **restore** dashboards, acknowledge "
    "incidents",
    AUDITOR: "read everything, the audit trail and its chain state included (verify it now), the approvals, the "
    "operations page and `/metrics`; change nothing",
    PLATFORM_ADMIN: "every permission of the project's apps (audit events stay read-only), users and their roles "
    "(a grant above Viewer waits for a second Platform Admin; not superusers, not per-user permissions), Airflow "
    "DAGs, the operations page, SLAs and escalation ladders; approves costly sales queries, role grants, write-scope "
    "API tokens and changes to destructive DAGs (never their own, nor a grant or token for themselves); sees and "
    "revokes everyone's API tokens (each user creates their own) and clears failed-login lockouts",
}
# Roles above Viewer: granting one gives the power to change things (a guarded action, see user_roles_set).
PRIVILEGED_ROLES = tuple(r for r in (ANALYST, DATA_STEWARD, CONTENT_ADMIN, AUDITOR, PLATFORM_ADMIN))

# --- issue 12 (privacy): the Data Protection role; Auditors read the compliance evidence ------------------------
DATA_PROTECTION = "Data Protection"
PROJECT_APPS = (*PROJECT_APPS, "privacy")
ROLE_PERMISSIONS[DATA_PROTECTION] = [
    *_VIEW_OPERATIONS,
    "privacy.*",  # find, erase or pseudonymise a person's data; run the retention purge; the evidence
    "orchestration.trigger_jobrun",
    "quality.view_quarantinedrow",
    "audit.view_auditevent",
    "auth.view_user",
]
ROLE_DESCRIPTIONS[DATA_PROTECTION] = (
    "Viewer + find everything stored about a person (by e-mail or customer id) and erase or pseudonymise it, run "
    "the retention purge, read quarantined rows, users and the audit trail, export the compliance evidence"
)
ROLE_PERMISSIONS[AUDITOR].append("privacy.view_*")  # the requests' records and the compliance evidence
ROLE_PERMISSIONS[PLATFORM_ADMIN].append("privacy.*")
PRIVILEGED_ROLES = (*PRIVILEGED_ROLES, DATA_PROTECTION)

# Nobody may change or delete audit events, whatever a pattern above says.
FORBIDDEN = ["audit.add_auditevent", "audit.change_auditevent", "audit.delete_auditevent", "audit.*_auditchainhead"]


def permissions_for_role(role: str, available: list[str]) -> list[str]:
    """The ``app_label.codename`` strings of ``available`` that the role's patterns grant."""
    patterns = ROLE_PERMISSIONS[role]
    return sorted(
        perm
        for perm in available
        if any(fnmatchcase(perm, p) for p in patterns) and not any(fnmatchcase(perm, f) for f in FORBIDDEN)
    )


def roles_sync(apps) -> None:
    """Create the role groups and set their permissions exactly (for use in migrations)."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    by_name = {f"{p.content_type.app_label}.{p.codename}": p for p in Permission.objects.select_related("content_type")}
    for role in ROLE_PERMISSIONS:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set([by_name[name] for name in permissions_for_role(role, list(by_name))])


def _compact(patterns: list[str]) -> str:
    """``cleanup.view_a``, ``cleanup.view_b`` -> ``cleanup.view_{a,b}``; wildcards as they are."""
    grouped: dict[str, list[str]] = {}
    for pattern in patterns:
        head, _, model = pattern.rpartition("_")
        if "*" in pattern or not head or "." not in head:
            grouped.setdefault(pattern, [])
        else:
            grouped.setdefault(head, []).append(model)
    parts = []
    for head, models in grouped.items():
        if not models:
            parts.append(f"`{head}`")
        elif len(models) == 1:
            parts.append(f"`{head}_{models[0]}`")
        else:
            parts.append(f"`{head}_{{{','.join(models)}}}`")
    return ", ".join(parts)


def roles_table_markdown() -> str:
    """The README's roles table, generated from ROLE_DESCRIPTIONS and ROLE_PERMISSIONS."""
    rows = ["| Role | Can | Permissions (`accounts/roles.py`) |", "|---|---|---|"]
    for role, patterns in ROLE_PERMISSIONS.items():
        if role != VIEWER and set(_VIEW_OPERATIONS) <= set(patterns):
            granted = "Viewer's + " + _compact([p for p in patterns if p not in _VIEW_OPERATIONS])
        else:
            granted = _compact(patterns)
        rows.append(f"| {role} | {ROLE_DESCRIPTIONS[role]} | {granted} |")
    forbidden = ", ".join(f"`{f}`" for f in FORBIDDEN)
    rows.append("")
    rows.append(f"Never granted to any role, whatever a pattern says: {forbidden}.")
    return "\n".join(rows)


# --- issue 12 (security): the classification page for every role; Data Stewards may reveal masked values of the
# records they work on (with a reason, for SECURITY_REVEAL_MINUTES, audited); Auditors and Platform Admins read the
# reveal records. Clearances (what each role reads unmasked) are in security/clearance.py.
_VIEW_OPERATIONS.append("security.view_classification")  # Viewer's own list
for _role in (ANALYST, DATA_STEWARD, CONTENT_ADMIN, DATA_PROTECTION):
    ROLE_PERMISSIONS[_role].append("security.view_classification")
ROLE_PERMISSIONS[DATA_STEWARD].append("security.reveal_value")
ROLE_PERMISSIONS[AUDITOR].append("security.view_*")
ROLE_PERMISSIONS[PLATFORM_ADMIN] += ["security.view_*", "security.approve_classified_export"]
ROLE_DESCRIPTIONS[DATA_STEWARD] += ", reveal masked values of a record (with a reason, for a limited time, audited)"
ROLE_DESCRIPTIONS[PLATFORM_ADMIN] += "; approves a sync target that sends confidential or restricted columns to a sheet"

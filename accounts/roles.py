"""Roles are Django groups; this is the one place that says which permissions each role has.

Patterns are ``app_label.codename`` with shell wildcards. A migration applies them (``roles_sync``), so a
fresh database has every role, and a later migration re-applies them when a new app adds permissions.
The README's roles table is this mapping in words.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

VIEWER = "Viewer"
ANALYST = "Analyst"
DATA_STEWARD = "Data Steward"
CONTENT_ADMIN = "Content Admin"
AUDITOR = "Auditor"
PLATFORM_ADMIN = "Platform Admin"

PROJECT_APPS = ("audit", "orchestration", "cleanup", "quality", "sales", "sheetsync", "monitoring", "approvals")

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
        "auth.view_user",
        "auth.view_group",
    ],  # fmt: skip
    # Runs the platform: every permission of the project's apps, and accounts (users and their roles).
    # Not API tokens: a token impersonates its user, so only superusers issue them.
    PLATFORM_ADMIN: [f"{app}.*" for app in PROJECT_APPS] + ["auth.*_user", "auth.view_group"],
}

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

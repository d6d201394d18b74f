"""What each admin page, admin action and API endpoint needs, beyond what Django derives on its own.

The role walk (``test_rolewalk.py``) finds every page by itself: each registered model's changelist, add,
change, delete and history pages, each admin action, each autocomplete field, and every URL pattern outside the
admin. For the standard admin pages it knows the permission (``view``/``add``/``change``/``delete`` of the model);
for the rest it looks here, and **fails for any page, action or endpoint not declared below**, so new work
(a new app, an approvals queue, a new API endpoint) cannot be left out of the walk: declare it and what it needs.

``needs`` is a list of alternatives groups: every group must be satisfied, and a group is satisfied by any one
of its permissions. ``("a.x", "a.y")`` means "a.x or a.y"; ``[("a.x",), ("b.y",)]`` means "a.x and b.y". Which
role holds which permission comes from ``accounts/roles.py`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Needs = list[tuple[str, ...]]


@dataclass(frozen=True)
class Probe:
    """One request to make and what it needs. ``ok``: the statuses meaning "let in" (others are checked too:
    a refusal is 403, or a redirect to the login page / 401 for someone not logged in)."""

    method: str = "GET"
    needs: Needs = field(default_factory=list)
    kwargs: Callable[[dict[str, Any]], dict[str, Any]] = lambda objects: {}
    data: dict[str, Any] = field(default_factory=dict)
    ok: tuple[int, ...] = (200,)
    public: bool = False  # anyone, not logged in included
    label: str = ""
    # "token": an API client (``Authorization: Token``; not logged in -> 401). "session": a browser logged in to
    # the admin (form-encoded POST; not logged in -> ``anonymous``, a redirect to the login page by default).
    auth: str = "token"
    anonymous: tuple[int, ...] = (302,)


def _obj(label: str, attr: str = "pk") -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda objects: {"pk": getattr(objects[label], attr)}


def _jobs() -> list[Probe]:
    from orchestration.registry import jobs_all

    return [
        Probe(
            needs=[("orchestration.trigger_jobrun",), (spec.permission,)],
            kwargs=lambda objects, job=spec.name: {"job": job},
            label=spec.name,
        )
        for spec in jobs_all()
    ]


def admin_url_probes() -> dict[str, list[Probe]]:
    """Custom admin URLs (``ModelAdmin.get_urls`` beyond the standard five), by URL name."""
    return {
        "audit_auditevent_verify": [Probe(needs=[("audit.view_auditevent",)])],
        "auth_user_password_change": [
            Probe(needs=[("auth.change_user",)], kwargs=lambda objects: {"id": objects["auth.user"].pk})
        ],
        "orchestration_jobrun_trigger": _jobs(),
        "orchestration_jobrun_airflow": [Probe(needs=[("orchestration.manage_airflow",)])],
        # Issue 11: the dashboard page's Restore confirmation (GET shows "Restore X?"; the POST is the restore).
        "cleanup_lookerdashboard_restore": [
            Probe(needs=[("cleanup.restore_lookerdashboard",)], kwargs=_obj("cleanup.lookerdashboard"))
        ],
        # Issue 11: a sync target's test page (GET: the button; the POST reads the source and the sheet).
        "sheetsync_synctarget_test": [
            Probe(needs=[("sheetsync.sync_synctarget",)], kwargs=_obj("sheetsync.synctarget"))
        ],
        # Issue 11: the trigger form's live estimate (JSON). The cleanup has no estimate: allowed answers 404.
        "orchestration_jobrun_estimate": [
            Probe(
                needs=[("orchestration.trigger_jobrun",), ("cleanup.run_cleanup",)],
                kwargs=lambda objects: {"job": "looker_cleanup"},
                ok=(404,),
            )
        ],
        # Allowed: the file is looked up (the walk's backup has none: 404); refused: 403.
        "cleanup_dashboardbackup_download": [
            Probe(
                needs=[("cleanup.view_dashboardbackup", "cleanup.change_dashboardbackup")],
                kwargs=_obj("cleanup.dashboardbackup"),
                ok=(200, 404),
            )
        ],
        # The incident page's buttons (the walk's incident is about audit_anchor, so resuming needs its rights).
        "monitoring_incident_act": [
            Probe(
                method="POST",
                needs=[("monitoring.acknowledge_incident",)],
                kwargs=lambda objects: {"pk": objects["monitoring.incident"].pk, "action": "acknowledge"},
                ok=(302,),
                label="acknowledge",
            ),
            Probe(
                method="POST",
                needs=[("monitoring.resume_incident",)],
                kwargs=lambda objects: {"pk": objects["monitoring.incident"].pk, "action": "fix"},
                ok=(302,),
                label="fix",
            ),
            Probe(
                method="POST",
                needs=[("monitoring.resume_incident",), ("orchestration.trigger_jobrun",), ("audit.view_auditevent",)],
                kwargs=lambda objects: {"pk": objects["monitoring.incident"].pk, "action": "resume"},
                ok=(302,),
                label="resume",
            ),
        ],
        # POST without a decision: allowed -> back to the item with "choose approve or reject"; refused -> 403.
        "quality_reviewitem_decide": [
            Probe(method="POST", needs=[("quality.decide_reviewitem",)], kwargs=_obj("quality.reviewitem"), ok=(302,))
        ],
        # The approvals queue (its list and pages are standard: every role sees it) and its decide form: only
        # someone holding the request's approver permission reaches it (the walk's request is a Platform Admin's
        # to decide, see objects.OVERRIDES); the four-eyes refusals are messages on the page, tested elsewhere.
        "approvals_approvalrequest_decide": [
            Probe(
                method="POST",
                needs=[("auth.change_user",)],
                kwargs=_obj("approvals.approvalrequest"),
                ok=(302,),
            )
        ],
        # Asking to publish over a failed gate: Analysts (who run reports) and Platform Admins. Allowed -> back to
        # the report with why it cannot be overridden (the walk's report is not blocked by a failed gate).
        "sales_salesreport_override": [
            Probe(method="POST", needs=[("sales.run_salesquery",)], kwargs=_obj("sales.salesreport"), ok=(302,))
        ],
        # Issue 11: the audit trail's export (CSV, JSON Lines) of the list's filter: whoever reads the trail.
        "audit_auditevent_export": [
            Probe(needs=[("audit.view_auditevent",)], kwargs=lambda objects: {"fmt": "csv"}, label="csv"),
            Probe(needs=[("audit.view_auditevent",)], kwargs=lambda objects: {"fmt": "jsonl"}, label="jsonl"),
        ],
        # One's own API token (its key shown once to its owner): every staff user, whatever their role.
        "authtoken_tokenproxy_mine": [
            Probe(needs=[]),
            Probe(method="POST", needs=[], ok=(200, 302), label="show the key"),
        ],
        # Issue 12: revealing a quarantined row's masked values. Anyone who sees the row reaches the form; without
        # a reason (or without security.reveal_value) it is refused with a message on the row's page (302).
        "quality_quarantinedrow_reveal": [
            Probe(method="POST", needs=[("quality.view_quarantinedrow",)], kwargs=_obj("quality.quarantinedrow"),
                  ok=(302,))
        ],  # fmt: skip
        # Issue 12 (privacy): finding a person's data (Data Protection, Platform Admin) and the compliance evidence
        # (Auditor too). Erasing is tested in tests/privacy (the walk does not erase).
        "privacy_subjectrequest_search": [
            Probe(needs=[("privacy.search_subject",)]),
            Probe(
                method="POST",
                data={"identifier": "walk@example.com", "action": "find"},
                needs=[("privacy.search_subject",)],
                label="find",
            ),
        ],
        "privacy_subjectrequest_evidence": [Probe(needs=[("privacy.view_evidence",)])],
    }


# Admin actions whose ``allowed_permissions`` are not the standard add/change/delete/view: what they check.
ACTION_NEEDS: dict[tuple[str, str], Needs] = {
    ("cleanup.lookerdashboard", "restore_selected"): [("cleanup.restore_lookerdashboard",)],
    ("orchestration.jobrun", "retry_trigger"): [("orchestration.trigger_jobrun",)],
    ("quality.quarantinedrow", "reprocess_selected"): [("quality.reprocess_quarantinedrow",)],
    ("sheetsync.synctarget", "sync_now"): [("sheetsync.sync_synctarget",)],
    ("sheetsync.synctarget", "pause"): [("sheetsync.pause_synctarget",)],
    ("sheetsync.synctarget", "resume"): [("sheetsync.pause_synctarget",)],
    ("sheetsync.synctarget", "repair"): [("sheetsync.pause_synctarget",)],
    ("lineage.lineageoutbox", "retry_now"): [("lineage.deliver_lineageoutbox",)],  # issue 13
}


def api_probes() -> dict[str, list[Probe]]:
    """Every URL outside the admin, by URL name."""
    return {
        "api-jobrun-list": [
            Probe(needs=[("orchestration.view_jobrun",)]),
            # Triggering needs trigger_jobrun and the job's own permission (audit_anchor: audit.view_auditevent).
            Probe(
                method="POST",
                data={"job": "audit_anchor", "dry_run": True},
                needs=[("orchestration.trigger_jobrun",), ("audit.view_auditevent",)],
                ok=(202,),
                label="trigger audit_anchor",
            ),
            Probe(
                method="POST",
                data={"job": "looker_cleanup", "dry_run": True},
                needs=[("orchestration.trigger_jobrun",), ("cleanup.run_cleanup",)],
                ok=(202,),
                label="trigger looker_cleanup",
            ),
        ],
        "api-jobrun-detail": [Probe(needs=[("orchestration.view_jobrun",)], kwargs=_obj("orchestration.jobrun"))],
        "api-dashboard-list": [Probe(needs=[("cleanup.view_lookerdashboard",)])],
        # Allowed: the restore is refused (409: the walk's dashboard is not deleted); refused: 403.
        "api-dashboard-restore": [
            Probe(
                method="POST",
                needs=[("cleanup.restore_lookerdashboard",)],
                kwargs=lambda objects: {"looker_id": objects["cleanup.lookerdashboard"].looker_id},
                ok=(202, 409),
            )
        ],
        # Monitoring pages outside the admin's own URLs.
        "monitoring-operations": [Probe(needs=[("monitoring.view_operations",)], auth="session")],
        "metrics": [Probe(needs=[("monitoring.view_metrics",)], auth="session", anonymous=(401,))],
        "monitoring-feedback": [
            Probe(
                method="POST",
                needs=[("monitoring.add_feedback",)],
                kwargs=lambda objects: {"label": "sales.salesreport", "object_id": objects["sales.salesreport"].pk},
                data={"useful": "yes"},
                ok=(302,),
                auth="session",
            )
        ],
        # Issue 12: quarantined rows (masked by clearance; detail reads and exports recorded), the classification.
        "api-quarantinedrow-list": [Probe(needs=[("quality.view_quarantinedrow",)])],
        "api-quarantinedrow-detail": [
            Probe(needs=[("quality.view_quarantinedrow",)], kwargs=_obj("quality.quarantinedrow"))
        ],
        # Allowed without ?quality_run=: 400 (which run to export); refused: 403.
        "api-quarantinedrow-export": [Probe(needs=[("quality.view_quarantinedrow",)], ok=(400,))],
        "api-security-classification": [Probe(needs=[("security.view_classification",)])],
        "security-classification": [Probe(needs=[("security.view_classification",)], auth="session")],
        # Issue 11: "View site" (the site's root) leads to one's home; one's own time zone (any staff user).
        "site-root": [Probe(public=True, ok=(302,))],
        "console-timezone": [
            Probe(method="POST", needs=[], data={"time_zone": "Europe/Paris", "source": "chosen"}, ok=(302,),
                  auth="session"),
        ],  # fmt: skip
        "api-schema": [Probe(public=True)],
        "api-docs": [Probe(public=True)],
        "health": [Probe(public=True)],
        # Issue 13: the lineage graph; allowed without its namespace/name -> 400 (refused: 403, anonymous: 401).
        "api-lineage-graph": [Probe(needs=[("lineage.view_lineagedataset",)], ok=(400,))],
    }


# --- issue 10: the REST API v1 ----------------------------------------------------------------------------------
# Every endpoint of /api/v1/ keeps its name (api-...); the unversioned aliases of the first API (api-legacy-...)
# answer exactly as the endpoint they alias. The schema and the docs need a login.
_api_probes_before_v1 = api_probes


def _api_v1_probes() -> dict[str, list[Probe]]:
    return {
        "api-root": [Probe()],
        "api-v1-root": [Probe()],
        "api-schema": [Probe()],
        # Browsers: not logged in -> the admin's login page.
        "api-docs": [Probe(auth="session")],
        "api-redoc": [Probe(auth="session")],
    }


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    probes = {**_api_probes_before_v1(), **_api_v1_probes()}
    from api.urls import legacy_patterns

    for pattern in legacy_patterns():
        probes[pattern.name] = probes["api-" + pattern.name.removeprefix("api-legacy-")]
    return probes


# One's own API tokens (issue 10: django-rest-knox, several per user, the key shown once to its owner): every staff
# user, whatever their role; the old single-token page is gone.
_admin_url_probes_before_v1 = admin_url_probes


def admin_url_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    probes = _admin_url_probes_before_v1()
    probes.pop("authtoken_tokenproxy_mine", None)
    probes["accounts_apitoken_mine"] = [
        Probe(needs=[]),
        Probe(method="POST", needs=[], data={"op": "create", "name": "walk", "scope": "read", "days": "7"},
              label="create a read token"),
    ]  # fmt: skip
    return probes


# The resources of /api/v1/ beyond job runs and dashboards (issue 10): the admin's permission codenames.
def _api_v1_resource_probes() -> dict[str, list[Probe]]:
    def view(perm: str, detail: str = "") -> list[Probe]:
        return [Probe(needs=[(perm,)], kwargs=_obj(detail) if detail else (lambda objects: {}))]

    def act(perms: list[str], label: str, ok: tuple[int, ...] = (200,), data: dict | None = None,
            method: str = "POST", kwargs=None) -> Probe:
        return Probe(method=method, needs=[(p,) for p in perms], kwargs=kwargs or _obj(label), ok=ok, data=data or {})

    approval, review = "approvals.approvalrequest", "quality.reviewitem"
    target = "sheetsync.synctarget"
    v_approval, v_review = "approvals.view_approvalrequest", "quality.view_reviewitem"
    v_target = "sheetsync.view_synctarget"
    return {
        "api-approval-list": view(v_approval),
        "api-approval-detail": view(v_approval, approval),
        # Allowed: approved or rejected (200), or refused by the four-eyes rule / its state (409).
        "api-approval-approve": [act([v_approval, "auth.change_user"], approval, ok=(200, 409))],
        "api-approval-reject": [act([v_approval, "auth.change_user"], approval, ok=(200, 409), data={"reason": "x"})],
        "api-reviewitem-list": view(v_review),
        "api-reviewitem-detail": view(v_review, review),
        # The walk's review has no approval request: allowed -> 400 saying so (decided: 200; refused by state: 409).
        "api-reviewitem-approve": [act([v_review, "quality.decide_reviewitem"], review, ok=(200, 400, 409))],
        "api-reviewitem-reject": [
            act([v_review, "quality.decide_reviewitem"], review, ok=(200, 400, 409), data={"reason": "x"})
        ],
        "api-qualityrun-list": view("quality.view_qualityrun"),
        "api-qualityrun-detail": view("quality.view_qualityrun", "quality.qualityrun"),
        "api-quarantinedrow-list": view("quality.view_quarantinedrow"),
        # The walk's row belongs to no declared suite: allowed -> 400 naming it.
        "api-quarantinedrow-reprocess": [
            Probe(method="POST", needs=[("quality.view_quarantinedrow",), ("quality.reprocess_quarantinedrow",)],
                  data={"ids": [1]}, ok=(200, 400))
        ],
        # Creating from an empty body: allowed -> 400 naming the missing fields.
        "api-synctarget-list": [
            *view(v_target),
            Probe(method="POST", needs=[(v_target,), ("sheetsync.add_synctarget",)], ok=(201, 400), label="create"),
        ],
        "api-synctarget-detail": [
            *view(v_target, target),
            act([v_target, "sheetsync.change_synctarget"], target, ok=(200, 400), data={"description": "walk"},
                method="PATCH"),
        ],
        "api-synctarget-pause": [act([v_target, "sheetsync.pause_synctarget"], target)],
        "api-synctarget-resume": [act([v_target, "sheetsync.pause_synctarget"], target)],
        "api-synctarget-repair": [act([v_target, "sheetsync.pause_synctarget"], target)],
        "api-synctarget-sync-now": [act([v_target, "sheetsync.sync_synctarget"], target, ok=(202,))],
        "api-syncevent-list": view("sheetsync.view_syncevent"),
        "api-auditevent-list": view("audit.view_auditevent"),
        # Without ?format=csv|jsonl: allowed -> 400 naming the parameter.
        "api-auditevent-export": [Probe(needs=[("audit.view_auditevent",)], ok=(400,))],
        "api-auditevent-chain": view("audit.view_auditevent"),
        "api-salesquery-list": view("sales.view_salesquery"),
        "api-queryrun-list": view("sales.view_queryrun"),
        "api-salesreport-list": view("sales.view_salesreport"),
        "api-salesreport-detail": view("sales.view_salesreport", "sales.salesreport"),
    }  # fmt: skip


_api_probes_before_resources = api_probes


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    return {**_api_probes_before_resources(), **_api_v1_resource_probes()}


# Users and roles (Platform Admins) and retrying a failed trigger (issue 10).
_api_probes_before_people = api_probes


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    return {
        **_api_probes_before_people(),
        "api-user-list": [Probe(needs=[("auth.view_user",)])],
        # Viewer only (applies at once): 200 for who may change users.
        "api-user-roles": [
            Probe(method="POST", needs=[("auth.view_user",), ("auth.change_user",)], kwargs=_obj("auth.user"),
                  data={"roles": ["Viewer"]}, ok=(200,))
        ],
        # The walk's run is not a failed trigger: allowed -> 409 saying so.
        "api-jobrun-retry": [
            Probe(method="POST", needs=[("orchestration.view_jobrun",), ("orchestration.trigger_jobrun",)],
                  kwargs=_obj("orchestration.jobrun"), ok=(202, 409))
        ],
    }  # fmt: skip


# Issue 10, the rest of the admin through /api/v1/: a dashboard's detail, backups, pin/unpin; the cleanup plan's
# preview and run; a sales query's estimate; a report's charts' data, publish state and override; a user's detail.
_api_probes_before_parity = api_probes


def _api_parity_probes() -> dict[str, list[Probe]]:
    dashboard = lambda objects: {"looker_id": objects["cleanup.lookerdashboard"].looker_id}  # noqa: E731
    v_dash, v_report = "cleanup.view_lookerdashboard", "sales.view_salesreport"
    run_cleanup = [("orchestration.view_jobrun",), ("orchestration.trigger_jobrun",), ("cleanup.run_cleanup",)]
    return {
        "api-dashboard-detail": [Probe(needs=[(v_dash,)], kwargs=dashboard)],
        "api-dashboard-backups": [Probe(needs=[("cleanup.view_dashboardbackup",)], kwargs=dashboard)],
        "api-dashboardbackup-detail": [
            Probe(needs=[("cleanup.view_dashboardbackup",)], kwargs=_obj("cleanup.dashboardbackup"))
        ],
        # Pin (201), then unpin (200; 409 when no pin holds it, e.g. for a role that may unpin but not pin).
        "api-dashboard-pin": [
            Probe(method="POST", needs=[(v_dash,), ("cleanup.add_dashboardpin",)], kwargs=dashboard,
                  data={"reason": "walk", "expires_at": "2099-01-01T00:00:00Z"}, ok=(201,), label="pin"),
            Probe(method="DELETE", needs=[(v_dash,), ("cleanup.delete_dashboardpin",)], kwargs=dashboard,
                  ok=(200, 409), label="unpin"),
        ],
        # Out-of-bounds parameters: allowed -> 400 naming them (Looker is not called); refused -> 403 first.
        "api-cleanup-preview": [
            Probe(method="POST", needs=run_cleanup, data={"params": {"inactive_days": 0}}, ok=(400,))
        ],
        "api-cleanup-run": [
            Probe(method="POST", needs=run_cleanup, data={"params": {"inactive_days": 0}, "plan_sha256": "x"},
                  ok=(400,))
        ],
        # Without start and end: allowed -> 400 naming them (BigQuery is not called).
        "api-salesquery-estimate": [
            Probe(needs=[("sales.view_salesquery",), ("orchestration.trigger_jobrun",), ("sales.run_salesquery",)],
                  kwargs=_obj("sales.salesquery"), ok=(400,))
        ],
        "api-salesreport-charts": [Probe(needs=[(v_report,)], kwargs=_obj("sales.salesreport"))],
        "api-salesreport-publish-state": [Probe(needs=[(v_report,)], kwargs=_obj("sales.salesreport"))],
        # The walk's report has no failed quality run: allowed -> 409 saying only such a report is overridden.
        "api-salesreport-override": [
            Probe(method="POST", needs=[(v_report,), ("sales.run_salesquery",)], kwargs=_obj("sales.salesreport"),
                  data={"reason": "walk"}, ok=(409,))
        ],
        "api-user-detail": [Probe(needs=[("auth.view_user",)], kwargs=_obj("auth.user"))],
        "api-cleanupaction-list": [Probe(needs=[("cleanup.view_cleanupaction",)])],
        "api-dashboardrestore-list": [Probe(needs=[("cleanup.view_dashboardrestore",)])],
        "api-dashboardrestore-detail": [
            Probe(needs=[("cleanup.view_dashboardrestore",)], kwargs=_obj("cleanup.dashboardrestore"))
        ],
    }  # fmt: skip


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    return {**_api_probes_before_parity(), **_api_parity_probes()}


# Any other URL under /api/ answers a JSON 404, for everyone (issue 10: the schema's documented 404 body).
_api_probes_before_not_found = api_probes


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    return {
        **_api_probes_before_not_found(),
        "api-not-found": [Probe(public=True, ok=(404,), kwargs=lambda objects: {"rest": "v1/no-such-thing"})],
    }


# Issue 11: the sync target form's test button before saving (POST of the form as typed; an empty form: its errors).
_admin_url_probes_before_unsaved_test = admin_url_probes


def admin_url_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    return {
        **_admin_url_probes_before_unsaved_test(),
        "sheetsync_synctarget_test_unsaved": [Probe(method="POST", needs=[("sheetsync.sync_synctarget",)])],
    }


# Issue 10, monitoring through /api/v1/: incidents (list, detail, acknowledge, fix, verify and resume) and SLAs. The
# walk's incident is about audit_anchor (resuming needs its rights); the admin's buttons may have moved it on first,
# so an allowed action answers 200 or 409 (refused as the incident stands).
_api_probes_before_monitoring = api_probes


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    incident, v_inc = _obj("monitoring.incident"), ("monitoring.view_incident",)
    return {
        **_api_probes_before_monitoring(),
        "api-incident-list": [Probe(needs=[v_inc])],
        "api-incident-detail": [Probe(needs=[v_inc], kwargs=incident)],
        "api-incident-acknowledge": [
            Probe(method="POST", needs=[v_inc, ("monitoring.acknowledge_incident",)], kwargs=incident,
                  data={"note": "walk"}, ok=(200, 409))
        ],
        "api-incident-fix": [
            Probe(method="POST", needs=[v_inc, ("monitoring.resume_incident",)], kwargs=incident,
                  data={"note": "walk"}, ok=(200, 409))
        ],
        "api-incident-resume": [
            Probe(method="POST", needs=[v_inc, ("monitoring.resume_incident",), ("orchestration.trigger_jobrun",),
                                        ("audit.view_auditevent",)], kwargs=incident, ok=(200, 409))
        ],
        "api-sla-list": [Probe(needs=[("monitoring.view_sla",)])],
    }  # fmt: skip


# Issue 10, protected folders through /api/v1/: list and protect one more; a folder's detail, change and delete
# (the admin's permissions; no approval, as in the admin).
_api_probes_before_protected_folders = api_probes


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    folder, v_folder = _obj("cleanup.protectedfolder"), ("cleanup.view_protectedfolder",)
    return {
        **_api_probes_before_protected_folders(),
        "api-protectedfolder-list": [
            Probe(needs=[v_folder]),
            Probe(method="POST", needs=[v_folder, ("cleanup.add_protectedfolder",)],
                  data={"folder_id": "walk-folder", "reason": "walk"}, ok=(201,), label="protect"),
        ],
        "api-protectedfolder-detail": [
            Probe(needs=[v_folder], kwargs=folder),
            Probe(method="PATCH", needs=[v_folder, ("cleanup.change_protectedfolder",)], kwargs=folder,
                  data={"reason": "walk again"}, label="change"),
            Probe(method="DELETE", needs=[v_folder, ("cleanup.delete_protectedfolder",)], kwargs=folder,
                  ok=(204,), label="delete"),
        ],
    }  # fmt: skip


# Issue 10, data-subject requests through /api/v1/: the records; find a person's data; erase or pseudonymise it.
_api_probes_before_privacy = api_probes


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    v_req, search = ("privacy.view_subjectrequest",), ("privacy.search_subject",)
    return {
        **_api_probes_before_privacy(),
        "api-subjectrequest-list": [
            Probe(needs=[v_req]),
            Probe(method="POST", needs=[v_req, search, ("privacy.erase_subject",)], ok=(201,), label="erase",
                  data={"identifier": "walk-person@example.com", "kind": "pseudonymise", "reason": "walk"}),
        ],
        "api-subjectrequest-detail": [Probe(needs=[v_req], kwargs=_obj("privacy.subjectrequest"))],
        "api-subject-search": [
            Probe(method="POST", needs=[search], data={"identifier": "walk-person@example.com"}, label="find")
        ],
    }  # fmt: skip


# Issue 10, the lineage delivery outbox through /api/v1/: its list and "retry delivery now" (audited).
_api_probes_before_lineage_outbox = api_probes


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    v_outbox = ("lineage.view_lineageoutbox",)
    return {
        **_api_probes_before_lineage_outbox(),
        "api-lineageoutbox-list": [Probe(needs=[v_outbox])],
        "api-lineageoutbox-retry": [
            Probe(method="POST", needs=[v_outbox, ("lineage.deliver_lineageoutbox",)],
                  data={"ids": [999999]}, ok=(400,), label="retry (an id not in the outbox: 400 naming ids)")
        ],
    }  # fmt: skip


# Issue 10, failed-login lockouts (django-axes) through /api/v1/: Platform Admins list them and clear one (audited).
_api_probes_before_lockouts = api_probes


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    v_attempt = ("axes.view_accessattempt",)
    return {
        **_api_probes_before_lockouts(),
        "api-lockout-list": [Probe(needs=[v_attempt])],
        "api-lockout-detail": [
            Probe(needs=[v_attempt], kwargs=_obj("axes.accessattempt")),
            Probe(method="DELETE", needs=[v_attempt, ("axes.delete_accessattempt",)],
                  kwargs=_obj("axes.accessattempt"), ok=(204,), label="clear"),
        ],
    }  # fmt: skip


# Issue 10, a sales query's detail and edit through /api/v1/ (the admin's change form; Platform Admins).
_api_probes_before_salesquery_edit = api_probes


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    query, v_query = _obj("sales.salesquery"), ("sales.view_salesquery",)
    return {
        **_api_probes_before_salesquery_edit(),
        "api-salesquery-detail": [
            Probe(needs=[v_query], kwargs=query),
            Probe(method="PATCH", needs=[v_query, ("sales.change_salesquery",)], kwargs=query,
                  data={"title": "walk"}, label="edit"),
        ],
    }  # fmt: skip


# Issue 10: deleting a sync target through /api/v1/ (the admin's delete permission and service).
_api_probes_before_target_delete = api_probes


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    probes = _api_probes_before_target_delete()
    probes["api-synctarget-detail"] = [
        *probes["api-synctarget-detail"],
        Probe(method="DELETE", needs=[("sheetsync.view_synctarget",), ("sheetsync.delete_synctarget",)],
              kwargs=_fresh("sheetsync.synctarget"), ok=(204,), label="delete"),
    ]  # fmt: skip
    return probes


def _fresh(label: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A new row for each call: what a DELETE probe removes is never an object later probes of the walk use."""

    def build_one(objects: dict[str, Any]) -> dict[str, Any]:
        from django.apps import apps

        from tests.rolewalk.objects import build

        return {"pk": build(apps.get_model(label)).pk}

    return build_one


# Issue 10, the rest of sales, pins, lineage, compliance evidence and the sync's spreadsheets through /api/v1/: create
# and delete a sales query (the admin's add/delete permissions and audited services), every dashboard pin, lineage
# datasets and events (read-only), the compliance evidence (JSON or CSV; each export audited), the spreadsheets and a
# sync target's test (reads the source and the sheet, writes nothing).
_api_probes_before_apisales = api_probes


def _file_target(objects: dict[str, Any]) -> dict[str, Any]:
    """A target reading a file that is not there: its test answers 200 with the source's error, and never reaches
    BigQuery or Sheets (the walk's own target reads BigQuery, whose emulator a test must not start)."""
    if "walk.file_synctarget" not in objects:
        from sheetsync.models import SyncTarget

        objects["walk.file_synctarget"] = SyncTarget.objects.create(
            name="walk-file-target", spreadsheet_id="walk-sheet", range="Sheet1!A1", key_columns="id",
            source_kind=SyncTarget.SourceKind.FILE, source_file="/nonexistent/walk.csv",
        )  # fmt: skip
    return {"pk": objects["walk.file_synctarget"].pk}


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    probes = _api_probes_before_apisales()
    v_query, v_target = ("sales.view_salesquery",), ("sheetsync.view_synctarget",)
    ran = lambda objects: {"pk": objects["sales.queryrun"].query_id}  # noqa: E731 - a query with a run
    return {
        **probes,
        "api-salesquery-list": [
            *probes["api-salesquery-list"],
            Probe(method="POST", needs=[v_query, ("sales.add_salesquery",)], ok=(201,), label="create",
                  data={"name": "walk-created", "title": "Walk", "sql": "SELECT 1 AS n"}),
        ],
        # The walk's query with a run: allowed -> 409 (its runs keep it); the walk's own query stays for the others.
        "api-salesquery-detail": [
            *probes["api-salesquery-detail"],
            Probe(method="DELETE", needs=[v_query, ("sales.delete_salesquery",)], kwargs=ran, ok=(409,),
                  label="delete (a query with runs)"),
        ],
        "api-dashboardpin-list": [Probe(needs=[("cleanup.view_dashboardpin",)])],
        "api-lineagedataset-list": [Probe(needs=[("lineage.view_lineagedataset",)])],
        "api-lineagedataset-detail": [
            Probe(needs=[("lineage.view_lineagedataset",)], kwargs=_obj("lineage.lineagedataset"))
        ],
        "api-lineageevent-list": [Probe(needs=[("lineage.view_lineageevent",)])],
        "api-lineageevent-detail": [Probe(needs=[("lineage.view_lineageevent",)], kwargs=_obj("lineage.lineageevent"))],
        "api-compliance-evidence": [
            Probe(needs=[("privacy.view_evidence",)], kwargs=lambda objects, r=report: {"report": r}, label=report)
            for report in ("gdpr", "sox", "access")
        ],
        "api-syncspreadsheet-list": [Probe(needs=[("sheetsync.view_syncspreadsheet",)])],
        "api-syncspreadsheet-detail": [
            Probe(needs=[("sheetsync.view_syncspreadsheet",)], kwargs=_obj("sheetsync.syncspreadsheet"))
        ],
        "api-synctarget-test": [
            Probe(method="POST", needs=[v_target, ("sheetsync.sync_synctarget",)], kwargs=_file_target,
                  label="test (writes nothing)")
        ],
    }  # fmt: skip


# Issue 10, the rest of login security, roles, reveals, destination writers and Airflow through /api/v1/: django-axes'
# access logs (read-only), the groups (read-only: roles come from accounts/roles.py), the reveal grants and revealing
# a quarantined row's values (security.reveal_value, audited), the destinations' writers (read-only, as in the
# admin), a job's cost estimate, and Airflow's DAGs with pause/unpause. The walk runs without Airflow
# (AIRFLOW_API_URL unset): allowed -> 409 saying Airflow is not configured; refused -> 403 first.
_api_probes_before_security_roles_airflow = api_probes


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    v_log, v_fail, v_group = ("axes.view_accesslog",), ("axes.view_accessfailurelog",), ("auth.view_group",)
    v_grant, v_writer = ("security.view_revealgrant",), ("approvals.view_destinationwriter",)
    airflow = ("orchestration.manage_airflow",)
    return {
        **_api_probes_before_security_roles_airflow(),
        "api-accesslog-list": [Probe(needs=[v_log])],
        "api-accesslog-detail": [Probe(needs=[v_log], kwargs=_obj("axes.accesslog"))],
        "api-accessfailurelog-list": [Probe(needs=[v_fail])],
        "api-accessfailurelog-detail": [Probe(needs=[v_fail], kwargs=_obj("axes.accessfailurelog"))],
        "api-group-list": [Probe(needs=[v_group])],
        "api-group-detail": [Probe(needs=[v_group], kwargs=_obj("auth.group"))],
        "api-revealgrant-list": [Probe(needs=[v_grant])],
        "api-revealgrant-detail": [Probe(needs=[v_grant], kwargs=_obj("security.revealgrant"))],
        "api-quarantinedrow-reveal": [
            Probe(method="POST", needs=[("quality.view_quarantinedrow",), ("security.reveal_value",)],
                  kwargs=_obj("quality.quarantinedrow"), data={"reason": "walk reveal"}, ok=(201,))
        ],
        "api-destinationwriter-list": [Probe(needs=[v_writer])],
        "api-destinationwriter-detail": [Probe(needs=[v_writer], kwargs=_obj("approvals.destinationwriter"))],
        # Without start and end: allowed -> 400 naming them (BigQuery is not called).
        "api-job-estimate": [
            Probe(needs=[("orchestration.trigger_jobrun",), ("sales.run_salesquery",)],
                  kwargs=lambda objects: {"job": "sales_report"}, ok=(400,))
        ],
        "api-airflow-dag-list": [Probe(needs=[airflow], ok=(409,))],
        "api-airflow-dag-pause": [
            Probe(method="POST", needs=[airflow], kwargs=lambda objects: {"dag_id": "sheets_sync"}, ok=(409,))
        ],
        "api-airflow-dag-unpause": [
            Probe(method="POST", needs=[airflow], kwargs=lambda objects: {"dag_id": "sheets_sync"}, ok=(409,))
        ],
    }  # fmt: skip


# Issue 10, the rest of the monitoring admin through /api/v1/: SLAs (create, detail, edit; never deleted), SLA checks,
# escalation ladders (create, edit, delete), notifications, run records, API usage, host samples, feedback (read
# with view_feedback; given with add_feedback alone, as the feedback button asks) and weekly performance reports.
_api_probes_before_monitoring_more = api_probes


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    sla, v_sla = _obj("monitoring.sla"), ("monitoring.view_sla",)
    step, v_step = _obj("monitoring.escalationstep"), ("monitoring.view_escalationstep",)
    v_note, v_report = ("monitoring.view_notification",), ("monitoring.view_performancereport",)
    return {
        **_api_probes_before_monitoring_more(),
        "api-sla-list": [
            Probe(needs=[v_sla]),
            Probe(method="POST", needs=[v_sla, ("monitoring.add_sla",)], ok=(201,), label="create",
                  data={"name": "walk-sla", "job": "sales_report", "kind": "latency", "within_minutes": 60}),
        ],
        # The walk's SLA is a deadline without a day (built field by field): the edit makes it a valid latency SLA.
        "api-sla-detail": [
            Probe(needs=[v_sla], kwargs=sla),
            Probe(method="PATCH", needs=[v_sla, ("monitoring.change_sla",)], kwargs=sla, label="edit",
                  data={"kind": "latency", "within_minutes": 30, "description": "walk"}),
        ],
        "api-slacheck-list": [Probe(needs=[("monitoring.view_slacheck",)])],
        "api-escalationstep-list": [
            Probe(needs=[v_step]),
            Probe(method="POST", needs=[v_step, ("monitoring.add_escalationstep",)], ok=(201,), label="create",
                  data={"job": "walk-job", "level": 1, "audience": "owner", "after_occurrences": 1}),
        ],
        "api-escalationstep-detail": [
            Probe(needs=[v_step], kwargs=step),
            Probe(method="PATCH", needs=[v_step, ("monitoring.change_escalationstep",)], kwargs=step,
                  data={"after_minutes": 30}, label="edit"),
            Probe(method="DELETE", needs=[v_step, ("monitoring.delete_escalationstep",)], kwargs=step, ok=(204,),
                  label="delete"),
        ],
        "api-notification-list": [Probe(needs=[v_note])],
        "api-notification-detail": [Probe(needs=[v_note], kwargs=_obj("monitoring.notification"))],
        "api-runrecord-list": [Probe(needs=[("monitoring.view_runrecord",)])],
        "api-apiusage-list": [Probe(needs=[("monitoring.view_apiusage",)])],
        "api-hostsample-list": [Probe(needs=[("monitoring.view_hostsample",)])],
        # Giving feedback on an object not named (a probe's body cannot carry the walk's report id): allowed -> 400
        # naming the fields; refused -> 403 first. Giving it for real is tested in tests/api/test_monitoring_api_more.
        "api-feedback-list": [
            Probe(needs=[("monitoring.view_feedback",)]),
            Probe(method="POST", needs=[("monitoring.add_feedback",)], ok=(400,), label="give",
                  data={"useful": True, "comment": "walk"}),
        ],
        "api-performancereport-list": [Probe(needs=[v_report])],
        "api-performancereport-detail": [Probe(needs=[v_report], kwargs=_obj("monitoring.performancereport"))],
    }  # fmt: skip


# Issue 10: users created, edited and deleted through /api/v1/ (the admin's user forms: Platform Admins), and groups
# that are not roles (superusers only: no role holds auth.add/change/delete_group; roles stay read-only).
_api_probes_before_user_writes = api_probes


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    probes = _api_probes_before_user_writes()
    v_user, v_group = ("auth.view_user",), ("auth.view_group",)
    user, group = _obj("auth.user"), _obj("auth.group")
    return {
        **probes,
        "api-user-list": [
            *probes["api-user-list"],
            Probe(method="POST", needs=[v_user, ("auth.add_user",)], data={"username": "walk-new-user"}, ok=(201,),
                  label="create"),
        ],
        "api-user-detail": [
            *probes["api-user-detail"],
            Probe(method="PATCH", needs=[v_user, ("auth.change_user",)], kwargs=user, data={"first_name": "Walk"},
                  label="edit"),
            Probe(method="DELETE", needs=[v_user, ("auth.delete_user",)], kwargs=_fresh("auth.user"), ok=(204,),
                  label="delete"),
        ],
        "api-group-list": [
            *probes["api-group-list"],
            Probe(method="POST", needs=[v_group, ("auth.add_group",)], data={"name": "walk-new-group"}, ok=(201,),
                  label="create"),
        ],
        "api-group-detail": [
            *probes["api-group-detail"],
            Probe(method="PATCH", needs=[v_group, ("auth.change_group",)], kwargs=group, data={"name": "walk-renamed"},
                  label="rename"),
            Probe(method="DELETE", needs=[v_group, ("auth.delete_group",)], kwargs=_fresh("auth.group"), ok=(204,),
                  label="delete"),
        ],
    }  # fmt: skip


# Issue 10: one pin's detail, change and delete through /api/v1/ (the admin's pin permissions and service).
_api_probes_before_pin_detail = api_probes


def api_probes() -> dict[str, list[Probe]]:  # noqa: F811 - extends the declarations above
    v_pin = ("cleanup.view_dashboardpin",)
    return {
        **_api_probes_before_pin_detail(),
        "api-dashboardpin-detail": [
            Probe(needs=[v_pin], kwargs=_obj("cleanup.dashboardpin")),
            Probe(method="PATCH", needs=[v_pin, ("cleanup.change_dashboardpin",)], kwargs=_obj("cleanup.dashboardpin"),
                  data={"reason": "walk again"}, label="change"),
            Probe(method="DELETE", needs=[v_pin, ("cleanup.delete_dashboardpin",)],
                  kwargs=_fresh("cleanup.dashboardpin"), ok=(204,), label="delete"),
        ],
    }  # fmt: skip

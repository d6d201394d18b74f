"""Everything a person does in the admin, a script can do through /api/v1/ (issue 10): each model the admin shows,
each page it adds (``get_urls``) and each action it offers has its API endpoint, or a stated reason it has none.

Found from the admin site itself, not listed by hand: a new ModelAdmin, admin page or action fails this test
until it has an endpoint here (or a reason in ``NOT_IN_API``).
"""

from __future__ import annotations

import pytest
from django.contrib import admin

pytestmark = pytest.mark.django_db

# The admin's own pages (``get_urls``) and actions -> the API endpoint that does the same thing.
PAGE_TO_API = {
    "accounts_apitoken_mine": None,  # see NOT_IN_API
    "approvals_approvalrequest_decide": "api-approval-approve",
    "audit_auditevent_verify": "api-auditevent-chain",
    "audit_auditevent_export": "api-auditevent-export",
    "cleanup_dashboardbackup_download": "api-dashboardbackup-detail",
    "cleanup_lookerdashboard_restore": "api-dashboard-restore",
    "monitoring_incident_act": "api-incident-acknowledge",
    "orchestration_jobrun_trigger": "api-jobrun-list",
    "orchestration_jobrun_estimate": "api-job-estimate",
    "orchestration_jobrun_airflow": "api-airflow-dag-list",
    "privacy_subjectrequest_search": "api-subject-search",
    "privacy_subjectrequest_evidence": "api-compliance-evidence",
    "quality_quarantinedrow_reveal": "api-quarantinedrow-reveal",
    "quality_reviewitem_decide": "api-reviewitem-approve",
    "sales_salesreport_override": "api-salesreport-override",
    "sheetsync_synctarget_test": "api-synctarget-test",
    "sheetsync_synctarget_test_unsaved": "api-synctarget-test",
}
ACTION_TO_API = {
    ("axes.accessattempt", "delete_selected"): "api-lockout-detail",
    ("auth.user", "delete_selected"): "api-user-detail",
    ("auth.group", "delete_selected"): "api-group-detail",
    ("cleanup.dashboardpin", "delete_selected"): "api-dashboardpin-detail",
    ("cleanup.protectedfolder", "delete_selected"): "api-protectedfolder-detail",
    ("monitoring.escalationstep", "delete_selected"): "api-escalationstep-detail",
    ("sales.salesquery", "delete_selected"): "api-salesquery-detail",
    ("sheetsync.synctarget", "delete_selected"): "api-synctarget-detail",
    ("accounts.apitoken", "delete_selected"): None,  # see NOT_IN_API
    ("cleanup.lookerdashboard", "restore_selected"): "api-dashboard-restore",
    ("lineage.lineageoutbox", "retry_now"): "api-lineageoutbox-retry",
    ("orchestration.jobrun", "retry_trigger"): "api-jobrun-retry",
    ("quality.quarantinedrow", "reprocess_selected"): "api-quarantinedrow-reprocess",
    ("quality.quarantinedrow", "export_csv"): "api-quarantinedrow-export",
    ("sheetsync.synctarget", "sync_now"): "api-synctarget-sync-now",
    ("sheetsync.synctarget", "pause"): "api-synctarget-pause",
    ("sheetsync.synctarget", "resume"): "api-synctarget-resume",
    ("sheetsync.synctarget", "repair"): "api-synctarget-repair",
}
# What the admin shows that the API deliberately does not, and why.
NOT_IN_API = {
    "accounts.apitoken": "API tokens are made and revoked in the admin only (issue 10: the secret shown once to a "
    "logged-in person; a token must not mint tokens)",
    "accounts_apitoken_mine": "the same: one's own tokens, in the admin",
    ("accounts.apitoken", "delete_selected"): "the same: revoking tokens, in the admin",
}


# The admin's add / change / delete of a model -> the API endpoint doing it, where it is not the model's own list
# (POST) or detail (PATCH, DELETE) endpoint.
WRITE_TO_API = {
    ("cleanup.dashboardpin", "add"): ("api-dashboard-pin", "post"),  # pin a dashboard: on the dashboard
}


def _api_names() -> set[str]:
    from api.urls import v1_patterns

    return {p.name for p in v1_patterns() if p.name}


def _api_models() -> set[str]:
    """Models some /api/v1/ view reads (its queryset's model)."""
    from api.urls import v1_patterns

    found = set()
    for pattern in v1_patterns():
        view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
        queryset = getattr(view, "queryset", None)
        if queryset is not None:
            found.add(queryset.model._meta.label_lower)
        serializer = getattr(view, "serializer_class", None)
        model = getattr(getattr(serializer, "Meta", None), "model", None)
        if model is not None:
            found.add(model._meta.label_lower)
    return found


def _api_writes() -> set[tuple[str, str, str]]:
    """(model, add|change|delete, URL name) for each /api/v1/ view that writes its queryset's model: POST on a
    list (no path parameter), PATCH on a detail, DELETE on a detail."""
    from api.urls import v1_patterns

    found = set()
    for pattern in v1_patterns():
        view = getattr(pattern.callback, "view_class", None)
        queryset = getattr(view, "queryset", None)
        if queryset is None:
            continue
        label, detail = queryset.model._meta.label_lower, "<" in str(pattern.pattern)
        allowed = {m for m in ("post", "patch", "delete") if hasattr(view, m) and m in view.http_method_names}
        for method, kind in (("post", "add"), ("patch", "change"), ("delete", "delete")):
            if method in allowed and detail == (kind != "add"):
                found.add((label, kind, pattern.name))
    return found


def _admin() -> dict:
    admin.autodiscover()  # what the root URLconf does (the admin is a SimpleAdminConfig)
    return admin.site._registry


def test_every_model_the_admin_shows_has_an_endpoint():
    missing = sorted(
        model._meta.label_lower
        for model in _admin()
        if model._meta.label_lower not in _api_models() and model._meta.label_lower not in NOT_IN_API
    )
    assert missing == [], f"admin models without an API endpoint (or a reason in NOT_IN_API): {missing}"


def test_every_admin_page_and_action_has_an_endpoint():
    api = _api_names()
    standard = ("_changelist", "_add", "_history", "_delete", "_change", "_autocomplete")
    unmapped, broken = [], []
    for model, model_admin in _admin().items():
        label = model._meta.label_lower
        for pattern in model_admin.get_urls():
            name = pattern.name
            if not name or name.endswith(standard) or name in NOT_IN_API:
                continue
            if name not in PAGE_TO_API:
                unmapped.append(name)
            elif PAGE_TO_API[name] not in api:
                broken.append((name, PAGE_TO_API[name]))
        for action in model_admin.get_actions(_request_for(model_admin)) or {}:
            key = (label, action)
            if key in NOT_IN_API:
                continue
            if key not in ACTION_TO_API:
                unmapped.append(key)
            elif ACTION_TO_API[key] not in api:
                broken.append((key, ACTION_TO_API[key]))
    assert unmapped == [], f"admin pages/actions with no API endpoint declared here: {unmapped}"
    assert broken == [], f"declared API endpoints that do not exist: {broken}"


def test_every_add_change_and_delete_the_admin_allows_has_an_endpoint():
    """What a superuser may add, change or delete in the admin (each ModelAdmin's own has_*_permission: read-only
    admins allow none), a script may through the API, by the same services."""
    writes = _api_writes()
    api = _api_names()
    # What the search finds (so a gap below is a real gap, not a blind search):
    assert {("auth.user", "add", "api-user-list"), ("auth.user", "delete", "api-user-detail"),
            ("sheetsync.synctarget", "change", "api-synctarget-detail")} <= writes  # fmt: skip
    assert not any(w[0] == "audit.auditevent" for w in writes)  # the trail is never written through the API
    missing = []
    for model, model_admin in _admin().items():
        label = model._meta.label_lower
        request = _request_for(model_admin)
        allowed = {
            "add": model_admin.has_add_permission(request),
            "change": model_admin.has_change_permission(request),
            "delete": model_admin.has_delete_permission(request),
        }
        for kind, ok in allowed.items():
            if not ok or label in NOT_IN_API or (label, kind) in NOT_IN_API:
                continue
            declared = WRITE_TO_API.get((label, kind))
            if declared is not None:
                if declared[0] not in api:
                    missing.append((label, kind, f"declared {declared[0]} does not exist"))
                continue
            if not any(w[:2] == (label, kind) for w in writes):
                missing.append((label, kind))
    assert missing == [], f"admin writes with no API endpoint: {missing}"


def _request_for(model_admin):
    """A superuser's request: ``get_actions`` shows every action the admin has (each checks its own permission)."""
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model()(username="coverage", is_superuser=True, is_staff=True, is_active=True)
    return request


def test_the_declarations_name_only_real_admin_pages_and_actions():
    """A stale entry (a renamed page, a removed action) would hide a gap: every key names something real."""
    pages, actions = set(), set()
    for model, model_admin in _admin().items():
        pages |= {p.name for p in model_admin.get_urls() if p.name}
        actions |= {(model._meta.label_lower, a) for a in model_admin.get_actions(_request_for(model_admin)) or {}}
    assert sorted(set(PAGE_TO_API) - pages) == []
    assert sorted(set(ACTION_TO_API) - actions, key=str) == []

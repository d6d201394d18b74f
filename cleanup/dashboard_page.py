"""The Looker dashboard page's actions and story (issue 11): open it in Looker, restore it (POST, confirmed),
and who deleted it, when, why and in which run, apart from dashboards that were already in Looker's trash; and
the related panel: one click to its cleanup action, backup, restore, cleanup run and audit events."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from console.links import links_html, related_links_for
from dataops_site.lazy import lazy_function

from .models import CleanupAction, DashboardRestore, LookerDashboard

# Imported on first use: the services import the SDKs, which run_job's start-up skips (issue 15).
cleanup_restore_request = lazy_function("cleanup.services.cleanup_restore_request")
restore_backup_for = lazy_function("cleanup.services.restore_backup_for")


def looker_ui_url() -> str:
    """Where people open Looker: LOOKER_UI_URL, else the API's host (Looker serves both), else the local emulator."""
    base = getattr(settings, "LOOKER_UI_URL", "") or settings.LOOKER_BASE_URL
    return (base or f"http://127.0.0.1:{settings.LOOKER_EMULATOR_PORT}").rstrip("/")


def dashboard_looker_url(dashboard: LookerDashboard) -> str:
    return f"{looker_ui_url()}/dashboards/{dashboard.looker_id}"


def _deleting_action(dashboard: LookerDashboard) -> CleanupAction | None:
    return (
        CleanupAction.objects.filter(dashboard=dashboard, status=CleanupAction.Status.DELETED)
        .select_related("job_run", "job_run__actor", "job_run__principal", "backup")
        .order_by("-deleted_at", "-pk")
        .first()
    )


def dashboard_deletion_text(dashboard: LookerDashboard) -> str:
    """One sentence: who deleted it, when, why and in which run; or that Looker's trash held it already."""
    if not dashboard.deleted and not dashboard.missing_in_looker:
        return ""
    action = _deleting_action(dashboard)
    if action is None:
        when = f" (since {dashboard.deleted_at:%Y-%m-%d %H:%M} UTC)" if dashboard.deleted_at else ""
        return f"Already in Looker's trash{when}: no cleanup run of this control plane deleted it."
    run = action.job_run
    who = run.principal or run.actor
    by = f"{who}" if who else (run.principal_label or run.get_trigger_display())
    when = f"{action.deleted_at:%Y-%m-%d %H:%M} UTC" if action.deleted_at else "at an unknown time"
    return (
        f"Moved to the trash by cleanup run #{run.pk} ({by}, {run.get_trigger_display()}) on {when}: inactive for "
        f"{action.inactive_days} days (policy {run.params.get('inactive_days', settings.CLEANUP_INACTIVE_DAYS)} days)."
    )


def dashboard_deletion_story(dashboard: LookerDashboard) -> SafeString | str:
    """The deletion sentence with links to the run and the backup it was restored from."""
    text = dashboard_deletion_text(dashboard)
    if not text:
        return "-"
    action = _deleting_action(dashboard)
    if action is None:
        return format_html('<span id="deletion-story">{}</span>', text)
    run_url = reverse("admin:orchestration_jobrun_change", args=[action.job_run_id])
    backup = ""
    if action.backup_id:
        backup = format_html(
            ' <a href="{}">backup {}</a>',
            reverse("admin:cleanup_dashboardbackup_change", args=[action.backup_id]),
            action.backup.sha256[:12],
        )
    return format_html(
        '<span id="deletion-story">{} <a href="{}">run #{}</a>{}</span>', text, run_url, action.job_run_id, backup
    )


def dashboard_page_actions(dashboard: LookerDashboard, *, user: Any) -> SafeString:
    """Open in Looker, and Restore for those who may when the dashboard is deleted (or gone from Looker)."""
    parts = [
        format_html(
            '<a class="button" id="open-in-looker" href="{}" target="_blank" rel="noopener">Open in Looker</a>',
            dashboard_looker_url(dashboard),
        )
    ]
    open_restore = dashboard.restores.filter(status=DashboardRestore.Status.REQUESTED).first()
    if open_restore is not None:
        parts.append(
            format_html(
                '<a id="restore-open" href="{}">restore requested {} UTC</a>',
                reverse("admin:cleanup_dashboardrestore_change", args=[open_restore.pk]),
                f"{open_restore.requested_at:%Y-%m-%d %H:%M}",
            )
        )
    elif (dashboard.deleted or dashboard.missing_in_looker) and user.has_perm("cleanup.restore_lookerdashboard"):
        parts.append(
            format_html(
                '<a class="button default" id="restore" href="{}">Restore…</a>',
                reverse("admin:cleanup_lookerdashboard_restore", args=[dashboard.pk]),
            )
        )
    related = format_html(
        '<div id="related-panel" style="margin-top:.5em"><strong>Related</strong>{}</div>',
        links_html(related_links_for(dashboard, user)),
    )
    return mark_safe(" ".join(parts) + related)  # noqa: S308 - every part is format_html-escaped


def dashboard_restore_view(model_admin: Any, request, pk: int):
    """GET: "Restore X?" with how it comes back. POST: open the restore (the audited service) and go back."""
    if not request.user.has_perm("cleanup.restore_lookerdashboard"):
        raise PermissionDenied("you may not restore dashboards")
    dashboard = get_object_or_404(LookerDashboard, pk=pk)
    page_url = reverse("admin:cleanup_lookerdashboard_change", args=[dashboard.pk])
    if request.method == "POST":
        result = cleanup_restore_request(dashboards=[dashboard], actor=request.user)
        for restore in result.requested:
            model_admin.message_user(
                request, f"Restore of {dashboard.looker_id} requested (#{restore.pk}); it runs now.", messages.SUCCESS
            )
        for looker_id, reason in result.refused:
            model_admin.message_user(request, f"Dashboard {looker_id} not restored: {reason}", messages.WARNING)
        return HttpResponseRedirect(page_url)
    backup = restore_backup_for(dashboard)
    if dashboard.missing_in_looker:
        how = (
            f"It is gone from Looker: it will be re-created from the backup of {backup.created_at:%Y-%m-%d} "
            f"(checksum verified first)."
            if backup
            else "It is gone from Looker and there is no backup: it cannot be restored."
        )
    elif dashboard.deleted:
        how = "It is in Looker's trash: it will be taken out (undeleted) and its owner told."
    else:
        how = "It is not deleted: there is nothing to restore."
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Restore {dashboard.looker_id}?",
        "opts": model_admin.model._meta,
        "dashboard": dashboard,
        "how": how,
        "story": dashboard_deletion_text(dashboard),
    }
    return TemplateResponse(request, "admin/cleanup/lookerdashboard/restore_confirm.html", context)

"""Each object's neighbours along its chain, as links: job run -> query run -> quality run -> review/approval ->
report -> sheet; dashboard -> cleanup action -> backup -> restore; plus Looker and Google Sheets links out.

``chain_links(obj)`` answers for any model (an empty list for those without a chain), in a few queries; the
``RelatedLinksMixin`` (console.links) shows them on a change page.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.db import models
from django.urls import reverse

from .links import Link, admin_change_url, audit_events_url, google_sheet_url, looker_dashboard_url

_CHAINS: dict[str, Callable[[models.Model], list[Link]]] = {}


def _chain(label: str):
    def register(func):
        _CHAINS[label] = func
        return func

    return register


def _obj(label: str, obj: models.Model | None, text: str | None = None) -> Link | None:
    if obj is None:
        return None
    url = admin_change_url(label, obj.pk)
    return (text or f"{obj._meta.verbose_name} #{obj.pk}: {obj}", url) if url else None


def _list(label: str, text: str, **filters: object) -> Link:
    app, _, model = label.partition(".")
    return text, reverse(f"admin:{app}_{model}_changelist") + "?" + urlencode(filters)


def chain_links(obj: models.Model) -> list[Link]:
    func = _CHAINS.get(obj._meta.label_lower)
    itself = admin_change_url(obj._meta.label_lower, obj.pk)
    return [link for link in (func(obj) if func else []) if link and link[1] and link[1] != itself]


@_chain("orchestration.jobrun")
def _job_run(run) -> list[Link | None]:
    from monitoring.models import Incident
    from quality.models import QualityRun, ReviewItem
    from sales.models import QueryRun

    links: list[Link | None] = [
        _obj("approvals.approvalrequest", run.approval, f"carries out approval #{run.approval_id}")
    ]
    requested = (run.counters or {}).get("approval_request")
    if isinstance(requested, int):
        url = admin_change_url("approvals.approvalrequest", requested)
        links.append((f"asked for approval #{requested}", url) if url else None)
    for query_run in QueryRun.objects.filter(job_run=run).select_related("query", "report").order_by("pk"):
        links.append(_obj("sales.queryrun", query_run, f"query run #{query_run.pk}: {query_run}"))
        report = getattr(query_run, "report", None)
        if report is not None:
            links.append(_obj("sales.salesreport", report, f"report #{report.pk}: {report.get_status_display()}"))
            if report.sheet_id:
                links.append((f"open the sheet {report.sheet_id} in Google Sheets", google_sheet_url(report.sheet_id)))
    for quality_run in QualityRun.objects.filter(job_run=run).order_by("pk"):
        links.append(_obj("quality.qualityrun", quality_run, f"quality run #{quality_run.pk}: {quality_run}"))
    for item in ReviewItem.objects.filter(job_run=run).order_by("pk"):
        links.append(_obj("quality.reviewitem", item, f"review #{item.pk}: {item.get_status_display()}"))
        if item.approval_id:
            links.append(_obj("approvals.approvalrequest", item.approval, f"its approval #{item.approval_id}"))
    if run.job == "looker_cleanup":
        links.append(_list("cleanup.cleanupaction", "per-dashboard outcomes", job_run__id__exact=run.pk))
        links.append(_list("cleanup.dashboardbackup", "backups taken by this run", job_run__id__exact=run.pk))
    if run.job == "sheets_sync":
        links.append(_list("sheetsync.syncevent", "per-target sync events", job_run__id__exact=run.pk))
    for incident in Incident.objects.filter(job_run=run).order_by("pk")[:5]:
        links.append(_obj("monitoring.incident", incident, f"incident #{incident.pk}: {incident.title}"))
    return links


@_chain("sales.queryrun")
def _query_run(query_run) -> list[Link | None]:
    report = getattr(query_run, "report", None) if hasattr(query_run, "report") else None
    links = [_obj("orchestration.jobrun", query_run.job_run, f"job run #{query_run.job_run_id}")]
    if report is not None:
        links += _sales_report(report)[1:]
        links.insert(1, _obj("sales.salesreport", report, f"report #{report.pk}: {report.get_status_display()}"))
    return links


@_chain("sales.salesreport")
def _sales_report(report) -> list[Link | None]:
    from quality.models import ReviewItem

    query_run = report.query_run
    item = None
    links: list[Link | None] = [
        _obj("sales.queryrun", query_run, f"query run #{query_run.pk}"),
        _obj("orchestration.jobrun", query_run.job_run, f"job run #{query_run.job_run_id}"),
        _obj("quality.qualityrun", report.quality_run, f"quality run #{report.quality_run_id}"),
    ]
    if report.quality_run_id:
        item = ReviewItem.objects.filter(quality_run_id=report.quality_run_id).first()
        if item is not None:
            links.append(_obj("quality.reviewitem", item, f"review #{item.pk}: {item.get_status_display()}"))
            if item.approval_id:
                links.append(_obj("approvals.approvalrequest", item.approval, f"approval #{item.approval_id}"))
    if report.sheet_id:
        links.append((f"open the sheet {report.sheet_id} in Google Sheets", google_sheet_url(report.sheet_id)))
    links += _audit_of_run_and_approval(query_run.job_run_id, item.approval_id if item is not None else None)
    return links


def _audit_of_run_and_approval(job_run_id: int | None, approval_id: int | None) -> list[Link]:
    """The audit events around an object: its job run's, and its approval's (decisions, execution)."""
    links: list[Link] = []
    if job_run_id is not None:
        links.append((f"audit events of job run #{job_run_id}", audit_events_url(job_run_id=job_run_id)))
    if approval_id is not None:
        links.append(
            (
                f"audit events of approval #{approval_id}",
                audit_events_url(object_type="approvals.approvalrequest", object_id=approval_id),
            )
        )
    return links


@_chain("quality.reviewitem")
def _review_item(item) -> list[Link | None]:
    from sales.models import SalesReport

    links = [
        _obj("orchestration.jobrun", item.job_run, f"job run #{item.job_run_id}"),
        _obj("quality.qualityrun", item.quality_run, f"quality run #{item.quality_run_id}"),
        _obj("approvals.approvalrequest", item.approval, f"approval #{item.approval_id}"),
    ]
    report = SalesReport.objects.filter(quality_run_id=item.quality_run_id).first()
    if report is not None:
        links.append(_obj("sales.salesreport", report, f"report #{report.pk}: {report.get_status_display()}"))
        if report.sheet_id:
            links.append((f"open the sheet {report.sheet_id} in Google Sheets", google_sheet_url(report.sheet_id)))
    links += _audit_of_run_and_approval(item.job_run_id, item.approval_id)
    return links


@_chain("quality.qualityrun")
def _quality_run(quality_run) -> list[Link | None]:
    from quality.models import ReviewItem
    from sales.models import SalesReport

    links = [_obj("orchestration.jobrun", quality_run.job_run, f"job run #{quality_run.job_run_id}")]
    item = ReviewItem.objects.filter(quality_run=quality_run).first()
    links.append(_obj("quality.reviewitem", item, f"review #{item.pk}" if item else None))
    report = SalesReport.objects.filter(quality_run=quality_run).first()
    links.append(_obj("sales.salesreport", report, f"report #{report.pk}" if report else None))
    return links


@_chain("approvals.approvalrequest")
def _approval(approval) -> list[Link | None]:
    from orchestration.models import JobRun
    from quality.models import ReviewItem

    links: list[Link | None] = []
    item = ReviewItem.objects.filter(approval=approval).first()
    if item is not None:
        links += [_obj("quality.reviewitem", item, f"review #{item.pk}"), *_review_item(item)]
    for run in JobRun.objects.filter(approval=approval).order_by("pk")[:5]:
        links.append(_obj("orchestration.jobrun", run, f"run carrying it out: {run}"))
    if approval.object_type and approval.object_id:
        links.append(
            _obj(approval.object_type, _Ref(approval.object_id), f"about {approval.object_type}:{approval.object_id}")
        )
    return links


class _Ref:
    """A stand-in with a pk, for a link to an object known by label and id only."""

    def __init__(self, pk: object):
        self.pk = pk


@_chain("cleanup.lookerdashboard")
def _dashboard(dashboard) -> list[Link | None]:
    """Open it in Looker; its latest cleanup action, backup and restore (each one click), then all of each."""
    from cleanup.models import CleanupAction, DashboardBackup, DashboardRestore

    url = looker_dashboard_url(dashboard.looker_id)
    action = CleanupAction.objects.filter(dashboard=dashboard).order_by("-pk").first()
    backup = DashboardBackup.objects.filter(dashboard=dashboard).order_by("-pk").first()
    restore = DashboardRestore.objects.filter(dashboard=dashboard).order_by("-pk").first()
    links: list[Link | None] = [(f"open dashboard {dashboard.looker_id} in Looker", url) if url else None]
    if action is not None:
        links += [
            _obj("cleanup.cleanupaction", action, f"cleanup action #{action.pk}: {action.get_status_display()}"),
            _obj("orchestration.jobrun", _Ref(action.job_run_id), f"its cleanup run #{action.job_run_id}"),
        ]
    if backup is not None:
        links.append(_obj("cleanup.dashboardbackup", backup, f"backup #{backup.pk} of {backup.created_at:%Y-%m-%d}"))
    if restore is not None:
        links.append(_obj("cleanup.dashboardrestore", restore, f"restore #{restore.pk}: {restore.status}"))
    links += [
        _list("cleanup.cleanupaction", "all cleanup actions on it", dashboard__id__exact=dashboard.pk),
        _list("cleanup.dashboardbackup", "all its backups", dashboard__id__exact=dashboard.pk),
        _list("cleanup.dashboardrestore", "all its restores", dashboard__id__exact=dashboard.pk),
    ]
    return links


@_chain("cleanup.cleanupaction")
def _cleanup_action(action) -> list[Link | None]:
    return [
        _obj("orchestration.jobrun", action.job_run, f"job run #{action.job_run_id}"),
        _obj("cleanup.lookerdashboard", action.dashboard, f"dashboard {action.dashboard}"),
        _obj("cleanup.dashboardbackup", action.backup, f"backup #{action.backup_id}"),
        _list("cleanup.dashboardrestore", "restores of the dashboard", dashboard__id__exact=action.dashboard_id),
    ]


@_chain("cleanup.dashboardbackup")
def _backup(backup) -> list[Link | None]:
    return [
        _obj("cleanup.lookerdashboard", backup.dashboard, f"dashboard {backup.dashboard}"),
        _obj("orchestration.jobrun", backup.job_run, f"job run #{backup.job_run_id}"),
        _list("cleanup.dashboardrestore", "restores of the dashboard", dashboard__id__exact=backup.dashboard_id),
    ]


@_chain("cleanup.dashboardrestore")
def _restore(restore) -> list[Link | None]:
    url = looker_dashboard_url(restore.new_looker_id or restore.dashboard.looker_id)
    return [
        _obj("cleanup.lookerdashboard", restore.dashboard, f"dashboard {restore.dashboard}"),
        _obj("cleanup.dashboardbackup", restore.backup, f"backup #{restore.backup_id}"),
        ("open it in Looker", url) if url else None,
    ]


@_chain("sheetsync.synctarget")
def _sync_target(target) -> list[Link | None]:
    return [
        (f"open the sheet {target.spreadsheet_id} in Google Sheets", google_sheet_url(target.spreadsheet_id)),
        _list("sheetsync.syncevent", "its sync events", target__id__exact=target.pk),
    ]

"""Admin for monitoring: the operations page, incidents (timeline, acknowledge, fix, verify and resume), SLAs and
their checks, escalation ladders, notifications, run records, API usage, feedback and weekly reports."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from dataops_site.admin_base import ReadOnlyAdmin
from orchestration.registry import JobError, job_get, jobs_all

from .charts import bar_chart, line_chart
from .constants import UNRESOLVED, IncidentKind, IncidentStatus
from .models import (
    ApiUsage,
    EscalationStep,
    Feedback,
    HostSample,
    Incident,
    Notification,
    PerformanceReport,
    RunRecord,
    Sla,
    SlaCheck,
)
from .selectors import WINDOWS, incident_timeline, incidents_recent, operations_series, window_get
from .services import (
    IncidentError,
    escalation_step_delete,
    escalation_step_save,
    incident_acknowledge,
    incident_mark_fixed,
    incident_verify_and_resume,
    sla_save,
)

STATUS_COLOURS = {
    "open": "#c62828",
    "acknowledged": "#ef6c00",
    "fixed": "#1565c0",
    "verifying": "#1565c0",
    "resolved": "#2e7d32",
}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --------------------------------------------------------------------------------------------------------------
# The operations page
# --------------------------------------------------------------------------------------------------------------


def _charts(series: dict, labels: list[str]) -> list[dict]:
    """The page's charts, in reading order: per job, then quality, SLAs, quotas, hosts."""
    charts: list[dict] = []
    for job, data in series["jobs"].items():
        charts.append(
            {
                "group": job,
                "svg": line_chart(
                    title=f"{job}: success and error rate",
                    labels=labels,
                    series={"success %": data["success_rate"], "error %": data["error_rate"]},
                    unit="%",
                    y_max=100,
                ),
            }
        )
        charts.append(
            {
                "group": job,
                "svg": line_chart(
                    title=f"{job}: duration p50 / p95",
                    labels=labels,
                    series={"p50": data["p50"], "p95": data["p95"]},
                    unit="s",
                ),
            }
        )
        charts.append(
            {
                "group": job,
                "svg": bar_chart(
                    title=f"{job}: volume (rows, cells)",
                    labels=labels,
                    series={"rows": data["rows"], "cells": data["cells"]},
                ),
            }
        )
    charts.append(
        {
            "group": "quality",
            "svg": line_chart(title="Quality score", labels=labels, series=series["quality"], y_max=100),
        }
    )
    charts.append(
        {
            "group": "sla",
            "svg": line_chart(
                title="SLA compliance",
                labels=labels,
                series={name: entry["compliance"] for name, entry in series["sla"].items()},
                unit="%",
                y_max=100,
                references={"objective": min((e["objective"] for e in series["sla"].values()), default=99.0)},
            ),
        }
    )
    usage = series["usage"]
    charts.append(
        {
            "group": "api",
            "svg": line_chart(
                title="API requests per bucket",
                labels=labels,
                series={system: [float(v) for v in entry["requests"]] for system, entry in sorted(usage.items())},
            ),
        }
    )
    sheets_quota = series["quotas"]["sheets:requests_per_minute"][1]
    charts.append(
        {
            "group": "api",
            "svg": line_chart(
                title="Sheets: busiest minute vs quota",
                labels=labels,
                series={
                    "req/min": [float(v) for v in usage.get("sheets", {}).get("peak_per_minute", [0] * len(labels))]
                },
                references={"quota": sheets_quota},
            ),
        }
    )
    bq_quota = series["quotas"]["bigquery:bytes_billed_per_day"][1]
    charts.append(
        {
            "group": "api",
            "svg": line_chart(
                title="BigQuery bytes billed per bucket",
                labels=labels,
                series={"billed": [float(v) for v in usage.get("bigquery", {}).get("bytes_billed", [0] * len(labels))]},
                unit="bytes",
                references={"daily quota": bq_quota},
            ),
        }
    )
    for host, data in series["hosts"].items():
        charts.append(
            {
                "group": "host",
                "svg": line_chart(
                    title=f"Host {host}: CPU, memory, disk",
                    labels=labels,
                    series={"cpu %": data["cpu"], "memory %": data["memory"], "disk %": data["disk"]},
                    unit="%",
                    y_max=100,
                ),
            }
        )
    return charts


def operations_view(request: HttpRequest) -> HttpResponse:
    """Platform Admins and Auditors: trends and health over a chosen window, refreshing while open."""
    if not request.user.has_perm("monitoring.view_operations"):
        raise PermissionDenied("the operations page is for Platform Admins and Auditors")
    window = window_get(request.GET.get("window", "24h"))
    job = request.GET.get("job") or ""
    known_jobs = [spec.name for spec in jobs_all()]
    series = operations_series(window=window, jobs=[job] if job in known_jobs else None)
    labels = series["labels"]
    satisfaction = series["satisfaction"]
    quotas = [
        {"name": key, "used": used, "limit": limit, "share": (used / limit * 100) if limit else None}
        for key, (used, limit) in sorted(series["quotas"].items())
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Operations",
        "window": window,
        "windows": list(WINDOWS),
        "job": job,
        "jobs": known_jobs,
        "charts": _charts(series, labels),
        "job_rows": series["jobs"],
        "sla_rows": series["sla"],
        "quotas": quotas,
        "satisfaction": satisfaction,
        "satisfaction_ratio": (satisfaction["useful"] / satisfaction["total"] * 100) if satisfaction["total"] else None,
        "incidents": incidents_recent(limit=8),
        "open_incidents": Incident.objects.filter(status__in=UNRESOLVED).count(),
        "refresh_s": settings.MONITORING_OPERATIONS_REFRESH_S,
        "generated_at": timezone.now(),
    }
    template = (
        "admin/monitoring/operations_body.html" if request.GET.get("fragment") else "admin/monitoring/operations.html"
    )
    return TemplateResponse(request, template, context)


# --------------------------------------------------------------------------------------------------------------
# Incidents
# --------------------------------------------------------------------------------------------------------------


def incident_may_resume(user, incident: Incident) -> bool:
    """Who may verify and resume: resume_incident, and rerunning what failed (the job's own permission, or syncing
    the target). The admin's button and the API ask the same."""
    if not user.has_perm("monitoring.resume_incident"):
        return False
    if incident.kind == IncidentKind.SYNC_TARGET:
        return user.has_perm("sheetsync.sync_synctarget")
    try:
        spec = job_get(incident.job)
    except JobError:
        return False
    return user.has_perm("orchestration.trigger_jobrun") and user.has_perm(spec.permission)


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "title",
        "status_badge",
        "kind",
        "failure_class",
        "level",
        "occurrences",
        "owner",
        "detected_at",
        "time_to_ack",
        "time_to_resolve",
    )
    list_select_related = ("owner",)
    list_filter = ("status", "kind", "failure_class", "job", "level")
    search_fields = ("=id", "title", "key", "last_error")
    date_hierarchy = "detected_at"
    change_form_template = "admin/monitoring/incident/change_form.html"
    change_list_template = "admin/monitoring/incident/change_list.html"
    readonly_fields = (
        "title",
        "key",
        "kind",
        "failure_class",
        "handling",
        "job",
        "status",
        "level",
        "occurrences",
        "retries",
        "next_retry_at",
        "owner",
        "job_run_link",
        "last_job_run_link",
        "resume_job_run_link",
        "detected_at",
        "alerted_at",
        "acknowledged_at",
        "acknowledged_by",
        "fixed_at",
        "verified_at",
        "resumed_at",
        "resolved_at",
        "time_to_ack",
        "time_to_resolve",
        "error_pretty",
    )
    exclude = ("last_error", "job_run", "last_job_run", "resume_job_run", "subject_type", "subject_id")

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("monitoring.view_incident")

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Incident) -> str:
        return format_html(
            '<strong style="color:{}">{}</strong>', STATUS_COLOURS.get(obj.status, "#555"), obj.get_status_display()
        )

    @admin.display(description="time to acknowledge")
    def time_to_ack(self, obj: Incident) -> str:
        return _duration(obj.time_to_acknowledge_s)

    @admin.display(description="time to resolve")
    def time_to_resolve(self, obj: Incident) -> str:
        return _duration(obj.time_to_resolve_s)

    @admin.display(description="last error")
    def error_pretty(self, obj: Incident) -> str:
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", obj.last_error) if obj.last_error else "-"

    def _run_link(self, run) -> str:
        if run is None:
            return "-"
        return format_html('<a href="{}">{}</a>', reverse("admin:orchestration_jobrun_change", args=[run.pk]), run)

    @admin.display(description="first failed run")
    def job_run_link(self, obj: Incident) -> str:
        return self._run_link(obj.job_run)

    @admin.display(description="latest failed run")
    def last_job_run_link(self, obj: Incident) -> str:
        return self._run_link(obj.last_job_run)

    @admin.display(description="verification run")
    def resume_job_run_link(self, obj: Incident) -> str:
        return self._run_link(obj.resume_job_run)

    def get_urls(self):
        return [
            path(
                "<int:pk>/act/<str:action>/", self.admin_site.admin_view(self.act_view), name="monitoring_incident_act"
            ),
        ] + super().get_urls()

    def _may_resume(self, request, incident: Incident) -> bool:
        return incident_may_resume(request.user, incident)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        incident = Incident.objects.filter(pk=object_id).first()
        extra_context = extra_context or {}
        if incident is not None:
            extra_context.update(
                timeline=incident_timeline(incident=incident),
                notifications=list(incident.notifications.order_by("created_at", "pk")),
                can_acknowledge=incident.status == IncidentStatus.OPEN
                and request.user.has_perm("monitoring.acknowledge_incident"),
                can_fix=incident.status in (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED)
                and request.user.has_perm("monitoring.resume_incident"),
                can_resume=incident.status in (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED, IncidentStatus.FIXED)
                and self._may_resume(request, incident),
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def act_view(self, request, pk: int, action: str):
        """POST: acknowledge, fix (with a note) or resume (verify and resume)."""
        incident = get_object_or_404(Incident, pk=pk)
        back = reverse("admin:monitoring_incident_change", args=[pk])
        if request.method != "POST":
            return HttpResponseRedirect(back)
        note = request.POST.get("note", "").strip()[:2000]
        try:
            if action == "acknowledge":
                if not request.user.has_perm("monitoring.acknowledge_incident"):
                    raise PermissionDenied("you may not acknowledge incidents")
                incident_acknowledge(incident=incident, actor=request.user, note=note)
                self.message_user(request, f"Incident #{pk} acknowledged: escalation stopped.", messages.SUCCESS)
            elif action == "fix":
                if not request.user.has_perm("monitoring.resume_incident"):
                    raise PermissionDenied("you may not mark incidents fixed")
                incident_mark_fixed(incident=incident, actor=request.user, note=note)
                self.message_user(
                    request, f"Incident #{pk} marked fixed: verify and resume to close it.", messages.SUCCESS
                )
            elif action == "resume":
                if not self._may_resume(request, incident):
                    raise PermissionDenied("you may not rerun this job")
                incident = incident_verify_and_resume(incident=incident, actor=request.user)
                if incident.status == IncidentStatus.RESOLVED:
                    self.message_user(request, f"Incident #{pk} verified and resolved.", messages.SUCCESS)
                elif incident.status == IncidentStatus.VERIFYING:
                    self.message_user(request, f"Incident #{pk}: the rerun is on its way; it closes when it passes.")
                else:
                    self.message_user(
                        request, f"Incident #{pk}: the verification failed, see the timeline.", messages.ERROR
                    )
            else:
                raise PermissionDenied("unknown action")
        except IncidentError as exc:
            self.message_user(request, str(exc), messages.WARNING)
        except JobError as exc:
            self.message_user(request, f"could not rerun: {exc}", messages.ERROR)
        return HttpResponseRedirect(back)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "incident", "level", "channel", "status", "attempts", "created_at", "sent_at")
    list_select_related = ("incident",)
    list_filter = ("channel", "status", "level")
    raw_id_fields = ("incident",)


# --------------------------------------------------------------------------------------------------------------
# SLAs and ladders (configurable by Platform Admins; saves are audited)
# --------------------------------------------------------------------------------------------------------------


@admin.register(Sla)
class SlaAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "job",
        "kind",
        "day_of_month",
        "within_minutes",
        "objective_percent",
        "enabled",
        "checks_link",
    )
    list_filter = ("kind", "enabled", "job")

    def save_model(self, request, obj, form, change) -> None:
        sla_save(sla=obj, actor=request.user, created=not change)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # disable instead: the checks stay meaningful

    @admin.display(description="checks")
    def checks_link(self, obj: Sla) -> str:
        url = reverse("admin:monitoring_slacheck_changelist") + f"?sla__id__exact={obj.pk}"
        return format_html('<a href="{}">checks</a>', url)


@admin.register(SlaCheck)
class SlaCheckAdmin(ReadOnlyAdmin):
    list_display = ("sla", "subject", "due_at", "met", "measured", "detail")
    list_select_related = ("sla",)
    list_filter = ("met", "sla")
    raw_id_fields = ("job_run",)


@admin.register(EscalationStep)
class EscalationStepAdmin(admin.ModelAdmin):
    list_display = ("job_or_default", "level", "audience", "after_occurrences", "after_minutes")
    list_filter = ("job", "audience")

    @admin.display(description="job", ordering="job")
    def job_or_default(self, obj: EscalationStep) -> str:
        return obj.job or "(default)"

    def save_model(self, request, obj, form, change) -> None:
        escalation_step_save(step=obj, actor=request.user, created=not change)

    def delete_model(self, request, obj) -> None:
        escalation_step_delete(step=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for step in queryset.order_by("pk"):
            escalation_step_delete(step=step, actor=request.user)


# --------------------------------------------------------------------------------------------------------------
# Records the system writes
# --------------------------------------------------------------------------------------------------------------


@admin.register(RunRecord)
class RunRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "job_run",
        "job",
        "status",
        "failure_class",
        "finished_at",
        "duration_s",
        "rows",
        "cells",
        "api_calls",
    )
    list_select_related = ("job_run",)
    list_filter = ("job", "status", "failure_class", "dry_run")
    date_hierarchy = "finished_at"
    raw_id_fields = ("job_run",)
    change_list_template = "admin/monitoring/incident/change_list.html"


@admin.register(ApiUsage)
class ApiUsageAdmin(ReadOnlyAdmin):
    list_display = ("system", "minute", "requests", "errors", "throttled", "bytes_billed")
    list_filter = ("system",)
    date_hierarchy = "minute"


@admin.register(HostSample)
class HostSampleAdmin(ReadOnlyAdmin):
    list_display = ("host", "taken_at", "cpu_percent", "memory_percent", "disk_percent", "load1")
    list_filter = ("host",)


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdmin):
    list_display = ("content_type", "object_id", "useful", "user", "created_at", "comment")
    list_select_related = ("content_type", "user")
    list_filter = ("useful", "content_type")


@admin.register(PerformanceReport)
class PerformanceReportAdmin(ReadOnlyAdmin):
    list_display = ("id", "period_start", "period_end", "sent_at", "created_at")
    readonly_fields = (
        "period_start",
        "period_end",
        "job_run",
        "sent_at",
        "recipients",
        "body_pretty",
        "figures_pretty",
    )
    exclude = ("body", "figures")

    @admin.display(description="report")
    def body_pretty(self, obj: PerformanceReport) -> str:
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", obj.body)

    @admin.display(description="figures")
    def figures_pretty(self, obj: PerformanceReport) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.figures, indent=2, sort_keys=True))

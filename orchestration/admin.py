"""Admin for job runs: the list, the run page (summary, plan, per-dashboard outcomes), and trigger forms."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.module_loading import import_string

from .models import JobRun
from .registry import JobError, JobFailed, JobSpec, job_get, jobs_all
from .selectors import job_run_summary_text
from .services import job_run_request


def job_trigger_allowed(user, spec: JobSpec) -> bool:
    return user.has_perm("orchestration.trigger_jobrun") and user.has_perm(spec.permission)


def job_trigger_form_class(spec: JobSpec) -> type[forms.Form]:
    """A form with one field per job parameter, defaults filled in."""
    fields: dict[str, forms.Field] = {}
    for name, p in spec.params.items():
        initial = p.default() if callable(p.default) else p.default
        if p.type == "int":
            fields[name] = forms.IntegerField(min_value=1, initial=initial, required=p.required, help_text=p.help)
        elif p.type == "bool":
            fields[name] = forms.BooleanField(initial=initial, required=False, help_text=p.help)
        elif p.type == "date":
            fields[name] = forms.DateField(
                initial=initial, required=p.required, help_text=p.help, widget=forms.DateInput(attrs={"type": "date"})
            )
        else:
            fields[name] = forms.CharField(initial=initial, required=p.required, help_text=p.help)
    if spec.supports_dry_run:
        fields["dry_run"] = forms.BooleanField(
            required=False, initial=False, help_text="plan only: show what would change, change nothing"
        )
    return type(f"{spec.name}TriggerForm", (forms.Form,), fields)


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "job",
        "dry_run",
        "status_badge",
        "trigger",
        "actor",
        "created_at",
        "duration",
        "progress",
        "counters_short",
    )
    list_select_related = ("actor",)
    list_filter = ("job", "status", "trigger", "dry_run")
    search_fields = ("=id", "job", "summary", "error", "dag_run_id")
    date_hierarchy = "created_at"
    readonly_fields = (
        "job",
        "trigger",
        "actor",
        "params",
        "dry_run",
        "status",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "attempts",
        "progress",
        "counters_pretty",
        "summary_pretty",
        "error_pretty",
        "changes_pretty",
        "celery_task_id",
        "dag_id",
        "dag_run_id",
        "outcomes_link",
        "audit_link",
    )
    exclude = ("counters", "summary", "error", "details")
    change_list_template = "admin/orchestration/jobrun/change_list.html"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: JobRun) -> str:
        colour = {"succeeded": "#2e7d32", "failed": "#c62828", "running": "#1565c0"}.get(obj.status, "#555")
        return format_html('<strong style="color:{}">{}</strong>', colour, obj.get_status_display())

    @admin.display(description="duration")
    def duration(self, obj: JobRun) -> str:
        return f"{obj.duration_s:.1f}s" if obj.duration_s is not None else "-"

    @admin.display(description="counters")
    def counters_short(self, obj: JobRun) -> str:
        keys = ("planned", "deleted", "failed_backup", "failed_soft_delete", "looker_requests")
        return ", ".join(f"{k}={obj.counters[k]}" for k in keys if k in obj.counters)

    @admin.display(description="counters")
    def counters_pretty(self, obj: JobRun) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.counters, indent=2, sort_keys=True))

    @admin.display(description="summary")
    def summary_pretty(self, obj: JobRun) -> str:
        return format_html("<pre>{}</pre>", job_run_summary_text(obj))

    @admin.display(description="error")
    def error_pretty(self, obj: JobRun) -> str:
        return format_html("<pre style='color:#b00'>{}</pre>", obj.error) if obj.error else "-"

    @admin.display(description="changes since the last run")
    def changes_pretty(self, obj: JobRun) -> str:
        changes = obj.details.get("changes")
        if not changes:
            return "-"
        return format_html(
            "<p>previous run: {}</p><p><strong>newly planned ({}):</strong> {}</p>"
            "<p><strong>no longer planned ({}):</strong> {}</p>",
            changes.get("previous_run") or "none",
            len(changes.get("added", [])),
            ", ".join(changes.get("added", [])[:200]) or "-",
            len(changes.get("dropped", [])),
            ", ".join(changes.get("dropped", [])[:200]) or "-",
        )

    @admin.display(description="per-dashboard outcomes")
    def outcomes_link(self, obj: JobRun) -> str:
        url = reverse("admin:cleanup_cleanupaction_changelist") + f"?job_run__id__exact={obj.pk}"
        return format_html('<a href="{}">{} actions</a>', url, obj.cleanup_actions.count())

    @admin.display(description="audit trail")
    def audit_link(self, obj: JobRun) -> str:
        url = reverse("admin:audit_auditevent_changelist") + f"?job_run_id={obj.pk}"
        return format_html('<a href="{}">audit events of this run</a>', url)

    # --- triggering -------------------------------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "trigger/<str:job>/", self.admin_site.admin_view(self.trigger_view), name="orchestration_jobrun_trigger"
            ),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        extra_context["triggerable_jobs"] = [s for s in jobs_all() if job_trigger_allowed(request.user, s)]
        return super().changelist_view(request, extra_context)

    def trigger_view(self, request, job: str):
        try:
            spec = job_get(job)
        except JobError as exc:
            raise PermissionDenied(str(exc)) from exc
        if not job_trigger_allowed(request.user, spec):
            raise PermissionDenied(f"you may not run {spec.name}")
        form_class = job_trigger_form_class(spec)
        form = form_class(request.POST or None)
        estimate = None
        if request.method == "POST" and form.is_valid():
            data = dict(form.cleaned_data)
            dry_run = bool(data.pop("dry_run", False))
            params = {
                k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items() if v not in (None, "")
            }
            if spec.estimator and "_estimate" in request.POST:
                try:
                    estimate = import_string(spec.estimator)(params=spec.params_parse(params)).text()
                except (JobError, JobFailed) as exc:
                    form.add_error(None, str(exc))
                return TemplateResponse(
                    request,
                    "admin/orchestration/jobrun/trigger.html",
                    {
                        **self.admin_site.each_context(request),
                        "title": f"Run {spec.title}",
                        "spec": spec,
                        "form": form,
                        "opts": self.model._meta,
                        "estimate": estimate,
                    },
                )
            try:
                run = job_run_request(
                    job=spec.name, params=params, dry_run=dry_run, trigger=JobRun.Trigger.ADMIN, actor=request.user
                )
            except JobError as exc:
                form.add_error(None, str(exc))
            else:
                run.refresh_from_db()
                self.message_user(
                    request, f"{run} queued" + (f": {run.status}" if run.is_finished else ""), messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:orchestration_jobrun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Run {spec.title}",
            "spec": spec,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/orchestration/jobrun/trigger.html", context)

"""Admin for job runs: the list, the run page (summary, plan, per-dashboard outcomes), and trigger forms."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from approvals.services import ApprovalError
from connectors.errors import ConnectorError
from console.links import RelatedLinksMixin

from .approvals import dag_change_request, destructive_dags
from .models import JobRun
from .outcome import job_run_counters_short, job_run_outcome, job_runs_outcomes
from .registry import JobSpec, job_get, jobs_all
from .selectors import job_run_summary_text
from .services import airflow_dag_pause_set, job_run_airflow_sync, job_run_airflow_trigger


def job_trigger_allowed(user, spec: JobSpec) -> bool:
    return user.has_perm("orchestration.trigger_jobrun") and user.has_perm(spec.permission)


def job_trigger_form_class(spec: JobSpec) -> type[forms.Form]:
    """The trigger form, generated from the job's parameter declaration (see orchestration.params)."""
    from .params import params_form_class

    return params_form_class(spec)


class JobRunChangeList(ChangeList):
    """Reads what each run on the page came to (a sales run's report...) in one query for the whole page."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        outcomes = job_runs_outcomes(self.result_list)
        for run in self.result_list:
            run.outcome = outcomes[run.pk]


@admin.register(JobRun)
class JobRunAdmin(RelatedLinksMixin, admin.ModelAdmin):
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
        "principal_label",
        "approval_link",
        "related_panel",
        "params",
        "dry_run",
        "status",
        "outcome_live",
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
        "airflow_state",
        "airflow_tasks_pretty",
        "airflow_synced_at",
        "outcomes_link",
        "audit_link",
    )
    exclude = ("counters", "summary", "error", "details", "airflow_tasks", "principal", "approval")
    actions = ["retry_trigger"]
    change_list_template = "admin/orchestration/jobrun/change_list.html"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_changelist(self, request, **kwargs):
        return JobRunChangeList

    @property
    def media(self):
        # The run page reloads itself while the run is live (console/live_refresh.js; no inline script).
        return super().media + forms.Media(js=["console/live_refresh.js"], css={"all": ["console/console.css"]})

    @admin.display(description="outcome", ordering="status")
    def status_badge(self, obj: JobRun) -> str:
        """What the run came to (awaiting review, blocked by the gate, published, partially failed...)."""
        outcome = getattr(obj, "outcome", None) or job_runs_outcomes([obj])[obj.pk]
        return format_html('<span class="run-outcome" data-colour="{}">{}</span>', outcome.colour, outcome.label)

    @admin.display(description="outcome")
    def outcome_live(self, obj: JobRun) -> str:
        """The outcome; while the run is live the page marks itself to reload every few seconds."""
        outcome = job_runs_outcomes([obj])[obj.pk] if obj.pk else job_run_outcome(obj)
        badge = format_html('<span class="run-outcome" data-colour="{}">{}</span>', outcome.colour, outcome.label)
        if outcome.live:
            return format_html(
                '{} <small data-live-refresh="{}">(live: this page refreshes every {} s)</small>',
                badge, settings.CONSOLE_LIVE_REFRESH_S, settings.CONSOLE_LIVE_REFRESH_S,
            )  # fmt: skip
        return badge

    @admin.display(description="carries out")
    def approval_link(self, obj: JobRun) -> str:
        if obj.approval_id is None:
            return "-"
        url = reverse("admin:approvals_approvalrequest_change", args=[obj.approval_id])
        return format_html('<a href="{}">approval #{}</a>', url, obj.approval_id)

    @admin.display(description="duration")
    def duration(self, obj: JobRun) -> str:
        return f"{obj.duration_s:.1f}s" if obj.duration_s is not None else "-"

    @admin.display(description="counters")
    def counters_short(self, obj: JobRun) -> str:
        return job_run_counters_short(obj) or "-"

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

    @admin.display(description="Airflow task instances")
    def airflow_tasks_pretty(self, obj: JobRun) -> str:
        if not obj.airflow_tasks:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href='{}' target='_blank' rel='noopener'>logs</a>"
            "</td></tr>",
            (
                (
                    task["task_id"],
                    t["try_number"],
                    t["state"] or "-",
                    f"{t['duration_s']:.1f}s" if t.get("duration_s") is not None else "-",
                    t["log_url"],
                )
                for task in obj.airflow_tasks
                for t in task.get("tries", [])
            ),
        )
        return format_html(
            "<table><tr><th>task</th><th>try</th><th>state</th><th>duration</th><th></th></tr>{}</table>", rows
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Refresh a run that Airflow executes before showing it; say so when Airflow cannot be read."""
        run = JobRun.objects.filter(pk=object_id).only("dag_run_id", "dag_id", "status", "airflow_state").first()
        if run and run.follows_airflow and run.airflow_state not in ("success", "failed"):
            try:
                job_run_airflow_sync(job_run_id=run.pk)
            except ConnectorError as exc:
                self.message_user(request, f"could not refresh from Airflow: {exc}", messages.WARNING)
        if run and run.status == JobRun.Status.FAILED_TO_TRIGGER and request.method == "GET":
            self.message_user(request, f"Airflow was not triggered: {run.error}", messages.ERROR)
        return super().change_view(request, object_id, form_url, extra_context)

    def has_trigger_permission(self, request) -> bool:
        return request.user.has_perm("orchestration.trigger_jobrun")

    @admin.action(
        description="Retry triggering in Airflow (same DAG run id: never runs twice)", permissions=["trigger"]
    )
    def retry_trigger(self, request, queryset) -> None:
        done, failed, skipped = 0, 0, 0
        for run in queryset.order_by("pk"):
            spec = job_get(run.job)
            if run.status != JobRun.Status.FAILED_TO_TRIGGER or not job_trigger_allowed(request.user, spec):
                skipped += 1
                continue
            result = job_run_airflow_trigger(job_run_id=run.pk)
            if result.status == JobRun.Status.FAILED_TO_TRIGGER:
                failed += 1
                self.message_user(request, f"{result}: {result.error}", messages.ERROR)
            else:
                done += 1
        self.message_user(request, f"triggered {done}, still failing {failed}, skipped {skipped}", messages.INFO)

    @admin.display(description="per-dashboard outcomes")
    def outcomes_link(self, obj: JobRun) -> str:
        if obj.job != "looker_cleanup":
            return "-"  # only the cleanup acts per dashboard
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
            path(
                "trigger/<str:job>/estimate/",
                self.admin_site.admin_view(self.estimate_view),
                name="orchestration_jobrun_estimate",
            ),
            path("airflow/", self.admin_site.admin_view(self.airflow_view), name="orchestration_jobrun_airflow"),
        ] + super().get_urls()

    def airflow_view(self, request):
        """Platform Admins: each DAG with its recent runs, and pause/unpause (POST)."""
        from connectors.airflow import AirflowClient, airflow_configured

        if not request.user.has_perm("orchestration.manage_airflow"):
            raise PermissionDenied("only Platform Admins manage Airflow DAGs")
        dags, error = [], ""
        if not airflow_configured():
            error = "Airflow is not configured (AIRFLOW_API_URL): jobs run through Celery."
        else:
            try:
                client = AirflowClient()
                if request.method == "POST" and request.POST.get("dag_id"):
                    dag_id = request.POST["dag_id"][:250]
                    operation = "pause" if request.POST.get("action") == "pause" else "unpause"
                    if dag_id in destructive_dags():
                        # Pausing stops a cleanup people rely on; unpausing lets deletions run: four eyes.
                        try:
                            approval = dag_change_request(
                                dag_id=dag_id, operation=operation, actor=request.user,
                                reason=request.POST.get("reason", ""),
                            )  # fmt: skip
                        except ApprovalError as exc:
                            self.message_user(request, f"{dag_id}: {exc}", messages.ERROR)
                        else:
                            url = reverse("admin:approvals_approvalrequest_change", args=[approval.pk])
                            self.message_user(
                                request,
                                format_html('{} of {} needs a second Platform Admin: <a href="{}">approval #{}</a>',
                                            operation.capitalize(), dag_id, url, approval.pk),
                                messages.INFO,
                            )  # fmt: skip
                    else:
                        airflow_dag_pause_set(dag_id=dag_id, paused=operation == "pause", actor=request.user)
                        self.message_user(request, f"{operation}d {dag_id}", messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:orchestration_jobrun_airflow"))
                for dag in client.dags_list(tags=["dataops"]):
                    dags.append({"dag": dag, "runs": client.dag_runs_recent(dag_id=dag.dag_id, limit=10)})
            except ConnectorError as exc:
                error = str(exc)
        context = {
            **self.admin_site.each_context(request),
            "title": "Airflow DAGs",
            "opts": self.model._meta,
            "dags": dags,
            "error": error,
            "airflow_url": settings.AIRFLOW_UI_URL or settings.AIRFLOW_API_URL,
            "destructive": destructive_dags(),
        }
        return TemplateResponse(request, "admin/orchestration/jobrun/airflow.html", context)

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        extra_context["triggerable_jobs"] = [s for s in jobs_all() if job_trigger_allowed(request.user, s)]
        extra_context["can_manage_airflow"] = request.user.has_perm("orchestration.manage_airflow")
        return super().changelist_view(request, extra_context)

    def trigger_view(self, request, job: str):
        from .trigger import trigger_view

        return trigger_view(self, request, job)

    def estimate_view(self, request, job: str):
        from .trigger import estimate_view

        return estimate_view(self, request, job)

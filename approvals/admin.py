"""Admin: one approvals queue for every guarded action ("what I can approve"), each request with its exact inputs,
who asked and shaped it, the decisions, the execution's outcome, and approve / reject for those who may."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from dataops_site.admin_base import ReadOnlyAdmin

from .models import ApprovalRequest, DestinationWriter
from .registry import approval_action_get
from .selectors import approvals_decidable_by
from .services import ApprovalError, approval_approve, approval_refusal, approval_reject

DECIDE_URL_NAME = "approvals_approvalrequest_decide"
EXECUTION_COLOURS = {"done": "#2e7d32", "failed": "#c62828", "running": "#1565c0"}


def decision_message(request: ApprovalRequest) -> tuple[str, int]:
    """What the person who just decided is told: the execution's real outcome, never success for a failure."""
    if request.status == ApprovalRequest.Status.REJECTED:
        return f"Approval #{request.pk} rejected: it will not run.", messages.SUCCESS
    if request.status == ApprovalRequest.Status.PENDING:
        left = request.quorum - request.decisions.filter(decision="approve").count()
        return (
            f"Your approval of #{request.pk} is recorded; {left} more approver(s) needed before it runs.",
            messages.INFO,
        )
    if request.status == ApprovalRequest.Status.EXPIRED:
        return f"Approval #{request.pk} expired: it will never run.", messages.WARNING
    if request.execution == ApprovalRequest.Execution.DONE:
        return f"Approval #{request.pk} approved and done: {request.execution_outcome}", messages.SUCCESS
    if request.execution == ApprovalRequest.Execution.FAILED:
        return (
            f"Approval #{request.pk} approved, but the action FAILED: {request.execution_outcome}",
            messages.ERROR,
        )
    return (
        f"Approval #{request.pk} approved; the action is running. Its outcome (done or failed) shows on this page.",
        messages.INFO,
    )


class CanApproveFilter(admin.SimpleListFilter):
    title = "what I can approve"
    parameter_name = "can_approve"

    def lookups(self, request, model_admin):
        return [("yes", "Waiting for me")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(pk__in=approvals_decidable_by(user=request.user).values("pk"))
        return queryset


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = ("id", "title", "action", "status", "execution_badge", "requested_by_label", "approver_role",
                    "quorum", "created_at", "expires_at")  # fmt: skip
    list_filter = (CanApproveFilter, "status", "execution", "action")
    search_fields = ("=id", "title", "reason", "requested_by_label", "inputs_sha256")
    date_hierarchy = "created_at"
    readonly_fields = (
        "title",
        "action",
        "status",
        "subject_link",
        "reason",
        "requested_by_label",
        "shapers_list",
        "approver_role",
        "quorum",
        "created_at",
        "expires_at",
        "decided_at",
        "decisions_table",
        "execution_badge",
        "execution_attempts",
        "execution_started_at",
        "execution_finished_at",
        "execution_outcome",
        "inputs_pretty",
        "inputs_sha256",
    )
    exclude = ("inputs", "requested_by", "shapers", "approver_permission", "object_type", "object_id", "execution")
    change_form_template = "admin/approvals/approvalrequest/change_form.html"

    @admin.display(description="execution", ordering="execution")
    def execution_badge(self, obj: ApprovalRequest) -> str:
        if obj.status != ApprovalRequest.Status.APPROVED:
            return "-"
        colour = EXECUTION_COLOURS.get(obj.execution, "#555")
        return format_html('<strong style="color:{}">{}</strong>', colour, obj.get_execution_display())

    @admin.display(description="exact inputs (what runs once approved)")
    def inputs_pretty(self, obj: ApprovalRequest) -> str:
        return format_html("<pre id='approval-inputs'>{}</pre>", json.dumps(obj.inputs, indent=2, sort_keys=True))

    @admin.display(description="shaped by (may not approve)")
    def shapers_list(self, obj: ApprovalRequest) -> str:
        return ", ".join(u.get_username() for u in obj.shapers.order_by("username")) or "-"

    @admin.display(description="about")
    def subject_link(self, obj: ApprovalRequest) -> str:
        try:
            spec = approval_action_get(obj.action)
        except KeyError:
            return "-"
        link = spec.link(request=obj) if spec.link else None
        return format_html('<a href="{}">{}</a>', link[1], link[0]) if link else "-"

    @admin.display(description="decisions")
    def decisions_table(self, obj: ApprovalRequest) -> str:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (d.actor.get_username(), d.get_decision_display(), d.reason or "-", f"{d.created_at:%Y-%m-%d %H:%M}")
                for d in obj.decisions.select_related("actor")
            ),
        )
        if not rows:
            return "none yet"
        return format_html("<table><tr><th>who</th><th>decision</th><th>reason</th><th>when</th></tr>{}</table>", rows)

    def get_urls(self):
        return [
            path("<int:pk>/decide/", self.admin_site.admin_view(self.decide_view), name=DECIDE_URL_NAME),
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        obj = self.get_object(request, object_id)
        refusal = approval_refusal(request=obj, user=request.user) if obj is not None else "not found"
        extra_context["can_decide"] = not refusal
        extra_context["refusal"] = refusal if obj is not None and obj.status == "pending" else ""
        extra_context["decide_url"] = reverse("admin:approvals_approvalrequest_decide", args=[obj.pk]) if obj else ""
        return super().change_view(request, object_id, form_url, extra_context)

    def decide_view(self, request, pk: int):
        target = reverse("admin:approvals_approvalrequest_change", args=[pk])
        if request.method == "POST":
            approval_decide_from_form(self, request, get_object_or_404(ApprovalRequest, pk=pk))
        return HttpResponseRedirect(target)


def approval_decide_from_form(model_admin: admin.ModelAdmin, request, approval: ApprovalRequest) -> None:
    """The approve / reject form's adapter (also used by the review queue): decide, then say what really happened."""
    try:
        if request.POST.get("decision") == "approve":
            approval_approve(request_id=approval.pk, actor=request.user)
        elif request.POST.get("decision") == "reject":
            approval_reject(request_id=approval.pk, actor=request.user, reason=request.POST.get("reason", ""))
        else:
            model_admin.message_user(request, "Choose approve or reject.", messages.ERROR)
            return
    except ApprovalError as exc:
        model_admin.message_user(request, str(exc), messages.ERROR)
        return
    # The action may have run already (eager Celery, the embedded default): read its outcome afresh.
    text, level = decision_message(ApprovalRequest.objects.get(pk=approval.pk))
    model_admin.message_user(request, text, level)


@admin.register(DestinationWriter)
class DestinationWriterAdmin(ReadOnlyAdmin):
    list_display = ("spreadsheet_id", "sheet", "writer", "registered_by", "registered_at")
    list_select_related = ("registered_by",)
    search_fields = ("spreadsheet_id", "sheet", "writer")

"""Admin: the review queue (approve / reject with a reason), quality runs with their checks, quarantined rows."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from approvals.admin import EXECUTION_COLOURS, approval_decide_from_form
from approvals.services import approval_refusal
from console.links import RelatedLinksMixin
from dataops_site.admin_base import ReadOnlyAdmin
from dataops_site.lazy import lazy_function
from security.access import VIA_ADMIN, record_access
from security.admin_mixins import VIEWER_ATTR, ClassifiedAdminMixin, values_table, viewer_of
from security.clearance import clearance_for
from security.masking import mask_row, mask_value

from .models import CheckResult, QualityRun, QuarantinedRow, ReviewItem

# Imported on first use: the services import the SDKs, which a process that never calls them (run_job) skips.
quarantine_rows_reprocess = lazy_function("quality.services.quarantine_rows_reprocess")

_DATASET_LABELS = {"sales.order_lines": "order lines", "sales.daily_report": "report"}
_EFFECT_ORDER = {"fail": 0, "review": 1}


def _samples(keys, user) -> str:
    """The first failing keys, masked above the reader's clearance (samples are confidential, issue 12)."""
    text = ", ".join("|".join(str(v) for v in key) for key in keys[:5])
    return mask_value(text, "confidential", user) if text else ""


def checks_table(run: QualityRun, user=None) -> str:
    """Every check of a run: what was checked, count, share, threshold and what it did to the gate."""
    checks = sorted(
        run.checks.all(),
        key=lambda c: (_EFFECT_ORDER.get(c.gate_effect, 2), c.failed_count == 0, c.pk),
    )
    rows = format_html_join(
        "\n",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style='text-align:right'>{}</td>"
        "<td style='text-align:right'>{}</td><td>{}</td><td><b>{}</b></td><td>{}</td></tr>",
        (
            (
                _DATASET_LABELS.get(c.dataset, c.dataset or run.dataset),
                c.name,
                c.stage,
                c.severity,
                f"{c.failed_count:,}" + (" removed" if c.removes else ""),
                f"{c.failed_share:.2%}",
                c.threshold or "-",
                c.gate_effect or c.status,
                _samples(c.sample_keys, user),
            )
            for c in checks
        ),
    )
    head = (
        "<table><thead><tr><th>checked</th><th>check</th><th>stage</th><th>severity</th><th>failing rows</th>"
        "<th>share</th><th>threshold</th><th>gate</th><th>first keys</th></tr></thead><tbody>"
    )
    failing = [c for c in checks if c.failed_count]
    summary = format_html(
        "<p id='checks-summary'><strong>{} of {} checks fail</strong>{}</p>",
        len(failing),
        len(checks),
        ": " + "; ".join(f"{c.name} {c.failed_count:,} rows ({c.failed_share:.2%})" for c in failing[:6])
        if failing
        else "",
    )  # issue 11: the failing checks and their counts first, as percentages
    return format_html("{}{}{}</tbody></table>", summary, mark_safe(head), rows)  # noqa: S308 - a constant, no input


QUARANTINE_SHOWN = 20  # quarantined rows shown on a review page; the full list is one click away


def quarantine_table(run: QualityRun, user=None) -> str:
    """A run's quarantined rows as review evidence: per dataset how many failed and how many are kept, the first
    rows with their reason codes, and a link to all of them."""
    parts = (run.details or {}).get("parts") or {
        run.dataset: {"dataset": run.dataset, "quarantined": run.rows_quarantined, "removed": run.rows_removed}
    }
    counts = format_html_join(
        "",
        "<li>{}: {} quarantined ({} kept){}</li>",
        (
            (
                _DATASET_LABELS.get(part.get("dataset", ""), label),
                f"{part.get('quarantined', 0):,}",
                f"{part['quarantine_kept']:,}"
                if "quarantine_kept" in part
                else f"{run.quarantined_rows.filter(dataset=part.get('dataset', '')).count():,}",
                f", {part['removed']:,} exact duplicates removed" if part.get("removed") else "",
            )
            for label, part in parts.items()
        ),
    )
    shown = list(run.quarantined_rows.order_by("pk")[:QUARANTINE_SHOWN])
    rows = format_html_join(
        "\n",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                _DATASET_LABELS.get(r.dataset, r.dataset),
                r.row_key,
                ", ".join(r.reason_codes),
                ", ".join(f"{k}={v}" for k, v in list(mask_row(r.dataset, r.data, user).items())[:8]),
            )
            for r in shown
        ),
    )
    url = reverse("admin:quality_quarantinedrow_changelist") + f"?quality_run__id__exact={run.pk}"
    table = (
        format_html(
            "<table id='review-quarantine'><thead><tr><th>checked</th><th>key</th><th>reason codes</th>"
            "<th>values</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
        if shown
        else ""
    )
    return format_html(
        '<ul>{}</ul>{}<p><a href="{}">all {} quarantined rows of this run</a></p>',
        counts,
        table,
        url,
        f"{run.rows_quarantined:,}",
    )


class CheckInline(admin.TabularInline):
    model = CheckResult
    extra = 0
    can_delete = False
    fields = (
        "dataset",
        "stage",
        "name",
        "severity",
        "status",
        "failed_count",
        "failed_share",
        "threshold",
        "gate_effect",
        "samples",
        "message",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        # The reader's clearance rides on each row, so the samples column can mask by it (issue 12).
        from django.db.models import Value

        return super().get_queryset(request).annotate(security_clearance=Value(clearance_for(request.user)))

    @admin.display(description="first failing keys")
    def samples(self, obj: CheckResult) -> str:
        from security.masking import mask_for_clearance

        text = ", ".join("|".join(str(v) for v in key) for key in obj.sample_keys[:20])
        return mask_for_clearance(text, "confidential", getattr(obj, "security_clearance", "public")) if text else ""

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(QualityRun)
class QualityRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "dataset", "gate", "score", "rows", "rows_quarantined", "job_run", "created_at")
    list_select_related = ("job_run",)
    list_filter = ("gate", "dataset")
    search_fields = ("=id", "dataset")
    date_hierarchy = "created_at"
    inlines = [CheckInline]
    readonly_fields = (
        "dataset",
        "job_run",
        "rows",
        "rows_quarantined",
        "rows_removed",
        "score",
        "gate",
        "reasons",
        "duration_s",
        "details",
        "created_at",
        "quarantine_link",
    )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET" and self.has_view_permission(request):
            # The checks carry failing keys (confidential): the read is recorded, not the keys (issue 12).
            record_access(
                request.user,
                dataset_or_model="quality.checkresult",
                object_ref=f"run:{object_id}",
                purpose="quality run detail page (failing samples)",
                via=VIA_ADMIN,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="quarantined rows")
    def quarantine_link(self, obj: QualityRun) -> str:
        url = reverse("admin:quality_quarantinedrow_changelist") + f"?quality_run__id__exact={obj.pk}"
        return format_html('<a href="{}">{} rows</a>', url, obj.rows_quarantined)


@admin.register(ReviewItem)
class ReviewItemAdmin(RelatedLinksMixin, ReadOnlyAdmin):
    list_display = ("id", "title", "status", "score", "requested_by", "decided_by", "decided_at", "created_at")
    list_select_related = ("quality_run", "requested_by", "decided_by", "approval")
    list_filter = ("status",)
    search_fields = ("=id", "title", "decision_reason")
    ordering = ("status", "-created_at")  # pending first
    readonly_fields = (
        "title",
        "status",
        "quality_link",
        "reasons",
        "checks",
        "quarantine",
        "job_run",
        "requested_by",
        "decided_by",
        "decided_at",
        "decision_reason",
        "approval_link",
        "related_panel",
        "outcome",
        "created_at",
    )
    exclude = ("quality_run", "approval")
    change_form_template = "admin/quality/reviewitem/change_form.html"

    @admin.display(description="score")
    def score(self, obj: ReviewItem) -> str:
        return f"{obj.quality_run.score:.1f}"

    @admin.display(description="why it needs a review")
    def reasons(self, obj: ReviewItem) -> str:
        reasons = obj.quality_run.reasons or ["-"]
        return format_html("<br>".join(["{}"] * len(reasons)), *reasons)

    @admin.display(description="checks: failing rows, share and threshold")
    def checks(self, obj: ReviewItem) -> str:
        return checks_table(obj.quality_run, viewer_of(obj))

    @admin.display(description="quarantined rows (left out of what is published)")
    def quarantine(self, obj: ReviewItem) -> str:
        return quarantine_table(obj.quality_run, viewer_of(obj))

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            setattr(obj, VIEWER_ATTR, request.user)  # its evidence tables mask by the reader's clearance
        return obj

    @admin.display(description="quality run")
    def quality_link(self, obj: ReviewItem) -> str:
        url = reverse("admin:quality_qualityrun_change", args=[obj.quality_run_id])
        return format_html('<a href="{}">{} (checks, failing keys, quarantine)</a>', url, obj.quality_run)

    @admin.display(description="approval request")
    def approval_link(self, obj: ReviewItem) -> str:
        if obj.approval_id is None:
            return "-"
        url = reverse("admin:approvals_approvalrequest_change", args=[obj.approval_id])
        return format_html('<a href="{}">approval #{} (exact inputs, decisions)</a>', url, obj.approval_id)

    @admin.display(description="what approving did")
    def outcome(self, obj: ReviewItem) -> str:
        approval = obj.approval
        if approval is None or approval.status != "approved":
            return "-"
        colour = EXECUTION_COLOURS.get(approval.execution, "#555")
        return format_html(
            '<strong id="review-outcome" style="color:{}">{}</strong> {}',
            colour,
            approval.get_execution_display(),
            approval.execution_outcome,
        )

    def get_urls(self):
        return [
            path("<int:pk>/decide/", self.admin_site.admin_view(self.decide_view), name="quality_reviewitem_decide"),
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        item = self.get_object(request, object_id)
        approval = item.approval if item is not None else None
        refusal = approval_refusal(request=approval, user=request.user) if approval is not None else "no request"
        extra_context["can_decide"] = not refusal
        extra_context["refusal"] = refusal if item is not None and item.status == ReviewItem.Status.PENDING else ""
        return super().change_view(request, object_id, form_url, extra_context)

    def decide_view(self, request, pk: int):
        item = get_object_or_404(ReviewItem.objects.select_related("approval"), pk=pk)
        needed = item.approval.approver_permission if item.approval else "quality.decide_reviewitem"
        if not request.user.has_perm(needed):
            raise PermissionDenied("deciding a quality review needs the Data Steward role")
        if request.method == "POST":
            if item.approval is None:
                self.message_user(request, f"review #{item.pk} has no approval request", messages.ERROR)
            else:
                approval_decide_from_form(self, request, item.approval)
        return HttpResponseRedirect(reverse("admin:quality_reviewitem_change", args=[pk]))


@admin.register(QuarantinedRow)
class QuarantinedRowAdmin(ClassifiedAdminMixin, ReadOnlyAdmin):
    classified_model = "quality.quarantinedrow"
    list_display = ("id", "dataset", "row_key", "reasons", "status", "quality_run", "created_at", "reprocessed_at")
    fields = ("quality_run", "dataset", "row_key", "reason_codes", "status", "values", "created_at", "reprocessed_at")
    readonly_fields = fields
    list_select_related = ("quality_run",)
    list_filter = ("status", "dataset")
    search_fields = ("row_key", "reason_codes")
    raw_id_fields = ("quality_run",)
    actions = ["reprocess_selected", "export_csv"]

    @admin.action(description="Export selected rows as CSV (masked by your clearance; recorded)", permissions=["view"])
    def export_csv(self, request, queryset):
        from .api import quarantine_csv

        rows = list(queryset.order_by("pk")[:10_000])
        return quarantine_csv(user=request.user, rows=rows, object_ref=f"rows:{','.join(str(r.pk) for r in rows[:20])}")

    @admin.display(description="reason codes")
    def reasons(self, obj: QuarantinedRow) -> str:
        return ", ".join(obj.reason_codes)

    @admin.display(description="values (masked above your clearance)")
    def values(self, obj: QuarantinedRow) -> str:
        revealed = bool(getattr(obj, "_security_revealed", None))
        return values_table(obj.dataset, obj.data, viewer_of(obj), revealed=revealed)

    @admin.action(description="Re-process selected rows through their dataset's suite", permissions=["reprocess"])
    def reprocess_selected(self, request, queryset):
        from .suites import SUITES  # polars: imported when the action runs, not at start-up

        for dataset in sorted(set(queryset.values_list("dataset", flat=True))):
            suite = SUITES.get(dataset)
            if suite is None:
                self.message_user(request, f"No quality suite is declared for {dataset}", messages.ERROR)
                continue
            rows = list(queryset.filter(dataset=dataset).order_by("pk"))
            counts = quarantine_rows_reprocess(rows=rows, suite=suite, actor=request.user)
            self.message_user(
                request,
                f"{dataset}: {counts['passed']} passed, {counts['still_failing']} still failing",
                messages.SUCCESS if not counts["still_failing"] else messages.WARNING,
            )

    def has_reprocess_permission(self, request) -> bool:
        return request.user.has_perm("quality.reprocess_quarantinedrow")

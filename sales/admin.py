"""Admin: sales queries, their runs with BigQuery metadata and cost, and reports with their charts."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from approvals.services import ApprovalError
from console.links import RelatedLinksMixin
from dataops_site.admin_base import ReadOnlyAdmin
from dataops_site.lazy import lazy_function

from .charts import revenue_by_day_svg, revenue_by_region_svg
from .models import QueryRun, SalesQuery, SalesReport

# Imported on first use: the services import the SDKs, which a process that never calls them (run_job) skips.
sales_query_delete = lazy_function("sales.services.sales_query_delete")
sales_query_save = lazy_function("sales.services.sales_query_save")
sales_report_override_request = lazy_function("sales.services.sales_report_override_request")


@admin.register(SalesQuery)
class SalesQueryAdmin(admin.ModelAdmin):
    list_display = ("name", "title", "active", "source_file", "updated_at")
    list_filter = ("active",)
    search_fields = ("name", "title", "sql")
    readonly_fields = ("source_file", "updated_at", "updated_by")

    def save_model(self, request, obj: SalesQuery, form, change: bool) -> None:
        sales_query_save(query=obj, actor=request.user, created=not change, changed_fields=form.changed_data)

    def delete_model(self, request, obj: SalesQuery) -> None:
        sales_query_delete(query=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for query in queryset.order_by("pk"):
            sales_query_delete(query=query, actor=request.user)


@admin.register(QueryRun)
class QueryRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "query",
        "purpose",
        "status",
        "created_at",
        "actor",
        "rows",
        "bytes_processed",
        "bytes_billed",
        "slot_ms",
        "cache_hit",
        "duration_s",
        "estimated_cost_usd",
        "bq_job_id",
    )
    list_select_related = ("query", "actor")
    list_filter = ("purpose", "status", "query", "cache_hit")
    search_fields = ("=id", "bq_job_id", "sql_hash")
    date_hierarchy = "created_at"
    raw_id_fields = ("job_run",)


@admin.register(SalesReport)
class SalesReportAdmin(RelatedLinksMixin, ReadOnlyAdmin):
    list_display = ("id", "status", "grain", "row_count", "quality", "published_at", "publish_requests", "created_at")
    list_select_related = ("quality_run", "query_run")
    list_filter = ("status", "grain")
    readonly_fields = (
        "status",
        "query_run_link",
        "quality_link",
        "related_panel",
        "grain",
        "sheet_id",
        "published_at",
        "publish_requests",
        "error",
        "chart_by_day",
        "chart_by_region",
    )
    exclude = ("rows", "query_run", "quality_run")
    change_form_template = "admin/sales/salesreport/change_form.html"

    def get_urls(self):
        return [
            path(
                "<int:pk>/override/", self.admin_site.admin_view(self.override_view), name="sales_salesreport_override"
            ),
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        report = self.get_object(request, object_id)
        extra_context["can_request_override"] = (
            report is not None
            and report.status == SalesReport.Status.BLOCKED
            and report.quality_run is not None
            and report.quality_run.gate == "fail"
            and request.user.has_perm("sales.run_salesquery")
        )
        return super().change_view(request, object_id, form_url, extra_context)

    def override_view(self, request, pk: int):
        if not request.user.has_perm("sales.run_salesquery"):
            raise PermissionDenied("asking for a publish override needs the Analyst role")
        if request.method == "POST":
            try:
                approval = sales_report_override_request(
                    report_id=pk, actor=request.user, reason=request.POST.get("reason", "")
                )
            except ApprovalError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                url = reverse("admin:approvals_approvalrequest_change", args=[approval.pk])
                self.message_user(
                    request,
                    format_html('Override requested: <a href="{}">approval #{}</a> needs two Data Stewards.', url,
                                approval.pk),
                    messages.SUCCESS,
                )  # fmt: skip
        return HttpResponseRedirect(reverse("admin:sales_salesreport_change", args=[pk]))

    @admin.display(description="rows")
    def row_count(self, obj: SalesReport) -> int:
        return len(obj.rows)

    @admin.display(description="quality")
    def quality(self, obj: SalesReport) -> str:
        return f"{obj.quality_run.gate} ({obj.quality_run.score:.1f})" if obj.quality_run else "-"

    @admin.display(description="query run")
    def query_run_link(self, obj: SalesReport) -> str:
        url = reverse("admin:sales_queryrun_change", args=[obj.query_run_id])
        return format_html('<a href="{}">{}</a>', url, obj.query_run)

    @admin.display(description="quality run")
    def quality_link(self, obj: SalesReport) -> str:
        if not obj.quality_run_id:
            return "-"
        url = reverse("admin:quality_qualityrun_change", args=[obj.quality_run_id])
        return format_html('<a href="{}">{}</a>', url, obj.quality_run)

    @admin.display(description="revenue by day and region")
    def chart_by_day(self, obj: SalesReport) -> str:
        return mark_safe(revenue_by_day_svg(obj.rows))  # noqa: S308 - built from escaped values in sales.charts

    @admin.display(description="revenue by region")
    def chart_by_region(self, obj: SalesReport) -> str:
        return mark_safe(revenue_by_region_svg(obj.rows))  # noqa: S308 - built from escaped values in sales.charts

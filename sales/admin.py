"""Admin: sales queries, their runs with BigQuery metadata and cost, and reports with their charts."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from dataops_site.admin_base import ReadOnlyAdmin

from .charts import revenue_by_day_svg, revenue_by_region_svg
from .models import QueryRun, SalesQuery, SalesReport


@admin.register(SalesQuery)
class SalesQueryAdmin(admin.ModelAdmin):
    list_display = ("name", "title", "active", "source_file", "updated_at")
    list_filter = ("active",)
    search_fields = ("name", "title", "sql")
    readonly_fields = ("source_file", "updated_at")


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
class SalesReportAdmin(ReadOnlyAdmin):
    list_display = ("id", "status", "grain", "row_count", "quality", "published_at", "publish_requests", "created_at")
    list_select_related = ("quality_run", "query_run")
    list_filter = ("status", "grain")
    readonly_fields = (
        "status",
        "query_run_link",
        "quality_link",
        "grain",
        "sheet_id",
        "published_at",
        "publish_requests",
        "error",
        "chart_by_day",
        "chart_by_region",
    )
    exclude = ("rows", "query_run", "quality_run")

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

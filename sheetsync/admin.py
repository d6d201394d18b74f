"""Admin screens of the Sheets sync: targets (edited, paused, repaired, synced now) and their sync events."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from dataops_site.admin_base import ReadOnlyAdmin
from dataops_site.lazy import lazy_function

from .models import SyncEvent, SyncSpreadsheet, SyncTarget
from .target_admin import (
    SyncTargetForm,
    sync_target_test_button,
    sync_target_test_unsaved_view,
    sync_target_test_view,
)

# Imported on first use: the services import the SDKs, which a process that never calls them (run_job) skips.
sync_target_delete = lazy_function("sheetsync.services.sync_target_delete")
sync_target_save = lazy_function("sheetsync.services.sync_target_save")
sync_targets_pause = lazy_function("sheetsync.services.sync_targets_pause")
sync_targets_repair = lazy_function("sheetsync.services.sync_targets_repair")
sync_targets_resume = lazy_function("sheetsync.services.sync_targets_resume")
sync_targets_sync_now = lazy_function("sheetsync.services.sync_targets_sync_now")

STATUS_FIELDS = (
    "enabled",
    "broken",
    "broken_reason",
    "broken_at",
    "last_outcome",
    "last_checked_at",
    "last_synced_at",
    "last_error",
    "consecutive_failures",
    "escalated_at",
    "synced_version",
    "written_width",
    "source_fingerprint",
    "events_link",
    "created_at",
    "updated_at",
)


@admin.register(SyncTarget)
class SyncTargetAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "spreadsheet_id",
        "range",
        "source_kind",
        "owner",
        "enabled",
        "broken",
        "last_outcome",
        "last_checked_at",
        "last_synced_at",
        "consecutive_failures",
        "short_error",
    )
    list_select_related = ("owner",)
    list_filter = ("enabled", "broken", "source_kind", "last_outcome", "row_order")
    search_fields = ("name", "spreadsheet_id", "description", "owner__username", "owner__email")
    readonly_fields = (*STATUS_FIELDS, "test_link")
    actions = ["sync_now", "pause", "resume", "repair"]
    form = SyncTargetForm  # issue 11: URL or id, escaped help, the account to share with
    change_list_template = "admin/sheetsync/synctarget/change_list.html"
    list_per_page = 100
    fieldsets = (
        (None, {"fields": ("name", "description", "owner")}),
        ("Sheet", {"fields": ("spreadsheet_id", "range", "row_order", "principal")}),
        ("Source", {"fields": ("source_kind", "source_query", "source_database", "source_file")}),
        ("Columns", {"fields": ("key_columns", "protected_columns")}),
        ("Quality", {"fields": ("quality_suite",)}),
        ("Status (changed by the sync and the actions)", {"fields": STATUS_FIELDS}),
    )

    class Media:
        js = ("sheetsync/target_form.js",)  # shows the fields of the chosen source only

    def get_fieldsets(self, request: HttpRequest, obj: SyncTarget | None = None):
        """Adding: no status fields (nothing has happened yet). Both: a "test" button after the source."""
        test = ("Test (reads the source and the sheet; saves and writes nothing)", {"fields": ("test_link",)})
        if obj is None:
            return (*self.fieldsets[:-1], test)
        return (*self.fieldsets[:-1], test, self.fieldsets[-1])

    @admin.display(description="test")
    def test_link(self, obj: SyncTarget | None) -> str:
        return sync_target_test_button(obj)  # works before saving (sheetsync/target_admin.py)

    def get_urls(self):
        from django.urls import path

        return [
            path("<int:pk>/test/", self.admin_site.admin_view(self.test_view), name="sheetsync_synctarget_test"),
            path(
                "test/",
                self.admin_site.admin_view(lambda request: sync_target_test_unsaved_view(self, request)),
                name="sheetsync_synctarget_test_unsaved",
            ),
        ] + super().get_urls()

    def test_view(self, request: HttpRequest, pk: int):
        return sync_target_test_view(self, request, pk)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        # A plain list of active users: an autocomplete would need auth.view_user, which Data Stewards lack.
        if db_field.name == "owner":
            kwargs["queryset"] = get_user_model().objects.filter(is_active=True).order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="last error")
    def short_error(self, obj: SyncTarget) -> str:
        return obj.last_error[:120]

    @admin.display(description="sync events")
    def events_link(self, obj: SyncTarget) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("admin:sheetsync_syncevent_changelist") + f"?target__id__exact={obj.pk}"
        return format_html('<a href="{}">events of this target</a>', url)

    def save_model(self, request: HttpRequest, obj: SyncTarget, form, change: bool) -> None:
        sync_target_save(target=obj, actor=request.user, created=not change, changed_fields=form.changed_data)

    def delete_model(self, request: HttpRequest, obj: SyncTarget) -> None:
        sync_target_delete(target=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[SyncTarget]) -> None:
        for target in queryset.order_by("pk"):
            sync_target_delete(target=target, actor=request.user)

    def has_sync_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sheetsync.sync_synctarget")

    def has_pause_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sheetsync.pause_synctarget")

    @admin.action(description="Sync now (queue a sync of the selected targets)", permissions=["sync"])
    def sync_now(self, request: HttpRequest, queryset: QuerySet[SyncTarget]) -> None:
        runnable = [t for t in queryset.order_by("pk") if t.enabled and not t.broken]
        for target in queryset.order_by("pk"):
            if target not in runnable:
                state = "broken: repair it first" if target.broken else "paused: resume it first"
                self.message_user(request, f"{target.name} not synced: {state}", messages.WARNING)
        if not runnable:
            return
        run = sync_targets_sync_now(targets=runnable, actor=request.user)
        url = reverse("admin:orchestration_jobrun_change", args=[run.pk])
        self.message_user(
            request,
            format_html('{} target(s) queued for a sync: follow <a href="{}">{}</a>', len(runnable), url, run),
            messages.SUCCESS,
        )

    @admin.action(description="Pause the selected targets", permissions=["pause"])
    def pause(self, request: HttpRequest, queryset: QuerySet[SyncTarget]) -> None:
        count = sync_targets_pause(targets=queryset, actor=request.user)
        self.message_user(request, f"{count} target(s) paused; {queryset.count() - count} were already paused")

    @admin.action(description="Resume the selected targets", permissions=["pause"])
    def resume(self, request: HttpRequest, queryset: QuerySet[SyncTarget]) -> None:
        count = sync_targets_resume(targets=queryset, actor=request.user)
        self.message_user(request, f"{count} target(s) resumed; {queryset.count() - count} were already running")

    @admin.action(description="Repair: clear the broken flag and failures, re-read next cycle", permissions=["pause"])
    def repair(self, request: HttpRequest, queryset: QuerySet[SyncTarget]) -> None:
        count = sync_targets_repair(targets=queryset, actor=request.user)
        self.message_user(request, f"{count} target(s) repaired; the next cycle checks their spreadsheets afresh")


@admin.register(SyncEvent)
class SyncEventAdmin(ReadOnlyAdmin):
    list_display = (
        "last_seen_at",
        "target_name",
        "outcome",
        "count",
        "cells_written",
        "rows_added",
        "rows_removed",
        "rows_quarantined",
        "api_requests",
        "duration_ms",
        "drive_version_before",
        "drive_version_after",
        "short_error",
    )
    list_select_related = ("target",)
    list_filter = ("outcome", "day", "source_changed", "sheet_changed", "target")
    search_fields = ("target_name", "target__spreadsheet_id", "error")
    date_hierarchy = "day"
    raw_id_fields = ("target", "job_run")
    list_per_page = 100

    @admin.display(description="error")
    def short_error(self, obj: SyncEvent) -> str:
        return obj.error[:160]


@admin.register(SyncSpreadsheet)
class SyncSpreadsheetAdmin(ReadOnlyAdmin):
    list_display = ("spreadsheet_id", "drive_version", "trashed", "deleted_at", "updated_at")
    list_filter = ("trashed",)
    search_fields = ("spreadsheet_id",)

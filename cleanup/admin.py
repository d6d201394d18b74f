"""Admin screens of the Looker cleanup: inventory, runs' actions, backups, pins, protected folders, restores."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.db.models import Count, Exists, OuterRef
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from dataops_site.admin_base import ReadOnlyAdmin
from dataops_site.admin_counts import EstimatedCountPaginator, distinct_values
from dataops_site.lazy import lazy_function

from .backups import BackupStoreError, backup_read_bytes, backup_read_verified
from .dashboard_page import dashboard_deletion_story, dashboard_page_actions, dashboard_restore_view
from .models import CleanupAction, DashboardBackup, DashboardPin, DashboardRestore, LookerDashboard, ProtectedFolder

# Imported on first use: the services import the SDKs, which a process that never calls them (run_job) skips.
cleanup_restore_request = lazy_function("cleanup.services.cleanup_restore_request")
dashboard_pin_delete = lazy_function("cleanup.services.dashboard_pin_delete")
dashboard_pin_save = lazy_function("cleanup.services.dashboard_pin_save")


class InactivityFilter(admin.SimpleListFilter):
    title = "inactivity"
    parameter_name = "inactive"
    BUCKETS = {"lt30": (None, 30), "30-90": (30, 90), "90-180": (90, 180), "180-365": (180, 365), "gt365": (365, None)}

    def lookups(self, request, model_admin):
        return [
            ("lt30", "under 30 days"),
            ("30-90", "30 to 90 days"),
            ("90-180", "90 to 180 days"),
            ("180-365", "180 days to a year"),
            ("gt365", "over a year"),
        ]

    def queryset(self, request, queryset):
        if self.value() not in self.BUCKETS:
            return queryset
        low, high = self.BUCKETS[self.value()]
        now = timezone.now()
        if low is not None:
            queryset = queryset.filter(last_activity_at__lte=now - timedelta(days=low))
        if high is not None:
            queryset = queryset.filter(last_activity_at__gt=now - timedelta(days=high))
        return queryset


class PinnedFilter(admin.SimpleListFilter):
    title = "pinned"
    parameter_name = "pinned"

    def lookups(self, request, model_admin):
        return [("yes", "pinned"), ("no", "not pinned")]

    def queryset(self, request, queryset):
        active = DashboardPin.objects.filter(dashboard=OuterRef("pk"), expires_at__gt=timezone.now())
        if self.value() == "yes":
            return queryset.filter(Exists(active))
        if self.value() == "no":
            return queryset.exclude(Exists(active))
        return queryset


class OwnerFilter(admin.SimpleListFilter):
    """The owners with the most dashboards, plus "no owner email"; any owner works via ?owner=<email>.

    Counting every dashboard by owner reads the whole inventory (100 ms at 100,000 dashboards), so the top list is
    cached for ``CACHE_S`` seconds: the inventory changes once per cleanup run.
    """

    title = "owner"
    parameter_name = "owner"
    NONE = "(none)"
    CACHE_S = 300
    CACHE_KEY = "cleanup:dashboard-owner-filter:top20"

    @staticmethod
    def top_owners() -> list[tuple[str, int]]:
        rows = (
            LookerDashboard.objects.exclude(owner_email="")
            .values("owner_email")
            .annotate(n=Count("pk"))
            .order_by("-n", "owner_email")[:20]
        )
        return [(row["owner_email"], row["n"]) for row in rows]

    def lookups(self, request, model_admin):
        # Per database: a cache shared by several deployments (or test databases) never mixes their owners.
        key = f"{self.CACHE_KEY}:{connections[LookerDashboard.objects.db].settings_dict['NAME']}"
        top = cache.get_or_set(key, self.top_owners, self.CACHE_S)
        return [(email, f"{email} ({n})") for email, n in top] + [(self.NONE, "no owner email")]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(owner_email="" if self.value() == self.NONE else self.value())


class DeletionFilter(admin.SimpleListFilter):
    """Deleted by a cleanup run of ours apart from dashboards already in Looker's trash (issue 11)."""

    title = "how deleted"
    parameter_name = "deleted_how"

    def lookups(self, request, model_admin):
        return [("cleanup", "deleted by a cleanup run"), ("looker", "already in Looker's trash"), ("no", "not deleted")]

    def queryset(self, request, queryset):
        by_cleanup = Exists(CleanupAction.objects.filter(dashboard=OuterRef("pk"), status=CleanupAction.Status.DELETED))
        if self.value() == "cleanup":
            return queryset.filter(by_cleanup, deleted=True)
        if self.value() == "looker":
            return queryset.filter(deleted=True).exclude(by_cleanup)
        if self.value() == "no":
            return queryset.filter(deleted=False)
        return queryset


class FolderFilter(admin.SimpleListFilter):
    """The inventory's folders, read with an index skip scan (dataops_site.admin_counts.distinct_values), not a
    DISTINCT over every dashboard; the first ``LIMIT`` folders by name are offered, any folder via ?folder_name=."""

    title = "folder name"
    parameter_name = "folder_name"
    LIMIT = 300

    def lookups(self, request, model_admin):
        names = distinct_values(LookerDashboard.objects.all(), "folder_name", limit=self.LIMIT)
        choices = [(name, name) for name in names if name]
        if self.value() and self.value() not in names:
            choices.append((self.value(), self.value()))
        return choices

    def queryset(self, request, queryset):
        return queryset.filter(folder_name=self.value()) if self.value() is not None else queryset


class PinInline(admin.TabularInline):
    model = DashboardPin
    extra = 0
    fields = ("reason", "expires_at", "created_by", "created_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class BackupInline(admin.TabularInline):
    model = DashboardBackup
    extra = 0
    fields = ("created_at", "sha256", "size_bytes", "has_lookml", "verified_at", "job_run")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LookerDashboard)
class LookerDashboardAdmin(admin.ModelAdmin):
    list_display = (
        "looker_id",
        "title",
        "folder_name",
        "owner_email",
        "last_activity_at",
        "inactive_for",
        "favorite_count",
        "has_active_schedule",
        "is_lookml",
        "deleted",
        "missing_in_looker",
    )
    list_filter = (
        "deleted",
        DeletionFilter,
        InactivityFilter,
        FolderFilter,
        OwnerFilter,
        PinnedFilter,
        "is_lookml",
        "has_active_schedule",
        "missing_in_looker",
    )
    # Substring search, served on PostgreSQL by trigram indexes on UPPER(column) (migration 0002), so a search
    # reads the matching rows only, not the 100,000 dashboards.
    search_fields = ("looker_id", "title", "owner_email", "owner_name", "folder_name")
    ordering = ("last_activity_at", "looker_id")  # the most inactive first (index cleanup_dash_activity_order)
    list_per_page = 50
    # No second COUNT(*) for "N total", and the unfiltered list counts from the planner's statistics.
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ["restore_selected"]
    inlines = [PinInline, BackupInline]
    change_form_template = "admin/cleanup/lookerdashboard/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        return ["deletion"] + [f.name for f in self.model._meta.fields] + ["pin_link"]

    def has_add_permission(self, request) -> bool:
        return False  # the inventory mirrors Looker; it is not edited here

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=mark_safe('<input type="checkbox" id="action-toggle">'))
    def action_checkbox(self, obj: LookerDashboard) -> str:
        """The stock checkbox's HTML without a form widget rendered through a template per row (a fifth of the
        list's render time at 50 rows)."""
        label = _("Select this object for an action - {}").format(obj)
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME, obj.pk, label,
        )  # fmt: skip

    @admin.display(description="inactive for", ordering="last_activity_at")
    def inactive_for(self, obj: LookerDashboard) -> str:
        if not obj.last_activity_at:
            return "-"
        return f"{(timezone.now() - obj.last_activity_at).days} days"

    @admin.display(description="pin")
    def pin_link(self, obj: LookerDashboard) -> str:
        """Pin when no pin holds it; otherwise the pin (until when, why) and a way to remove it."""
        pin = obj.pins.filter(expires_at__gt=timezone.now()).order_by("-expires_at").first()
        if pin is not None:
            url = reverse("admin:cleanup_dashboardpin_delete", args=[pin.pk])
            return format_html(
                'pinned until {} ({}) <a class="button" id="unpin" href="{}">Unpin</a>',
                f"{pin.expires_at:%Y-%m-%d}", pin.reason, url,
            )  # fmt: skip
        url = reverse("admin:cleanup_dashboardpin_add") + f"?dashboard={obj.pk}"
        return format_html('<a class="button" id="pin" href="{}">Pin this dashboard</a>', url)

    @admin.display(description="deletion")
    def deletion(self, obj: LookerDashboard) -> str:
        return dashboard_deletion_story(obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The page's buttons (Open in Looker, Restore) depend on the dashboard and on who looks."""
        dashboard = LookerDashboard.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        extra_context = {**(extra_context or {})}
        if dashboard is not None:
            extra_context["dashboard_actions"] = dashboard_page_actions(dashboard, user=request.user)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "<int:pk>/restore/",
                self.admin_site.admin_view(self.restore_view),
                name="cleanup_lookerdashboard_restore",
            ),
        ] + super().get_urls()

    def restore_view(self, request, pk: int):
        return dashboard_restore_view(self, request, pk)

    @admin.action(description="Restore selected dashboards", permissions=["restore"])
    def restore_selected(self, request, queryset):
        result = cleanup_restore_request(dashboards=queryset.order_by("pk"), actor=request.user)
        if result.requested:
            url = reverse("admin:cleanup_dashboardrestore_changelist")
            self.message_user(
                request,
                format_html(
                    '{} restore(s) queued: follow them under <a href="{}">Dashboard restores</a>',
                    len(result.requested),
                    url,
                ),
                messages.SUCCESS,
            )
        for looker_id, reason in result.refused:
            self.message_user(request, f"Dashboard {looker_id} not restored: {reason}", messages.WARNING)

    def has_restore_permission(self, request) -> bool:
        return request.user.has_perm("cleanup.restore_lookerdashboard")


class _AuditedAdmin(admin.ModelAdmin):
    """Saves and deletes go through the audited service."""

    def save_model(self, request, obj, form, change):
        dashboard_pin_save(pin=obj, actor=request.user, created=not change)

    def delete_model(self, request, obj):
        dashboard_pin_delete(pin=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            dashboard_pin_delete(pin=obj, actor=request.user)


@admin.register(DashboardPin)
class DashboardPinAdmin(_AuditedAdmin):
    list_display = ("dashboard", "reason", "expires_at", "active", "created_by", "created_at")
    list_select_related = ("dashboard", "created_by")
    list_filter = ("expires_at",)
    search_fields = ("dashboard__looker_id", "dashboard__title", "reason")
    autocomplete_fields = ("dashboard",)
    readonly_fields = ("created_by", "created_at")

    @admin.display(boolean=True)
    def active(self, obj: DashboardPin) -> bool:
        return obj.is_active


@admin.register(ProtectedFolder)
class ProtectedFolderAdmin(_AuditedAdmin):
    list_display = ("folder_id", "name", "reason", "created_by", "created_at")
    list_select_related = ("created_by",)
    search_fields = ("folder_id", "name", "reason")
    readonly_fields = ("created_by", "created_at")


@admin.register(CleanupAction)
class CleanupActionAdmin(ReadOnlyAdmin):
    list_display = (
        "job_run",
        "dashboard",
        "kind",
        "status",
        "inactive_days",
        "backup",
        "deleted_at",
        "owner_notified_at",
        "short_error",
    )
    list_select_related = ("job_run", "dashboard", "backup", "backup__dashboard")
    list_filter = ("status", "kind")
    search_fields = ("dashboard__looker_id", "dashboard__title", "dashboard__owner_email", "error")
    raw_id_fields = ("job_run", "dashboard", "backup")

    @admin.display(description="error")
    def short_error(self, obj: CleanupAction) -> str:
        return obj.error[:120]


@admin.register(DashboardBackup)
class DashboardBackupAdmin(ReadOnlyAdmin):
    list_display = ("dashboard", "created_at", "size_bytes", "has_lookml", "verified_at", "sha_short", "download")
    list_select_related = ("dashboard",)
    list_filter = ("has_lookml", "created_at")
    search_fields = ("dashboard__looker_id", "dashboard__title", "sha256", "storage_name")
    readonly_fields = (
        "dashboard",
        "job_run",
        "storage_name",
        "sha256",
        "size_bytes",
        "has_lookml",
        "created_at",
        "verified_at",
        "download",
        "content",
    )
    raw_id_fields = ("dashboard", "job_run")

    def get_urls(self):
        urls = super().get_urls()
        return [
            path(
                "<int:pk>/download/",
                self.admin_site.admin_view(self.download_view),
                name="cleanup_dashboardbackup_download",
            ),
        ] + urls

    @admin.display(description="sha256")
    def sha_short(self, obj: DashboardBackup) -> str:
        return obj.sha256[:12]

    @admin.display(description="file")
    def download(self, obj: DashboardBackup) -> str:
        return format_html(
            '<a href="{}">download</a>', reverse("admin:cleanup_dashboardbackup_download", args=[obj.pk])
        )

    @admin.display(description="content (verified against its checksum)")
    def content(self, obj: DashboardBackup) -> str:
        try:
            doc = backup_read_verified(storage_name=obj.storage_name, sha256=obj.sha256)
        except BackupStoreError as exc:
            return format_html('<strong style="color:#b00">{}</strong>', str(exc))
        return format_html("<pre style='max-height:40em;overflow:auto'>{}</pre>", json.dumps(doc, indent=2)[:200_000])

    def download_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        backup = get_object_or_404(DashboardBackup, pk=pk)
        try:
            fh = io.BytesIO(backup_read_bytes(backup.storage_name))  # decrypted (backups are encrypted at rest)
        except Exception as exc:  # noqa: BLE001
            raise Http404(f"backup file unavailable: {exc}") from exc
        filename = f"looker-dashboard-{backup.dashboard.looker_id}-{backup.sha256[:12]}.json".replace("::", "__")
        return FileResponse(fh, as_attachment=True, filename=filename, content_type="application/json")


@admin.register(DashboardRestore)
class DashboardRestoreAdmin(ReadOnlyAdmin):
    list_display = (
        "dashboard",
        "status",
        "method",
        "new_looker_id",
        "verified",
        "requested_by",
        "requested_at",
        "finished_at",
        "error",
    )
    list_select_related = ("dashboard", "requested_by")
    list_filter = ("status", "method", "verified")
    search_fields = ("dashboard__looker_id", "dashboard__title", "new_looker_id")
    raw_id_fields = ("dashboard", "backup")

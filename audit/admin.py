from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only for everyone, superusers included: the chain is append-only."""

    list_display = (
        "seq",
        "created_at",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "actor_label",
        "job_run_id",
    )
    list_filter = ("action", "object_type", "actor_label")
    search_fields = ("object_id", "object_repr", "actor_label", "action", "hash")
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

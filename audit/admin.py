"""The audit trail in the admin: read-only for everyone, with the chain's state for those who may read it."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path

from .models import AuditEvent
from .selectors import audit_chain_state


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only for everyone, superusers included: the chain is append-only.

    The list opens with the chain's state (intact up to #N and last anchored at T, or the first broken link),
    from a verification at most ``AUDIT_BANNER_CACHE_S`` old; "Verify now" runs a fresh one.
    """

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
    change_list_template = "admin/audit/auditevent/change_list.html"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        return [
            path("verify/", self.admin_site.admin_view(self.verify_view), name="audit_auditevent_verify"),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        if self.has_view_permission(request):
            extra_context["chain"] = audit_chain_state()
        return super().changelist_view(request, extra_context)

    def verify_view(self, request):
        """Verify the whole chain now (hashes, signatures, head, anchors) and show every finding."""
        if not self.has_view_permission(request):
            raise PermissionDenied("reading the audit trail needs the Auditor role")
        context = {
            **self.admin_site.each_context(request),
            "title": "Verify the audit chain",
            "opts": self.model._meta,
            "chain": audit_chain_state(fresh=True),
        }
        return TemplateResponse(request, "admin/audit/auditevent/verify.html", context)

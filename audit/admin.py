"""The audit trail in the admin: read-only for everyone, with the chain's state for those who may read it."""

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import Http404, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from console.links import admin_change_url, audit_events_url

from .admin_list import (
    ActionFilter,
    AuditPaginator,
    ObjectTypeFilter,
    SearchError,
    audit_search_q,
    export_csv,
    export_jsonl,
)
from .models import AuditChainHead, AuditEvent
from .selectors import audit_chain_state


class _ExportChangeList(ChangeList):
    """The changelist's filtering and search only: the export reads its queryset, never its page or count."""

    def get_results(self, request):
        self.result_count = self.full_result_count = None
        self.result_list, self.can_show_all, self.multi_page = [], False, False


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
        "object_link",
        "object_repr",
        "actor_label",
        "run_link",
    )
    # Filters and search that never scan the table (see audit.admin_list): no DISTINCT, no LIKE, no COUNT(*).
    list_filter = (ActionFilter, ObjectTypeFilter)
    search_fields = ("actor_label",)  # shows the search box; the search itself is get_search_results
    search_help_text = (
        "actor:NAME  action:PREFIX  object:TYPE[:ID]  run:ID  since:YYYY-MM-DD  until:YYYY-MM-DD  #SEQ "
        "(a bare word: an actor, action prefix, object type or id; hashes are never searched)"
    )
    list_per_page = 50  # rendering a row costs more than reading it (issue 11's benchmark)
    show_full_result_count = False
    change_list_template = "admin/audit/auditevent/change_list.html"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + ["object_link", "object_events", "run_link"]

    @admin.display(description="object")
    def object_link(self, obj: AuditEvent) -> str:
        if not obj.object_type:
            return "-"
        text = f"{obj.object_type}:{obj.object_id}" if obj.object_id else obj.object_type
        url = admin_change_url(obj.object_type, obj.object_id) if obj.object_id else None
        return format_html('<a href="{}">{}</a>', url, text) if url else text

    @admin.display(description="this object's events")
    def object_events(self, obj: AuditEvent) -> str:
        if not obj.object_type:
            return "-"
        url = audit_events_url(object_type=obj.object_type, object_id=obj.object_id)
        return format_html('<a href="{}">all events of {}:{}</a>', url, obj.object_type, obj.object_id)

    @admin.display(description="job run")
    def run_link(self, obj: AuditEvent) -> str:
        if obj.job_run_id is None:
            return "-"
        url = admin_change_url("orchestration.jobrun", obj.job_run_id)
        return format_html('<a href="{}">#{}</a>', url, obj.job_run_id)

    def get_search_results(self, request, queryset, search_term):
        """Equality and index-backed prefixes only (audit.admin_list.audit_search_q); never DISTINCT."""
        if not search_term.strip():
            return queryset, False
        try:
            return queryset.filter(audit_search_q(search_term)), False
        except SearchError as exc:
            self.message_user(request, f"search not understood: {exc}", messages.ERROR)
            return queryset.none(), False

    def lookup_allowed(self, lookup, value, request=None):
        # Links from other pages filter by these columns directly (?object_type=..&object_id=.., ?job_run_id=..).
        if lookup in ("object_id", "job_run_id", "actor_label", "created_at__gte", "created_at__lt"):
            return True
        return super().lookup_allowed(lookup, value, request)

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        if queryset.model is not AuditEvent:  # the history page pages Django's LogEntry
            return super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
        whole_chain = not (set(request.GET) - {"p"})
        head = AuditChainHead.objects.values_list("seq", flat=True).first() or 0 if whole_chain else 0
        return AuditPaginator(
            queryset, per_page, orphans=orphans, allow_empty_first_page=allow_empty_first_page,
            whole_chain=whole_chain, head_seq=head,
        )  # fmt: skip

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        return [
            path("verify/", self.admin_site.admin_view(self.verify_view), name="audit_auditevent_verify"),
            path(
                "export/<str:fmt>/", self.admin_site.admin_view(self.export_view), name="audit_auditevent_export"
            ),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        if self.has_view_permission(request):
            extra_context["chain"] = audit_chain_state()
            query = request.GET.urlencode()
            extra_context["export_links"] = [
                (label, reverse("admin:audit_auditevent_export", args=[fmt]) + (f"?{query}" if query else ""))
                for fmt, label in (("csv", "Export CSV"), ("jsonl", "Export JSON Lines"))
            ]
        return super().changelist_view(request, extra_context)

    def export_view(self, request, fmt: str):
        """The events the list shows (its filters and search), streamed in chain order as CSV or JSON Lines."""
        if not self.has_view_permission(request):
            raise PermissionDenied("exporting the audit trail needs the permission audit.view_auditevent (Auditor)")
        if fmt not in ("csv", "jsonl"):
            raise Http404("export as csv or jsonl")
        # The list's filters and search without its page: no count and no page query before the first bytes.
        request.audit_export = True
        changelist = self.get_changelist_instance(request)
        queryset = changelist.get_queryset(request)
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        if fmt == "csv":
            response = StreamingHttpResponse(export_csv(queryset), content_type="text/csv; charset=utf-8")
        else:
            response = StreamingHttpResponse(export_jsonl(queryset), content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="audit-trail-{stamp}.{fmt}"'
        return response

    def get_changelist(self, request, **kwargs):
        if getattr(request, "audit_export", False):
            return _ExportChangeList
        return super().get_changelist(request, **kwargs)

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

"""Lineage in the admin: each dataset's graph (SVG, date filter), the events as received, the delivery outbox."""

from __future__ import annotations

from datetime import date

from django.contrib import admin, messages
from django.template.response import TemplateResponse

from dataops_site.admin_base import ReadOnlyAdmin
from dataops_site.lazy import lazy_function

from .models import LineageDataset, LineageEvent, LineageOutbox
from .selectors import lineage_graph
from .svg import lineage_svg

# openlineage's client loads on the first retry, not at start-up (issue 15).
lineage_outbox_retry = lazy_function("lineage.services.lineage_outbox_retry")


@admin.register(LineageDataset)
class LineageDatasetAdmin(ReadOnlyAdmin):
    list_display = ["name", "namespace", "first_seen_at"]
    list_filter = ["namespace"]
    search_fields = ["name", "namespace"]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The dataset's lineage graph instead of a form: upstream and downstream, runs and people."""
        dataset = self.get_object(request, object_id)
        if dataset is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, dataset):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        raw = request.GET.get("date", "").strip()
        day, error = None, ""
        if raw:
            try:
                day = date.fromisoformat(raw)
            except ValueError:
                error = f"{raw[:40]!r} is not a date (YYYY-MM-DD): showing every run"
        depth_raw = request.GET.get("depth", "2")
        depth = int(depth_raw) if depth_raw.isdigit() else 2
        graph = lineage_graph(dataset=dataset, day=day, depth=depth)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Lineage of {dataset.name}",
            "dataset": dataset,
            "graph": graph,
            "svg": lineage_svg(graph),
            "day": day,
            "date_error": error,
            "depth": graph_depth(depth),
            "runs": [n for n in graph.nodes.values() if n.kind == "run"],
            "people": [n for n in graph.nodes.values() if n.kind == "person"],
            "datasets": [n for n in graph.nodes.values() if n.kind == "dataset"],
        }
        return TemplateResponse(request, "admin/lineage/dataset_graph.html", context)


def graph_depth(depth: int) -> int:
    from .selectors import MAX_DEPTH

    return max(1, min(depth, MAX_DEPTH))


@admin.register(LineageEvent)
class LineageEventAdmin(ReadOnlyAdmin):
    list_display = ["event_time", "event_type", "job_name", "run_id", "actor", "job_run"]
    list_filter = ["event_type", "job_namespace"]
    list_select_related = ["job_run"]
    search_fields = ["job_name", "run_id", "actor"]
    raw_id_fields = ["job_run"]
    date_hierarchy = "event_time"


@admin.register(LineageOutbox)
class LineageOutboxAdmin(ReadOnlyAdmin):
    list_display = ["event", "status", "attempts", "next_attempt_at", "delivered_at", "last_error"]
    list_filter = ["status"]
    list_select_related = ["event"]
    raw_id_fields = ["event"]
    actions = ["retry_now"]

    @admin.action(description="Retry delivery now", permissions=["deliver"])
    def retry_now(self, request, queryset) -> None:
        count = lineage_outbox_retry(rows=list(queryset), actor=request.user)
        self.message_user(
            request, f"{count} deliveries are due now; the next delivery tick sends them.", messages.SUCCESS
        )

    def has_deliver_permission(self, request) -> bool:
        return request.user.has_perm("lineage.deliver_lineageoutbox")

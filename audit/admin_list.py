"""The audit list at production size: search without scanning, pages without COUNT, filters without DISTINCT,
and a streamed export (CSV, JSON Lines) of exactly what the list shows.

At a million events a LIKE over every column, a full COUNT for the paginator and the date drill-down's DISTINCT
each take seconds (issue 11). Here:

- search terms compare with equality or an index-backed prefix: ``actor:alice``, ``action:sales.`` (a prefix),
  ``object:sales.salesreport`` / ``object:sales.salesreport:12``, ``run:42``, ``since:2026-11-01``,
  ``until:2026-11-30`` (days in the person's zone), ``#123`` (a seq); a bare word matches an actor, an action
  prefix, an object type or an object id. Hashes are never matched.
- the unfiltered list in its default order pages by ``seq`` ranges (seqs are contiguous: the chain has no holes),
  counted from the chain head; any other list counts at most ``AUDIT_LIST_COUNT_CAP`` rows (unordered, so the
  count stops there), then pages as deep as PostgreSQL's estimate of the matches.
- the export reads keyset chunks by seq (no count first, no cursor held open).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime, time, timedelta

from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.functional import cached_property

from dataops_site.admin_counts import planner_estimate

from .events import EVENTS

EXPORT_FIELDS = (
    "seq", "created_at", "actor_label", "actor_id", "action", "object_type", "object_id", "object_repr", "job_run_id",
    "data", "prev_hash", "hash", "mac",
)  # fmt: skip


class SearchError(ValueError):
    """A search term that cannot be read (a bad date, a non-numeric run)."""


def _day(value: str, *, end: bool) -> datetime:
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as exc:
        raise SearchError(f"{value!r} is not a day (YYYY-MM-DD)") from exc
    moment = datetime.combine(day + timedelta(days=1) if end else day, time.min)
    return timezone.make_aware(moment, timezone.get_current_timezone())


def audit_search_q(text: str) -> Q:
    """The filter for a search box's text (see the module docstring); every term must match."""
    q = Q()
    for term in text.split():
        key, sep, value = term.partition(":")
        key = key.lower() if sep else ""
        if sep and not value:
            raise SearchError(f"{term!r}: say what to look for after the colon")
        if key == "actor":
            q &= Q(actor_label=value)
        elif key == "action":
            q &= Q(action__startswith=value)
        elif key == "object":
            object_type, _, object_id = value.rpartition(":") if value.count(":") else (value, "", "")
            q &= Q(object_type=object_type, object_id=object_id) if object_id else Q(object_type=value)
        elif key == "run":
            if not value.isdigit():
                raise SearchError(f"run:{value}: a run is a number")
            q &= Q(job_run_id=int(value))
        elif key == "since":
            q &= Q(created_at__gte=_day(value, end=False))
        elif key == "until":
            q &= Q(created_at__lt=_day(value, end=True))
        elif term.startswith("#") and term[1:].isdigit():
            q &= Q(seq=int(term[1:]))
        else:
            word = term
            either = Q(actor_label=word) | Q(action__startswith=word) | Q(object_type=word) | Q(object_id=word)
            if word.isdigit():
                either |= Q(job_run_id=int(word))
            q &= either
    return q


class ActionFilter(admin.SimpleListFilter):
    """The declared actions (audit/events.py), without reading the table."""

    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(name, name) for name in sorted(EVENTS)]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


class ObjectTypeFilter(admin.SimpleListFilter):
    """The project's models, without reading the table."""

    title = "object type"
    parameter_name = "object_type"

    def lookups(self, request, model_admin):
        return [
            (m._meta.label_lower, m._meta.label_lower)
            for m in sorted(apps.get_models(), key=lambda m: m._meta.label_lower)
        ]

    def queryset(self, request, queryset):
        return queryset.filter(object_type=self.value()) if self.value() else queryset


class AuditPaginator(Paginator):
    """Counts without COUNT(*) over the chain: the head's seq for the whole list (keyset pages by seq), else a count
    capped at ``AUDIT_LIST_COUNT_CAP`` and, past the cap, the planner's estimate."""

    def __init__(self, object_list, per_page, *, whole_chain: bool, head_seq: int, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.whole_chain = whole_chain
        self.head_seq = head_seq
        self.estimated = False  # True once ``count`` came from the planner: the list says "about N"

    @cached_property
    def count(self) -> int:
        if self.whole_chain and self.head_seq:
            return self.head_seq
        # Unordered, so PostgreSQL stops at the cap instead of sorting every match first; past the cap the pages
        # go as deep as the planner's estimate of the matches (a plan, not a scan).
        cap = getattr(settings, "AUDIT_LIST_COUNT_CAP", 1_000)
        counted = self.object_list.order_by()[:cap].count()
        if counted < cap:
            return counted
        estimate = planner_estimate(self.object_list)
        if estimate is None:  # no planner to ask (SQLite, the embedded default): count them all, every page reachable
            return self.object_list.order_by().count()
        self.estimated = True
        return max(counted, estimate)

    def page(self, number):
        number = self.validate_number(number)
        if not (self.whole_chain and self.head_seq):
            return super().page(number)
        top = self.head_seq - (number - 1) * self.per_page
        rows = list(self.object_list.filter(seq__lte=top, seq__gt=top - self.per_page)[: self.per_page])
        return self._get_page(rows, number, self)


EXPORT_CHUNKS = (250, 2000)  # rows read by the first query (the first bytes come quickly), then by each next one


def export_rows(queryset: QuerySet) -> Iterator[dict]:
    """The events of ``queryset`` in chain order, read in keyset chunks (``seq > last ORDER BY seq LIMIT n``).

    Nothing counts first, no cursor stays open between chunks, and each chunk is a short walk of the seq index
    (or of the actor's (actor_label, seq) index) from where the last one stopped, never a sort of every match.
    """
    queryset = queryset.order_by("seq").values(*EXPORT_FIELDS)
    last, size = None, EXPORT_CHUNKS[0]
    while True:
        chunk = list((queryset if last is None else queryset.filter(seq__gt=last))[:size])
        for event in chunk:
            event["created_at"] = event["created_at"].isoformat()
            yield event
        if len(chunk) < size:
            return
        last, size = chunk[-1]["seq"], EXPORT_CHUNKS[1]


def export_csv(queryset: QuerySet) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_FIELDS)
    for event in export_rows(queryset):
        event["data"] = json.dumps(event["data"], sort_keys=True, separators=(",", ":"))
        writer.writerow([event[f] if event[f] is not None else "" for f in EXPORT_FIELDS])
        if buffer.tell() > 32_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_jsonl(queryset: QuerySet) -> Iterator[str]:
    chunk: list[str] = []
    for event in export_rows(queryset):
        chunk.append(json.dumps(event, sort_keys=True, separators=(",", ":")) + "\n")
        if len(chunk) >= 500:
            yield "".join(chunk)
            chunk = []
    yield "".join(chunk)

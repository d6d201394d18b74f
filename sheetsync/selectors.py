"""Reading sync targets and events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db.models import Count, Q, QuerySet, Sum

from .models import SyncEvent, SyncTarget


def sync_targets_for_cycle(*, refs: Sequence[str] | None = None) -> QuerySet[SyncTarget]:
    """The enabled targets a cycle works on (all, or those named by id or name in ``refs``), grouped by
    spreadsheet so targets of one spreadsheet are handled together."""
    queryset = SyncTarget.objects.filter(enabled=True).select_related("owner").order_by("spreadsheet_id", "pk")
    if refs:
        wanted = [str(r).strip() for r in refs if str(r).strip()]
        ids = [int(r) for r in wanted if r.isdigit()]
        names = [r for r in wanted if not r.isdigit()]
        queryset = queryset.filter(Q(pk__in=ids) | Q(name__in=names))
    return queryset


def sync_event_totals(*, since: datetime) -> dict[str, dict[str, int]]:
    """Per outcome since ``since``: cycles (compacted rows count their cycles), cells written, requests."""
    rows = (
        SyncEvent.objects.filter(last_seen_at__gte=since)
        .values("outcome")
        .annotate(rows=Count("pk"), cycles=Sum("count"), cells=Sum("cells_written"), requests=Sum("api_requests"))
        .order_by("outcome")
    )
    return {
        r["outcome"]: {
            "rows": r["rows"],
            "cycles": r["cycles"] or 0,
            "cells": r["cells"] or 0,
            "requests": r["requests"] or 0,
        }
        for r in rows
    }

"""Reads for monitoring: metric figures, the operations page's series, the weekly report's figures, ladders."""

from __future__ import annotations

import logging
import math
import socket
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from orchestration.models import JobRun

from .constants import JOB_DURATION_BUCKETS, UNRESOLVED, Audience, IncidentStatus
from .models import ApiUsage, EscalationStep, Feedback, HostSample, Incident, RunRecord, Sla, SlaCheck

logger = logging.getLogger(__name__)

FINISHED = (JobRun.Status.SUCCEEDED, JobRun.Status.FAILED, JobRun.Status.FAILED_TO_TRIGGER)
WAITING = (JobRun.Status.QUEUED, JobRun.Status.TRIGGERED)


# --------------------------------------------------------------------------------------------------------------
# Quotas
# --------------------------------------------------------------------------------------------------------------


def quota_limits() -> dict[tuple[str, str], float]:
    """(system, quota) -> limit, from settings."""
    sheets = settings.MONITORING_SHEETS_QUOTA_PER_MINUTE or settings.SHEETS_SYNC_PROJECT_RATE_LIMIT_PER_MINUTE or 300
    return {
        ("looker", "requests_per_month"): float(settings.MONITORING_LOOKER_MONTHLY_QUOTA),
        ("sheets", "requests_per_minute"): float(sheets),
        ("bigquery", "bytes_billed_per_day"): float(settings.MONITORING_BIGQUERY_DAILY_BYTES_QUOTA),
    }


def quota_used(*, now: datetime) -> dict[tuple[str, str], float]:
    """Looker requests this month, Sheets requests in the last complete minute, BigQuery bytes billed today (UTC)."""
    now = now.astimezone(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    last_minute = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    looker = ApiUsage.objects.filter(system="looker", minute__gte=month_start).aggregate(n=Sum("requests"))["n"]
    sheets = ApiUsage.objects.filter(system="sheets", minute=last_minute).aggregate(n=Sum("requests"))["n"]
    billed = ApiUsage.objects.filter(system="bigquery", minute__gte=day_start).aggregate(n=Sum("bytes_billed"))["n"]
    return {
        ("looker", "requests_per_month"): float(looker or 0),
        ("sheets", "requests_per_minute"): float(sheets or 0),
        ("bigquery", "bytes_billed_per_day"): float(billed or 0),
    }


# --------------------------------------------------------------------------------------------------------------
# Metric figures (read at scrape time)
# --------------------------------------------------------------------------------------------------------------


def celery_queue_depth() -> dict[str, int]:
    """Messages waiting in the Celery queue, asked of the broker; empty when eager or the broker does not say."""
    if settings.CELERY_TASK_ALWAYS_EAGER or settings.CELERY_BROKER_URL.startswith("memory://"):
        return {}
    from dataops_site.celery import app

    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
            with connection.channel() as channel:
                _name, count, _consumers = channel.queue_declare(queue=queue, passive=True)
        return {queue: int(count)}
    except Exception as exc:  # noqa: BLE001 - a broker hiccup must not fail the scrape
        logger.info("could not read the depth of Celery queue %s: %s", queue, exc)
        return {}


def metrics_figures(*, now: datetime | None = None) -> dict[str, Any]:
    """Every figure the database collector exports (see :mod:`monitoring.metrics`)."""
    now = now or timezone.now()
    runs = {(r["job"], r["status"]): r["n"] for r in JobRun.objects.values("job", "status").annotate(n=Count("pk"))}
    bucket_counts = {
        f"b{i}": Count("pk", filter=Q(duration_s__lte=bound)) for i, bound in enumerate(JOB_DURATION_BUCKETS)
    }
    durations: dict[str, dict[str, Any]] = {}
    for r in (
        RunRecord.objects.filter(dry_run=False, duration_s__isnull=False)
        .values("job")
        .annotate(count=Count("pk"), total=Sum("duration_s"), **bucket_counts)
    ):
        durations[r["job"]] = {
            "count": r["count"],
            "sum": float(r["total"] or 0.0),
            "buckets": {bound: r[f"b{i}"] for i, bound in enumerate(JOB_DURATION_BUCKETS)},
        }
    volume = {
        r["job"]: {
            "rows": r["rows"] or 0,
            "cells": r["cells"] or 0,
            "api_calls": r["api_calls"] or 0,
            "bytes_billed": r["bytes_billed"] or 0,
            "cpu_s": float(r["cpu_s"] or 0.0),
        }
        for r in RunRecord.objects.values("job").annotate(
            rows=Sum("rows"), cells=Sum("cells"), api_calls=Sum("api_calls"), bytes_billed=Sum("bytes_billed"),
            cpu_s=Sum("cpu_s"),
        )
    }  # fmt: skip
    waiting = {
        r["job"]: (r["n"], max((now - r["oldest"]).total_seconds(), 0.0))
        for r in JobRun.objects.filter(status__in=WAITING)
        .values("job")
        .annotate(n=Count("pk"), oldest=Min("created_at"))
    }
    since = now - timedelta(days=30)
    sla = {
        (r["sla__name"], r["sla__job"]): (r["met"], r["total"])
        for r in SlaCheck.objects.filter(due_at__gte=since)
        .values("sla__name", "sla__job")
        .annotate(met=Count("pk", filter=Q(met=True)), total=Count("pk"))
    }
    for name, job in Sla.objects.filter(enabled=True).values_list("name", "job"):
        sla.setdefault((name, job), (0, 0))
    incidents = {
        (r["failure_class"] or r["kind"], r["level"]): r["n"]
        for r in Incident.objects.filter(status__in=UNRESOLVED)
        .values("failure_class", "kind", "level")
        .annotate(n=Count("pk"))
    }
    answers = Feedback.objects.filter(created_at__gte=since).aggregate(
        useful=Count("pk", filter=Q(useful=True)), total=Count("pk")
    )
    limits = quota_limits()
    used = quota_used(now=now)
    return {
        "runs": runs,
        "durations": durations,
        "volume": volume,
        "quality": quality_latest_scores(),
        "waiting": waiting,
        "celery": celery_queue_depth(),
        "quotas": {key: (used.get(key, 0.0), cap) for key, cap in limits.items()},
        "sla": sla,
        "incidents": incidents,
        "satisfaction": (answers["useful"], answers["total"]),
    }


def quality_latest_scores() -> dict[str, float]:
    """The latest quality score of each dataset."""
    from quality.models import QualityRun

    latest = QualityRun.objects.values("dataset").annotate(last=Max("pk")).values_list("last", flat=True)
    return dict(QualityRun.objects.filter(pk__in=list(latest)).values_list("dataset", "score"))


def host_figures(*, disk_path: str) -> dict[str, float]:
    """This host's CPU, memory, disk (of ``disk_path``) and network counters, with psutil."""
    import psutil  # here, not at start-up: every process imports this module with the admin (issue 15)

    memory = psutil.virtual_memory()
    try:
        disk = psutil.disk_usage(disk_path)
        disk_used, disk_total, disk_percent = float(disk.used), float(disk.total), float(disk.percent)
    except OSError:
        disk_used = disk_total = disk_percent = 0.0
    net = psutil.net_io_counters()
    try:
        load1 = float(psutil.getloadavg()[0])
    except (AttributeError, OSError):
        load1 = 0.0
    return {
        "host": socket.gethostname(),
        "cpu_percent": float(psutil.cpu_percent(interval=None)),
        "memory_percent": float(memory.percent),
        "memory_used_bytes": float(memory.total - memory.available),
        "memory_total_bytes": float(memory.total),
        "disk_percent": disk_percent,
        "disk_used_bytes": disk_used,
        "disk_total_bytes": disk_total,
        "net_sent_bytes": float(net.bytes_sent if net else 0),
        "net_recv_bytes": float(net.bytes_recv if net else 0),
        "load1": load1,
    }


# --------------------------------------------------------------------------------------------------------------
# Incidents: ladders, recipients, fallbacks
# --------------------------------------------------------------------------------------------------------------


def escalation_ladder(*, job: str) -> list[EscalationStep]:
    """The job's own ladder, else the default one (``job`` empty), lowest level first."""
    steps = list(EscalationStep.objects.filter(job=job).order_by("level")) if job else []
    return steps or list(EscalationStep.objects.filter(job="").order_by("level"))


def audience_emails(*, audience: str, incident: Incident) -> list[str]:
    """E-mail addresses of a rung's audience: the incident's owner, or the active members of a role."""
    if audience == Audience.OWNER:
        owner = incident.owner
        return [owner.email] if owner is not None and owner.is_active and owner.email else []
    users = get_user_model().objects.filter(groups__name=audience, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def fallback_note(*, job: str) -> str:
    """What stays in place when a job fails on bad data: the last good output, said concretely."""
    if job == "sales_report":
        from sales.models import SalesReport

        last = SalesReport.objects.filter(status=SalesReport.Status.PUBLISHED).order_by("-published_at").first()
        if last is None:
            return "nothing was published; the sheet keeps what it had"
        when = f"{last.published_at:%Y-%m-%d %H:%M}"
        return f"nothing was published; the sheet keeps the previous report #{last.pk} (published {when})"
    if job == "sheets_sync":
        return "failed targets were not written: their sheets keep the last good values"
    if job == "looker_cleanup":
        return "dashboards that failed were not deleted; the next run retries them"
    return "the last good output stays in place"


def incident_timeline(*, incident: Incident) -> list[Any]:
    """The incident's events, oldest first, with their actors."""
    return list(incident.events.select_related("actor").order_by("pk"))


# --------------------------------------------------------------------------------------------------------------
# The operations page: series over a window
# --------------------------------------------------------------------------------------------------------------

WINDOWS: dict[str, tuple[timedelta, timedelta]] = {
    "6h": (timedelta(hours=6), timedelta(minutes=15)),
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(hours=6)),
    "30d": (timedelta(days=30), timedelta(days=1)),
    "90d": (timedelta(days=90), timedelta(days=3)),
}


@dataclass(frozen=True)
class Window:
    """A time window cut into equal buckets (the x axis of every chart)."""

    name: str
    start: datetime
    end: datetime
    step: timedelta

    @property
    def buckets(self) -> list[datetime]:
        count = math.ceil((self.end - self.start) / self.step)
        return [self.start + i * self.step for i in range(count)]

    def index(self, when: datetime) -> int | None:
        if when < self.start or when >= self.end:
            return None
        return int((when - self.start) / self.step)

    def labels(self) -> list[str]:
        fmt = "%m-%d %H:%M" if self.step < timedelta(days=1) else "%Y-%m-%d"
        return [b.strftime(fmt) for b in self.buckets]


def window_get(name: str, *, now: datetime | None = None) -> Window:
    """The named window ending now (unknown names fall back to 24h)."""
    span, step = WINDOWS.get(name, WINDOWS["24h"])
    now = now or timezone.now()
    # Align the end to the step so buckets stay put between refreshes.
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    end = epoch + math.ceil((now - epoch) / step) * step
    return Window(name=name if name in WINDOWS else "24h", start=end - span, end=end, step=step)


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def operations_series(*, window: Window, jobs: Iterable[str] | None = None) -> dict[str, Any]:
    """Everything the operations page charts over ``window``: per job success/error rate, p50/p95 duration,
    volume; quality score per dataset; SLA compliance; API usage against quotas; host resources; satisfaction."""
    from quality.models import QualityRun

    n = len(window.buckets)
    records = list(
        RunRecord.objects.filter(finished_at__gte=window.start, finished_at__lt=window.end, dry_run=False)
        .values_list("job", "finished_at", "status", "duration_s", "rows", "cells")
        .order_by("finished_at")
    )
    wanted = set(jobs) if jobs else None
    per_job: dict[str, dict[str, Any]] = {}
    for job, finished_at, status, duration_s, rows, cells in records:
        if wanted is not None and job not in wanted:
            continue
        entry = per_job.setdefault(
            job,
            {
                "ok": [0] * n,
                "failed": [0] * n,
                "durations": [[] for _ in range(n)],
                "rows": [0] * n,
                "cells": [0] * n,
            },
        )
        i = window.index(finished_at)
        if i is None:
            continue
        entry["ok" if status == JobRun.Status.SUCCEEDED else "failed"][i] += 1
        if duration_s is not None:
            entry["durations"][i].append(duration_s)
        entry["rows"][i] += rows
        entry["cells"][i] += cells
    jobs_out: dict[str, Any] = {}
    for job, entry in sorted(per_job.items()):
        totals = [ok + bad for ok, bad in zip(entry["ok"], entry["failed"], strict=True)]
        all_durations = [d for bucket in entry["durations"] for d in bucket]
        jobs_out[job] = {
            "runs": sum(totals),
            "succeeded": sum(entry["ok"]),
            "failed": sum(entry["failed"]),
            "success_rate": [(ok / t * 100 if t else None) for ok, t in zip(entry["ok"], totals, strict=True)],
            "error_rate": [(bad / t * 100 if t else None) for bad, t in zip(entry["failed"], totals, strict=True)],
            "p50": [_percentile(b, 0.5) for b in entry["durations"]],
            "p95": [_percentile(b, 0.95) for b in entry["durations"]],
            "p50_all": _percentile(all_durations, 0.5),
            "p95_all": _percentile(all_durations, 0.95),
            "rows": entry["rows"],
            "cells": entry["cells"],
        }

    quality: dict[str, list[float | None]] = {}
    sums: dict[str, list[list[float]]] = defaultdict(lambda: [[] for _ in range(n)])
    for dataset, created_at, score in QualityRun.objects.filter(
        created_at__gte=window.start, created_at__lt=window.end
    ).values_list("dataset", "created_at", "score"):
        i = window.index(created_at)
        if i is not None:
            sums[dataset][i].append(score)
    for dataset, buckets in sorted(sums.items()):
        quality[dataset] = [(sum(b) / len(b) if b else None) for b in buckets]

    sla: dict[str, dict[str, Any]] = {}
    for name, objective, due_at, met in SlaCheck.objects.filter(
        due_at__gte=window.start, due_at__lt=window.end
    ).values_list("sla__name", "sla__objective_percent", "due_at", "met"):
        entry = sla.setdefault(name, {"met": [0] * n, "total": [0] * n, "objective": objective})
        i = window.index(due_at)
        if i is not None:
            entry["total"][i] += 1
            entry["met"][i] += 1 if met else 0
    for entry in sla.values():
        entry["compliance"] = [(m / t * 100 if t else None) for m, t in zip(entry["met"], entry["total"], strict=True)]
        met, total = sum(entry["met"]), sum(entry["total"])
        entry["overall"] = met / total * 100 if total else None
        entry["breaches"] = total - met

    usage: dict[str, dict[str, Any]] = {}
    for system, minute, requests, errors, _throttled, bytes_billed in ApiUsage.objects.filter(
        minute__gte=window.start, minute__lt=window.end
    ).values_list("system", "minute", "requests", "errors", "throttled", "bytes_billed"):
        entry = usage.setdefault(
            system, {"requests": [0] * n, "errors": [0] * n, "peak_per_minute": [0] * n, "bytes_billed": [0] * n}
        )
        i = window.index(minute)
        if i is None:
            continue
        entry["requests"][i] += requests
        entry["errors"][i] += errors
        entry["peak_per_minute"][i] = max(entry["peak_per_minute"][i], requests)
        entry["bytes_billed"][i] += bytes_billed

    hosts: dict[str, dict[str, list[list[float]]]] = {}
    for host, taken_at, cpu, memory, disk in HostSample.objects.filter(
        taken_at__gte=window.start, taken_at__lt=window.end
    ).values_list("host", "taken_at", "cpu_percent", "memory_percent", "disk_percent"):
        entry = hosts.setdefault(
            host, {"cpu": [[] for _ in range(n)], "memory": [[] for _ in range(n)], "disk": [[] for _ in range(n)]}
        )
        i = window.index(taken_at)
        if i is not None:
            entry["cpu"][i].append(cpu)
            entry["memory"][i].append(memory)
            entry["disk"][i].append(disk)
    host_series = {
        host: {key: [(sum(b) / len(b) if b else None) for b in values] for key, values in entry.items()}
        for host, entry in sorted(hosts.items())
    }
    answers = Feedback.objects.filter(created_at__gte=window.start, created_at__lt=window.end).aggregate(
        useful=Count("pk", filter=Q(useful=True)), total=Count("pk")
    )
    return {
        "labels": window.labels(),
        "jobs": jobs_out,
        "quality": quality,
        "sla": sla,
        "usage": usage,
        "hosts": host_series,
        "satisfaction": answers,
        "quotas": {
            f"{s}:{q}": (used, quota_limits()[(s, q)]) for (s, q), used in quota_used(now=timezone.now()).items()
        },
    }


# --------------------------------------------------------------------------------------------------------------
# The weekly performance report
# --------------------------------------------------------------------------------------------------------------


def performance_figures(*, start: datetime, end: datetime) -> dict[str, Any]:
    """The weekly report's figures: per job runs, success rate, p50/p95, volume; SLAs; incidents with time to
    acknowledge and to resolve; API usage and quota peaks; quality; user satisfaction."""
    from quality.models import QualityRun

    jobs: dict[str, dict[str, Any]] = {}
    durations: dict[str, list[float]] = defaultdict(list)
    for job, status, duration_s, rows, cells in RunRecord.objects.filter(
        finished_at__gte=start, finished_at__lt=end, dry_run=False
    ).values_list("job", "status", "duration_s", "rows", "cells"):
        entry = jobs.setdefault(job, {"runs": 0, "succeeded": 0, "failed": 0, "rows": 0, "cells": 0})
        entry["runs"] += 1
        entry["succeeded" if status == JobRun.Status.SUCCEEDED else "failed"] += 1
        entry["rows"] += rows
        entry["cells"] += cells
        if duration_s is not None:
            durations[job].append(duration_s)
    for job, entry in jobs.items():
        entry["success_rate"] = round(entry["succeeded"] / entry["runs"] * 100, 1) if entry["runs"] else None
        entry["p50_s"] = _round(_percentile(durations[job], 0.5))
        entry["p95_s"] = _round(_percentile(durations[job], 0.95))
    slas = {
        r["sla__name"]: {"met": r["met"], "total": r["total"], "compliance": round(r["met"] / r["total"] * 100, 1)}
        for r in SlaCheck.objects.filter(due_at__gte=start, due_at__lt=end)
        .values("sla__name")
        .annotate(met=Count("pk", filter=Q(met=True)), total=Count("pk"))
    }
    opened = Incident.objects.filter(detected_at__gte=start, detected_at__lt=end)
    acked = [i.time_to_acknowledge_s for i in opened if i.acknowledged_at]
    resolved = [i.time_to_resolve_s for i in opened if i.resolved_at]
    by_class = dict(opened.values_list("failure_class").annotate(n=Count("pk")).values_list("failure_class", "n"))
    usage = {
        r["system"]: {"requests": r["n"], "errors": r["n_errors"], "throttled": r["n_throttled"],
                      "bytes_billed": r["n_bytes"], "peak_per_minute": r["peak"]}
        for r in ApiUsage.objects.filter(minute__gte=start, minute__lt=end).values("system").annotate(
            n=Sum("requests"), n_errors=Sum("errors"), n_throttled=Sum("throttled"), n_bytes=Sum("bytes_billed"),
            peak=Max("requests"),
        )
    }  # fmt: skip
    quality = {
        r["dataset"]: {"runs": r["n"], "min": round(r["low"], 1), "last": None}
        for r in QualityRun.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("dataset")
        .annotate(n=Count("pk"), low=Min("score"))
    }
    for dataset, score in quality_latest_scores().items():
        if dataset in quality:
            quality[dataset]["last"] = round(score, 1)
    answers = Feedback.objects.filter(created_at__gte=start, created_at__lt=end).aggregate(
        useful=Count("pk", filter=Q(useful=True)), total=Count("pk")
    )
    return {
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "jobs": dict(sorted(jobs.items())),
        "slas": slas,
        "incidents": {
            "opened": opened.count(),
            "by_class": by_class,
            "still_open": Incident.objects.filter(status__in=UNRESOLVED).count(),
            "mean_time_to_acknowledge_s": _round(sum(acked) / len(acked)) if acked else None,
            "mean_time_to_resolve_s": _round(sum(resolved) / len(resolved)) if resolved else None,
        },
        "usage": usage,
        "quotas": {f"{s}:{q}": cap for (s, q), cap in quota_limits().items()},
        "quality": quality,
        "satisfaction": {
            "useful": answers["useful"],
            "answers": answers["total"],
            "ratio": round(answers["useful"] / answers["total"] * 100, 1) if answers["total"] else None,
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def incidents_open_count() -> int:
    """Unresolved incidents (the operations page's headline)."""
    return Incident.objects.filter(status__in=UNRESOLVED).count()


def incidents_recent(*, limit: int = 10) -> list[Incident]:
    """The latest incidents: unresolved ones first, then the latest resolved."""
    open_ones = list(Incident.objects.filter(status__in=UNRESOLVED).order_by("-detected_at")[:limit])
    closed = list(Incident.objects.filter(status=IncidentStatus.RESOLVED).order_by("-resolved_at")[:limit])
    return open_ones + closed


def feedback_target(*, label: str, object_id: str) -> Any | None:
    """The report or review ``label`` (``app_label.model``, one of ``FEEDBACK_MODELS``) ``object_id`` names, or None
    when there is no such kind of object or no such object (an id that is not a number included: not a 500)."""
    from django.apps import apps

    from .services import FEEDBACK_MODELS

    if label not in FEEDBACK_MODELS:
        return None
    model = apps.get_model(label)
    try:
        pk = model._meta.pk.to_python(object_id)
    except (TypeError, ValueError, DjangoValidationError):
        return None
    return model.objects.filter(pk=pk).first()

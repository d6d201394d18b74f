"""Prometheus metrics with the official client, safe across processes.

Two sources, chosen per metric by where the truth lives:

* **The database, read at scrape time** (:class:`DatabaseCollector`): job runs by job and status, job durations
  (histogram), rows/cells/API calls/bytes processed, quality scores, SLA compliance, open incidents, queued runs
  and their age, quota used (Looker calls this month, Sheets requests in the last minute, BigQuery bytes billed
  today), user satisfaction. Every process that runs jobs (web, Celery workers, ``run_job`` started by Airflow,
  on any host) writes the same database, so these figures are complete and equal to what the admin shows.
* **Per-process counters in prometheus_client's multiprocess mode** (``PROMETHEUS_MULTIPROC_DIR``): requests per
  external API and status and their durations, BigQuery bytes billed as they happen, and each process role's CPU
  seconds and disk I/O. These happen in many short-lived processes of one host and are not stored elsewhere; the
  client's mmap files add them up across processes (dead ones included, as counters should).

Host CPU, memory, disk and network are read with psutil at scrape time (:class:`HostCollector`), and the scraping
process's own ``process_*`` figures by the client's ProcessCollector.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator

import psutil
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from connectors.http import RequestRecord

from .constants import JOB_DURATION_BUCKETS
from .usage import usage_add

logger = logging.getLogger(__name__)

REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

EXTERNAL_REQUESTS = Counter(
    "dataops_external_requests", "HTTP requests to external APIs by system and status (none: no reply)",
    ["system", "status"],
)  # fmt: skip
EXTERNAL_REQUEST_SECONDS = Histogram(
    "dataops_external_request_duration_seconds", "Wall time of HTTP requests to external APIs", ["system"],
    buckets=REQUEST_BUCKETS,
)  # fmt: skip
BIGQUERY_BYTES_BILLED = Counter("dataops_bigquery_bytes_billed", "Bytes BigQuery billed for finished query jobs")
PROCESS_CPU_SECONDS = Counter(
    "dataops_process_cpu_seconds", "CPU seconds used by this project's processes, by role", ["role"]
)
PROCESS_DISK_IO_BYTES = Counter(
    "dataops_process_disk_io_bytes", "Disk bytes read and written by this project's processes", ["role", "direction"]
)

_role = "job" if "run_job" in sys.argv else "web"
_process_lock = threading.Lock()
_process_last: dict[str, float] = {}


def multiprocess_mode() -> bool:
    """True when metrics are shared between processes through PROMETHEUS_MULTIPROC_DIR."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def process_role_set(role: str) -> None:
    """Name this process's role in the process metrics (web, worker, job)."""
    global _role
    _role = role


def request_observe(record: RequestRecord) -> None:
    """The connectors' request hook: count, time and buffer usage for the database (no I/O here)."""
    if record.requests:
        EXTERNAL_REQUESTS.labels(record.system, str(record.status) if record.status else "none").inc(record.requests)
        EXTERNAL_REQUEST_SECONDS.labels(record.system).observe(record.duration_s)
    if record.bytes_billed:
        BIGQUERY_BYTES_BILLED.inc(record.bytes_billed)
    usage_add(
        system=record.system,
        requests=record.requests,
        error=record.outcome != "ok",
        throttled=record.outcome == "throttled",
        duration_s=record.duration_s,
        bytes_billed=record.bytes_billed,
    )


def process_stats_update() -> dict[str, float]:
    """Add this process's CPU seconds and disk I/O since the last update to the role's counters."""
    try:
        proc = psutil.Process()
        times = proc.cpu_times()
        now = {"cpu": float(times.user + times.system)}
        try:
            io = proc.io_counters()
            now.update(read=float(io.read_bytes), write=float(io.write_bytes))
        except (AttributeError, psutil.Error):  # not on every platform
            pass
    except psutil.Error:
        return {}
    with _process_lock:
        delta = {key: max(value - _process_last.get(key, 0.0), 0.0) for key, value in now.items()}
        _process_last.update(now)
    PROCESS_CPU_SECONDS.labels(_role).inc(delta.get("cpu", 0.0))
    for direction in ("read", "write"):
        if direction in delta:
            PROCESS_DISK_IO_BYTES.labels(_role, direction).inc(delta[direction])
    return now


class DatabaseCollector:
    """Figures whose truth is the database, computed at scrape time (see the module docstring)."""

    def collect(self) -> Iterator[Metric]:
        from .selectors import metrics_figures

        figures = metrics_figures()
        runs = CounterMetricFamily("dataops_job_runs", "Job runs by job and status", labels=["job", "status"])
        for (job, status), count in sorted(figures["runs"].items()):
            runs.add_metric([job, status], count)
        yield runs

        duration = HistogramMetricFamily(
            "dataops_job_duration_seconds", "Duration of finished job runs (dry runs excluded)", labels=["job"]
        )
        for job, hist in sorted(figures["durations"].items()):
            buckets = [(_bound(b), hist["buckets"][b]) for b in JOB_DURATION_BUCKETS] + [("+Inf", hist["count"])]
            duration.add_metric([job], buckets, sum_value=hist["sum"])
        yield duration

        for name, key, text in (
            ("dataops_job_rows_processed", "rows", "Rows processed by finished job runs"),
            ("dataops_job_cells_processed", "cells", "Sheet cells written by finished job runs"),
            ("dataops_job_api_calls", "api_calls", "External API calls made by finished job runs"),
            ("dataops_job_bytes_billed", "bytes_billed", "BigQuery bytes billed to finished job runs"),
            ("dataops_job_cpu_seconds", "cpu_s", "CPU seconds used by finished job runs"),
        ):
            family = CounterMetricFamily(name, text, labels=["job"])
            for job, volume in sorted(figures["volume"].items()):
                family.add_metric([job], volume[key])
            yield family

        score = GaugeMetricFamily(
            "dataops_quality_score", "Latest quality score per dataset (0-100)", labels=["dataset"]
        )
        for dataset, value in sorted(figures["quality"].items()):
            score.add_metric([dataset], value)
        yield score

        queued = GaugeMetricFamily(
            "dataops_job_runs_waiting", "Job runs queued or triggered, not started", labels=["job"]
        )
        age = GaugeMetricFamily(
            "dataops_job_runs_waiting_oldest_age_seconds", "Age of the oldest waiting job run", labels=["job"]
        )
        for job, (count, oldest_s) in sorted(figures["waiting"].items()):
            queued.add_metric([job], count)
            age.add_metric([job], oldest_s)
        yield queued
        yield age

        depth = GaugeMetricFamily(
            "dataops_celery_queue_depth", "Messages waiting in the Celery queue", labels=["queue"]
        )
        for queue, count in sorted(figures["celery"].items()):
            depth.add_metric([queue], count)
        yield depth

        used = GaugeMetricFamily("dataops_quota_used", "Quota used in its current window", labels=["system", "quota"])
        limit = GaugeMetricFamily("dataops_quota_limit", "Quota limit of its window", labels=["system", "quota"])
        for (system, quota), (value, cap) in sorted(figures["quotas"].items()):
            used.add_metric([system, quota], value)
            limit.add_metric([system, quota], cap)
        yield used
        yield limit

        compliance = GaugeMetricFamily(
            "dataops_sla_compliance_ratio", "Share of SLA checks met over the last 30 days", labels=["sla", "job"]
        )
        checks = GaugeMetricFamily("dataops_sla_checks", "SLA checks over the last 30 days", labels=["sla", "met"])
        for (sla, job), (met, total) in sorted(figures["sla"].items()):
            compliance.add_metric([sla, job], met / total if total else 1.0)
            checks.add_metric([sla, "true"], met)
            checks.add_metric([sla, "false"], total - met)
        yield compliance
        yield checks

        incidents = GaugeMetricFamily(
            "dataops_incidents_open", "Unresolved incidents by class and escalation level", labels=["class", "level"]
        )
        for (klass, level), count in sorted(figures["incidents"].items()):
            incidents.add_metric([klass, str(level)], count)
        yield incidents

        useful, total = figures["satisfaction"]
        satisfaction = GaugeMetricFamily(
            "dataops_user_satisfaction_ratio", "Share of 'was this useful?' answers that said yes (last 30 days)"
        )
        satisfaction.add_metric([], useful / total if total else 0.0)
        yield satisfaction
        answers = GaugeMetricFamily("dataops_user_feedback_answers", "Feedback answers (last 30 days)")
        answers.add_metric([], total)
        yield answers


class HostCollector:
    """The scraping host's CPU, memory, disk and network, read with psutil."""

    def __init__(self, *, disk_path: str) -> None:
        self.disk_path = disk_path

    def collect(self) -> Iterator[Metric]:
        from .selectors import host_figures

        figures = host_figures(disk_path=self.disk_path)
        cpu = GaugeMetricFamily("dataops_host_cpu_percent", "Host CPU use (percent since the previous reading)")
        cpu.add_metric([], figures["cpu_percent"])
        yield cpu
        memory = GaugeMetricFamily("dataops_host_memory_bytes", "Host memory", labels=["state"])
        memory.add_metric(["used"], figures["memory_used_bytes"])
        memory.add_metric(["total"], figures["memory_total_bytes"])
        yield memory
        disk = GaugeMetricFamily("dataops_host_disk_bytes", "Disk of the data directory", labels=["path", "state"])
        disk.add_metric([self.disk_path, "used"], figures["disk_used_bytes"])
        disk.add_metric([self.disk_path, "total"], figures["disk_total_bytes"])
        yield disk
        network = CounterMetricFamily(
            "dataops_host_network_bytes", "Host network bytes since boot", labels=["direction"]
        )
        network.add_metric(["sent"], figures["net_sent_bytes"])
        network.add_metric(["received"], figures["net_recv_bytes"])
        yield network
        load = GaugeMetricFamily("dataops_host_load1", "Host load average over one minute")
        load.add_metric([], figures["load1"])
        yield load


class _DefaultRegistry:
    """The process's own default registry, forwarded (single-process mode)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def _bound(value: float) -> str:
    return str(float(value))


def metrics_render(*, disk_path: str) -> bytes:
    """The Prometheus text exposition of every metric (see the module docstring for the sources)."""
    process_stats_update()
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_mode():
        multiprocess.MultiProcessCollector(registry)
        ProcessCollector(registry=registry)
    else:
        registry.register(_DefaultRegistry())  # type: ignore[arg-type]
    registry.register(DatabaseCollector())  # type: ignore[arg-type]
    registry.register(HostCollector(disk_path=disk_path))  # type: ignore[arg-type]
    return generate_latest(registry)

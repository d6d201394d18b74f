"""Monitoring's hooks on Celery's task events, connected by ``dataops_site.celery`` when the Celery app is loaded.

Kept out of ``MonitoringConfig.ready()`` so that a process that never touches Celery (``run_job``, one per Airflow
task) does not import it (issue 15). Imports nothing of Django's at module level: a worker loads the Celery app
before Django's apps are ready.
"""

from __future__ import annotations

from typing import Any


def _usage_flush(**_: Any) -> None:
    from .usage import usage_flush_safely

    usage_flush_safely()


def _worker_role(**_: Any) -> None:
    from .metrics import process_role_set

    process_role_set("worker")


def celery_hooks_connect() -> None:
    """Flush the per-minute API usage when a task ends; label worker processes in the metrics. Idempotent."""
    from celery.signals import task_postrun, worker_process_init

    task_postrun.connect(_usage_flush, weak=False, dispatch_uid="monitoring_usage_flush")
    worker_process_init.connect(_worker_role, weak=False, dispatch_uid="monitoring_worker_role")

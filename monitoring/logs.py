"""Structured logs: a context (run id, job, actor, request id) carried by a context variable and stamped on every
log record by :class:`LogContextFilter`, so JSON lines (``DJANGO_LOG_FORMAT=json``, python-json-logger's
formatter) let a log system follow one run across the web process, a Celery worker and an Airflow task.

This module is loaded by the logging configuration, before the apps: it imports nothing of Django's models.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Iterator
from typing import Any

# The fields every record carries (empty when unknown). "actor" is a username or a system label.
CONTEXT_FIELDS = ("run_id", "job", "actor", "request_id", "dag_id", "dag_run_id")
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("dataops_log_context", default={})  # noqa: B039


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields to every log record emitted inside the block (nested blocks add to the outer ones)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v not in (None, "")}})
    try:
        yield
    finally:
        _context.reset(token)


def log_context_get() -> dict[str, Any]:
    """The current context (a copy)."""
    return dict(_context.get())


class LogContextFilter(logging.Filter):
    """Stamps the current context on each record (``record.run_id``, ``record.job``...; '' when unset).

    Airflow runs ``manage.py run_job`` with ``AIRFLOW_CTX_DAG_ID``/``AIRFLOW_CTX_DAG_RUN_ID`` in the environment of
    its tasks; those fill ``dag_id``/``dag_run_id`` when the run itself did not.
    """

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self._airflow = {
            "dag_id": os.environ.get("AIRFLOW_CTX_DAG_ID", ""),
            "dag_run_id": os.environ.get("AIRFLOW_CTX_DAG_RUN_ID", ""),
        }

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        for field in CONTEXT_FIELDS:
            if not getattr(record, field, None):
                setattr(record, field, context.get(field, self._airflow.get(field, "")))
        return True


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """The ``LOGGING`` dict for settings: JSON lines (``fmt="json"``) or plain text, both with the context."""
    fields = ["asctime", "levelname", "name", "message", "process", *CONTEXT_FIELDS]
    formatters: dict[str, Any] = {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [run=%(run_id)s job=%(job)s actor=%(actor)s]: %(message)s"
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": fields,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    }
    if fmt not in formatters:
        raise ValueError(f"DJANGO_LOG_FORMAT must be json or plain, got {fmt!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "monitoring.logs.LogContextFilter"}},
        "formatters": formatters,
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": fmt, "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"werkzeug": {"level": "WARNING"}, "urllib3": {"level": "WARNING"}},
    }

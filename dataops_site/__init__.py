"""The project package. The Celery app is loaded when first asked for (``dataops_site.celery_app``, ``celery -A
dataops_site``, or a ``tasks`` module): importing Celery costs about 0.2 s, which every ``run_job`` process (one per
Airflow task) would otherwise pay at start-up without sending a task (issue 15)."""

from typing import Any

__all__ = ("celery_app",)


def __getattr__(name: str) -> Any:
    if name == "celery_app":
        from .celery import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

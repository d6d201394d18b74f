"""The Celery app. Broker and eager mode come from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dataops_site.settings")

app = Celery("dataops_site")
app.config_from_object("django.conf:settings", namespace="CELERY")


def beat_schedule_crontabs(schedule: dict) -> dict:
    """Settings name a crontab by its fields (``{"crontab": {"minute": 0, ...}}``) so that loading them does not
    import Celery; the beat gets the ``crontab``."""
    from celery.schedules import crontab

    for entry in schedule.values():
        spec = entry.get("schedule")
        if isinstance(spec, dict) and set(spec) == {"crontab"}:
            entry["schedule"] = crontab(**spec["crontab"])
    return schedule


@app.on_after_configure.connect
def _beat_schedule_crontabs(sender: Celery, **_: object) -> None:
    sender.conf.beat_schedule = beat_schedule_crontabs(dict(sender.conf.beat_schedule or {}))


app.autodiscover_tasks()

# The monitoring app's hooks on task events, connected wherever this app is loaded: a worker (``-A dataops_site``)
# and any process that sends or eagerly runs a task (every ``tasks`` module imports this app first).
from monitoring.celery_hooks import celery_hooks_connect  # noqa: E402 - after the app exists

celery_hooks_connect()

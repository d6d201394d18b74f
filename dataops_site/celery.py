"""The Celery app. Broker and eager mode come from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dataops_site.settings")

app = Celery("dataops_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

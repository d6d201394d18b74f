"""Celery tasks of the cleanup app: ids in, one service call, bounded retries of transient errors."""

from celery import shared_task

import dataops_site.celery  # noqa: F401 - the project's Celery app, configured from settings, before any task is sent
from connectors.errors import ConnectorTransientError

from .models import DashboardRestore
from .services import dashboard_restore_execute, dashboard_restore_fail


@shared_task(bind=True, name="cleanup.dashboard_restore", acks_late=True, max_retries=5)
def dashboard_restore_task(self, restore_id: int) -> str:
    """Restore one dashboard; Looker hiccups retry with backoff, then the restore is marked failed."""
    try:
        return dashboard_restore_execute(restore_id=restore_id).status
    except ConnectorTransientError as exc:
        if self.request.retries >= self.max_retries or self.request.is_eager:
            restore = DashboardRestore.objects.get(pk=restore_id)
            return dashboard_restore_fail(restore, f"Looker kept failing: {exc}").status
        raise self.retry(exc=exc, countdown=min(60, 2 ** (self.request.retries + 1))) from exc

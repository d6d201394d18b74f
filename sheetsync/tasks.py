"""Celery tasks of the Sheets sync: ids in, one service call, bounded retries of transient mail errors."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task

import dataops_site.celery  # noqa: F401 - the project's Celery app, configured from settings, before any task is sent

from .services import sync_target_alert_send

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="sheetsync.target_alert", acks_late=True, max_retries=3)
def sync_target_alert_task(self, target_id: int, kind: str) -> int:
    """Open or update a failing target's incident (its ladder tells the owner, then the Data Stewards...)."""
    try:
        return sync_target_alert_send(target_id=target_id, kind=kind)
    except (OSError, smtplib.SMTPException) as exc:
        if self.request.is_eager or self.request.retries >= self.max_retries:
            logger.error("sync target %s: the %s email could not be sent: %s", target_id, kind, exc)
            return 0
        raise self.retry(exc=exc, countdown=min(300, 30 * 2**self.request.retries)) from exc

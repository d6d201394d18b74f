"""Emails of the cleanup job: one notice per owner, the completion report, restore notices."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.roles import CONTENT_ADMIN
from audit.services import audit_log
from orchestration.models import JobRun
from privacy.pseudonym import EMAIL, pseudonymise

from .models import CleanupAction, DashboardRestore

logger = logging.getLogger(__name__)


def _admin_url(name: str, *args: Any) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(name, args=args)


def owner_notices_send(*, job_run: JobRun) -> dict[str, int]:
    """Email every owner whose dashboards were soft-deleted and not yet announced, one message per owner.

    Picks up deletions of earlier runs that died before telling anyone. An owner is marked notified only
    after their message went out, so a mail failure is retried by the next run, never lost.
    """
    actions = (
        CleanupAction.objects.filter(status=CleanupAction.Status.DELETED, owner_notified_at__isnull=True)
        .select_related("dashboard")
        .order_by("dashboard__looker_id")
    )
    by_owner: dict[str, list[CleanupAction]] = defaultdict(list)
    for action in actions:
        by_owner[action.dashboard.owner_email.lower()].append(action)
    counts = {"owners_notified": 0, "dashboards_without_owner_email": 0, "owner_mail_failures": 0}
    for email, owned in by_owner.items():
        if email:
            body = render_to_string(
                "cleanup/email/owner_notice.txt",
                {
                    "owner_name": owned[0].dashboard.owner_name or email,
                    "actions": owned,
                    "inactive_days": job_run.params.get("inactive_days", settings.CLEANUP_INACTIVE_DAYS),
                    "admin_url": _admin_url("admin:cleanup_lookerdashboard_changelist") + "?deleted__exact=1",
                },
            )
            subject = f"{len(owned)} of your Looker dashboards moved to the trash"
            try:
                send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email])
            except Exception as exc:  # noqa: BLE001 - a mail outage must not fail the run; the next run retries
                logger.warning("owner notice to %s failed: %s", email, exc)
                counts["owner_mail_failures"] += 1
                continue
            counts["owners_notified"] += 1
        else:
            counts["dashboards_without_owner_email"] += len(owned)
        # Marked after the send: a crash in between means the owner may hear twice, never not at all.
        with transaction.atomic():
            CleanupAction.objects.filter(pk__in=[a.pk for a in owned]).update(owner_notified_at=timezone.now())
            audit_log(
                action="cleanup.owner_notified",
                object_type="owner",
                object_id=pseudonymise(email, domain=EMAIL) or "(no email)",
                data={"looker_ids": [a.dashboard.looker_id for a in owned], "sent": bool(email)},
            )
    return counts


def content_admin_emails() -> list[str]:
    users = get_user_model().objects.filter(groups__name=CONTENT_ADMIN, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def completion_report_send(*, job_run: JobRun, summary: str, counters: dict[str, Any]) -> int:
    """The run's report to the Content Admins (or ADMINS if there are none)."""
    recipients = content_admin_emails() or [email for _, email in settings.ADMINS]
    if not recipients:
        logger.warning("cleanup report for run %s has no recipients (no Content Admin with an email)", job_run.pk)
        return 0
    failed = job_run.cleanup_actions.filter(status=CleanupAction.Status.FAILED).select_related("dashboard")
    body = render_to_string(
        "cleanup/email/completion_report.txt",
        {
            "run": job_run,
            "summary": summary,
            "counters": sorted(counters.items()),
            "failed": failed,
            "run_url": _admin_url("admin:orchestration_jobrun_change", job_run.pk),
        },
    )
    try:
        send_mail(
            f"Looker cleanup run #{job_run.pk}: {counters.get('deleted', 0)} dashboards soft-deleted",
            body,
            settings.DEFAULT_FROM_EMAIL,
            recipients,
        )
    except Exception as exc:  # noqa: BLE001 - the run did its work; a mail outage must not fail it
        logger.warning("cleanup report for run %s could not be sent: %s", job_run.pk, exc)
        return 0
    return len(recipients)


def owner_restore_notice_send(*, restore: DashboardRestore) -> bool:
    """Tell the owner their dashboard is back (and where, if it was re-created under a new id)."""
    d = restore.dashboard
    if not d.owner_email:
        return False
    body = render_to_string("cleanup/email/restore_notice.txt", {"restore": restore, "dashboard": d})
    try:
        send_mail(f'Your Looker dashboard "{d.title}" is restored', body, settings.DEFAULT_FROM_EMAIL, [d.owner_email])
    except Exception as exc:  # noqa: BLE001 - the restore itself succeeded; log the mail failure
        logger.warning("restore notice to %s failed: %s", d.owner_email, exc)
        return False
    return True

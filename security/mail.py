"""E-mail that may carry classified values: one message per clearance, each masked for its readers (issue 12)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from .clearance import clearance_for

logger = logging.getLogger(__name__)


def mail_by_clearance(*, subject: str, users: Iterable[Any], body_for: Callable[[str], str]) -> int:
    """Send ``body_for(clearance)`` to the users of each clearance (users without an address are skipped).

    Returns how many messages were sent; a failing send is logged, not raised (a notification never stops a job).
    """
    groups: dict[str, set[str]] = defaultdict(set)
    for user in users:
        if user is not None and user.email:
            groups[clearance_for(user)].add(user.email)
    sent = 0
    for clearance, emails in sorted(groups.items()):
        try:
            send_mail(subject, body_for(clearance), settings.DEFAULT_FROM_EMAIL, sorted(emails))
            sent += 1
        except Exception as exc:  # noqa: BLE001
            logger.warning("mail %r to %s reader(s) could not be sent: %s", subject, clearance, exc)
    return sent

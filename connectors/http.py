"""HTTP details shared by the connectors."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from connectors.errors import ConnectorError, ConnectorRateLimited


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def backoff_delay(*, attempt: int, error: ConnectorError, base: float, cap: float, rng: random.Random) -> float | None:
    """Seconds to wait before try ``attempt + 1``: exponential with jitter, at least Retry-After.

    None when the server asks for a longer pause than ``cap``: waiting inline would hold a worker, so the
    caller gets the error (``ConnectorRateLimited.retry_after``) and reschedules.
    """
    delay = min(cap, base * (2 ** (attempt - 1))) * rng.uniform(0.5, 1.0)
    if isinstance(error, ConnectorRateLimited) and error.retry_after is not None:
        if error.retry_after > cap:
            return None
        delay = max(delay, error.retry_after)
    return delay

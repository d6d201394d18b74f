"""API usage per system and minute: counted in memory by each process, flushed to :class:`ApiUsage` rows.

Requests happen in every process (web, Celery workers, jobs started by Airflow) and often in worker threads, so
the connector hook only adds to this process's buffer; the buffer is written to the database at safe points
where the process already talks to it: when a job run finishes, after a web request, after a Celery task, and
on the monitoring tick. Rows are per (system, minute) and incremented, so any number of processes add up.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import F

logger = logging.getLogger(__name__)

_lock = threading.Lock()
# (system, minute) -> [requests, errors, throttled, duration_s, bytes_billed]
_buffer: dict[tuple[str, datetime], list[float]] = defaultdict(lambda: [0, 0, 0, 0.0, 0])


def usage_add(
    *, system: str, requests: int, error: bool, throttled: bool, duration_s: float, bytes_billed: int
) -> None:
    """Count one request (or usage figure) in this process's buffer (thread-safe, no I/O)."""
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    with _lock:
        row = _buffer[(system, minute)]
        row[0] += requests
        row[1] += 1 if (error and requests) else 0
        row[2] += 1 if (throttled and requests) else 0
        row[3] += duration_s
        row[4] += bytes_billed


def usage_pending() -> int:
    """Requests counted but not flushed yet (for tests and the tick)."""
    with _lock:
        return int(sum(row[0] for row in _buffer.values()))


def usage_flush() -> int:
    """Write this process's buffered usage to the database (one upsert per system and minute); returns requests."""
    from .models import ApiUsage

    with _lock:
        pending = dict(_buffer)
        _buffer.clear()
    written = 0
    try:
        for (system, minute), (requests, errors, throttled, duration_s, bytes_billed) in sorted(pending.items()):
            bump = {
                "requests": F("requests") + int(requests),
                "errors": F("errors") + int(errors),
                "throttled": F("throttled") + int(throttled),
                "duration_s": F("duration_s") + float(duration_s),
                "bytes_billed": F("bytes_billed") + int(bytes_billed),
            }
            if not ApiUsage.objects.filter(system=system, minute=minute).update(**bump):
                try:
                    with transaction.atomic():
                        ApiUsage.objects.create(
                            system=system,
                            minute=minute,
                            requests=int(requests),
                            errors=int(errors),
                            throttled=int(throttled),
                            duration_s=float(duration_s),
                            bytes_billed=int(bytes_billed),
                        )
                except IntegrityError:  # another process created the minute's row meanwhile
                    ApiUsage.objects.filter(system=system, minute=minute).update(**bump)
            written += int(requests)
    except Exception:
        # Put back what was not written, so the next flush tries again.
        with _lock:
            for key, values in pending.items():
                row = _buffer[key]
                for index, value in enumerate(values):
                    row[index] += value
        raise
    return written


def usage_flush_safely() -> None:
    """Flush, logging instead of raising (for hooks that must never break what they follow)."""
    if not usage_pending() and not _buffer:
        return
    try:
        usage_flush()
    except Exception:  # noqa: BLE001 - monitoring must not break a request or a task
        logger.warning("could not flush API usage to the database; kept for the next flush", exc_info=True)

"""HTTP details shared by the connectors: Retry-After, the backoff rule, and the one request hook."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from connectors.errors import ConnectorError, ConnectorRateLimited

if TYPE_CHECKING:
    from requests import Session

logger = logging.getLogger(__name__)


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


# --------------------------------------------------------------------------------------------
# The one request hook: every connector reports each HTTP request it sends here
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request a connector sent (each retry is a request of its own), or a usage figure.

    ``status`` is the HTTP status, or None when no reply came (timeout, connection error). ``requests`` is 1
    for a request and 0 for a pure usage report, such as the bytes BigQuery billed for a finished query job.
    """

    system: str
    method: str
    status: int | None
    duration_s: float
    requests: int = 1
    bytes_billed: int = 0

    @property
    def outcome(self) -> str:
        """``ok``, ``client_error``, ``throttled`` (429), ``server_error`` or ``network_error``."""
        if self.status is None:
            return "network_error"
        if self.status == 429:
            return "throttled"
        if self.status >= 500:
            return "server_error"
        if self.status >= 400:
            return "client_error"
        return "ok"


RequestObserver = Callable[[RequestRecord], None]
_observers: list[RequestObserver] = []
_observers_lock = threading.Lock()


def request_observer_add(observer: RequestObserver) -> None:
    """Register a function called with every :class:`RequestRecord` (the monitoring app registers one).

    Connectors never import whoever watches them: they report to :func:`request_record` and the registered
    observers get told. Adding the same function twice has no effect.
    """
    with _observers_lock:
        if observer not in _observers:
            _observers.append(observer)


def request_observer_remove(observer: RequestObserver) -> None:
    """Unregister an observer."""
    with _observers_lock:
        if observer in _observers:
            _observers.remove(observer)


def request_record(
    *, system: str, method: str, status: int | None, duration_s: float, requests: int = 1, bytes_billed: int = 0
) -> None:
    """Report one request (or a usage figure) to the observers. Never raises: watching must not break a call."""
    record = RequestRecord(
        system=system,
        method=method.upper(),
        status=status,
        duration_s=max(duration_s, 0.0),
        requests=requests,
        bytes_billed=max(int(bytes_billed or 0), 0),
    )
    for observer in list(_observers):
        try:
            observer(record)
        except Exception:  # noqa: BLE001 - an observer's bug is logged, the connector carries on
            logger.exception("request observer %r failed", observer)


@contextmanager
def request_timed(*, system: str, method: str) -> Iterator[dict[str, Any]]:
    """Time one request and report it: ``with request_timed(system=..., method=...) as r: ...; r["status"] = 200``.

    The status stays None (no reply) unless the block sets it; a request that raises is reported too.
    """
    info: dict[str, Any] = {"status": None}
    started = time.perf_counter()
    try:
        yield info
    finally:
        request_record(system=system, method=method, status=info["status"], duration_s=time.perf_counter() - started)


def request_hook_install(session: Session, *, system: str) -> Session:
    """Make every request of a ``requests`` session report to :func:`request_record` (http and https)."""
    from connectors.http_adapter import TimedHTTPAdapter

    for prefix in ("https://", "http://"):
        current = session.adapters.get(prefix)
        if not isinstance(current, TimedHTTPAdapter):
            session.mount(prefix, TimedHTTPAdapter(system=system, like=current))
    return session


def __getattr__(name: str) -> Any:
    # The adapter lives apart so that importing this module (the monitoring app does at start-up) does not
    # import requests (issue 15: run_job start-up).
    if name == "TimedHTTPAdapter":
        from connectors.http_adapter import TimedHTTPAdapter

        return TimedHTTPAdapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Generic outgoing webhooks (Slack-compatible JSON): the one module that posts alerts to chat tools."""

from __future__ import annotations

from typing import Any

import requests

from connectors.errors import (
    ConnectorAuthError,
    ConnectorError,
    ConnectorNotFound,
    ConnectorRateLimited,
    ConnectorRequestError,
    ConnectorTransientError,
)
from connectors.http import request_hook_install, retry_after_seconds

SYSTEM = "webhook"


def webhook_post(*, url: str, payload: dict[str, Any], timeout: float = 10.0) -> int:
    """POST ``payload`` as JSON to ``url`` (one try; the caller retries later); returns the HTTP status.

    Raises the connector exception family: 429 ``ConnectorRateLimited``, 5xx/timeouts ``ConnectorTransientError``,
    401/403 ``ConnectorAuthError``, 404 ``ConnectorNotFound``, other 4xx ``ConnectorRequestError``.
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"a webhook URL must be http(s), got {url!r}")
    with requests.Session() as session:
        request_hook_install(session, system=SYSTEM)
        try:
            reply = session.post(url, json=payload, timeout=timeout)
        except requests.Timeout as exc:
            raise ConnectorTransientError(f"webhook {url} timed out after {timeout:g}s", system=SYSTEM) from exc
        except requests.RequestException as exc:
            raise ConnectorTransientError(f"webhook {url} unreachable: {exc}", system=SYSTEM) from exc
    if reply.ok:
        return reply.status_code
    message = f"webhook {url} answered HTTP {reply.status_code}: {' '.join(reply.text.split())[:200]}"
    error: ConnectorError
    if reply.status_code == 429:
        error = ConnectorRateLimited(
            message, retry_after=retry_after_seconds(reply.headers.get("Retry-After")), status=429, system=SYSTEM
        )
    elif reply.status_code >= 500 or reply.status_code == 408:
        error = ConnectorTransientError(message, status=reply.status_code, system=SYSTEM)
    elif reply.status_code in (401, 403):
        error = ConnectorAuthError(message, status=reply.status_code, system=SYSTEM)
    elif reply.status_code == 404:
        error = ConnectorNotFound(message, status=404, system=SYSTEM)
    else:
        error = ConnectorRequestError(message, status=reply.status_code, system=SYSTEM)
    raise error

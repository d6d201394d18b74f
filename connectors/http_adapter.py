"""The requests transport adapter that reports every request through :func:`connectors.http.request_record`.

Apart from ``connectors.http`` so that watching requests (the monitoring app, at start-up) does not import requests.
"""

from __future__ import annotations

from typing import Any

from requests import PreparedRequest, Response
from requests.adapters import BaseAdapter, HTTPAdapter

from connectors.http import request_timed


class TimedHTTPAdapter(HTTPAdapter):
    """A requests transport adapter that reports every request it sends through :func:`request_record`."""

    def __init__(self, *, system: str, like: BaseAdapter | None = None) -> None:
        options: dict[str, Any] = {}
        if isinstance(like, HTTPAdapter):  # keep the pool sizes and urllib3 retries of the adapter it replaces
            options = {
                "pool_connections": like._pool_connections,
                "pool_maxsize": like._pool_maxsize,
                "max_retries": like.max_retries,
                "pool_block": like._pool_block,
            }
        super().__init__(**options)
        self.system = system

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        """Send, then report the request with its status and wall time."""
        with request_timed(system=self.system, method=request.method or "GET") as timed:
            response = super().send(request, *args, **kwargs)
            timed["status"] = response.status_code
        return response

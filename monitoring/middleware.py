"""Web requests: the log context (actor, request id) for every line a request logs, and the API usage flush."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .logs import log_context
from .usage import usage_flush_safely, usage_pending


class MonitoringMiddleware:
    """Sets the log context of a request (``X-Request-ID`` is kept when the proxy sent one) and, after the
    response, writes the API usage the request caused (most requests cause none and skip the write)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = (request.headers.get("X-Request-ID") or uuid.uuid4().hex)[:64]
        user = getattr(request, "user", None)
        actor = user.get_username() if user is not None and user.is_authenticated else "anonymous"
        with log_context(request_id=request_id, actor=actor):
            response = self.get_response(request)
        if usage_pending():
            usage_flush_safely()
        response.headers.setdefault("X-Request-ID", request_id)
        return response

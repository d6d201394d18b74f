"""Scoped throttles: API writes per user, anonymous requests per address, and API token creation per user (on the
admin's own-tokens page). Rates are settings (``API_THROTTLE_*``); a throttled request answers 429 with
Retry-After. Failed logins (admin, and so the browsable API's session) are django-axes' (lockouts)."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


class WriteRateThrottle(UserRateThrottle):
    """Unsafe methods (POST, PATCH, ...) per user: a script that loops on a write is slowed, reads are not."""

    scope = "writes"

    def allow_request(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


class CostlyReadThrottle(UserRateThrottle):
    """Reads that call an outside service per request (a sales query's BigQuery dry-run estimate) per user."""

    scope = "costly_reads"


class TokenCreateThrottle(SimpleRateThrottle):
    """API tokens created per user (every create asked for, read or write scope)."""

    scope = "token_create"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


def token_create_wait(request) -> float | None:
    """None when ``request.user`` may create a token now; else the seconds to wait."""
    throttle = TokenCreateThrottle()
    if throttle.allow_request(request, None):
        return None
    return throttle.wait() or 1.0

"""Each person's time zone: activated for their requests, set from the browser's default on their first home visit.

The zone is kept in ``console.UserProfile`` and cached in the session (``console_tz``), so a request costs no
query once the session knows it. Times are shown in that zone with its name (``console/formats``: ``T``).
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from django.utils import timezone

SESSION_KEY = "console_tz"


def _zone_of(request) -> str:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    session = request.session
    if SESSION_KEY not in session:
        from .models import UserProfile

        session[SESSION_KEY] = UserProfile.objects.filter(user=user).values_list("time_zone", flat=True).first() or ""
    return session[SESSION_KEY]


class TimeZoneMiddleware:
    """Activates the person's zone (blank: the server's TIME_ZONE) for the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = _zone_of(request)
        try:
            timezone.activate(zoneinfo.ZoneInfo(zone)) if zone else timezone.deactivate()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def time_zone_context(request) -> dict[str, Any]:
    """For the home: the zone in use, whether the person set one, and the zones to choose from."""
    zone = _zone_of(request)
    return {
        "time_zone": zone or timezone.get_default_timezone_name(),
        "time_zone_set": bool(zone),
        "time_zones": sorted(zoneinfo.available_timezones()),
    }

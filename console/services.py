"""Writes of the console: a person's time zone."""

from __future__ import annotations

import zoneinfo
from typing import Any

from django.db import transaction

from audit.services import audit_log

from .models import UserProfile


class TimeZoneError(ValueError):
    """The zone is not an IANA time zone name this server knows."""


def time_zone_valid(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 64 or name not in zoneinfo.available_timezones():
        raise TimeZoneError(f"unknown time zone {name[:64]!r}: use an IANA name such as Europe/Paris")
    return name


@transaction.atomic
def user_time_zone_set(*, user: Any, time_zone: str, source: str) -> UserProfile:
    """Set ``user``'s time zone (from the browser's default, or chosen); a browser default never overrides a choice."""
    zone = time_zone_valid(time_zone)
    profile, _ = UserProfile.objects.select_for_update().get_or_create(user=user)
    if source == "browser" and profile.time_zone_source == "chosen":
        return profile
    if profile.time_zone == zone and profile.time_zone_source == source:
        return profile
    previous = profile.time_zone
    profile.time_zone, profile.time_zone_source = zone, source
    profile.save(update_fields=["time_zone", "time_zone_source", "updated_at"])
    audit_log(
        action="console.time_zone_set",
        obj=profile,
        data={"time_zone": zone, "previous": previous, "source": source},
        actor=user,
    )
    return profile

"""What the console keeps per person: their time zone (set from the browser's default, changeable on the home)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class UserProfile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_profile")
    time_zone = models.CharField(
        max_length=64, blank=True, help_text="an IANA zone (Europe/Paris); blank: the server's (TIME_ZONE)"
    )
    time_zone_source = models.CharField(
        max_length=10, blank=True, choices=[("browser", "the browser's default"), ("chosen", "chosen by the person")]
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"profile of user #{self.user_id}"

"""What the project keeps about each API token beyond django-rest-knox's ``AuthToken`` (which holds only the
SHA-512 digest of the key, its 15-character non-secret prefix, and its expiry): a name, the scope (read, or
read-write), the approval behind a write scope, who issued and revoked it, and when it was last used.

A user holds several tokens. A write-scope token is approved first (the approvals app) and only then issued, to
its owner, who sees the key once; nobody else ever does. ``accounts.authentication.ScopedTokenAuthentication``
enforces the scope.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """One named API token of one user: its scope, expiry, last use, and (when revoked) who revoked it."""

    class Scope(models.TextChoices):
        READ = "read", "Read only (GET, HEAD, OPTIONS)"
        WRITE = "write", "Read and write (needs a second Platform Admin's approval)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="what it is for, e.g. 'nightly export'")
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.READ)
    # knox's token (digest of the key, expiry); null until issued, and again once revoked or expired.
    knox_token = models.OneToOneField(
        "knox.AuthToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="meta"
    )
    token_key = models.CharField(max_length=25, blank=True, help_text="the key's first characters (not a secret)")
    lifetime_days = models.PositiveIntegerField(help_text="days from issue to expiry")
    # The approvals app's request (by id: accounts does not depend on the approvals app's migrations).
    approval_id = models.PositiveIntegerField(null=True, blank=True, help_text="the approved request (write scope)")
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    issued_at = models.DateTimeField(null=True, blank=True, help_text="when the key was made and shown (once)")
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["user_id", "-created_at"]
        verbose_name = "API token"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scope="read") | models.Q(approval_id__isnull=False),
                name="api_token_write_scope_has_approval",
            ),
            models.UniqueConstraint(
                fields=["user", "name"], condition=models.Q(revoked_at__isnull=True), name="api_token_live_name_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"API token '{self.name}' of {self.user}"

    @property
    def status(self) -> str:
        from django.utils import timezone

        if self.revoked_at:
            return "revoked"
        if self.issued_at is None:
            return "approved, waiting to be collected"
        if self.knox_token_id is None or (self.expires_at and self.expires_at <= timezone.now()):
            return "expired"
        return "active"

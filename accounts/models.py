"""What the project keeps about API tokens beyond DRF's ``Token``: the scope, the approval behind a write scope,
and whether the owner has seen the key.

DRF's token has no scope: a token acts as its user with every permission they hold. The scope is kept here, keyed
by the key's SHA-256 (never the key), and enforced by ``accounts.authentication.ScopedTokenAuthentication``: a token
without a row here is read-only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiTokenScope(models.Model):
    """The scope of one API token, who issued it, the approval of a write scope, and when its key was shown."""

    class Scope(models.TextChoices):
        READ = "read", "Read only (GET, HEAD, OPTIONS)"
        WRITE = "write", "Read and write (needs a second Platform Admin's approval)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_token_scopes")
    key_sha256 = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token's key, never the key")
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.READ)
    # The approvals app's request (by id: accounts does not depend on the approvals app's migrations).
    approval_id = models.PositiveIntegerField(null=True, blank=True, help_text="the approved request (write scope)")
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    key_shown_at = models.DateTimeField(
        null=True, blank=True, help_text="when the owner was shown the key (once; never again)"
    )

    class Meta:
        ordering = ["user_id", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scope="read") | models.Q(approval_id__isnull=False),
                name="api_token_write_scope_has_approval",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope} API token of user #{self.user_id}"

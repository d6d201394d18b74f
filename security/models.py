"""Reveals of masked values (issue 12): who may read which record's values in clear, why, and until when."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RevealGrant(models.Model):
    """A user revealed the masked values of one record, giving a reason; the grant lapses at ``expires_at``."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    dataset_or_model = models.CharField(max_length=100)
    object_ref = models.CharField(max_length=255)
    level = models.CharField(max_length=20)
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "dataset_or_model", "object_ref", "expires_at"])]
        permissions = [
            ("reveal_value", "Can reveal masked values (with a reason, for a limited time)"),
            ("view_classification", "Can see the data classification (datasets, columns, levels, clearances)"),
            ("approve_classified_export", "Can approve sending confidential or restricted columns to a sheet"),
        ]

    def __str__(self) -> str:
        return f"{self.user} revealed {self.dataset_or_model} {self.object_ref} until {self.expires_at:%Y-%m-%d %H:%M}"

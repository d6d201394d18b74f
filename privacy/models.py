"""Data-subject requests (what was found and changed about one person, recorded by pseudonym only)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SubjectRequest(models.Model):
    """One erase or pseudonymise request carried out for a person, who is named by pseudonym only."""

    class Kind(models.TextChoices):
        ERASE = "erase", "Erase"
        PSEUDONYMISE = "pseudonymise", "Pseudonymise"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    subject = models.CharField(max_length=100, db_index=True, help_text="the identifier's pseudonym, never the value")
    identifier_kind = models.CharField(max_length=20, help_text="email or customer_id")
    reason = models.TextField(help_text="why (the request's reference, the legal ground)")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    found = models.JSONField(default=dict, help_text="records found per place, before the change")
    changed = models.JSONField(default=dict, help_text="records erased or pseudonymised per place")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [
            ("search_subject", "Can find everything stored about a person"),
            ("erase_subject", "Can erase or pseudonymise a person's data"),
            ("run_retention_purge", "Can run the retention purge"),
            ("view_evidence", "Can view and export compliance evidence"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.subject} (#{self.pk})"

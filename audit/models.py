"""Append-only, hash-chained, signed audit events.

Each event stores the hash of the one before it, so editing or removing any row breaks every hash after
it and ``manage.py audit_verify`` names the first broken link. Each event and the head also carry an HMAC
under a key kept outside the database (``audit.signing``), so a chain re-hashed after an edit, a forged row or
a head moved back is named too; anchors in the backup store (``audit.anchor``) catch removed events. On
PostgreSQL triggers refuse UPDATE, DELETE and TRUNCATE of events, and keep the head moving forward onto the
newest event only (migrations 0002 and 0004).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditChainHead(models.Model):
    """The single row holding the chain's last sequence number and hash.

    Appending updates this row first, which serialises writers on every database (a row lock on
    PostgreSQL, the write lock on SQLite), so two transactions can never chain onto the same head.
    """

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)
    # HMAC of (seq, hash) under AUDIT_HMAC_KEY: a head moved back by hand has no valid signature.
    mac = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        verbose_name = "audit chain head"

    def __str__(self) -> str:
        return f"audit chain head #{self.seq} {self.hash[:16]}"


class AuditEvent(models.Model):
    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(db_index=True, editable=False)
    # No database constraint and no cascade: deleting a user must never touch (UPDATE) an audit row.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        editable=False,
    )
    actor_label = models.CharField(max_length=150, editable=False)
    action = models.CharField(max_length=100, db_index=True, editable=False)
    object_type = models.CharField(max_length=100, blank=True, db_index=True, editable=False)
    object_id = models.CharField(max_length=255, blank=True, db_index=True, editable=False)
    object_repr = models.CharField(max_length=255, blank=True, editable=False)
    job_run_id = models.BigIntegerField(null=True, blank=True, db_index=True, editable=False)
    data = models.JSONField(default=dict, blank=True, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)
    # HMAC of (seq, hash) under AUDIT_HMAC_KEY: a re-hashed or inserted row has no valid signature.
    mac = models.CharField(max_length=64, blank=True, default="", editable=False)

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["object_type", "object_id"]),
            # The audit list's search by actor (issue 11): an equality, never a scan.
            models.Index(fields=["actor_label", "seq"], name="audit_event_actor_seq"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id} by {self.actor_label}"

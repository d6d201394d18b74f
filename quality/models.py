"""Recorded quality runs, their check results, quarantined rows, and the manual-review queue."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from security.crypto import EncryptedJSONField


class QualityRun(models.Model):
    class Gate(models.TextChoices):
        PASS = "pass", "Pass"
        REVIEW = "review", "Manual review"
        FAIL = "fail", "Fail"

    job_run = models.ForeignKey(
        "orchestration.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="quality_runs"
    )
    dataset = models.CharField(max_length=200, db_index=True)
    rows = models.PositiveBigIntegerField()
    rows_quarantined = models.PositiveBigIntegerField(default=0)
    rows_removed = models.PositiveBigIntegerField(default=0, help_text="exact duplicates taken out (not published)")
    score = models.FloatField()
    gate = models.CharField(max_length=10, choices=Gate.choices, db_index=True)
    reasons = models.JSONField(default=list, blank=True)
    duration_s = models.FloatField(default=0)
    # Per dataset when a run records several (order lines and the report): rows, removed, quarantined (and how
    # many of those are kept), score, gate, where it ran; plus what the caller adds (validation bytes...).
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.dataset} quality #{self.pk}: {self.gate} ({self.score:.1f})"


class CheckResult(models.Model):
    quality_run = models.ForeignKey(QualityRun, on_delete=models.CASCADE, related_name="checks")
    dataset = models.CharField(max_length=200, blank=True, help_text="what was checked (lines or the report)")
    name = models.CharField(max_length=200)
    stage = models.CharField(max_length=30)
    severity = models.CharField(max_length=20)
    reason_code = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=10)
    failed_count = models.PositiveBigIntegerField(default=0)
    failed_share = models.FloatField(default=0)
    # Keys of failing rows: encrypted at rest (issue 12), read back as a list.
    sample_keys = EncryptedJSONField(default=list, blank=True)
    message = models.TextField(blank=True)
    gate_effect = models.CharField(max_length=10, blank=True, help_text="what this check did to the gate")
    threshold = models.CharField(max_length=200, blank=True, help_text="failing rows at which it reviews / fails")
    removes = models.BooleanField(default=False, help_text="its rows were removed (exact duplicates), not failed")

    class Meta:
        ordering = ["quality_run_id", "pk"]

    def __str__(self) -> str:
        return f"{self.name}: {self.status} ({self.failed_count})"


class QuarantinedRow(models.Model):
    class Status(models.TextChoices):
        QUARANTINED = "quarantined", "Quarantined"
        REPROCESSED = "reprocessed", "Re-processed and passed"
        STILL_FAILING = "still_failing", "Re-processed, still failing"

    quality_run = models.ForeignKey(QualityRun, on_delete=models.CASCADE, related_name="quarantined_rows")
    dataset = models.CharField(max_length=200, db_index=True)
    row_key = models.CharField(max_length=500, db_index=True)
    reason_codes = models.JSONField(default=list)
    # The row as read, restricted values included: encrypted at rest (issue 12), masked by clearance when shown.
    data = EncryptedJSONField(default=dict)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUARANTINED, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    reprocessed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "pk"]
        permissions = [("reprocess_quarantinedrow", "Can re-process quarantined rows")]

    def __str__(self) -> str:
        return f"{self.dataset} {self.row_key}: {', '.join(self.reason_codes)}"


class ReviewItem(models.Model):
    """A manual-review gate's evidence (checks, failing samples, quarantine) for the approval request that decides
    it: approving the request runs its registered action (e.g. resumes the blocked publish). The status mirrors the
    request's decision."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    quality_run = models.OneToOneField(QualityRun, on_delete=models.CASCADE, related_name="review")
    job_run = models.ForeignKey("orchestration.JobRun", null=True, blank=True, on_delete=models.SET_NULL)
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    approval = models.OneToOneField(
        "approvals.ApprovalRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="review_item"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("decide_reviewitem", "Can approve or reject quality reviews")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False), name="review_decided_has_time"
            )
        ]

    def __str__(self) -> str:
        return f"review #{self.pk}: {self.title} ({self.status})"

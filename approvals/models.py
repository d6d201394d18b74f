"""Approval requests for guarded actions, the decisions on them, and the registered writer of each sheet."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ApprovalRequest(models.Model):
    """A guarded action waiting for (or past) its approval: the action, its exact inputs, who asked and shaped
    it, the role and quorum that may approve it, and what happened when it ran."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired (never ran)"

    class Execution(models.TextChoices):
        NOT_STARTED = "not_started", "Not started"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    action = models.CharField(max_length=100, db_index=True, help_text="a registered action, never an import path")
    title = models.CharField(max_length=300)
    inputs = models.JSONField(help_text="exactly what runs once approved (canonical JSON)")
    inputs_sha256 = models.CharField(max_length=64)
    reason = models.TextField(help_text="why the requester asks for it")
    approver_role = models.CharField(max_length=100)
    approver_permission = models.CharField(max_length=200)
    quorum = models.PositiveSmallIntegerField(default=1)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Who asked when no person did (``schedule``, ``airflow:etl-bot``, ``cli:root``); the user's name otherwise.
    requested_by_label = models.CharField(max_length=150)
    # Everyone who changed the action's inputs (edited the SQL, created the target, started the run).
    shapers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    expires_at = models.DateTimeField(db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    execution = models.CharField(
        max_length=12, choices=Execution.choices, default=Execution.NOT_STARTED, db_index=True
    )
    execution_attempts = models.PositiveSmallIntegerField(default=0)
    execution_started_at = models.DateTimeField(null=True, blank=True)
    execution_finished_at = models.DateTimeField(null=True, blank=True)
    execution_outcome = models.TextField(blank=True, help_text="what running it did, or why it failed")

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "execution"])]
        constraints = [
            models.CheckConstraint(condition=Q(quorum__in=[1, 2]), name="approval_quorum_1_or_2"),
            models.CheckConstraint(
                condition=Q(status="approved") | Q(execution="not_started"), name="approval_runs_only_when_approved"
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False), name="approval_decided_has_time"
            ),
        ]

    def __str__(self) -> str:
        return f"approval #{self.pk}: {self.title} ({self.status})"


class ApprovalDecision(models.Model):
    """One person's approval or rejection of a request."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="decisions")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["request_id", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["request", "actor"], name="approval_one_decision_per_person"),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.decision} #{self.request_id}"


class DestinationWriter(models.Model):
    """The one writer of a spreadsheet's sheet (the sales job, one sync target); a second writer is refused."""

    spreadsheet_id = models.CharField(max_length=200)
    sheet = models.CharField(max_length=200)
    writer = models.CharField(max_length=200, help_text="e.g. sales_report, sheetsync:<target name>")
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    registered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["spreadsheet_id", "sheet"]
        constraints = [
            models.UniqueConstraint(fields=["spreadsheet_id", "sheet"], name="destination_one_writer_per_sheet"),
        ]

    def __str__(self) -> str:
        return f"{self.spreadsheet_id}!{self.sheet} <- {self.writer}"

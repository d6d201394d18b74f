"""One JobRun row per execution of a job, whoever started it."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class JobRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        # Airflow accepted the DAG run; the task has not claimed the JobRun yet.
        TRIGGERED = "triggered", "Triggered in Airflow"
        # Airflow could not be asked to run it (down, credentials refused, unknown DAG): see ``error``.
        FAILED_TO_TRIGGER = "failed_to_trigger", "Failed to trigger"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        CLI = "cli", "Command line"
        ADMIN = "admin", "Admin"
        API = "api", "REST API"
        SCHEDULE = "schedule", "Schedule"
        AIRFLOW = "airflow", "Airflow"
        APPROVAL = "approval", "Approved request"

    job = models.CharField(max_length=50, db_index=True)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="job_runs"
    )
    # Who answers for the run: the person who started it, else the named principal of a run without one (the
    # schedule's owner, the Airflow user who triggered it, the shell user of a CLI run). Approvals apply the
    # four-eyes rule to this user; the label says who it is even when no Django user matches.
    principal = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    principal_label = models.CharField(max_length=150, blank=True)
    # The approval this run carries out (a large cleanup, a costly query): the run does exactly what it pinned.
    approval = models.ForeignKey(
        "approvals.ApprovalRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="job_runs"
    )
    params = models.JSONField(default=dict, blank=True)
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    progress = models.CharField(max_length=255, blank=True)
    counters = models.JSONField(default=dict, blank=True)
    summary = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    celery_task_id = models.CharField(max_length=255, blank=True)
    dag_id = models.CharField(max_length=250, blank=True)
    dag_run_id = models.CharField(max_length=250, blank=True, db_index=True)
    # What Airflow last said about the DAG run: its state, and each task instance with its tries.
    airflow_state = models.CharField(max_length=30, blank=True)
    airflow_tasks = models.JSONField(default=list, blank=True)
    airflow_synced_at = models.DateTimeField(null=True, blank=True)
    # Set by each claim; a run whose token changed was taken over and must stop writing.
    claim_token = models.CharField(max_length=32, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("trigger_jobrun", "Can trigger jobs"),
            ("manage_airflow", "Can pause and unpause Airflow DAGs"),
        ]
        indexes = [models.Index(fields=["job", "status"])]
        constraints = [
            # At most one live run per job, enforced by the database: two claims racing cannot both win.
            models.UniqueConstraint(
                fields=["job"], condition=models.Q(status="running"), name="jobrun_one_running_per_job"
            )
        ]

    def __str__(self) -> str:
        suffix = " (dry run)" if self.dry_run else ""
        return f"{self.job} #{self.pk}{suffix}"

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED, self.Status.FAILED_TO_TRIGGER)

    @property
    def follows_airflow(self) -> bool:
        """True when a DAG run executes this JobRun (its state comes from Airflow)."""
        return bool(self.dag_id and self.dag_run_id)

"""What monitoring keeps: one record per finished job run, API usage per minute, host samples, SLAs and their
checks, the escalation ladder, incidents with their timeline and notifications, feedback, weekly reports."""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q

from .constants import (
    UNRESOLVED,
    Audience,
    EventKind,
    FailureClass,
    Handling,
    IncidentKind,
    IncidentStatus,
    SlaKind,
)


class RunRecord(models.Model):
    """A finished JobRun as monitoring sees it: outcome, duration, volume, quality and failure class.

    Written once per run by the finish hook (or by the tick for runs that ended elsewhere, e.g. failed to trigger),
    so trends and metrics read one narrow table instead of parsing every run's counters.
    """

    job_run = models.OneToOneField("orchestration.JobRun", on_delete=models.CASCADE, related_name="monitoring_record")
    job = models.CharField(max_length=50)
    status = models.CharField(max_length=20)
    dry_run = models.BooleanField(default=False)
    trigger = models.CharField(max_length=20, blank=True)
    requested_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration_s = models.FloatField(null=True, blank=True)
    queue_wait_s = models.FloatField(null=True, blank=True)
    rows = models.PositiveBigIntegerField(default=0)
    cells = models.PositiveBigIntegerField(default=0)
    api_calls = models.PositiveBigIntegerField(default=0)
    bytes_billed = models.PositiveBigIntegerField(default=0)
    quality_score = models.FloatField(null=True, blank=True)
    failure_class = models.CharField(max_length=20, choices=FailureClass.choices, blank=True)
    cpu_s = models.FloatField(null=True, blank=True, help_text="CPU seconds the run used in its process")
    peak_rss_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-finished_at", "-pk"]
        indexes = [models.Index(fields=["job", "finished_at"]), models.Index(fields=["finished_at"])]
        permissions = [
            ("view_operations", "Can view the operations page"),
            ("view_metrics", "Can read the Prometheus metrics"),
        ]

    def __str__(self) -> str:
        return f"{self.job} run #{self.job_run_id}: {self.status}"


class ApiUsage(models.Model):
    """Requests to one external system in one minute, from every process (flushed from each process's buffer)."""

    system = models.CharField(max_length=30)
    minute = models.DateTimeField()
    requests = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0, help_text="replies >= 400 and requests without a reply")
    throttled = models.PositiveBigIntegerField(default=0, help_text="429 replies")
    duration_s = models.FloatField(default=0)
    bytes_billed = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-minute", "system"]
        verbose_name_plural = "API usage"
        constraints = [models.UniqueConstraint(fields=["system", "minute"], name="apiusage_one_row_per_minute")]
        indexes = [models.Index(fields=["minute"])]

    def __str__(self) -> str:
        return f"{self.system} {self.minute:%Y-%m-%d %H:%M}: {self.requests}"


class HostSample(models.Model):
    """CPU, memory, disk and network of one host at one moment (the monitoring tick takes one per host)."""

    host = models.CharField(max_length=100)
    taken_at = models.DateTimeField(db_index=True)
    cpu_percent = models.FloatField()
    memory_percent = models.FloatField()
    memory_used_bytes = models.PositiveBigIntegerField()
    disk_percent = models.FloatField()
    disk_used_bytes = models.PositiveBigIntegerField()
    net_sent_bytes = models.PositiveBigIntegerField(help_text="since boot")
    net_recv_bytes = models.PositiveBigIntegerField(help_text="since boot")
    load1 = models.FloatField(default=0)

    class Meta:
        ordering = ["-taken_at"]

    def __str__(self) -> str:
        return f"{self.host} {self.taken_at:%Y-%m-%d %H:%M}"


class Sla(models.Model):
    """A service level for one job, checked by the monitoring tick; a breach raises an incident."""

    name = models.SlugField(max_length=100, unique=True)
    job = models.CharField(max_length=50, help_text="the job this SLA is about (sheets_sync for freshness)")
    kind = models.CharField(max_length=20, choices=SlaKind.choices)
    day_of_month = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="deadline: done by the end of this day of each month (UTC)"
    )
    within_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="latency: done within N minutes of the request; freshness: synced in N minutes"
    )
    objective_percent = models.FloatField(default=99.0, help_text="the share of checks that must be met")
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "SLA"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.kind == SlaKind.DEADLINE and not (self.day_of_month and 1 <= self.day_of_month <= 28):
            raise ValidationError({"day_of_month": "a monthly deadline needs a day between 1 and 28"})
        if self.kind in (SlaKind.LATENCY, SlaKind.FRESHNESS) and not self.within_minutes:
            raise ValidationError({"within_minutes": "say within how many minutes"})
        if self.objective_percent is not None and not 0 < self.objective_percent <= 100:
            raise ValidationError({"objective_percent": "a share of checks: more than 0, at most 100"})


class SlaCheck(models.Model):
    """One checked period of an SLA (a month, a requested run, a freshness slot): met or breached."""

    sla = models.ForeignKey(Sla, on_delete=models.CASCADE, related_name="checks")
    subject = models.CharField(max_length=100, help_text="2026-05 (deadline), run:42 (latency), slot time (freshness)")
    due_at = models.DateTimeField(db_index=True)
    met = models.BooleanField()
    measured = models.FloatField(null=True, blank=True, help_text="minutes taken, or stale targets")
    detail = models.TextField(blank=True)
    checked_at = models.DateTimeField(auto_now_add=True)
    job_run = models.ForeignKey("orchestration.JobRun", null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-due_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["sla", "subject"], name="slacheck_one_per_subject")]

    def __str__(self) -> str:
        return f"{self.sla} {self.subject}: {'met' if self.met else 'BREACHED'}"


class EscalationStep(models.Model):
    """One rung of an escalation ladder. ``job`` empty is the default ladder; a job's own steps replace it.

    A rung fires while nobody has acknowledged the incident, once it failed ``after_occurrences`` times or
    ``after_minutes`` passed since it was detected, whichever comes first.
    """

    job = models.CharField(max_length=50, blank=True, help_text="empty: the ladder of every job without its own")
    level = models.PositiveSmallIntegerField()
    audience = models.CharField(max_length=30, choices=Audience.choices)
    after_occurrences = models.PositiveIntegerField(null=True, blank=True)
    after_minutes = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["job", "level"]
        constraints = [models.UniqueConstraint(fields=["job", "level"], name="escalationstep_one_per_level")]

    def __str__(self) -> str:
        return f"{self.job or 'default'} level {self.level}: {self.get_audience_display()}"


class Incident(models.Model):
    """A failure (or SLA breach) from detection to resolution, with its handling and escalation state."""

    key = models.CharField(max_length=200, help_text="what the incident is about: job:<name>, sync_target:<id>...")
    kind = models.CharField(max_length=20, choices=IncidentKind.choices, default=IncidentKind.FAILURE)
    failure_class = models.CharField(max_length=20, choices=FailureClass.choices, blank=True)
    handling = models.CharField(max_length=20, choices=Handling.choices, default=Handling.ESCALATE)
    title = models.CharField(max_length=300)
    job = models.CharField(max_length=50, blank=True)
    subject_type = models.CharField(max_length=100, blank=True)
    subject_id = models.CharField(max_length=64, blank=True)
    job_run = models.ForeignKey(
        "orchestration.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
    )
    last_job_run = models.ForeignKey(
        "orchestration.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resume_job_run = models.ForeignKey(
        "orchestration.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=20, choices=IncidentStatus.choices, default=IncidentStatus.OPEN)
    level = models.PositiveSmallIntegerField(default=0, help_text="the highest escalation rung reached")
    occurrences = models.PositiveIntegerField(default=1)
    retries = models.PositiveIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    detected_at = models.DateTimeField()
    alerted_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fixed_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    resumed_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-detected_at", "-pk"]
        permissions = [
            ("acknowledge_incident", "Can acknowledge incidents"),
            ("resume_incident", "Can mark incidents fixed and verify and resume them"),
        ]
        indexes = [models.Index(fields=["status", "detected_at"]), models.Index(fields=["key", "status"])]
        constraints = [
            # One unresolved incident per subject: a repeat failure counts on it instead of opening another.
            models.UniqueConstraint(
                fields=["key"], condition=Q(status__in=[s.value for s in UNRESOLVED]), name="incident_one_open_per_key"
            )
        ]

    def __str__(self) -> str:
        return f"incident #{self.pk}: {self.title}"

    @property
    def is_resolved(self) -> bool:
        return self.status == IncidentStatus.RESOLVED

    @property
    def time_to_acknowledge_s(self) -> float | None:
        return (self.acknowledged_at - self.detected_at).total_seconds() if self.acknowledged_at else None

    @property
    def time_to_resolve_s(self) -> float | None:
        return (self.resolved_at - self.detected_at).total_seconds() if self.resolved_at else None


class IncidentEvent(models.Model):
    """One step of an incident's timeline: what happened, when, and who did it."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=EventKind.choices)
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, default="system")
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M:%S}"


class Notification(models.Model):
    """One alert to deliver (an e-mail to a rung's people, or a webhook post): planned in the escalation's
    transaction, sent after it commits, its outcome recorded; failed ones are retried by the tick."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notifications")
    level = models.PositiveSmallIntegerField()
    channel = models.CharField(max_length=10, choices=Channel.choices)
    recipients = models.JSONField(default=list, help_text="e-mail addresses, or the webhook URL")
    subject = models.CharField(max_length=300)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.channel} level {self.level} for incident #{self.incident_id}: {self.status}"


class Feedback(models.Model):
    """ "Was this useful?" on a report or a review, from one person (their latest answer counts)."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.CharField(max_length=64)
    target = GenericForeignKey("content_type", "object_id")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    useful = models.BooleanField()
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "feedback"
        constraints = [
            models.UniqueConstraint(fields=["content_type", "object_id", "user"], name="feedback_one_per_user")
        ]

    def __str__(self) -> str:
        return f"{'useful' if self.useful else 'not useful'}: {self.content_type.model} {self.object_id}"


class PerformanceReport(models.Model):
    """The weekly performance report: the figures, the text mailed to the Platform Admins, and when."""

    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    job_run = models.ForeignKey("orchestration.JobRun", null=True, blank=True, on_delete=models.SET_NULL)
    figures = models.JSONField(default=dict)
    body = models.TextField()
    recipients = models.JSONField(default=list)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period_end", "-pk"]

    def __str__(self) -> str:
        return f"performance report {self.period_start:%Y-%m-%d}..{self.period_end:%Y-%m-%d}"

"""The monitoring vocabulary in one place: failure classes, incident states, timeline event kinds, handling."""

from __future__ import annotations

from django.db import models


class FailureClass(models.TextChoices):
    """What kind of failure a job run had; decides how the incident is handled."""

    TRANSIENT = "transient", "Transient (5xx, timeout, connection)"
    QUOTA = "quota", "Quota or rate limit"
    AUTHENTICATION = "authentication", "Authentication or permission"
    NOT_FOUND = "not_found", "Not found"
    BAD_DATA = "bad_data", "Bad data or input"
    BUG = "bug", "Bug (unexpected error)"


class Handling(models.TextChoices):
    """What the incident mechanism does with a failure of a class (see ``FAILURE_HANDLING``)."""

    RETRY = "retry", "Retry with backoff, then escalate"
    FALLBACK = "fallback", "Keep the last good output, and escalate"
    ESCALATE = "escalate", "Escalate"


# class -> handling. Transient and quota failures may pass on their own, so they are retried first; bad data keeps
# the last good output (the sheet, the previous report) and tells people; the rest need a person at once.
FAILURE_HANDLING: dict[str, str] = {
    FailureClass.TRANSIENT: Handling.RETRY,
    FailureClass.QUOTA: Handling.RETRY,
    FailureClass.AUTHENTICATION: Handling.ESCALATE,
    FailureClass.NOT_FOUND: Handling.ESCALATE,
    FailureClass.BAD_DATA: Handling.FALLBACK,
    FailureClass.BUG: Handling.ESCALATE,
}


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    FIXED = "fixed", "Fixed (not verified yet)"
    VERIFYING = "verifying", "Verifying (rerun in progress)"
    RESOLVED = "resolved", "Resolved"


UNRESOLVED = (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED, IncidentStatus.FIXED, IncidentStatus.VERIFYING)
# Escalation stops once a person took the incident (acknowledged, said fixed, or asked to verify it).
ESCALATING = (IncidentStatus.OPEN,)


class IncidentKind(models.TextChoices):
    FAILURE = "failure", "Job failure"
    SYNC_TARGET = "sync_target", "Sheets sync target failing"
    SLA_BREACH = "sla_breach", "SLA breach"


class EventKind(models.TextChoices):
    """A step of an incident's timeline."""

    DETECTED = "detected", "Detected"
    RECURRED = "recurred", "Failed again"
    RETRY_SCHEDULED = "retry_scheduled", "Retry scheduled"
    RETRIED = "retried", "Retried"
    FALLBACK = "fallback", "Fallback kept the last good output"
    ALERTED = "alerted", "Alerted"
    ESCALATED = "escalated", "Escalated"
    NOTIFIED = "notified", "Notification delivered"
    NOTIFY_FAILED = "notify_failed", "Notification failed"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    FIXED = "fixed", "Fixed"
    RESUME_REQUESTED = "resume_requested", "Verify and resume requested"
    VERIFIED = "verified", "Verified"
    VERIFICATION_FAILED = "verification_failed", "Verification failed"
    RESUMED = "resumed", "Resumed"
    RESOLVED = "resolved", "Resolved"


class Audience(models.TextChoices):
    """Who an escalation step notifies: the incident's owner, or everyone holding a role."""

    OWNER = "owner", "The owner (the target's owner, or who requested the run)"
    DATA_STEWARDS = "Data Steward", "Data Stewards"
    PLATFORM_ADMINS = "Platform Admin", "Platform Admins"
    CONTENT_ADMINS = "Content Admin", "Content Admins"
    ANALYSTS = "Analyst", "Analysts"


class SlaKind(models.TextChoices):
    DEADLINE = "deadline", "Monthly deadline: a successful run by day N of each month"
    LATENCY = "latency", "Latency: each requested run done within N minutes of the request"
    FRESHNESS = "freshness", "Freshness: every enabled sync target synced within the last N minutes"


# Upper bounds (seconds) of the job-duration histogram buckets (/metrics, the operations page).
JOB_DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

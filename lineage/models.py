"""OpenLineage events as received, and the datasets, runs and people they connect (for the lineage graph).

The database transport stores every event raw (``LineageEvent.payload``, the JSON a backend would receive) and
parses it into ``LineageDataset`` and ``LineageIO`` rows: one row per dataset an event read or wrote. Events for
other transports (HTTP to Marquez, a file, the console) wait in ``LineageOutbox`` until delivered.
"""

from __future__ import annotations

from django.db import models


class LineageDataset(models.Model):
    """A dataset named by the OpenLineage naming conventions (or this project's documented names)."""

    namespace = models.CharField(max_length=300)
    name = models.CharField(max_length=500)
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["namespace", "name"]
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="lineage_dataset_unique")]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class LineageEvent(models.Model):
    """One OpenLineage run event as emitted (the raw JSON) with the fields the graph reads."""

    event_type = models.CharField(max_length=20, db_index=True)
    event_time = models.DateTimeField(db_index=True)
    run_id = models.CharField(max_length=36, db_index=True)
    job_namespace = models.CharField(max_length=300)
    job_name = models.CharField(max_length=300, db_index=True)
    parent_run_id = models.CharField(max_length=36, blank=True, db_index=True)
    parent_job_name = models.CharField(max_length=300, blank=True)
    # The project's JobRun when the event is about one (or a governance action inside one), and the person.
    job_run = models.ForeignKey(
        "orchestration.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="lineage_events"
    )
    actor = models.CharField(max_length=150, blank=True, db_index=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-event_time", "-pk"]
        indexes = [models.Index(fields=["run_id", "event_time"])]

    def __str__(self) -> str:
        return f"{self.event_type} {self.job_name} {self.run_id[:8]}"


class LineageIO(models.Model):
    """A dataset an event read (input) or wrote (output): the edges of the lineage graph."""

    class Direction(models.TextChoices):
        INPUT = "input", "Input"
        OUTPUT = "output", "Output"

    event = models.ForeignKey(LineageEvent, on_delete=models.CASCADE, related_name="io")
    dataset = models.ForeignKey(LineageDataset, on_delete=models.CASCADE, related_name="io")
    direction = models.CharField(max_length=6, choices=Direction.choices)
    # Copied from the event, so the graph's queries need no join to filter by time or run.
    event_time = models.DateTimeField(db_index=True)
    run_id = models.CharField(max_length=36, db_index=True)

    class Meta:
        ordering = ["event_time", "pk"]
        indexes = [models.Index(fields=["dataset", "event_time"])]

    def __str__(self) -> str:
        return f"{self.direction} {self.dataset}"


class LineageOutbox(models.Model):
    """An event waiting for (or having failed) delivery to the transport configured the library's way."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    event = models.ForeignKey(LineageEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "lineage outbox"
        permissions = [("deliver_lineageoutbox", "Can retry lineage deliveries now")]

    def __str__(self) -> str:
        return f"delivery of {self.event} ({self.status})"

"""Looker dashboard inventory, cleanup plans and outcomes, backups, pins and restores."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class LookerDashboard(models.Model):
    """The mirror of one Looker dashboard, refreshed by every cleanup run."""

    looker_id = models.CharField(max_length=255, unique=True)
    title = models.CharField(max_length=500, blank=True)
    folder_id = models.CharField(max_length=255, blank=True, db_index=True)
    folder_name = models.CharField(max_length=255, blank=True)
    owner_id = models.CharField(max_length=255, blank=True, db_index=True)
    owner_name = models.CharField(max_length=255, blank=True)
    owner_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    last_viewed_at = models.DateTimeField(null=True, blank=True)
    last_accessed_at = models.DateTimeField(null=True, blank=True)
    # latest of last viewed / last accessed, else created: what the inactivity policy measures.
    last_activity_at = models.DateTimeField(null=True, blank=True, db_index=True)
    view_count = models.PositiveIntegerField(default=0)
    favorite_count = models.PositiveIntegerField(default=0)
    has_active_schedule = models.BooleanField(default=False)
    is_lookml = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False, db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Looker no longer returns it at all (hard-deleted there); set by the inventory refresh.
    missing_in_looker = models.BooleanField(default=False)
    first_seen_at = models.DateTimeField(default=timezone.now)
    # When an inventory refresh last found something different about it (the refresh itself is on the JobRun).
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["looker_id"]
        permissions = [
            ("restore_lookerdashboard", "Can restore soft-deleted Looker dashboards"),
            ("run_cleanup", "Can run the Looker cleanup job"),
        ]
        indexes = [
            # The admin list's folder filter reads folders by a skip scan of this index (issue 11). The list's
            # order (last_activity_at, looker_id, covering id on PostgreSQL) and the search's trigram indexes
            # are made by migration 0002 according to the database.
            models.Index(fields=["folder_name"], name="cleanup_dash_folder_name"),
        ]

    def __str__(self) -> str:
        return f"{self.title or '(untitled)'} [{self.looker_id}]"


class ProtectedFolder(models.Model):
    """Dashboards in these Looker folders are never cleaned up."""

    folder_id = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255, blank=True)
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name or self.folder_id}"


class DashboardPin(models.Model):
    """An admin's promise that a dashboard stays, with a reason and an expiry."""

    dashboard = models.ForeignKey(LookerDashboard, on_delete=models.CASCADE, related_name="pins")
    reason = models.CharField(max_length=500)
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-expires_at"]

    def __str__(self) -> str:
        return f"pin on {self.dashboard.looker_id} until {self.expires_at:%Y-%m-%d}"

    @property
    def is_active(self) -> bool:
        return self.expires_at > timezone.now()


class DashboardBackup(models.Model):
    """A verified copy of a dashboard in the backup store, addressed by its content hash."""

    dashboard = models.ForeignKey(LookerDashboard, on_delete=models.PROTECT, related_name="backups")
    job_run = models.ForeignKey("orchestration.JobRun", null=True, blank=True, on_delete=models.SET_NULL)
    storage_name = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    has_lookml = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    verified_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["dashboard", "sha256"], name="backup_unique_content")]

    def __str__(self) -> str:
        return f"backup of {self.dashboard.looker_id} ({self.sha256[:12]})"


class CleanupAction(models.Model):
    """One dashboard in one run's plan, and how far it got.

    The row is committed before any call to Looker, so a crash leaves a record of where to resume:
    PLANNED -> BACKED_UP -> DELETED, or FAILED / SKIPPED / REPORTED.
    """

    class Kind(models.TextChoices):
        SOFT_DELETE = "soft_delete", "Soft delete"
        REPORT_LOOKML = "report_lookml", "Report (LookML, cannot be soft-deleted)"

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        BACKED_UP = "backed_up", "Backed up"
        DELETED = "deleted", "Soft-deleted"
        REPORTED = "reported", "Reported"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"
        SUPERSEDED = "superseded", "Taken over by a later run"

    job_run = models.ForeignKey("orchestration.JobRun", on_delete=models.CASCADE, related_name="cleanup_actions")
    dashboard = models.ForeignKey(LookerDashboard, on_delete=models.PROTECT, related_name="cleanup_actions")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.SOFT_DELETE)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLANNED, db_index=True)
    inactive_days = models.PositiveIntegerField(default=0)
    backup = models.ForeignKey(DashboardBackup, null=True, blank=True, on_delete=models.PROTECT)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    deleted_at = models.DateTimeField(null=True, blank=True)
    owner_notified_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["job_run_id", "dashboard__looker_id"]
        constraints = [models.UniqueConstraint(fields=["job_run", "dashboard"], name="action_unique_per_run")]
        indexes = [models.Index(fields=["status", "owner_notified_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.dashboard.looker_id} ({self.status})"


class DashboardRestore(models.Model):
    """A request to bring a soft-deleted (or hard-deleted) dashboard back, and its outcome."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        RESTORED = "restored", "Restored"
        FAILED = "failed", "Failed"

    class Method(models.TextChoices):
        UNDELETE = "undelete", "Undeleted in Looker"
        RECREATE = "recreate", "Re-created from backup"

    dashboard = models.ForeignKey(LookerDashboard, on_delete=models.PROTECT, related_name="restores")
    backup = models.ForeignKey(DashboardBackup, null=True, blank=True, on_delete=models.PROTECT)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    requested_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.REQUESTED, db_index=True)
    method = models.CharField(max_length=20, choices=Method.choices, blank=True)
    new_looker_id = models.CharField(max_length=255, blank=True)
    verified = models.BooleanField(default=False)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            # At most one open restore per dashboard: a double click does not restore twice.
            models.UniqueConstraint(
                fields=["dashboard"], condition=Q(status="requested"), name="restore_one_open_per_dashboard"
            )
        ]

    def __str__(self) -> str:
        return f"restore {self.dashboard.looker_id} ({self.status})"

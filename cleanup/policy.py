"""The inactivity policy: which dashboards a cleanup run may soft-delete, and why the others are kept.

Pure selection over the inventory (no Looker calls), so a dry run, the admin preview and the real run all
see the same plan.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q

from .models import CleanupAction, DashboardPin, LookerDashboard, ProtectedFolder


class KeepReason:
    FAVORITED = "has favourites"
    SCHEDULED = "has an active scheduled delivery"
    PROTECTED_FOLDER = "in a protected folder"
    PINNED = "pinned in the admin"
    TOO_NEW = "created less than inactive_days ago"


@dataclass(frozen=True)
class PlanEntry:
    dashboard_pk: int
    looker_id: str
    title: str
    folder_name: str
    owner_email: str
    last_activity_at: datetime | None
    inactive_days: int
    kind: str

    def as_dict(self) -> dict:
        return {
            "looker_id": self.looker_id,
            "title": self.title,
            "folder": self.folder_name,
            "owner_email": self.owner_email,
            "last_activity_at": self.last_activity_at.isoformat() if self.last_activity_at else None,
            "inactive_days": self.inactive_days,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class CleanupPlan:
    inactive_days: int
    cutoff: datetime
    deletions: list[PlanEntry]
    lookml_reports: list[PlanEntry]
    kept: Counter = field(default_factory=Counter)
    kept_examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def looker_ids(self) -> list[str]:
        return [e.looker_id for e in self.deletions]


def protected_folder_ids() -> set[str]:
    """Folders from the admin plus CLEANUP_PROTECTED_FOLDERS (ids or names)."""
    configured = set(settings.CLEANUP_PROTECTED_FOLDERS)
    ids = set(ProtectedFolder.objects.values_list("folder_id", flat=True))
    if configured:
        ids |= set(
            LookerDashboard.objects.filter(Q(folder_id__in=configured) | Q(folder_name__in=configured))
            .values_list("folder_id", flat=True)
            .distinct()
        )
    return ids


def cleanup_plan_build(*, inactive_days: int, now: datetime) -> CleanupPlan:
    """Inactive dashboards that no rule protects, in Looker-id order; counts of the ones kept, by reason."""
    cutoff = now - timedelta(days=inactive_days)
    protected = protected_folder_ids()
    active_pin = DashboardPin.objects.filter(dashboard=OuterRef("pk"), expires_at__gt=now)
    candidates = (
        LookerDashboard.objects.filter(deleted=False, missing_in_looker=False, last_activity_at__lt=cutoff)
        .annotate(pinned=Exists(active_pin))
        .only(
            "pk",
            "looker_id",
            "title",
            "folder_id",
            "folder_name",
            "owner_email",
            "last_activity_at",
            "created_at",
            "favorite_count",
            "has_active_schedule",
            "is_lookml",
        )
        .order_by("looker_id")
    )
    deletions: list[PlanEntry] = []
    reports: list[PlanEntry] = []
    kept: Counter = Counter()
    examples: dict[str, list[str]] = {}
    for d in candidates.iterator(chunk_size=2000):
        reason = _keep_reason(d, protected=protected, cutoff=cutoff)
        if reason:
            kept[reason] += 1
            examples.setdefault(reason, [])
            if len(examples[reason]) < 5:
                examples[reason].append(d.looker_id)
            continue
        entry = PlanEntry(
            dashboard_pk=d.pk,
            looker_id=d.looker_id,
            title=d.title,
            folder_name=d.folder_name,
            owner_email=d.owner_email,
            last_activity_at=d.last_activity_at,
            inactive_days=(now - d.last_activity_at).days if d.last_activity_at else 0,
            kind=CleanupAction.Kind.REPORT_LOOKML if d.is_lookml else CleanupAction.Kind.SOFT_DELETE,
        )
        (reports if d.is_lookml else deletions).append(entry)
    return CleanupPlan(inactive_days, cutoff, deletions, reports, kept, examples)


def _keep_reason(d: LookerDashboard, *, protected: set[str], cutoff: datetime) -> str:
    if d.favorite_count > 0:
        return KeepReason.FAVORITED
    if d.has_active_schedule:
        return KeepReason.SCHEDULED
    if d.folder_id and d.folder_id in protected:
        return KeepReason.PROTECTED_FOLDER
    if d.pinned:
        return KeepReason.PINNED
    if d.created_at is None or d.created_at >= cutoff:
        return KeepReason.TOO_NEW
    return ""

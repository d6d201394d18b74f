"""Reads for each person's home: what waits for them, what failed or is late, the last run of each job, the sync
targets in trouble. Every section is a bounded number of queries, whatever the size of the tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Max, Q
from django.urls import reverse
from django.utils import timezone

from .links import admin_change_url

LIMIT = 10
RECENT = timedelta(days=7)


@dataclass(frozen=True)
class HomeLine:
    text: str
    url: str
    when: datetime | None = None
    badge: str = ""
    colour: str = "#555"


@dataclass
class HomeSection:
    key: str
    title: str
    lines: list[HomeLine] = field(default_factory=list)
    empty: str = "nothing"
    more_url: str = ""


@dataclass
class Home:
    waiting: list[HomeSection]
    trouble: list[HomeSection]
    last_runs: HomeSection | None
    shortcuts: list[tuple[str, str]]

    @property
    def waiting_count(self) -> int:
        return sum(len(s.lines) for s in self.waiting if s.key != "mine")


def _waiting(user: Any, now: datetime) -> list[HomeSection]:
    from approvals.models import ApprovalRequest
    from approvals.selectors import approvals_decidable_by
    from cleanup.models import DashboardRestore

    sections = []
    decidable = list(
        approvals_decidable_by(user=user).select_related("review_item").order_by("expires_at", "pk")[: 2 * LIMIT]
    )
    reviews = [a for a in decidable if getattr(a, "review_item", None) is not None][:LIMIT]
    approvals = [a for a in decidable if getattr(a, "review_item", None) is None][:LIMIT]
    if user.has_perm("quality.decide_reviewitem") or reviews:
        sections.append(HomeSection(
            "reviews", "Quality reviews you may decide",
            [HomeLine(f"Review #{a.review_item.pk}: {a.review_item.title}",
                      admin_change_url("quality.reviewitem", a.review_item.pk) or "", a.created_at,
                      f"expires {a.expires_at:%Y-%m-%d %H:%M}", "#b26a00") for a in reviews],
            empty="no review waits for you",
            more_url=reverse("admin:quality_reviewitem_changelist") + "?status__exact=pending",
        ))  # fmt: skip
    if user.has_perm("approvals.view_approvalrequest"):
        sections.append(HomeSection(
            "approvals", "Approvals you may decide",
            [HomeLine(f"Approval #{a.pk}: {a.title}", admin_change_url("approvals.approvalrequest", a.pk) or "",
                      a.created_at, f"asked by {a.requested_by_label}", "#b26a00") for a in approvals],
            empty="no approval waits for you",
            more_url=reverse("admin:approvals_approvalrequest_changelist") + "?status__exact=pending",
        ))  # fmt: skip
        mine = list(
            ApprovalRequest.objects.filter(
                requested_by=user, status=ApprovalRequest.Status.PENDING, expires_at__gt=now
            ).order_by("-created_at")[:LIMIT]
        )
        if mine:
            sections.append(HomeSection(
                "mine", "Your requests waiting for someone else",
                [HomeLine(f"Approval #{a.pk}: {a.title}", admin_change_url("approvals.approvalrequest", a.pk) or "",
                          a.created_at, f"needs a {a.approver_role}") for a in mine],
            ))  # fmt: skip
    if user.has_perm("cleanup.view_dashboardrestore"):
        restores = list(
            DashboardRestore.objects.filter(
                Q(status=DashboardRestore.Status.REQUESTED)
                | Q(status=DashboardRestore.Status.FAILED, requested_at__gte=now - RECENT)
            )
            .select_related("dashboard")
            .order_by("-requested_at")[:LIMIT]
        )
        sections.append(HomeSection(
            "restores", "Restores in progress or failed (7 days)",
            [HomeLine(f"Restore of {r.dashboard}", admin_change_url("cleanup.dashboardrestore", r.pk) or "",
                      r.requested_at, r.get_status_display(), "#c62828" if r.status == "failed" else "#1565c0")
             for r in restores],
            empty="no restore in progress",
        ))  # fmt: skip
    return sections


def _trouble(user: Any, now: datetime) -> list[HomeSection]:
    from monitoring.constants import UNRESOLVED
    from monitoring.models import SlaCheck
    from monitoring.selectors import incidents_recent
    from orchestration.models import JobRun
    from sheetsync.models import SyncOutcome, SyncTarget

    sections = []
    if user.has_perm("orchestration.view_jobrun"):
        failed = list(
            JobRun.objects.filter(
                status__in=(JobRun.Status.FAILED, JobRun.Status.FAILED_TO_TRIGGER), created_at__gte=now - RECENT
            ).order_by("-created_at")[:LIMIT]
        )
        sections.append(HomeSection(
            "failed_runs", "Failed runs (7 days)",
            [HomeLine(f"{r}: {(r.error or r.get_status_display()).splitlines()[0][:140]}",
                      admin_change_url("orchestration.jobrun", r.pk) or "", r.created_at, r.get_status_display(),
                      "#c62828") for r in failed],
            empty="no failed run",
            more_url=reverse("admin:orchestration_jobrun_changelist") + "?status__exact=failed",
        ))  # fmt: skip
    if user.has_perm("monitoring.view_incident"):
        incidents = [i for i in incidents_recent(limit=LIMIT) if i.status in UNRESOLVED]
        sections.append(HomeSection(
            "incidents", "Open incidents",
            [HomeLine(i.title, admin_change_url("monitoring.incident", i.pk) or "", i.detected_at,
                      i.get_status_display(), "#c62828") for i in incidents],
            empty="no open incident",
            more_url=reverse("admin:monitoring_incident_changelist"),
        ))  # fmt: skip
    if user.has_perm("monitoring.view_slacheck"):
        misses = list(
            SlaCheck.objects.filter(met=False, due_at__gte=now - RECENT)
            .select_related("sla")
            .order_by("-due_at")[:LIMIT]
        )
        sections.append(HomeSection(
            "sla_misses", "SLA misses (7 days)",
            [HomeLine(f"{c.sla}: {c.subject} {c.detail}"[:200], admin_change_url("monitoring.slacheck", c.pk) or "",
                      c.due_at, "missed", "#c62828") for c in misses],
            empty="every SLA met",
            more_url=reverse("admin:monitoring_slacheck_changelist") + "?met__exact=0",
        ))  # fmt: skip
    if user.has_perm("sheetsync.view_synctarget"):
        targets = list(
            SyncTarget.objects.filter(
                Q(broken=True) | Q(enabled=True, last_outcome=SyncOutcome.FAILED) | Q(consecutive_failures__gt=0)
            ).order_by("-broken", "-consecutive_failures", "name")[:LIMIT]
        )
        sections.append(HomeSection(
            "sync_targets", "Sync targets in trouble",
            [HomeLine(
                f"{t.name}: {(t.broken_reason or t.last_error or 'failing').splitlines()[0][:140]}",
                admin_change_url("sheetsync.synctarget", t.pk) or "",
                t.broken_at or t.last_checked_at,
                "broken" if t.broken else f"failing ({t.consecutive_failures}x)", "#c62828",
            ) for t in targets],
            empty="every sync target is healthy",
        ))  # fmt: skip
    return sections


def _last_runs(user: Any) -> HomeSection | None:
    from orchestration.models import JobRun
    from orchestration.outcome import job_run_counters_short, job_runs_outcomes
    from orchestration.registry import jobs_all

    if not user.has_perm("orchestration.view_jobrun"):
        return None
    latest = JobRun.objects.values("job").annotate(last=Max("pk")).values_list("last", flat=True)
    runs = {r.job: r for r in JobRun.objects.filter(pk__in=list(latest))}
    outcomes = job_runs_outcomes(runs.values())
    lines = []
    for spec in jobs_all():
        run = runs.get(spec.name)
        if run is None:
            lines.append(HomeLine(f"{spec.title}: never run", reverse("admin:orchestration_jobrun_changelist")))
            continue
        outcome = outcomes[run.pk]
        counters = job_run_counters_short(run, limit=4)
        lines.append(HomeLine(
            f"{spec.title}: {run}" + (f" ({counters})" if counters else ""),
            admin_change_url("orchestration.jobrun", run.pk) or "", run.finished_at or run.created_at,
            outcome.label, outcome.colour,
        ))  # fmt: skip
    return HomeSection(
        "last_runs", "Last run of each job", lines, more_url=reverse("admin:orchestration_jobrun_changelist")
    )


def _shortcuts(user: Any) -> list[tuple[str, str]]:
    from orchestration.registry import jobs_all

    links = []
    if user.has_perm("orchestration.trigger_jobrun"):
        for spec in jobs_all():
            if user.has_perm(spec.permission) and spec.name in ("sales_report", "looker_cleanup", "sheets_sync"):
                links.append((f"Run {spec.title}", reverse("admin:orchestration_jobrun_trigger", args=[spec.name])))
    if user.has_perm("audit.view_auditevent"):
        links += [
            ("Audit trail", reverse("admin:audit_auditevent_changelist")),
            ("Export the audit trail (CSV)", reverse("admin:audit_auditevent_export", args=["csv"])),
            ("Export the audit trail (JSON Lines)", reverse("admin:audit_auditevent_export", args=["jsonl"])),
            ("Verify the audit chain", reverse("admin:audit_auditevent_verify")),
        ]
    if user.has_perm("monitoring.view_operations"):
        links.append(("Operations", reverse("monitoring-operations")))
    if user.has_perm("cleanup.view_lookerdashboard"):
        links.append(("Dashboards deleted by the cleanup", reverse("admin:cleanup_lookerdashboard_changelist")
                      + "?deleted__exact=1"))  # fmt: skip
    if user.has_perm("sheetsync.add_synctarget"):
        links.append(("Add a sync target", reverse("admin:sheetsync_synctarget_add")))
    if user.has_perm("audit.view_auditevent"):
        links.append(("Your own audit events", reverse("admin:audit_auditevent_changelist") + "?"
                      + urlencode({"actor_label": user.get_username()})))  # fmt: skip
    return links


def home_for(*, user: Any, now: datetime | None = None) -> Home:
    """Everything a person's home shows, according to what their role lets them see and decide."""
    now = now or timezone.now()
    return Home(
        waiting=_waiting(user, now), trouble=_trouble(user, now), last_runs=_last_runs(user), shortcuts=_shortcuts(user)
    )

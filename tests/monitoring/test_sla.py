"""SLAs: a missed monthly deadline, a late sales report and stale sync targets are breaches; a breach raises an
incident, counts against compliance, and a later met check closes the incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from monitoring.models import Incident, Sla, SlaCheck
from monitoring.services import monitoring_tick, sla_evaluate
from orchestration.models import JobRun
from sheetsync.models import SyncEvent
from tests.monitoring.conftest import execute, incident_mail
from tests.sheetsync.conftest import ROWS, run_cycle

pytestmark = pytest.mark.django_db


def _sla(name: str, **changes) -> Sla:
    sla = Sla.objects.get(name=name)
    for field, value in {"enabled": True, **changes}.items():
        setattr(sla, field, value)
    sla.save()
    return sla


def _run(job: str, *, status: str, created: datetime, finished: datetime | None, actor=None) -> JobRun:
    run = JobRun.objects.create(job=job, trigger="admin", status=status, actor=actor, params={})
    JobRun.objects.filter(pk=run.pk).update(created_at=created, started_at=created, finished_at=finished)
    run.refresh_from_db()
    return run


def test_a_missed_monthly_deadline_is_a_breach_with_an_incident(ladder, django_capture_on_commit_callbacks):
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    sla = _sla("cleanup-by-the-3rd")
    Sla.objects.filter(pk=sla.pk).update(created_at=datetime(2026, 8, 15, tzinfo=UTC))
    sla.refresh_from_db()
    _run(
        "looker_cleanup",
        status="succeeded",
        created=datetime(2026, 9, 2, 3, tzinfo=UTC),
        finished=datetime(2026, 9, 2, 4, tzinfo=UTC),
    )
    _run(
        "looker_cleanup",
        status="succeeded",
        created=datetime(2026, 10, 5, 3, tzinfo=UTC),
        finished=datetime(2026, 10, 5, 4, tzinfo=UTC),
    )
    with django_capture_on_commit_callbacks(execute=True):
        checks = sla_evaluate(sla=sla, now=now)
    verdicts = {c.subject: c.met for c in checks}
    assert verdicts == {"2026-09": True, "2026-10": False, "2026-11": False}  # October's run came on the 5th
    breach = SlaCheck.objects.get(subject="2026-10")
    assert "no successful looker_cleanup run between 2026-10-01" in breach.detail
    incident = Incident.objects.get(kind="sla_breach")
    assert incident.key == f"sla:{sla.pk}" and incident.occurrences == 2  # October, then November, on one incident
    assert sla_evaluate(sla=sla, now=now) == []  # each period is checked once

    # The breach counts against compliance in the metrics' figures.
    from monitoring.selectors import metrics_figures

    met, total = metrics_figures(now=now)["sla"][("cleanup-by-the-3rd", "looker_cleanup")]
    assert (met, total) == (0, 1)  # due in the 30 days before Nov 20: only November's (due Nov 4), breached


def test_a_sales_report_published_late_breaches_its_latency_sla(
    bigquery, sheet, ladder, django_capture_on_commit_callbacks
):
    sla = _sla("sales-report-in-15-min")
    Sla.objects.filter(pk=sla.pk).update(created_at=timezone.now() - timedelta(hours=1))
    sla.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        quick = execute("sales_report", actor=ladder["owner"], params={"start": "2026-10-01", "end": "2026-10-31"})
    assert quick.status == "succeeded"
    stuck = _run(
        "sales_report",
        status="queued",
        created=timezone.now() - timedelta(minutes=40),
        finished=None,
        actor=ladder["owner"],
    )
    with django_capture_on_commit_callbacks(execute=True):
        counts = monitoring_tick()
    assert counts["sla_met"] == 1 and counts["sla_breached"] == 1
    assert SlaCheck.objects.get(subject=f"run:{quick.pk}").met
    late = SlaCheck.objects.get(subject=f"run:{stuck.pk}")
    assert not late.met and "not done 15 min after the request" in late.detail
    incident = Incident.objects.get(kind="sla_breach")
    assert incident.owner == ladder["owner"] and incident.level == 1
    assert incident_mail()[0][1] == {"owner@example.com"}


def test_stale_sync_targets_breach_freshness_until_they_sync_again(
    make_target, sheets, django_capture_on_commit_callbacks
):
    sla = _sla("sync-fresh-in-10-min")
    target = make_target("orders", ROWS, spreadsheet_id="s1")
    run_cycle()
    SyncEvent.objects.filter(target=target).update(last_seen_at=timezone.now() - timedelta(minutes=25))
    with django_capture_on_commit_callbacks(execute=True):
        assert monitoring_tick()["sla_breached"] == 1
    check = SlaCheck.objects.get(sla=sla)
    assert not check.met and check.measured == 1 and "orders (last synced" in check.detail
    incident = Incident.objects.get(kind="sla_breach")
    assert incident.status == "open"

    run_cycle()  # synced again: the next ten-minute slot is met and closes the incident
    now = timezone.now()
    next_slot = now.replace(minute=now.minute - now.minute % 10, second=1, microsecond=0) + timedelta(minutes=10)
    with django_capture_on_commit_callbacks(execute=True):
        assert monitoring_tick(now=next_slot)["sla_met"] == 1
    incident.refresh_from_db()
    assert incident.status == "resolved" and "met again" in incident.events.get(kind="verified").message

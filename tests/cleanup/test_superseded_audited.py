"""The supersede transition (an earlier run's unfinished action taken over by a later run) is audited (issue 9)."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from cleanup.models import CleanupAction, LookerDashboard
from cleanup.services import cleanup_reconcile
from orchestration.models import JobRun

pytestmark = pytest.mark.django_db


def test_superseding_an_unfinished_action_is_audited():
    dashboard = LookerDashboard.objects.create(looker_id="501", title="Old sales")
    crashed = JobRun.objects.create(job="looker_cleanup", trigger="cli", status="failed")
    action = CleanupAction.objects.create(
        job_run=crashed, dashboard=dashboard, kind=CleanupAction.Kind.SOFT_DELETE, status=CleanupAction.Status.PLANNED
    )
    later = JobRun.objects.create(job="looker_cleanup", trigger="cli", status="running")
    assert cleanup_reconcile(job_run=later) == {"superseded": 1}
    action.refresh_from_db()
    assert action.status == CleanupAction.Status.SUPERSEDED
    event = AuditEvent.objects.get(action="cleanup.action_superseded")
    assert event.object_id == str(dashboard.pk)
    assert event.data == {
        "looker_id": "501",
        "planned_by_run": crashed.pk,
        "taken_over_by": later.pk,
        "previous_status": "planned",
    }

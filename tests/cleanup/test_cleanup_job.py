"""The Looker cleanup end to end: run_job through the real looker-sdk against the emulator."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import audit_chain_verify
from cleanup.backups import backup_read_verified
from cleanup.models import CleanupAction, DashboardBackup, DashboardPin, LookerDashboard
from orchestration.models import JobRun
from tests.cleanup.conftest import backup_files, looker_json, patch_count
from tests.looker_estate import EXPECTED_LOOKML_REPORT, EXPECTED_PLAN, OWNER_EMAIL

pytestmark = pytest.mark.django_db


def run_job(*args: str) -> tuple[int, str]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("run_job", *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code), out.getvalue()
    return 0, out.getvalue()


def test_dry_run_shows_the_plan_and_changes_nothing(looker):
    code, out = run_job("looker_cleanup", "--dry-run")
    assert code == 0, out
    run = JobRun.objects.get()
    assert run.dry_run and run.status == JobRun.Status.SUCCEEDED
    assert run.details["plan_ids"] == EXPECTED_PLAN
    assert [e["looker_id"] for e in run.details["lookml_reports"]] == EXPECTED_LOOKML_REPORT
    assert run.details["kept"] == {
        "has favourites": 1,
        "has an active scheduled delivery": 1,
        "in a protected folder": 1,
    }
    assert "DRY RUN: nothing changed" in out and f"plan: {len(EXPECTED_PLAN)} to soft-delete" in out
    assert patch_count(looker) == 0 and not CleanupAction.objects.exists()
    # The inventory mirrors every dashboard, the trashed one included, with owner facts.
    assert LookerDashboard.objects.count() == 14
    assert LookerDashboard.objects.get(looker_id="110").deleted
    assert LookerDashboard.objects.get(looker_id="102").owner_email == OWNER_EMAIL
    assert LookerDashboard.objects.get(looker_id="104").has_active_schedule
    assert not LookerDashboard.objects.get(looker_id="112").has_active_schedule


def test_run_backs_up_verifies_then_soft_deletes(looker, content_admin, settings):
    before = {i: looker_json(looker, i) for i in EXPECTED_PLAN}
    code, out = run_job("looker_cleanup")
    assert code == 0, out
    run = JobRun.objects.get()
    assert run.status == JobRun.Status.SUCCEEDED and run.counters["deleted"] == len(EXPECTED_PLAN)

    for looker_id in EXPECTED_PLAN:
        assert looker.store.dashboard(looker_id)["deleted"] is True
        action = CleanupAction.objects.get(job_run=run, dashboard__looker_id=looker_id)
        assert action.status == CleanupAction.Status.DELETED and action.backup is not None
        # The backup holds exactly what Looker served before the deletion.
        stored = backup_read_verified(storage_name=action.backup.storage_name, sha256=action.backup.sha256)
        assert stored["dashboard"] == json.loads(before[looker_id])
        events = list(
            AuditEvent.objects.filter(object_id=str(action.dashboard.pk))
            .order_by("seq")
            .values_list("action", flat=True)
        )
        assert events.index("cleanup.dashboard_backed_up") < events.index("cleanup.dashboard_soft_deleted")
    for kept in ("101", "103", "104", "105", "107"):
        assert looker.store.dashboard(kept)["deleted"] is False
    assert CleanupAction.objects.get(dashboard__looker_id="thelook::sales_overview").status == "reported"
    assert looker.store.dashboard("thelook::sales_overview")["deleted"] is False
    assert len(backup_files(settings)) == len(EXPECTED_PLAN)

    # One notice to the owner listing all five of theirs; the completion report to the Content Admin.
    owner_mail = [m for m in mail.outbox if m.to == [OWNER_EMAIL]]
    assert len(owner_mail) == 1 and "5 of your Looker dashboards" in owner_mail[0].subject
    for looker_id in ("102", "106", "111", "112", "113"):
        assert f"id {looker_id}," in owner_mail[0].body
    report = [m for m in mail.outbox if m.to == [content_admin.email]]
    assert len(report) == 1 and f"{len(EXPECTED_PLAN)} dashboards soft-deleted" in report[0].subject
    assert run.counters["dashboards_without_owner_email"] == 2
    assert "7 soft-deleted with verified backups" in out
    assert audit_chain_verify().ok


def test_second_run_repeats_nothing(looker):
    assert run_job("looker_cleanup")[0] == 0
    patches, mails = patch_count(looker), len(mail.outbox)
    code, out = run_job("looker_cleanup")
    assert code == 0, out
    assert patch_count(looker) == patches
    second = JobRun.objects.order_by("-pk").first()
    assert second.counters["planned"] == 0 and second.counters.get("deleted", 0) == 0
    assert not [m for m in mail.outbox[mails:] if m.to == [OWNER_EMAIL]]


def test_plan_over_the_cap_stops_with_a_clear_message(looker):
    code, out = run_job("looker_cleanup", "--param", "max_deletions=3")
    assert code == 1
    assert "7 dashboards to soft-delete, above the cap of 3" in out and "max_deletions=7" in out
    assert patch_count(looker) == 0 and not CleanupAction.objects.exists()


def test_pins_and_inactive_days(looker, content_admin):
    run_job("looker_cleanup", "--dry-run")
    dashboard = LookerDashboard.objects.get(looker_id="111")
    DashboardPin.objects.create(
        dashboard=dashboard,
        reason="board pack",
        expires_at=timezone.now() + timedelta(days=30),
        created_by=content_admin,
    )
    DashboardPin.objects.create(
        dashboard=LookerDashboard.objects.get(looker_id="102"),
        reason="expired",
        expires_at=timezone.now() - timedelta(days=1),
    )
    code, out = run_job("looker_cleanup", "--dry-run", "--param", "inactive_days=250")
    assert code == 0, out
    run = JobRun.objects.order_by("-pk").first()
    assert run.details["plan_ids"] == ["106"]
    assert run.details["kept"]["pinned in the admin"] == 1
    # What changed since the previous (90-day) plan is shown.
    assert set(run.details["changes"]["dropped"]) == set(EXPECTED_PLAN) - {"106"}
    assert "changes since run #" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["looker_cleanup", "--param", "inactive_days=abc"], "inactive_days='abc' is not a valid int"),
        (["looker_cleanup", "--param", "inactive_days=0"], "must be at least 1"),
        (["looker_cleanup", "--param", "colour=blue"], "unknown parameter(s) colour"),
        (["looker_cleanup", "--param", "novalue"], "--param expects KEY=VALUE"),
        (["no_such_job"], "unknown job 'no_such_job'"),
    ],
)
def test_bad_parameters_are_refused_clearly(args, message):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as excinfo:
        call_command("run_job", *args)
    assert message in str(excinfo.value) and excinfo.value.returncode == 2
    assert not JobRun.objects.exists()


def test_looker_unreachable_fails_the_run_clearly(settings):
    code, out = run_job("looker_cleanup")
    assert code == 1
    run = JobRun.objects.get()
    assert run.status == JobRun.Status.FAILED and "could not read the Looker inventory" in run.error
    assert DashboardBackup.objects.count() == 0


def test_inventory_refresh_writes_only_what_changed(looker):
    assert run_job("looker_cleanup", "--dry-run")[0] == 0
    code, out = run_job("looker_cleanup", "--dry-run")
    assert "13 active, 1 in trash, 0 new, 0 changed, 0 gone from Looker" in out, out
    looker.store.update_dashboard("101", {"title": "Renamed"}, actor_id="1")
    looker.store.delete_dashboard("107")
    code, out = run_job("looker_cleanup", "--dry-run")
    assert "12 active, 1 in trash, 0 new, 1 changed, 1 gone from Looker" in out, out
    assert LookerDashboard.objects.get(looker_id="101").title == "Renamed"
    gone = LookerDashboard.objects.get(looker_id="107")
    assert gone.missing_in_looker and gone.changed_at is not None

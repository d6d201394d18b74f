"""Admin screens of the Sheets sync: bounded list pages, who may edit, pause and sync, and the audit trail."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from orchestration.models import JobRun
from sheetsync.models import SyncEvent, SyncTarget
from tests.sheetsync.conftest import ROWS, run_cycle

pytestmark = pytest.mark.django_db

TARGETS = "/admin/sheetsync/synctarget/"
EVENTS = "/admin/sheetsync/syncevent/"


@pytest.fixture
def synced(make_target, role_user):
    owner = role_user("Analyst", "owner")
    made = [make_target(f"t{i}", ROWS, spreadsheet_id=f"s{i % 3}", owner=owner) for i in range(6)]
    run_cycle()
    run_cycle()
    return made


def test_list_pages_answer_with_bounded_queries(client, role_user, synced, django_assert_max_num_queries):
    client.force_login(role_user("Viewer"))
    for url in (
        TARGETS,
        TARGETS + "?enabled__exact=1&q=t1",
        EVENTS,
        EVENTS + "?outcome__exact=no_changes",
        EVENTS + f"?target__id__exact={synced[0].pk}",
        "/admin/sheetsync/syncspreadsheet/",
        TARGETS + f"{synced[0].pk}/change/",
    ):
        with django_assert_max_num_queries(20):
            response = client.get(url)
        assert response.status_code == 200, url
    assert SyncEvent.objects.count() == 12  # 6 changed + 6 compact no-change rows


def test_viewer_sees_but_cannot_edit_pause_or_sync(client, role_user, synced):
    client.force_login(role_user("Viewer"))
    assert client.get(TARGETS + "add/").status_code == 403
    response = client.post(TARGETS + f"{synced[0].pk}/change/", {"name": "renamed"})
    assert response.status_code == 403
    page = client.get(TARGETS).content.decode()
    assert "Pause the selected targets" not in page and "Sync now" not in page
    response = client.post(TARGETS, {"action": "pause", "_selected_action": [synced[0].pk]})
    assert SyncTarget.objects.get(pk=synced[0].pk).enabled
    assert client.get(EVENTS + f"{SyncEvent.objects.first().pk}/change/").status_code == 200


def test_steward_adds_a_target_audited(client, role_user, sheets, files):
    steward = role_user("Data Steward", "steward")
    client.force_login(steward)
    form = {
        "name": "plan",
        "spreadsheet_id": "s9",
        "range": "Plan!B2",
        "row_order": "sheet",
        "source_kind": "file",
        "source_file": "/etc/passwd.csv",
        "key_columns": "id",
        "protected_columns": "note",
        "owner": steward.pk,
    }
    response = client.post(TARGETS + "add/", form)
    assert response.status_code == 200 and "outside SHEETS_SYNC_FILE_ROOTS" in response.content.decode()
    form["source_file"] = str(files / "plan.csv")
    response = client.post(TARGETS + "add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    target = SyncTarget.objects.get(name="plan")
    assert target.owner == steward and target.enabled
    event = AuditEvent.objects.get(action="sheetsync.target_created")
    assert event.object_id == str(target.pk) and event.data["target"]["range"] == "Plan!B2"
    assert event.actor == steward


def test_steward_pauses_resumes_and_repairs(client, role_user, synced):
    client.force_login(role_user("Data Steward"))
    first = synced[0]
    client.post(TARGETS, {"action": "pause", "_selected_action": [first.pk]})
    first.refresh_from_db()
    assert not first.enabled
    code, out = run_cycle()
    assert "5 targets" in out  # a paused target is left out of the cycle
    client.post(TARGETS, {"action": "resume", "_selected_action": [first.pk]})
    SyncTarget.objects.filter(pk=first.pk).update(broken=True, broken_reason="spreadsheet deleted")
    client.post(TARGETS, {"action": "repair", "_selected_action": [first.pk]})
    first.refresh_from_db()
    assert first.enabled and not first.broken and first.synced_version is None
    actions = list(AuditEvent.objects.filter(object_id=str(first.pk)).values_list("action", flat=True))
    assert {"sheetsync.target_paused", "sheetsync.target_resumed", "sheetsync.target_repaired"} <= set(actions)


def test_sync_now_queues_a_job_run_for_the_selected_targets(
    client, role_user, synced, sheets, django_capture_on_commit_callbacks
):
    steward = role_user("Data Steward")
    client.force_login(steward)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            TARGETS, {"action": "sync_now", "_selected_action": [synced[0].pk, synced[1].pk]}, follow=True
        )
    assert "2 target(s) queued for a sync" in response.content.decode()
    run = JobRun.objects.filter(job="sheets_sync").order_by("-pk")[0]
    assert run.actor == steward and run.trigger == "admin" and run.params == {"targets": ["t0", "t1"], "force": True}
    assert run.status == "succeeded" and run.counters["targets"] == 2 and run.counters["spreadsheets_read"] == 2

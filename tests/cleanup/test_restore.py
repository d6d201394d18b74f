"""Restores bring a dashboard back exactly: undeleted in Looker, or re-created from its backup."""

from __future__ import annotations

import json

import pytest
from django.core import mail

from audit.models import AuditEvent
from cleanup.models import DashboardPin, DashboardRestore, LookerDashboard
from connectors.looker import dashboard_json_normalized
from sandbox.common import FaultRule
from tests.cleanup.conftest import backup_files, looker_json
from tests.cleanup.test_cleanup_job import run_job
from tests.looker_estate import OWNER_EMAIL

pytestmark = pytest.mark.django_db


@pytest.fixture
def cleaned(looker):
    """The estate after one cleanup run, with the JSON Looker served for 102 and 106 before it."""
    before = {i: looker_json(looker, i) for i in ("102", "106")}
    assert run_job("looker_cleanup")[0] == 0
    mail.outbox.clear()
    return before


def restore_via_admin(client, user, looker_ids):
    """Post the admin action; queued Celery work runs when the request's transaction commits, as in production."""
    from django.test import TestCase

    client.force_login(user)
    pks = list(LookerDashboard.objects.filter(looker_id__in=looker_ids).values_list("pk", flat=True))
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            "/admin/cleanup/lookerdashboard/",
            {"action": "restore_selected", "_selected_action": pks},
            follow=True,
        )


def test_restore_soft_deleted_is_exact(looker, cleaned, client, content_admin):
    response = restore_via_admin(client, content_admin, ["102", "106"])
    assert response.status_code == 200 and "2 restore(s) queued" in response.content.decode()
    for looker_id in ("102", "106"):
        restore = DashboardRestore.objects.get(dashboard__looker_id=looker_id)
        assert restore.status == "restored" and restore.method == "undelete" and restore.verified, restore.error
        assert looker.store.dashboard(looker_id)["deleted"] is False
        after = looker_json(looker, looker_id)
        assert dashboard_json_normalized(after, ignore_identity=False) == dashboard_json_normalized(
            cleaned[looker_id], ignore_identity=False
        )
        assert LookerDashboard.objects.get(looker_id=looker_id).deleted is False
    assert len([m for m in mail.outbox if m.to == [OWNER_EMAIL]]) == 2
    assert "is back" in mail.outbox[0].body
    assert AuditEvent.objects.filter(action="cleanup.dashboard_restored", actor=content_admin).count() == 2


def test_restore_hard_deleted_recreates_from_backup(looker, cleaned, client, content_admin):
    looker.store.delete_dashboard("102")
    restore_via_admin(client, content_admin, ["102"])
    restore = DashboardRestore.objects.get()
    assert restore.status == "restored" and restore.method == "recreate" and restore.verified, restore.error
    new_id = restore.new_looker_id
    assert new_id and new_id != "102"
    after = looker_json(looker, new_id)
    assert dashboard_json_normalized(after, ignore_identity=True) == dashboard_json_normalized(
        cleaned["102"], ignore_identity=True
    )
    original = json.loads(cleaned["102"])
    recreated = json.loads(after)
    assert len(recreated["dashboard_elements"]) == len(original["dashboard_elements"])
    assert len(recreated["dashboard_filters"]) == len(original["dashboard_filters"])
    row = LookerDashboard.objects.get(pk=restore.dashboard_id)
    assert row.looker_id == new_id and not row.deleted
    assert "new id" in mail.outbox[0].body


def test_restore_refuses_what_cannot_be_restored(looker, cleaned, client, content_admin):
    response = restore_via_admin(client, content_admin, ["101"])
    assert "Dashboard 101 not restored: it is not deleted" in response.content.decode()
    assert not DashboardRestore.objects.exists()


def test_viewer_cannot_restore(looker, cleaned, client, role_user):
    viewer = role_user("Viewer")
    response = restore_via_admin(client, viewer, ["102"])
    assert "No action selected" in response.content.decode() or response.status_code in (403, 200)
    assert not DashboardRestore.objects.exists()
    assert looker.store.dashboard("102")["deleted"] is True


def test_restore_with_looker_down_fails_clearly_and_can_be_retried(looker, cleaned, client, content_admin):
    looker.faults.add(FaultRule(path_pattern="/api/4.0/dashboards/102", status=503, times=None))
    restore_via_admin(client, content_admin, ["102"])
    restore = DashboardRestore.objects.get()
    assert restore.status == "failed" and "Looker kept failing" in restore.error
    assert looker.store.dashboard("102")["deleted"] is True
    looker.faults.clear()
    restore_via_admin(client, content_admin, ["102"])
    assert DashboardRestore.objects.filter(status="restored").count() == 1
    assert looker.store.dashboard("102")["deleted"] is False


def test_rest_api_restore(looker, cleaned, client, role_user, content_admin, django_capture_on_commit_callbacks):
    from tests.tokens import api_token_for

    url = "/api/dashboards/102/restore/"
    assert client.post(url).status_code == 401
    viewer_token = api_token_for(role_user("Viewer"))  # write scope: the refusal is the role's
    assert client.post(url, HTTP_AUTHORIZATION=f"Token {viewer_token}").status_code == 403
    auth = {"HTTP_AUTHORIZATION": f"Token {api_token_for(content_admin)}"}
    assert client.post("/api/dashboards/nope/restore/", **auth).status_code == 404
    assert client.post("/api/dashboards/101/restore/", **auth).status_code == 409
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, **auth)
    assert response.status_code == 202 and response.json()["status"] == "requested"
    assert DashboardRestore.objects.get().status == "restored"
    assert looker.store.dashboard("102")["deleted"] is False


def test_restored_dashboard_is_pinned_so_the_next_run_keeps_it(looker, cleaned, client, content_admin):
    restore_via_admin(client, content_admin, ["102"])
    pin = DashboardPin.objects.get(dashboard__looker_id="102")
    assert pin.is_active and "restored by content_admin" in pin.reason
    assert run_job("looker_cleanup")[0] == 0
    assert looker.store.dashboard("102")["deleted"] is False


def test_restore_without_a_readable_backup_undeletes_unverified(looker, cleaned, client, content_admin, settings):
    for path in backup_files(settings):
        path.unlink()
    restore_via_admin(client, content_admin, ["102"])
    restore = DashboardRestore.objects.get()
    assert restore.status == "restored" and not restore.verified and "not verified" in restore.error
    assert looker.store.dashboard("102")["deleted"] is False


def test_restore_that_cannot_work_fails_and_can_be_asked_again(looker, cleaned, client, content_admin, settings):
    looker.store.delete_dashboard("102")
    for path in backup_files(settings):
        path.unlink()
    restore_via_admin(client, content_admin, ["102"])
    failed = DashboardRestore.objects.get()
    assert failed.status == "failed" and "cannot read backup" in failed.error
    restore_via_admin(client, content_admin, ["102"])  # not refused as "already in progress"
    assert DashboardRestore.objects.count() == 2


def test_recreate_interrupted_after_the_create_is_finished_without_a_second_copy(
    looker, cleaned, client, content_admin
):
    looker.store.delete_dashboard("102")
    title = json.loads(cleaned["102"])["title"]
    next_id = str(max(int(i) for i in looker.store.dashboard_ids(lookml=False)) + 1)
    # The copy gets created, then every read of it fails: the restore gives up after its retries.
    looker.faults.add(FaultRule(method="GET", path_pattern=f"/api/4.0/dashboards/{next_id}", status=503, times=None))
    restore_via_admin(client, content_admin, ["102"])
    first = DashboardRestore.objects.get()
    assert first.status == "failed" and first.new_looker_id == next_id
    looker.faults.clear()
    restore_via_admin(client, content_admin, ["102"])
    second = DashboardRestore.objects.exclude(pk=first.pk).get()
    assert second.status == "restored" and second.verified, second.error
    copies = [i for i in looker.store.dashboard_ids() if looker.store.dashboard(i)["title"] == title]
    assert len(copies) == 1

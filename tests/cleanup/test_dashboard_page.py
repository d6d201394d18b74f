"""The dashboard page (issue 11): Restore (confirmed POST), Open in Looker, Pin or Unpin, and who deleted it, when,
why and in which run, apart from dashboards already in Looker's trash."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from cleanup.models import DashboardPin, DashboardRestore, LookerDashboard
from tests.cleanup.test_restore import cleaned  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def _page(client, looker_id: str) -> str:
    pk = LookerDashboard.objects.get(looker_id=looker_id).pk
    response = client.get(f"/admin/cleanup/lookerdashboard/{pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_deleted_dashboard_says_who_when_why_and_restores_after_confirming(looker, cleaned, client, content_admin):  # noqa: F811
    client.force_login(content_admin)
    body = _page(client, "102")
    assert 'id="open-in-looker"' in body and f"{looker.base_url}/dashboards/102" in body
    assert "Moved to the trash by cleanup run #" in body and "inactive for" in body and "days" in body
    assert 'id="restore"' in body and 'id="pin"' in body and 'id="unpin"' not in body
    pk = LookerDashboard.objects.get(looker_id="102").pk
    confirm = client.get(f"/admin/cleanup/lookerdashboard/{pk}/restore/").content.decode()
    assert "Restore" in confirm and "in Looker&#x27;s trash" in confirm and not DashboardRestore.objects.exists()
    with TestCase.captureOnCommitCallbacks(execute=True):
        done = client.post(f"/admin/cleanup/lookerdashboard/{pk}/restore/", follow=True)
    assert "Restore of 102 requested" in done.content.decode()
    restore = DashboardRestore.objects.get()
    assert restore.status == "restored" and looker.store.dashboard("102")["deleted"] is False
    # Restored dashboards are pinned: the page now offers Unpin, not Pin, and no Restore.
    body = _page(client, "102")
    assert 'id="unpin"' in body and 'id="pin"' not in body and 'id="restore"' not in body


def test_looker_trash_is_told_apart_from_cleanup_deletions(looker, cleaned, client, content_admin):  # noqa: F811
    client.force_login(content_admin)
    by_cleanup = client.get("/admin/cleanup/lookerdashboard/?deleted_how=cleanup").content.decode()
    in_trash = client.get("/admin/cleanup/lookerdashboard/?deleted_how=looker").content.decode()
    assert "(102)" in by_cleanup and "(110)" not in by_cleanup
    assert "(110)" in in_trash and "(102)" not in in_trash
    assert "Already in Looker&#x27;s trash" in _page(client, "110")


def test_a_viewer_gets_no_restore_button_and_cannot_restore(looker, cleaned, client, role_user):  # noqa: F811
    client.force_login(role_user("Viewer"))
    body = _page(client, "102")
    assert 'id="open-in-looker"' in body and 'id="restore"' not in body
    pk = LookerDashboard.objects.get(looker_id="102").pk
    assert client.post(f"/admin/cleanup/lookerdashboard/{pk}/restore/").status_code == 403
    assert not DashboardRestore.objects.exists()


def test_a_pinned_dashboard_offers_unpin(looker, cleaned, client, content_admin):  # noqa: F811
    client.force_login(content_admin)
    DashboardPin.objects.create(
        dashboard=LookerDashboard.objects.get(looker_id="101"),
        reason="board meeting",
        expires_at=timezone.now() + timedelta(days=9),
    )
    body = _page(client, "101")
    assert 'id="unpin"' in body and "board meeting" in body and 'id="pin"' not in body


def test_the_cleanup_form_previews_and_asks_with_the_numbers(looker, client, content_admin):
    """Issue 11: no unticked box that deletes; the first button previews, the question names dashboards and owners."""
    from orchestration.models import JobRun
    from tests.looker_estate import EXPECTED_PLAN

    client.force_login(content_admin)
    url = "/admin/orchestration/jobrun/trigger/looker_cleanup/"
    form = client.get(url).content.decode()
    assert (
        'type="radio"' in form and 'value="Preview the plan"' in form and 'type="checkbox" name="dry_run"' not in form
    )
    preview = client.post(url, {"inactive_days": "90", "max_deletions": "100", "_run": "1"}).content.decode()
    owners = {
        d.owner_email.lower() for d in LookerDashboard.objects.filter(looker_id__in=EXPECTED_PLAN) if d.owner_email
    }
    question = f"Move {len(EXPECTED_PLAN)} dashboards to the trash and mail {len(owners)} owner"
    assert question in preview and 'id="cancel"' in preview
    assert not JobRun.objects.exists()

"""The inventory at scale (issue 15), counted by the emulator: the request budget, owners looked up only as seen,
the mirror written only where it changed. A modest N with small pages stands in for 100k with pages of 500."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from cleanup.models import LookerDashboard
from cleanup.services import inventory_refresh
from connectors.looker import looker_client
from sandbox.looker.fixtures import generate_fixture

pytestmark = pytest.mark.django_db

N = 1200
PAGE = 50  # 1,200 dashboards at 50 a page: 24 pages, as 12,000 would be at the production page size of 500
USERS = "GET /api/4.0/users"


@pytest.fixture
def estate(settings):
    """N generated dashboards (about N/20 owners, a few of them gone from Looker) and small pages."""
    from sandbox.looker import EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET
    from sandbox.looker.testing import running_looker_emulator

    with running_looker_emulator(fixture=generate_fixture(N, seed=11)) as emulator:
        settings.LOOKER_BASE_URL = emulator.base_url
        settings.LOOKER_CLIENT_ID = EMULATOR_CLIENT_ID
        settings.LOOKER_CLIENT_SECRET = EMULATOR_CLIENT_SECRET
        settings.LOOKER_MAX_ATTEMPTS = 2
        settings.LOOKER_BACKOFF_BASE = 0.01
        settings.CLEANUP_PAGE_SIZE = PAGE
        yield emulator


def scan(emulator) -> tuple[object, dict[str, int]]:
    emulator.reset_counters()
    stats = inventory_refresh(looker=looker_client(), now=timezone.now())
    return stats, emulator.counters()


def test_the_scan_stays_in_the_request_budget_and_pages_users_lazily(estate, settings):
    settings.CLEANUP_USER_IDS_PER_REQUEST = 10  # 60-odd owners is more than two requests' worth: list the users
    settings.CLEANUP_USER_PAGE_SIZE = 25
    stats, counters = scan(estate)
    budget = math.ceil(N / PAGE) + 10
    assert counters["total"] <= budget, counters
    # No folder listing: every dashboard came with its folder's name.
    assert "GET /api/4.0/folders" not in counters
    assert stats.active + stats.trashed == LookerDashboard.objects.count() == estate.store.counts()["dashboards"]
    users = estate.store.counts()["users"]
    # Owners that left Looker are never found, so the listing runs to its end: every page, one short or empty.
    assert counters[USERS] == users // 25 + 1
    owners = {d.owner_id for d in LookerDashboard.objects.exclude(owner_id="")}
    resolved = {d.owner_id for d in LookerDashboard.objects.exclude(owner_email="", owner_name="")}
    assert len(owners - resolved) == 3  # the fixture's three owners that no longer exist
    assert stats.owners_unknown == LookerDashboard.objects.filter(owner_name="").count()


def test_few_owners_are_asked_for_by_id_in_one_request(estate, settings):
    settings.CLEANUP_USER_IDS_PER_REQUEST = 200
    stats, counters = scan(estate)
    assert counters[USERS] == 1
    d = LookerDashboard.objects.exclude(owner_email="").first()
    assert d.owner_email == estate.store.user(d.owner_id, None)["email"]


def test_a_rescan_writes_nothing_and_a_change_writes_one_row(estate):
    first, _ = scan(estate)
    assert first.new == LookerDashboard.objects.count() and first.changed == 0
    seen = dict(LookerDashboard.objects.values_list("looker_id", "first_seen_at"))
    stamps = dict(LookerDashboard.objects.values_list("looker_id", "changed_at"))

    again, counters = scan(estate)
    assert (again.new, again.changed, again.vanished) == (0, 0, 0)
    assert dict(LookerDashboard.objects.values_list("looker_id", "changed_at")) == stamps

    live = estate.store.dashboard_ids(deleted=False, lookml=False)
    estate.store.update_dashboard(live[0], {"title": "Renamed"}, actor_id="1")
    estate.store.record_activity(live[1], viewed_at=timezone.now() - timedelta(days=1))
    estate.store.update_dashboard(live[2], {"deleted": True}, actor_id="1")
    estate.store.delete_dashboard(live[3])
    later, _ = scan(estate)
    assert (later.new, later.changed, later.vanished) == (0, 3, 1)
    renamed, viewed, trashed = (LookerDashboard.objects.get(looker_id=i) for i in live[:3])
    assert renamed.title == "Renamed" and renamed.first_seen_at == seen[live[0]]
    assert renamed.changed_at > stamps[live[0]]
    assert viewed.last_activity_at > timezone.now() - timedelta(days=2)
    assert trashed.deleted and trashed.deleted_at is not None
    assert LookerDashboard.objects.get(looker_id=live[3]).missing_in_looker
    assert LookerDashboard.objects.get(looker_id=live[4]).changed_at == stamps[live[4]]  # untouched

"""The dashboard admin list at size (issue 11): one COUNT at most (none for the whole list on PostgreSQL), the
folder filter without a DISTINCT over every dashboard, deep pages by a deferred join, search served by indexes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cleanup.admin import LookerDashboardAdmin
from cleanup.models import LookerDashboard
from dataops_site.admin_counts import EstimatedCountPaginator, distinct_values

pytestmark = pytest.mark.django_db
URL = "/admin/cleanup/lookerdashboard/"


def _inventory(n: int = 30) -> list[LookerDashboard]:
    now = timezone.now()
    LookerDashboard.objects.bulk_create(
        LookerDashboard(
            looker_id=str(1000 + i), title=f"Board {i}", folder_id=str(i % 3), folder_name=f"Folder {'ABC'[i % 3]}",
            owner_email=f"owner{i % 4}@example.com", last_activity_at=now - timedelta(days=(i * 7) % 30),
        )
        for i in range(n)
    )  # fmt: skip
    return list(LookerDashboard.objects.order_by("last_activity_at", "looker_id"))


def _sql(queries) -> str:
    return " ".join(q["sql"].upper() for q in queries.captured_queries if "CLEANUP_LOOKERDASHBOARD" in q["sql"].upper())


def test_deep_pages_by_deferred_join_keep_the_order(admin_client, monkeypatch):
    ordered = _inventory()
    monkeypatch.setattr(LookerDashboardAdmin, "list_per_page", 4)
    monkeypatch.setattr(EstimatedCountPaginator, "deferred_join_from", 5)
    seen = []
    for page in range(1, 9):
        with CaptureQueriesContext(connection) as queries:
            reply = admin_client.get(f"{URL}?p={page}")
        assert reply.status_code == 200
        seen += [d.pk for d in reply.context["cl"].result_list]
        sql = _sql(queries)
        assert sql.count("COUNT(*)") <= 1  # no second count for "N total"
        if connection.vendor == "postgresql":  # the folders by an index skip scan (SQLite: a plain DISTINCT)
            assert "DISTINCT" not in sql and "WITH RECURSIVE" in sql
        if page >= 3:  # 8 rows deep and more: ids first, then the rows by id
            assert '"CLEANUP_LOOKERDASHBOARD"."ID" IN (' in sql
    assert seen == [d.pk for d in ordered]


def test_folder_filter_lists_folders_and_filters(admin_client):
    _inventory()
    assert distinct_values(LookerDashboard.objects.all(), "folder_name") == ["Folder A", "Folder B", "Folder C"]
    body = admin_client.get(URL).content.decode()
    assert "?folder_name=Folder+B" in body
    cl = admin_client.get(f"{URL}?folder_name=Folder+B").context["cl"]
    assert cl.result_count == 10 and {d.folder_name for d in cl.result_list} == {"Folder B"}


@pytest.mark.postgres
def test_postgres_counts_the_whole_list_from_statistics_and_has_search_indexes(
    admin_client, require_postgres, monkeypatch
):
    _inventory(40)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE cleanup_lookerdashboard")
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'cleanup_lookerdashboard'")
        indexes = {row[0] for row in cursor.fetchall()}
    assert {f"cleanup_dash_{c}_trgm" for c in ("looker_id", "title", "owner_email", "owner_name", "folder_name")} <= (
        indexes
    )
    assert "cleanup_dash_activity_order" in indexes
    monkeypatch.setattr(EstimatedCountPaginator, "exact_below", 10)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(URL)
    cl = response.context["cl"]
    assert "COUNT(*)" not in _sql(queries) and cl.result_count == 40  # reltuples after ANALYZE
    assert 'class="estimated-count"' in response.content.decode()  # the list says it is "about 40"
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(f"{URL}?q=owner3")
    cl = response.context["cl"]
    assert "COUNT(*)" in _sql(queries) and cl.result_count == 10  # a search counts exactly
    assert "estimated-count" not in response.content.decode()


def test_the_owner_filter_caches_its_top_owners_per_database(admin_client):
    from django.core.cache import cache

    from cleanup.admin import OwnerFilter

    _inventory(8)
    cache.clear()
    assert "owner1@example.com (2)" in admin_client.get(URL).content.decode()
    assert cache.get(f"{OwnerFilter.CACHE_KEY}:{connection.settings_dict['NAME']}") is not None
    cache.set(f"{OwnerFilter.CACHE_KEY}:another-deployment", [("someone@elsewhere.example", 99)])
    assert "someone@elsewhere.example" not in admin_client.get(URL).content.decode()
    cache.clear()

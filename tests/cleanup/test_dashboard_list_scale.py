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


@pytest.mark.postgres
def test_without_pg_trgm_the_migration_warns_and_the_command_adds_the_indexes_later(require_postgres):
    """A role that may not install pg_trgm (a managed database): the migration leaves the search indexes out with a
    warning, the transaction stays usable (a real refusal from PostgreSQL, inside a savepoint), and
    ``dashboard_search_indexes`` creates them once the extension is there."""
    from importlib import import_module

    from django.core.management import call_command

    migration = import_module("cleanup.migrations.0002_dashboard_list_indexes")
    names = [migration._name(c) for c in migration.SEARCHED]

    def indexes() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'cleanup_lookerdashboard'")
            return {row[0] for row in cursor.fetchall()}

    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')

    class Refused:
        """The schema editor as a role without CREATE sees it: PostgreSQL refuses the extension."""

        def __init__(self, editor):
            self.editor, self.connection = editor, editor.connection

        def execute(self, sql, params=()):
            if "CREATE EXTENSION" in sql:
                sql = "CREATE EXTENSION IF NOT EXISTS dataops_no_such_extension"  # a real error from the server
            return self.editor.execute(sql, params)

    with connection.schema_editor() as editor, pytest.warns(RuntimeWarning, match="dashboard_search_indexes"):
        migration.list_indexes(None, Refused(editor))
    assert not set(names) & indexes()
    assert LookerDashboard.objects.count() >= 0  # the connection is still usable after the refusal
    call_command("dashboard_search_indexes")
    assert set(names) <= indexes()


def test_the_search_index_command_is_idempotent_and_says_sqlite_has_none():
    from io import StringIO

    from django.core.management import CommandError, call_command

    if connection.vendor == "postgresql":  # the indexes are there already: a second run changes nothing
        out = StringIO()
        call_command("dashboard_search_indexes", stdout=out)
        assert "cleanup_dash_title_trgm" in out.getvalue()
        return
    with pytest.raises(CommandError, match="only PostgreSQL"):
        call_command("dashboard_search_indexes")

"""Indexes for the dashboard admin list at 100,000 dashboards (issue 11).

- the folder filter's skip scan (folder_name): every database, declared on the model;
- the list's order (last_activity_at, looker_id): every database; on PostgreSQL covering the id, so a deep page's
  ids are read from the index alone (the paginator's deferred join, dataops_site.admin_counts);
- trigram GIN indexes on UPPER(column) of the searched columns, which serve Django's ``icontains``
  (``UPPER(col::text) LIKE UPPER('%term%')``): PostgreSQL only (pg_trgm), nothing on SQLite.
"""

import warnings

from django.db import migrations, models

SEARCHED = ("looker_id", "title", "owner_email", "owner_name", "folder_name")


def _name(column: str) -> str:
    return f"cleanup_dash_{column}_trgm"


ORDER_INDEX = "cleanup_dash_activity_order"


def list_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.execute(
            f'CREATE INDEX "{ORDER_INDEX}" ON "cleanup_lookerdashboard" ("last_activity_at", "looker_id")'
        )
        return
    schema_editor.execute(
        f'CREATE INDEX IF NOT EXISTS "{ORDER_INDEX}" ON "cleanup_lookerdashboard" ("last_activity_at", "looker_id") '
        'INCLUDE ("id")'
    )
    if not _trigram_available(schema_editor):
        return
    for column in SEARCHED:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{_name(column)}" ON "cleanup_lookerdashboard" '
            f'USING gin (UPPER("{column}") gin_trgm_ops)'
        )


def _trigram_available(schema_editor) -> bool:
    """pg_trgm installed, or installed now. Creating an extension needs the CREATE privilege on the database, which
    a managed database's application role may lack: then the list's search works without its indexes (a scan),
    with a warning saying how to add them, instead of a migration that cannot pass."""
    from django.db import DatabaseError, transaction

    try:
        with transaction.atomic(using=schema_editor.connection.alias):  # a savepoint: a refusal leaves it usable
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:
        warnings.warn(
            f"pg_trgm could not be installed ({exc}); the dashboard list's search indexes are not created. "
            "Ask a database owner for `CREATE EXTENSION pg_trgm;`, then run `manage.py dashboard_search_indexes`.",
            RuntimeWarning,
            stacklevel=1,
        )
        return False
    return True


def drop_list_indexes(apps, schema_editor):
    schema_editor.execute(f'DROP INDEX IF EXISTS "{ORDER_INDEX}"')
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in SEARCHED:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{_name(column)}"')


class Migration(migrations.Migration):
    dependencies = [("cleanup", "0001_initial")]

    operations = [
        migrations.AddIndex(
            model_name="lookerdashboard",
            index=models.Index(fields=["folder_name"], name="cleanup_dash_folder_name"),
        ),
        migrations.RunPython(list_indexes, drop_list_indexes),
    ]

"""Indexes for the dashboard admin list at 100,000 dashboards (issue 11).

- the folder filter's skip scan (folder_name): every database, declared on the model;
- the list's order (last_activity_at, looker_id): every database; on PostgreSQL covering the id, so a deep page's
  ids are read from the index alone (the paginator's deferred join, dataops_site.admin_counts);
- trigram GIN indexes on UPPER(column) of the searched columns, which serve Django's ``icontains``
  (``UPPER(col::text) LIKE UPPER('%term%')``): PostgreSQL only (pg_trgm), nothing on SQLite.
"""

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
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in SEARCHED:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{_name(column)}" ON "cleanup_lookerdashboard" '
            f'USING gin (UPPER("{column}") gin_trgm_ops)'
        )


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

"""Indexes for the dashboard admin list at 100,000 dashboards (issue 11).

- the list's order (last_activity_at, looker_id) and the folder filter's skip scan (folder_name): every database;
- trigram GIN indexes on UPPER(column) of the searched columns, which serve Django's ``icontains``
  (``UPPER(col::text) LIKE UPPER('%term%')``): PostgreSQL only (pg_trgm), nothing on SQLite.
"""

from django.db import migrations, models

SEARCHED = ("looker_id", "title", "owner_email", "owner_name", "folder_name")


def _name(column: str) -> str:
    return f"cleanup_dash_{column}_trgm"


def trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in SEARCHED:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{_name(column)}" ON "cleanup_lookerdashboard" '
            f'USING gin (UPPER("{column}") gin_trgm_ops)'
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in SEARCHED:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{_name(column)}"')


class Migration(migrations.Migration):
    dependencies = [("cleanup", "0001_initial")]

    operations = [
        migrations.AddIndex(
            model_name="lookerdashboard",
            index=models.Index(fields=["last_activity_at", "looker_id"], name="cleanup_dash_activity_order"),
        ),
        migrations.AddIndex(
            model_name="lookerdashboard",
            index=models.Index(fields=["folder_name"], name="cleanup_dash_folder_name"),
        ),
        migrations.RunPython(trigram_indexes, drop_trigram_indexes),
    ]

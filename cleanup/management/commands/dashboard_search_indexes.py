"""Create the dashboard list's search indexes (pg_trgm) when migration ``cleanup`` 0002 could not.

That migration skips them, with a warning, where the application's database role may not install pg_trgm (a
managed database). Once a database owner has run ``CREATE EXTENSION pg_trgm;``, this creates them (idempotent).
"""

from __future__ import annotations

from importlib import import_module

from django.core.management.base import BaseCommand, CommandError
from django.db import connection


class Command(BaseCommand):
    help = "Create the dashboard list's trigram search indexes (PostgreSQL; after pg_trgm is installed)."

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("only PostgreSQL has these indexes (the embedded SQLite searches without them)")
        migration = import_module("cleanup.migrations.0002_dashboard_list_indexes")
        with connection.schema_editor() as editor:
            if not migration._trigram_available(editor):
                raise CommandError("pg_trgm is not installed and this role may not install it")
            migration.list_indexes(None, editor)
        self.stdout.write(f"search indexes present: {', '.join(migration._name(c) for c in migration.SEARCHED)}")

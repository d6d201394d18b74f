"""Database sync sources are read-only for real: each hostile statement of the issue is refused by the parser,
and again by the connection when the parser is bypassed (SQLite here; PostgreSQL in the postgres pass)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from sheetsync.models import SyncTarget
from sheetsync.sources import SourceError, _postgres_rows, _sqlite_rows, readonly_select_check

pytestmark = pytest.mark.django_db

SQLITE_HOSTILE = [
    "VACUUM INTO '{dir}/stolen.db'",
    "ATTACH DATABASE '{dir}/evil.db' AS evil",
    "SELECT 1 AS id; DELETE FROM accounts",
    "INSERT INTO accounts VALUES (3, 'Initech', 'gold')",
    "PRAGMA writable_schema = 1",
    "SELECT load_extension('/tmp/evil.so')",
    "SELECT writefile('{dir}/x.txt', 'pwned')",
]
PG_HOSTILE = [
    "SELECT 1 AS id; COMMIT; BEGIN READ WRITE; INSERT INTO ro_probe VALUES (99)",
    "COPY (SELECT 1) TO PROGRAM 'touch {dir}/pwned'",
    "WITH gone AS (DELETE FROM ro_probe RETURNING *) SELECT * FROM gone",
    "SELECT * INTO ro_copy FROM ro_probe",
    "SELECT pg_write_file('{dir}/x', 'pwned')",
    "SELECT lo_export(lo_from_bytea(0, 'x'), '{dir}/x')",
    "SELECT dblink_exec('dbname=postgres', 'DROP TABLE ro_probe')",
    "SELECT id FROM ro_probe FOR UPDATE",
]
# Refused by the parser; at run time it only changes a setting of a session that is rolled back and closed.
PG_PARSER_ONLY = ["SELECT set_config('default_transaction_read_only', 'off', false)"]


@pytest.fixture
def crm(tmp_path, settings) -> Path:
    path = tmp_path / "crm.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE accounts (id INTEGER, name TEXT, tier TEXT)")
        db.executemany("INSERT INTO accounts VALUES (?, ?, ?)", [(1, "Acme", "gold"), (2, "Globex", None)])
    settings.SHEETS_SYNC_DATABASES = {"crm": f"sqlite:///{path}"}
    return path


@pytest.mark.parametrize("sql", SQLITE_HOSTILE)
def test_hostile_sqlite_statements_are_refused_twice(sql, crm, tmp_path):
    sql = sql.format(dir=tmp_path)
    with pytest.raises(SourceError):
        readonly_select_check(sql, dialect="sqlite")
    with pytest.raises(ValidationError):
        SyncTarget(name="t", spreadsheet_id="s1", range="Sheet1!A1", source_kind="database", source_database="crm",
                   source_query=sql, key_columns="id").full_clean()  # fmt: skip
    with pytest.raises(SourceError):  # the parser bypassed: the connection refuses it too
        _sqlite_rows(f"sqlite:///{crm}", sql, label="crm", max_rows=10, timeout_s=5, max_bytes=10_000)
    assert not (tmp_path / "stolen.db").exists() and not (tmp_path / "x.txt").exists()
    with sqlite3.connect(crm) as db:
        assert db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0] == 2


def test_plain_selects_still_work_and_results_are_capped(crm):
    for sql in (
        "SELECT id, name FROM accounts WHERE name LIKE '%c%' ORDER BY id",
        "WITH a AS (SELECT * FROM accounts) SELECT id FROM a UNION SELECT 3",
        "SELECT id, upper(name) AS n, typeof(tier) FROM accounts",
    ):
        readonly_select_check(sql, dialect="sqlite")
        assert _sqlite_rows(f"sqlite:///{crm}", sql, label="crm", max_rows=10, timeout_s=5, max_bytes=10_000)[1]
    with pytest.raises(SourceError, match="SHEETS_SYNC_SOURCE_MAX_BYTES"):
        _sqlite_rows(f"sqlite:///{crm}", "SELECT * FROM accounts", label="crm", max_rows=10, timeout_s=5, max_bytes=10)
    with pytest.raises(SourceError, match="timed out"):
        _sqlite_rows(
            f"sqlite:///{crm}",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n",
            label="crm",
            max_rows=10,
            timeout_s=1,
            max_bytes=10_000,
        )


@pytest.fixture
def pg_source(require_postgres, tmp_path):
    import psycopg
    from django.db import connection

    cfg = connection.settings_dict
    host, port = cfg["HOST"] or "127.0.0.1", cfg["PORT"] or 5432
    url = f"postgresql://{cfg['USER']}:{cfg['PASSWORD'] or ''}@{host}:{port}/{cfg['NAME']}"
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS ro_probe; DROP TABLE IF EXISTS ro_copy")
        db.execute("CREATE TABLE ro_probe (id integer)")
        db.execute("INSERT INTO ro_probe VALUES (1), (2)")
    yield url
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS ro_probe; DROP TABLE IF EXISTS ro_copy")


def _pg_state(url: str) -> tuple[int, bool]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        count = db.execute("SELECT count(*) FROM ro_probe").fetchone()[0]
        copied = db.execute("SELECT to_regclass('ro_copy') IS NOT NULL").fetchone()[0]
    return count, copied


@pytest.mark.postgres
@pytest.mark.parametrize("sql", PG_HOSTILE + PG_PARSER_ONLY)
def test_hostile_postgres_statements_are_refused_twice(sql, pg_source, tmp_path):
    sql = sql.format(dir=tmp_path)
    with pytest.raises(SourceError):
        readonly_select_check(sql, dialect="postgres")
    if sql not in PG_PARSER_ONLY:
        with pytest.raises(SourceError):  # the parser bypassed: the read-only session refuses it too
            _postgres_rows(pg_source, sql, label="pg", max_rows=10, timeout_s=5, max_bytes=10_000)
    assert _pg_state(pg_source) == (2, False)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "x").exists()


@pytest.mark.postgres
def test_postgres_reads_and_times_out(pg_source):
    columns, rows = _postgres_rows(
        pg_source, "SELECT id FROM ro_probe WHERE id::text LIKE '%1%'", label="pg", max_rows=10, timeout_s=5,
        max_bytes=10_000,
    )  # fmt: skip
    assert columns == ("id",) and rows == [(1,)]
    with pytest.raises(SourceError, match="statement timeout"):
        _postgres_rows(pg_source, "SELECT pg_sleep(3)", label="pg", max_rows=10, timeout_s=1, max_bytes=10_000)

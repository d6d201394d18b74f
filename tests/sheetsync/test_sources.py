"""Every kind of source through a real cycle: BigQuery (emulator), SQLite by URL, a CSV in the backup store."""

from __future__ import annotations

import sqlite3
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from sheetsync.models import SyncEvent, SyncTarget
from tests.sheetsync.conftest import run_cycle

pytestmark = pytest.mark.django_db


def target(**fields) -> SyncTarget:
    fields.setdefault("spreadsheet_id", "s1")
    fields.setdefault("range", "Sheet1!A1")
    fields.setdefault("key_columns", "id")
    made = SyncTarget(**fields)
    made.full_clean()
    made.save()
    return made


@pytest.fixture
def spreadsheet(sheets):
    sheets.store.create_spreadsheet("s1", {"Sheet1": []}, spreadsheet_id="s1")
    return sheets


@pytest.fixture
def bigquery(settings, tmp_path_factory):
    from sandbox.bigquery.testing import running_bigquery_emulator
    from sandbox.salesdata import write_sales_dataset

    data = tmp_path_factory.mktemp("bq")
    write_sales_dataset(data, rows=500, seed=5, end=date(2026, 10, 31), dirty_share=0.0)
    with running_bigquery_emulator(data_dir=data) as emulator:
        settings.BIGQUERY_EMULATOR_HOST = emulator.base_url
        settings.BIGQUERY_EMULATOR_AUTOSTART = False
        settings.BIGQUERY_MAX_ATTEMPTS = 2
        yield emulator


def test_bigquery_source(spreadsheet, bigquery):
    target(
        name="regions",
        source_kind="bigquery",
        key_columns="region",
        source_query="SELECT region, COUNT(*) AS orders FROM `sales.order_lines` GROUP BY region ORDER BY region",
    )
    code, out = run_cycle()
    assert code == 0, out
    sheet = spreadsheet.store.values("s1", "Sheet1")
    assert sheet[0] == ["region", "orders"] and len(sheet) > 2
    assert sum(row[1] for row in sheet[1:]) == 500
    assert SyncEvent.objects.get().details["source"].startswith("BigQuery job ")


def test_bigquery_cost_guard_fails_the_target(spreadsheet, bigquery, settings):
    settings.SHEETS_SYNC_MAX_BYTES = 1
    target(name="costly", source_kind="bigquery", key_columns="order_id",
           source_query="SELECT order_id, revenue FROM `sales.order_lines`")  # fmt: skip
    code, out = run_cycle()
    assert code == 1 and "too expensive" in out and "SHEETS_SYNC_MAX_BYTES" in out


def test_database_source_by_url_is_read_only(spreadsheet, settings, tmp_path):
    path = tmp_path / "crm.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE accounts (id INTEGER, name TEXT, tier TEXT)")
        db.executemany("INSERT INTO accounts VALUES (?, ?, ?)", [(1, "Acme", "gold"), (2, "Globex", None)])
    settings.SHEETS_SYNC_DATABASES = {"crm": f"sqlite:///{path}"}
    accounts = target(name="accounts", source_kind="database", source_database="crm",
                      source_query="SELECT id, name, tier FROM accounts ORDER BY id")  # fmt: skip
    with pytest.raises(ValidationError, match="only a SELECT"):
        target(name="sneaky", spreadsheet_id="s1", range="Sheet1!H1", source_kind="database",
               source_database="crm", source_query="DELETE FROM accounts")  # fmt: skip
    # A row that skipped the form's check is refused again when the cycle reads it.
    writer = SyncTarget.objects.create(
        name="sneaky", spreadsheet_id="s1", range="Sheet1!H1", source_kind="database", source_database="crm",
        source_query="DELETE FROM accounts", key_columns="id",
    )  # fmt: skip
    code, out = run_cycle()
    assert code == 0, out
    assert spreadsheet.store.values("s1", "Sheet1")[:3] == [["id", "name", "tier"], [1, "Acme", "gold"], [2, "Globex"]]
    assert "only a SELECT" in SyncEvent.objects.get(target=writer).error
    assert SyncEvent.objects.get(target=accounts).outcome == "changed"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0] == 2


def test_database_alias_must_be_configured(settings):
    settings.SHEETS_SYNC_DATABASES = {}
    with pytest.raises(ValidationError, match="SHEETS_SYNC_DB_CRM"):
        target(name="x", source_kind="database", source_database="crm", source_query="SELECT 1 AS id")


def test_csv_in_the_backup_store(spreadsheet):
    storages["backups"].save("sheets/plan.csv", ContentFile(b"id,quarter,target\n1,Q1,100\n2,Q2,120.5\n"))
    target(name="plan", source_kind="file", source_file="store:sheets/plan.csv")
    code, out = run_cycle()
    assert code == 0, out
    assert spreadsheet.store.values("s1", "Sheet1") == [["id", "quarter", "target"], [1, "Q1", 100], [2, "Q2", 120.5]]


def test_missing_store_file_is_a_clear_failure(spreadsheet):
    target(name="plan", source_kind="file", source_file="store:sheets/missing.parquet")
    code, out = run_cycle()
    assert code == 1 and "'sheets/missing.parquet' is not in the backup store" in out


def test_file_sources_stay_inside_the_allowed_roots(files):
    with pytest.raises(ValidationError, match="outside SHEETS_SYNC_FILE_ROOTS"):
        target(name="secrets", source_kind="file", source_file="/etc/passwd.csv")
    with pytest.raises(ValidationError, match="without '..'"):
        target(name="escape", source_kind="file", source_file="store:../x.csv")
    with pytest.raises(ValidationError, match="only .csv, .parquet"):
        target(name="excel", source_kind="file", source_file=str(files / "x.xlsx"))
    with pytest.raises(ValidationError, match="top-left cell only"):
        target(name="range", source_kind="file", source_file=str(files / "x.csv"), range="Sheet1!A1:C9")
    with pytest.raises(ValidationError, match="a key column cannot be protected"):
        target(name="keys", source_kind="file", source_file=str(files / "x.csv"), protected_columns="id")


def test_a_database_password_never_reaches_a_message():
    from sheetsync.sources import scrub_secrets

    url = "postgres://reader:s3cretpw@[::1:5432/crm"
    leaked = f'invalid connection option: "{url}"'
    assert "s3cretpw" not in scrub_secrets(leaked, url)
    assert scrub_secrets("at postgres://u:p4ss@db:5432/x failed") == "at postgres://u:***@db:5432/x failed"


def test_a_symlink_cannot_lead_a_file_source_out_of_its_roots(files, tmp_path):
    import pytest

    from sheetsync.sources import SourceError, _file_bytes

    outside = tmp_path / "outside.csv"
    outside.write_text("id,region\n1,secret\n")
    link = files / "innocent.csv"
    link.symlink_to(outside)
    with pytest.raises(SourceError, match="outside SHEETS_SYNC_FILE_ROOTS"):
        _file_bytes(str(link))

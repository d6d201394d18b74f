"""BigQuery and Sheets emulators on loopback, seeded with generated sales data, for the sales job tests."""

from __future__ import annotations

from datetime import date

import pytest

END = date(2026, 10, 31)
OLD_SHEET = [["old", "report"], ["2025-01-01", "EMEA", 1, 10.0]]


@pytest.fixture(scope="session")
def sales_dirs(tmp_path_factory):
    from sandbox.salesdata import write_sales_dataset

    clean = tmp_path_factory.mktemp("sales-clean")
    dirty = tmp_path_factory.mktemp("sales-dirty")
    write_sales_dataset(clean, rows=20_000, seed=3, end=END, dirty_share=0.0)
    write_sales_dataset(dirty, rows=20_000, seed=3, end=END, dirty_share=0.02)
    return {"clean": clean, "dirty": dirty}


def _bigquery(settings, data_dir):
    from sandbox.bigquery.testing import running_bigquery_emulator

    emulator_cm = running_bigquery_emulator(data_dir=data_dir)
    emulator = emulator_cm.__enter__()
    settings.BIGQUERY_EMULATOR_HOST = emulator.base_url
    settings.BIGQUERY_EMULATOR_AUTOSTART = False
    settings.BIGQUERY_MAX_ATTEMPTS = 2
    return emulator_cm, emulator


@pytest.fixture
def bigquery(settings, sales_dirs):
    cm, emulator = _bigquery(settings, sales_dirs["clean"])
    yield emulator
    cm.__exit__(None, None, None)


@pytest.fixture
def dirty_bigquery(settings, sales_dirs):
    cm, emulator = _bigquery(settings, sales_dirs["dirty"])
    yield emulator
    cm.__exit__(None, None, None)


@pytest.fixture
def sheet(settings):
    from sandbox.sheets.testing import running_sheets_emulator

    with running_sheets_emulator() as emulator:
        emulator.store.create_spreadsheet("Sales dashboard", {"Report": OLD_SHEET}, spreadsheet_id="sales-dash")
        settings.SHEETS_API_ENDPOINT = emulator.base_url
        settings.SHEETS_EMULATOR_AUTOSTART = False
        settings.SALES_SHEET_ID = "sales-dash"
        settings.SHEETS_MAX_ATTEMPTS = 2
        settings.SHEETS_BACKOFF_BASE = 0.01
        settings.SHEETS_BACKOFF_MAX = 0.05
        yield emulator


def report_values(sheet) -> list[list]:
    return sheet.store.values("sales-dash", "Report")

"""A sync target that names a quality suite: its BigQuery or database rows pass the declared checks or nothing is
written (the sheet keeps its values and the target's error names the checks)."""

from __future__ import annotations

import sqlite3
from datetime import date

import polars as pl
import pytest
from django.core.exceptions import ValidationError

from sheetsync.models import SyncEvent, SyncTarget
from tests.sheetsync.conftest import run_cycle
from tests.sheetsync.test_sources import bigquery, spreadsheet, target  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db
LINES = (
    "SELECT order_id, line_no, order_ts, region, country, sku, product_category, quantity, unit_price, discount, "
    "revenue, currency, customer_id, customer_email, channel FROM `sales.order_lines` "
    "WHERE order_ts >= TIMESTAMP('2026-10-25') ORDER BY order_id, line_no"
)


def lines_target(**fields) -> SyncTarget:
    return target(
        name="lines",
        source_kind="bigquery",
        key_columns="order_id,line_no",
        source_query=LINES,
        quality_suite="sales.order_lines",
        **fields,
    )


def test_clean_bigquery_rows_pass_the_suite_and_are_written(spreadsheet, bigquery):  # noqa: F811
    lines_target()
    code, out = run_cycle()
    assert code == 0, out
    sheet = spreadsheet.store.values("s1", "Sheet1")
    assert sheet[0][:3] == ["order_id", "line_no", "order_ts"] and len(sheet) > 2
    assert SyncEvent.objects.get().outcome == "changed"


def test_dirty_bigquery_rows_stop_the_target_and_name_the_check(spreadsheet, bigquery):  # noqa: F811
    made = lines_target()
    assert run_cycle()[0] == 0
    before = spreadsheet.store.values("s1", "Sheet1")
    rows = pl.DataFrame(bigquery.duckdb_query("SELECT * FROM sales.order_lines"), orient="row")
    columns = [c[0] for c in bigquery.duckdb_query("DESCRIBE sales.order_lines")]
    lines = rows.rename(dict(zip(rows.columns, columns, strict=True)))
    late = lines.with_row_index("i").filter(pl.col("order_ts") >= pl.datetime(2026, 10, 25, time_zone="UTC"))["i"][0]
    flip = pl.int_range(pl.len()) == late
    flipped = lines.with_columns(  # a return keyed as a sale: quantity and revenue both negative
        quantity=pl.when(flip).then(-pl.col("quantity")).otherwise(pl.col("quantity")),
        revenue=pl.when(flip).then(-pl.col("revenue")).otherwise(pl.col("revenue")),
    )
    bigquery.load_table("sales", "order_lines", flipped, partition_field="order_ts")

    code, out = run_cycle("--param", "force=true")
    assert code == 1
    made.refresh_from_db()
    # One line of the few since Oct 25 is over the check's 1% fail threshold.
    assert "quality suite sales.order_lines failed" in made.last_error
    assert "quantity_positive: 1 of" in made.last_error and "fail > 1.00%" in made.last_error
    assert "revenue_matches_line" not in made.last_error
    assert spreadsheet.store.values("s1", "Sheet1") == before  # nothing written


def test_database_rows_are_validated_with_text_dates_parsed(spreadsheet, settings, tmp_path):  # noqa: F811
    path = tmp_path / "reports.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE daily (day TEXT, region TEXT, orders INTEGER, revenue REAL)")
        db.executemany(
            "INSERT INTO daily VALUES (?, ?, ?, ?)",
            [("2026-10-01", "EMEA", 10, 1200.0), ("2026-10-01", "NA", 4, 300.5)],
        )
    settings.SHEETS_SYNC_DATABASES = {"reports": f"sqlite:///{path}"}
    made = target(name="daily", source_kind="database", source_database="reports", key_columns="day,region",
                  source_query="SELECT day, region, orders, revenue FROM daily ORDER BY day, region",
                  quality_suite="sales.daily_report")  # fmt: skip
    code, out = run_cycle()
    assert code == 0, out
    assert spreadsheet.store.values("s1", "Sheet1")[1] == ["2026-10-01", "EMEA", 10, 1200]

    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO daily VALUES ('2026-10-02', 'APAC', 3, -50.0)")
    code, out = run_cycle("--param", "force=true")
    made.refresh_from_db()
    assert code == 1 and "quality suite sales.daily_report asks for a review" in made.last_error
    assert "check revenue_not_negative (validity, error) failed" in made.last_error
    assert len(spreadsheet.store.values("s1", "Sheet1")) == 3  # the new, negative day was not written


def test_the_suite_must_be_declared():
    with pytest.raises(ValidationError, match="no such suite; declared: sales.daily_report, sales.order_lines"):
        target(name="x", source_kind="database", source_database="", source_query="SELECT 1", quality_suite="nope")


def test_source_validate_drops_the_exact_copies_a_passing_suite_removed():
    from quality.suites import SUITES
    from sheetsync.sources import SourceResult, source_validate

    rows = [(date(2026, 10, 1), "EMEA", 10, 1200.0), (date(2026, 10, 1), "NA", 4, 300.5)]
    loaded = SourceResult(columns=("day", "region", "orders", "revenue"), rows=rows, label="test rows")
    made = SyncTarget(name="t", quality_suite="sales.daily_report")
    assert source_validate(target=made, loaded=loaded).rows == rows
    assert source_validate(target=SyncTarget(name="t"), loaded=loaded) is loaded
    assert "sales.daily_report" in SUITES


DAILY = ["day", "region", "orders", "revenue"]


def test_naming_a_suite_rechecks_the_source_but_keeps_the_copy_of_the_sheet(make_target, sheets):
    """Issue 8's suite on issue 15's kept copy: a suite named after the first sync re-reads and checks the source,
    yet the sheet is still diffed against the copy kept of it (a suite picks rows, it does not move cells)."""
    from sheetsync.models import SyncTargetCopy
    from tests.sheetsync.conftest import Counted, set_source

    read = "GET /v4/spreadsheets/<spreadsheet_id>/values:batchGet"
    write = "POST /v4/spreadsheets/<spreadsheet_id>/values:batchUpdate"
    rows = [["2026-10-01", "EMEA", 10, 1200.0], ["2026-10-01", "NA", 4, 300.5]]
    made = make_target("daily", rows, columns=DAILY, key_columns="day,region")
    assert run_cycle()[0] == 0
    assert SyncTargetCopy.objects.filter(target=made).exists()

    made.quality_suite = "sales.daily_report"
    made.full_clean()
    made.save(update_fields=["quality_suite"])
    set_source(made, [["2026-10-01", "EMEA", 10, 1250.0], ["2026-10-01", "NA", 4, 300.5]], DAILY)
    with Counted(sheets) as counted:
        code, out = run_cycle()
    assert code == 0, out
    assert counted.of(read) == 0 and counted.of(write) == 1  # diffed against the kept copy, one write
    assert sheets.store.values("s1", "Sheet1")[1] == ["2026-10-01", "EMEA", 10, 1250]

    before = sheets.store.values("s1", "Sheet1")
    set_source(made, [*rows, ["2026-10-02", "APAC", 3, -50.0]], DAILY)
    with Counted(sheets) as counted:
        code, out = run_cycle()
    made.refresh_from_db()
    assert code == 1 and "quality suite sales.daily_report asks for a review" in made.last_error
    assert counted.of(write) == 0 and sheets.store.values("s1", "Sheet1") == before  # nothing written

"""Issue 15: the BigQuery emulator's dry run estimates from table metadata, as BigQuery's does, never the rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from sandbox.bigquery.engine import DuckEngine, QueryParam

DAYS = 30
ROWS_PER_DAY = 400
START = datetime(2026, 10, 1, tzinfo=UTC)

SQL = """
SELECT region, SUM(revenue) AS revenue
FROM sales.lines
WHERE order_ts >= TIMESTAMP(@start) AND order_ts < TIMESTAMP(DATE_ADD(@end, INTERVAL 1 DAY))
GROUP BY region
"""


def _lines() -> pa.Table:
    ts, region, revenue, note = [], [], [], []
    for day in range(DAYS):
        for i in range(ROWS_PER_DAY):
            ts.append(START + timedelta(days=day, seconds=i * 200))
            region.append(("north", "south-east", "w")[i % 3] * (1 + day % 4))  # sizes vary by day
            revenue.append(float(i))
            note.append("x" * (i % 50))
    return pa.table(
        {
            "order_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "region": region,
            "revenue": revenue,
            "note": note,
        }
    )


@pytest.fixture
def engine() -> DuckEngine:
    engine = DuckEngine()
    engine.load_table("sales", "lines", _lines(), partition_field="order_ts")
    return engine


def _params(start: date, end: date) -> list[QueryParam]:
    return [QueryParam("start", "DATE", start.isoformat()), QueryParam("end", "DATE", end.isoformat())]


def _true_bytes(table: pa.Table, start: date, end: date) -> int:
    """The bytes the query really reads: the referenced columns of the rows in the selected days."""
    rows = [
        (ts, region)
        for ts, region in zip(table["order_ts"].to_pylist(), table["region"].to_pylist(), strict=True)
        if start <= ts.date() <= end
    ]
    # BigQuery's sizes: TIMESTAMP and FLOAT64 8 bytes, STRING 2 + its UTF-8 length.
    return sum(8 + 8 + 2 + len(region.encode()) for _ts, region in rows)


def test_a_dry_run_reads_the_partitions_metadata_not_the_rows(engine):
    start, end = date(2026, 10, 8), date(2026, 10, 14)
    estimate = engine.prepare(SQL, _params(start, end))
    read = estimate.reads[0]
    assert read.partitions_scanned == 7
    assert read.rows_scanned == 7 * ROWS_PER_DAY
    assert sorted(read.columns) == ["order_ts", "region", "revenue"]  # not the note

    # Empty the table behind the catalog's back: a scan would now find nothing, the metadata still says 30 days.
    with engine.cursor() as cur:
        cur.execute('DELETE FROM "sales"."lines"')
    again = engine.prepare(SQL, _params(start, end))
    assert (again.reads[0].rows_scanned, again.bytes_processed) == (read.rows_scanned, estimate.bytes_processed)
    assert engine.execute(again).num_rows == 0  # the rows are really gone: only a real run sees it


def test_the_estimate_is_close_to_the_bytes_the_query_reads(engine):
    table = _lines()
    for start, end in ((date(2026, 10, 8), date(2026, 10, 14)), (date(2026, 10, 1), date(2026, 10, 30))):
        estimate = engine.prepare(SQL, _params(start, end)).bytes_processed
        true = _true_bytes(table, start, end)
        assert 0.8 <= estimate / true <= 1.25, (start, end, estimate, true)


@pytest.mark.parametrize(
    ("where", "days"),
    [
        ("order_ts BETWEEN TIMESTAMP('2026-10-03') AND TIMESTAMP('2026-10-05 12:00:00')", 3),
        ("order_ts IN (TIMESTAMP('2026-10-02 00:00:00'), TIMESTAMP('2026-10-20 00:03:20'))", 2),
        ("TIMESTAMP('2026-10-28') <= order_ts", 3),
        ("order_ts < TIMESTAMP('2026-10-03') OR order_ts >= TIMESTAMP('2026-10-30')", 3),
        ("order_ts > TIMESTAMP('2026-10-25') AND revenue > 3", 6),  # revenue prunes nothing, the rest does
        ("DATE(order_ts) = '2026-10-04'", DAYS),  # a function of the column: no pruning (an upper bound)
        ("order_ts > TIMESTAMP('2027-01-01')", 0),
    ],
)
def test_partition_pruning_on_the_bounds(engine, where, days):
    prepared = engine.prepare(f"SELECT COUNT(*) FROM sales.lines WHERE {where}")  # noqa: S608 - fixed test filters
    assert prepared.reads[0].partitions_scanned == days
    assert prepared.reads[0].rows_scanned == days * ROWS_PER_DAY

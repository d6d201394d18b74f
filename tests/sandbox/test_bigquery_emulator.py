"""The BigQuery emulator over plain HTTP and through the real google-cloud-bigquery client; the sales generator."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import requests
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from sandbox.bigquery.engine import MIB, MIN_BILLED_BYTES
from sandbox.bigquery.server import BigQueryEmulator
from sandbox.bigquery.testing import running_bigquery_emulator
from sandbox.common import FaultRule
from sandbox.salesdata import (
    COLUMNS,
    DIRTY_KINDS,
    KNOWN_CURRENCIES,
    dirty_row_counts,
    generate_order_lines,
    write_sales_dataset,
)
from sandbox.salesdata import main as salesdata_main

PROJECT = "dataops-local"
END = date(2026, 11, 1)
ROWS = 20_000
API = f"/bigquery/v2/projects/{PROJECT}"
JOBS_POST = "POST /bigquery/v2/projects/<project>/jobs"
RESULTS_GET = "GET /bigquery/v2/projects/<project>/queries/<job_id>"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20k generated order lines plus a small CSV table with a sidecar schema."""
    directory = tmp_path_factory.mktemp("bq-data")
    write_sales_dataset(directory, rows=ROWS, seed=7, end=END)
    (directory / "ref.fx_rates.csv").write_text(
        "currency,usd_rate,as_of\nEUR,0.92,2026-10-31 00:00:00\nGBP,0.79,2026-10-31 00:00:00\n", encoding="utf-8"
    )
    (directory / "ref.fx_rates.json").write_text(
        json.dumps({"schema": [{"name": "usd_rate", "type": "NUMERIC"}]}), encoding="utf-8"
    )
    (directory / "README.txt").write_text("not a table", encoding="utf-8")
    return directory


@pytest.fixture
def emulator(data_dir: Path) -> Iterator[BigQueryEmulator]:
    """A fresh emulator (empty job list and cache) over the module's data."""
    with running_bigquery_emulator(data_dir=data_dir) as emu:
        yield emu


def sdk(emu: BigQueryEmulator) -> bigquery.Client:
    """The real client aimed at the emulator."""
    return bigquery.Client(
        project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": emu.base_url}
    )


def insert(emu: BigQueryEmulator, sql: str, *, job_id: str | None = None, **query: Any) -> requests.Response:
    """jobs.insert over plain HTTP."""
    body: dict[str, Any] = {"configuration": {"query": {"query": sql, "useLegacySql": False, **query}}}
    if job_id:
        body["jobReference"] = {"projectId": PROJECT, "jobId": job_id, "location": "US"}
    return requests.post(f"{emu.base_url}{API}/jobs", json=body, timeout=10)


def results(emu: BigQueryEmulator, job_id: str, **params: Any) -> requests.Response:
    """getQueryResults over plain HTTP."""
    return requests.get(f"{emu.base_url}{API}/queries/{job_id}", params=params, timeout=10)


# --------------------------------------------------------------------------------------------
# The sales generator
# --------------------------------------------------------------------------------------------


def test_generator_is_deterministic_and_has_the_canonical_columns() -> None:
    first = generate_order_lines(rows=5_000, seed=11, end=END)
    assert first.equals(generate_order_lines(rows=5_000, seed=11, end=END))
    assert not first.equals(generate_order_lines(rows=5_000, seed=12, end=END))
    assert first.height == 5_000
    assert first.columns == [name for name, _ in COLUMNS]
    money = pl.Decimal(18, 2)
    assert first.schema["order_ts"] == pl.Datetime("us", "UTC")
    assert first.schema["line_no"] == pl.Int64 and first.schema["quantity"] == pl.Int64
    assert first.schema["unit_price"] == money and first.schema["revenue"] == money


def test_generator_mix_is_realistic() -> None:
    df = generate_order_lines(rows=ROWS, seed=7, end=END, dirty_share=0)
    assert set(df["region"].unique()) == {"EMEA", "NA", "LATAM", "APAC", "MEA"}
    assert df["product_category"].n_unique() == 10
    assert 1_500 <= df["sku"].n_unique() <= 2_000
    assert set(df["channel"].unique()) == {"web", "store", "partner", "marketplace"}
    assert set(df["currency"].unique()) <= KNOWN_CURRENCIES
    assert df["quantity"].min() == 1 and df["quantity"].max() <= 10
    assert (df["quantity"] == 1).mean() > 0.4  # skewed towards single items
    assert df["discount"].min() == Decimal("0") and df["discount"].max() == Decimal("0.30")
    # Several lines per order, numbered from 1, unique (order_id, line_no).
    per_order = df.group_by("order_id").agg(pl.len().alias("n"), pl.col("line_no").max().alias("top"))
    assert 1.5 < per_order["n"].mean() < 4 and (per_order["n"] == per_order["top"]).all()
    assert df.select("order_id", "line_no").unique().height == df.height
    # Two years ending at END, nothing after it.
    span = df["order_ts"].max() - df["order_ts"].min()
    assert timedelta(days=700) < span < timedelta(days=731)
    assert df["order_ts"].max() < datetime(2026, 11, 2, tzinfo=UTC)
    assert all(count == 0 for count in dirty_row_counts(df, end=END).values())
    # revenue = quantity * unit_price * (1 - discount), rounded to cents.
    row = df.row(0, named=True)
    expected = (row["quantity"] * row["unit_price"] * (1 - row["discount"])).quantize(Decimal("0.01"))
    assert abs(row["revenue"] - expected) <= Decimal("0.01")


def test_generator_dirty_rows_have_one_defect_each_in_the_requested_share() -> None:
    df = generate_order_lines(rows=ROWS, seed=7, end=END, dirty_share=0.01)
    counts = dirty_row_counts(df, end=END)
    assert set(counts) == set(DIRTY_KINDS)
    assert sum(counts.values()) == round(ROWS * 0.01)
    assert min(counts.values()) >= ROWS * 0.01 // len(DIRTY_KINDS)
    assert df.height == ROWS


def test_write_sales_dataset_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_sales_dataset(tmp_path / "a", rows=1_000, seed=3, end=END)
    assert path.name == "sales.order_lines.parquet" and path.exists()
    sidecar = json.loads((path.parent / "sales.order_lines.json").read_text())
    assert sidecar["partition_field"] == "order_ts"
    assert pl.read_parquet(path).equals(generate_order_lines(rows=1_000, seed=3, end=END))
    assert salesdata_main(["--out", str(tmp_path / "b"), "--rows", "500", "--end", "2026-11-01"]) == 0
    assert "wrote 500 rows" in capsys.readouterr().out
    assert pl.read_parquet(tmp_path / "b" / "sales.order_lines.parquet").height == 500


# --------------------------------------------------------------------------------------------
# Catalog and metadata
# --------------------------------------------------------------------------------------------


def test_tables_seed_from_the_directory(emulator: BigQueryEmulator) -> None:
    meta = requests.get(f"{emulator.base_url}{API}/datasets/sales/tables/order_lines", timeout=5).json()
    assert [f["name"] for f in meta["schema"]["fields"]] == [name for name, _ in COLUMNS]
    assert [f["type"] for f in meta["schema"]["fields"]] == [kind for _, kind in COLUMNS]
    assert meta["numRows"] == str(ROWS) and int(meta["numBytes"]) > 0
    assert meta["timePartitioning"] == {"type": "DAY", "field": "order_ts"}
    assert emulator.duckdb_query("SELECT COUNT(*) FROM sales.order_lines") == [(ROWS,)]

    fx = requests.get(f"{emulator.base_url}{API}/datasets/ref/tables/fx_rates", timeout=5).json()
    types = {f["name"]: f["type"] for f in fx["schema"]["fields"]}
    assert types == {"currency": "STRING", "usd_rate": "NUMERIC", "as_of": "TIMESTAMP"}  # CSV time read as UTC

    listed = requests.get(f"{emulator.base_url}{API}/datasets/sales/tables", timeout=5).json()
    assert [t["tableReference"]["tableId"] for t in listed["tables"]] == ["order_lines"]
    datasets = requests.get(f"{emulator.base_url}{API}/datasets", timeout=5).json()
    assert [d["datasetReference"]["datasetId"] for d in datasets["datasets"]] == ["fx", "ref", "sales"]


def test_unknown_table_is_a_bigquery_404(emulator: BigQueryEmulator) -> None:
    reply = requests.get(f"{emulator.base_url}{API}/datasets/sales/tables/nope", timeout=5)
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["code"] == 404 and error["status"] == "NOT_FOUND"
    assert error["errors"][0]["reason"] == "notFound"
    assert error["message"] == f"Not found: Table {PROJECT}:sales.nope was not found in location US"


def test_real_client_reads_table_metadata(emulator: BigQueryEmulator) -> None:
    table = sdk(emulator).get_table(f"{PROJECT}.sales.order_lines")
    assert table.num_rows == ROWS
    assert table.time_partitioning.field == "order_ts"
    assert [f.field_type for f in table.schema][:3] == ["STRING", "INT64", "TIMESTAMP"]
    with pytest.raises(api_exceptions.NotFound):
        sdk(emulator).get_table(f"{PROJECT}.sales.nope")


# --------------------------------------------------------------------------------------------
# Jobs over HTTP
# --------------------------------------------------------------------------------------------


def test_dry_run_estimates_without_running_or_keeping_a_job(emulator: BigQueryEmulator) -> None:
    body = {"configuration": {"dryRun": True, "query": {"query": "SELECT region, revenue FROM sales.order_lines"}}}
    reply = requests.post(f"{emulator.base_url}{API}/jobs", json=body, timeout=5).json()
    stats = reply["statistics"]["query"]
    (strings,) = emulator.duckdb_query(
        "SELECT SUM(strlen(region)) + 2 * COUNT(region) FROM sales.order_lines"
    )  # STRING: 2 bytes + UTF-8 length per value
    assert abs(int(stats["totalBytesProcessed"]) - (16 * ROWS + strings[0])) <= 1  # NUMERIC: 16 bytes
    assert [f["type"] for f in stats["schema"]["fields"]] == ["STRING", "NUMERIC"]
    assert reply["status"]["state"] == "DONE" and "jobId" not in reply["jobReference"]
    assert emulator.queries_executed == 0 and emulator.job_ids() == []


def test_duplicate_job_id_is_409(emulator: BigQueryEmulator) -> None:
    assert insert(emulator, "SELECT 1", job_id="job_once").status_code == 200
    again = insert(emulator, "SELECT 1", job_id="job_once")
    assert again.status_code == 409
    assert again.json()["error"]["errors"][0]["reason"] == "duplicate"
    assert "job_once" in again.json()["error"]["message"]


def test_failed_queries_are_failed_jobs_and_http_errors_on_results(emulator: BigQueryEmulator) -> None:
    job = insert(emulator, "SELEC region FROM sales.order_lines", job_id="bad_sql").json()
    assert job["status"]["state"] == "DONE"
    assert job["status"]["errorResult"]["reason"] == "invalidQuery"
    assert job["status"]["errorResult"]["message"].startswith("Syntax error")
    reply = results(emulator, "bad_sql")
    assert reply.status_code == 400 and reply.json()["error"]["errors"][0]["reason"] == "invalidQuery"

    insert(emulator, "SELECT * FROM sales.missing", job_id="no_table")
    assert results(emulator, "no_table").status_code == 404

    direct = requests.post(
        f"{emulator.base_url}{API}/queries", json={"query": "SELECT nope FROM sales.order_lines"}, timeout=5
    )
    assert direct.status_code == 400
    assert direct.json()["error"]["message"] == "Unrecognized name: nope"


def test_maximum_bytes_billed_refuses_before_running(emulator: BigQueryEmulator) -> None:
    job = insert(emulator, "SELECT * FROM sales.order_lines", job_id="too_big", maximumBytesBilled="1000").json()
    error = job["status"]["errorResult"]
    assert error["reason"] == "bytesBilledLimitExceeded"
    assert error["message"] == f"Query exceeded limit for bytes billed: 1000. {MIN_BILLED_BYTES} or higher required."
    assert results(emulator, "too_big").json()["error"]["errors"][0]["reason"] == "bytesBilledLimitExceeded"
    assert emulator.queries_executed == 0
    assert insert(emulator, "SELECT 1", maximumBytesBilled="None").status_code == 400  # malformed INT64


def test_results_paging_tokens_start_index_and_formats(emulator: BigQueryEmulator) -> None:
    sql = "SELECT order_id, line_no, order_ts, revenue, CAST(NULL AS STRING) AS nothing FROM sales.order_lines"
    insert(emulator, sql + " ORDER BY order_id, line_no LIMIT 25", job_id="paged")
    status = results(emulator, "paged", maxResults=0).json()
    assert status["jobComplete"] is True and status["totalRows"] == "25" and "rows" not in status
    assert "pageToken" not in status

    seen: list[list[Any]] = []
    token = None
    pages = 0
    while True:
        params: dict[str, Any] = {"maxResults": 10, "formatOptions.useInt64Timestamp": "True"}
        if token:
            params["pageToken"] = token
        page = results(emulator, "paged", **params).json()
        seen.extend([cell["v"] for cell in row["f"]] for row in page["rows"])
        pages += 1
        token = page.get("pageToken")
        if not token:
            break
    assert pages == 3 and len(seen) == 25
    first_ts = emulator.duckdb_query(
        "SELECT epoch_us(order_ts) FROM sales.order_lines ORDER BY order_id, line_no LIMIT 1"
    )[0][0]
    assert seen[0][2] == str(first_ts)  # integer microseconds
    assert seen[0][4] is None  # {"v": null}
    assert (
        Decimal(seen[0][3])
        == emulator.duckdb_query("SELECT revenue FROM sales.order_lines ORDER BY order_id, line_no LIMIT 1")[0][0]
    )

    window = results(emulator, "paged", startIndex=20, maxResults=100).json()
    assert len(window["rows"]) == 5 and "pageToken" not in window
    assert float(window["rows"][0]["f"][2]["v"]) > 1e9  # without useInt64Timestamp: seconds
    projected = results(emulator, "paged", maxResults=1, fields="totalRows,rows").json()
    assert set(projected) == {"totalRows", "rows"}
    assert results(emulator, "paged", pageToken="bogus").status_code == 400


def test_jobs_get_checks_the_location(emulator: BigQueryEmulator) -> None:
    insert(emulator, "SELECT 1 AS one", job_id="where_am_i")
    ok = requests.get(f"{emulator.base_url}{API}/jobs/where_am_i", params={"location": "US"}, timeout=5)
    assert ok.status_code == 200 and ok.json()["status"]["state"] == "DONE"
    elsewhere = requests.get(f"{emulator.base_url}{API}/jobs/where_am_i", params={"location": "EU"}, timeout=5)
    assert elsewhere.status_code == 404
    assert elsewhere.json()["error"]["message"] == f"Not found: Job {PROJECT}:EU.where_am_i"


def test_counters_and_injected_faults_use_bigquery_error_shape(emulator: BigQueryEmulator) -> None:
    emulator.faults.add(FaultRule(method="POST", path_pattern="*/jobs", status=429, retry_after=2, times=1))
    throttled = insert(emulator, "SELECT 1")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    error = throttled.json()["error"]
    assert error["errors"][0]["reason"] == "rateLimitExceeded" and error["status"] == "RESOURCE_EXHAUSTED"
    assert insert(emulator, "SELECT 1").status_code == 200
    assert emulator.counters() == {JOBS_POST: 2, "total": 2}
    emulator.reset_counters()
    assert emulator.counters() == {}


def test_unnamed_columns_are_named_like_bigquery(emulator: BigQueryEmulator) -> None:
    rows = list(
        sdk(emulator)
        .query(
            "SELECT region, COUNT(*), SUM(quantity) AS q, 1 + 1 FROM sales.order_lines "
            "WHERE region = 'EMEA' GROUP BY region"
        )
        .result()
    )
    assert list(rows[0].keys()) == ["region", "f0_", "q", "f1_"]
    assert isinstance(rows[0]["q"], int)  # DuckDB's HUGEINT sum is an INT64, as in BigQuery


# --------------------------------------------------------------------------------------------
# Through the real client
# --------------------------------------------------------------------------------------------


def test_real_client_query_params_paging_and_types(emulator: BigQueryEmulator) -> None:
    client = sdk(emulator)
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("since", "TIMESTAMP", datetime(2026, 9, 1, tzinfo=UTC)),
            bigquery.ArrayQueryParameter("regions", "STRING", ["EMEA", "APAC"]),
            bigquery.ScalarQueryParameter("min_qty", "INT64", 2),
            bigquery.ScalarQueryParameter("max_discount", "NUMERIC", Decimal("0.10")),
            bigquery.ScalarQueryParameter("day", "DATE", date(2026, 9, 2)),
        ]
    )
    sql = (
        "SELECT order_id, line_no, order_ts, revenue FROM `dataops-local.sales.order_lines` "
        "WHERE order_ts >= @since AND region IN UNNEST(@regions) AND quantity >= @min_qty "
        "AND discount <= @max_discount AND DATE(order_ts) >= @day ORDER BY order_id, line_no"
    )
    job = client.query(sql, job_config=config)
    rows = list(job.result(page_size=50))
    expected = emulator.duckdb_query(
        "SELECT order_id, line_no, order_ts, revenue FROM sales.order_lines WHERE order_ts >= ? "
        "AND region IN ('EMEA', 'APAC') AND quantity >= 2 AND discount <= 0.10 AND CAST(order_ts AS DATE) >= ? "
        "ORDER BY order_id, line_no",
        [datetime(2026, 9, 1, tzinfo=UTC), date(2026, 9, 2)],
    )
    assert 50 < len(rows) == len(expected)
    assert [tuple(r.values()) for r in rows] == [tuple(e) for e in expected]
    assert isinstance(rows[0]["revenue"], Decimal)
    assert rows[0]["order_ts"].tzinfo is not None
    pages = emulator.counters()[RESULTS_GET]
    assert pages == -(-len(rows) // 50)  # one getQueryResults per page of 50
    stats = emulator.job(job.job_id)["statistics"]["query"]
    assert int(stats["totalBytesBilled"]) % MIB == 0 and int(stats["totalSlotMs"]) >= 1


def test_jobs_query_and_running_jobs_are_polled(data_dir: Path) -> None:
    with running_bigquery_emulator(data_dir=data_dir, job_running_ms=300) as emu:
        client = sdk(emu)
        started = time.monotonic()
        rows = list(client.query("SELECT COUNT(*) AS n FROM sales.order_lines").result())
        assert rows[0]["n"] == ROWS and time.monotonic() - started >= 0.25
        assert emu.counters()["GET /bigquery/v2/projects/<project>/jobs/<job_id>"] >= 1  # polled while RUNNING
        emu.reset_counters()
        waited = client.query_and_wait("SELECT COUNT(*) AS n FROM sales.order_lines WHERE region = 'NA'")
        assert list(waited)[0]["n"] > 0
        assert emu.counters()["POST /bigquery/v2/projects/<project>/queries"] == 1


def test_cache_hits_until_the_table_changes(emulator: BigQueryEmulator, data_dir: Path) -> None:
    client = sdk(emulator)
    sql = "SELECT channel, SUM(revenue) AS r FROM sales.order_lines GROUP BY channel"
    first = client.query(sql)
    first.result()
    second = client.query(sql)
    second.result()
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.total_bytes_billed == 0 and first.total_bytes_billed >= MIN_BILLED_BYTES
    assert emulator.queries_executed == 1
    no_cache = client.query(sql, job_config=bigquery.QueryJobConfig(use_query_cache=False))
    no_cache.result()
    assert no_cache.cache_hit is False and emulator.queries_executed == 2

    # Reloading the table (same rows, new version) invalidates the cached result.
    emulator.load_table("sales", "order_lines", data_dir / "sales.order_lines.parquet", partition_field="order_ts")
    after_reload = client.query(sql)
    after_reload.result()
    assert after_reload.cache_hit is False and emulator.queries_executed == 3


def test_module_entry_point_serves_until_terminated(data_dir: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.bigquery",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--log-level",
            "WARNING",
        ],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        health = requests.get(f"{url}/__emulator/health", timeout=5).json()
        assert health["name"] == "bigquery"
        table = requests.get(f"{url}{API}/datasets/sales/tables/order_lines", timeout=5).json()
        assert table["numRows"] == str(ROWS)
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_real_client_finds_the_emulator_through_the_environment(
    emulator: BigQueryEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", emulator.base_url)
    client = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials())
    assert list(client.query("SELECT 1 AS one").result())[0]["one"] == 1
    assert emulator.counters()[JOBS_POST] == 1


def test_positional_params_jobs_query_dry_run_and_cancel(data_dir: Path) -> None:
    with running_bigquery_emulator(data_dir=data_dir, job_running_ms=5_000) as emu:
        body = {
            "query": "SELECT COUNT(*) AS n FROM sales.order_lines WHERE quantity >= ? AND region = ?",
            "parameterMode": "POSITIONAL",
            "queryParameters": [
                {"parameterType": {"type": "INT64"}, "parameterValue": {"value": "3"}},
                {"parameterType": {"type": "STRING"}, "parameterValue": {"value": "MEA"}},
            ],
            "dryRun": True,
        }
        dry = requests.post(f"{emu.base_url}{API}/queries", json=body, timeout=5).json()
        assert (
            int(dry["totalBytesProcessed"])
            == 8 * ROWS
            + emu.duckdb_query("SELECT SUM(strlen(region)) + 2 * COUNT(region) FROM sales.order_lines")[0][0]
        )
        assert dry["schema"]["fields"] == [{"name": "n", "type": "INT64", "mode": "NULLABLE"}]
        assert emu.queries_executed == 0

        body.update(dryRun=False, timeoutMs=100)
        running = requests.post(f"{emu.base_url}{API}/queries", json=body, timeout=5).json()
        assert running["jobComplete"] is False and "rows" not in running
        job_id = running["jobReference"]["jobId"]
        cancelled = requests.post(f"{emu.base_url}{API}/jobs/{job_id}/cancel", timeout=5).json()["job"]
        assert cancelled["status"]["state"] == "DONE"
        assert cancelled["status"]["errorResult"]["reason"] == "stopped"

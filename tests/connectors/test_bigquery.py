"""The BigQuery connector: the real google-cloud-bigquery client against the emulator on loopback."""

# ruff: noqa: S608 - the SQL strings are test constants, not user input

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.bigquery import (
    BigQueryClient,
    Column,
    QueryTooExpensive,
    bigquery_client,
    query_parameters,
)
from connectors.errors import (
    ConnectorAuthError,
    ConnectorBadResponse,
    ConnectorNotFound,
    ConnectorRateLimited,
    ConnectorRequestError,
    ConnectorTransientError,
)
from sandbox.bigquery.server import BigQueryEmulator
from sandbox.bigquery.testing import running_bigquery_emulator
from sandbox.common import FaultRule
from sandbox.salesdata import write_sales_dataset

PROJECT = "dataops-local"
END = date(2026, 11, 1)
ROWS = 20_000
MIB = 1 << 20
JOBS_POST = "POST /bigquery/v2/projects/<project>/jobs"
RESULTS_GET = "GET /bigquery/v2/projects/<project>/queries/<job_id>"
SALES = f"`{PROJECT}.sales.order_lines`"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20k generated order lines, written once for the module."""
    directory = tmp_path_factory.mktemp("bq-connector")
    write_sales_dataset(directory, rows=ROWS, seed=7, end=END)
    return directory


@pytest.fixture
def emulator(data_dir: Path) -> Iterator[BigQueryEmulator]:
    """A fresh emulator per test (empty job list, cache and counters)."""
    with running_bigquery_emulator(data_dir=data_dir) as emu:
        yield emu


@pytest.fixture
def make_client(emulator: BigQueryEmulator) -> Iterator[Callable[..., BigQueryClient]]:
    """Factory for clients aimed at the emulator, with fast backoff; closes them afterwards."""
    clients: list[BigQueryClient] = []

    def make(**overrides: Any) -> BigQueryClient:
        options: dict[str, Any] = {
            "project": PROJECT,
            "api_endpoint": emulator.base_url,
            "timeout": 5,
            "max_attempts": 3,
            "backoff_base": 0.01,
            "backoff_max": 0.05,
        }
        options.update(overrides)
        client = BigQueryClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., BigQueryClient]) -> BigQueryClient:
    """A client with the default test options."""
    return make_client()


# --------------------------------------------------------------------------------------------
# Estimates
# --------------------------------------------------------------------------------------------


def test_dry_run_returns_bytes_and_schema_without_running(client: BigQueryClient, emulator: BigQueryEmulator) -> None:
    estimate = client.query_dry_run(sql=f"SELECT region, revenue FROM {SALES}", params={})
    (string_bytes,) = emulator.duckdb_query("SELECT SUM(strlen(region)) + 2 * COUNT(region) FROM sales.order_lines")[0]
    assert abs(estimate.bytes_processed - (16 * ROWS + string_bytes)) <= 1
    assert estimate.schema == (Column("region", "STRING"), Column("revenue", "NUMERIC"))
    assert estimate.bytes_billed == 10 * MIB
    assert emulator.queries_executed == 0
    assert emulator.counters() == {JOBS_POST: 1, "total": 1}  # a dry run is one request


def test_a_narrower_column_list_costs_less(client: BigQueryClient) -> None:
    everything = client.query_dry_run(sql=f"SELECT * FROM {SALES}", params={})
    two = client.query_dry_run(sql=f"SELECT region, revenue FROM {SALES}", params={})
    one = client.query_dry_run(sql=f"SELECT quantity FROM {SALES}", params={})
    assert everything.bytes_processed > two.bytes_processed > one.bytes_processed == 8 * ROWS
    assert everything.bytes_processed == client.table_get(dataset="sales", table="order_lines").num_bytes
    # Columns used only in WHERE / GROUP BY count too.
    filtered = client.query_dry_run(sql=f"SELECT quantity FROM {SALES} WHERE channel = 'web'", params={})
    assert filtered.bytes_processed > one.bytes_processed


def test_a_date_filter_on_the_partitioned_table_costs_less(client: BigQueryClient, emulator: BigQueryEmulator) -> None:
    since = datetime(2026, 10, 2, tzinfo=UTC)
    full = client.query_dry_run(sql=f"SELECT revenue, order_ts FROM {SALES}", params={})
    recent = client.query_dry_run(
        sql=f"SELECT revenue, order_ts FROM {SALES} WHERE order_ts >= @since", params={"since": since}
    )
    # The days scanned are the days with a matching row (the dirty future rows included).
    (rows_in_days,) = emulator.duckdb_query(
        "SELECT COUNT(*) FROM sales.order_lines WHERE CAST(order_ts AS DATE) IN "
        "(SELECT DISTINCT CAST(order_ts AS DATE) FROM sales.order_lines WHERE order_ts >= ?)",
        [since],
    )[0]
    assert recent.bytes_processed == (16 + 8) * rows_in_days
    assert recent.bytes_processed < full.bytes_processed / 10
    # A filter on another column does not prune partitions.
    other = client.query_dry_run(sql=f"SELECT revenue, order_ts FROM {SALES} WHERE quantity > 5", params={})
    assert other.bytes_processed > full.bytes_processed


# --------------------------------------------------------------------------------------------
# Running queries
# --------------------------------------------------------------------------------------------


def test_named_and_array_params_are_typed_from_python_values(
    client: BigQueryClient, emulator: BigQueryEmulator
) -> None:
    params = {
        "regions": ["EMEA", "NA"],
        "since": datetime(2026, 6, 1, tzinfo=UTC),
        "first_day": date(2026, 6, 2),
        "min_qty": 2,
        "max_discount": Decimal("0.15"),
        "channels": ("web", "store"),
        "min_price": 10.5,
        "keep": True,
    }
    result = client.query_run(
        sql=(
            f"SELECT region, COUNT(*) AS n, SUM(revenue) AS revenue FROM {SALES} "
            "WHERE region IN UNNEST(@regions) AND order_ts >= @since AND DATE(order_ts) >= @first_day "
            "AND quantity >= @min_qty AND discount <= @max_discount AND channel IN UNNEST(@channels) "
            "AND unit_price >= @min_price AND @keep GROUP BY region ORDER BY region"
        ),
        params=params,
        maximum_bytes_billed=None,
    )
    expected = emulator.duckdb_query(
        "SELECT region, COUNT(*), SUM(revenue) FROM sales.order_lines WHERE region IN ('EMEA', 'NA') "
        "AND order_ts >= ? AND CAST(order_ts AS DATE) >= ? AND quantity >= 2 AND discount <= 0.15 "
        "AND channel IN ('web', 'store') AND unit_price >= 10.5 GROUP BY region ORDER BY region",
        [params["since"], params["first_day"]],
    )
    assert [(r["region"], r["n"], r["revenue"]) for r in result.rows] == [tuple(e) for e in expected]
    assert [c.name for c in result.schema] == ["region", "n", "revenue"]


def test_query_parameter_types() -> None:
    typed = {
        p.name: p.to_api_repr()["parameterType"]
        for p in query_parameters(
            {
                "s": "x",
                "i": 1,
                "f": 1.5,
                "d": Decimal("1.1"),
                "b": False,
                "day": date(2026, 1, 1),
                "ts": datetime(2026, 1, 1, 12, 0),
                "a": [1, 2],
                "empty": [],
                "nothing": None,
            }
        )
    }
    assert {name: t["type"] for name, t in typed.items()} == {
        "s": "STRING",
        "i": "INT64",
        "f": "FLOAT64",
        "d": "NUMERIC",
        "b": "BOOL",
        "day": "DATE",
        "ts": "TIMESTAMP",
        "a": "ARRAY",
        "empty": "ARRAY",
        "nothing": "STRING",
    }
    assert typed["a"]["arrayType"] == {"type": "INT64"} and typed["empty"]["arrayType"] == {"type": "STRING"}
    with pytest.raises(TypeError):
        query_parameters({"mixed": [1, "a"]})
    with pytest.raises(TypeError):
        query_parameters({"weird": object()})


def test_results_page_through_several_pages(client: BigQueryClient, emulator: BigQueryEmulator) -> None:
    result = client.query_run(
        sql=f"SELECT order_id, line_no FROM {SALES} WHERE region = 'EMEA' ORDER BY order_id, line_no LIMIT 2500",
        params={},
        maximum_bytes_billed=None,
        page_size=500,
    )
    assert len(result.rows) == result.total_rows == 2500
    assert emulator.counters()[RESULTS_GET] == 5
    expected = emulator.duckdb_query(
        "SELECT order_id, line_no FROM sales.order_lines WHERE region = 'EMEA' ORDER BY order_id, line_no LIMIT 2500"
    )
    assert [(r["order_id"], r["line_no"]) for r in result.rows] == expected

    capped = client.query_run(
        sql=f"SELECT order_id FROM {SALES} ORDER BY order_id", params={}, maximum_bytes_billed=None, max_rows=30
    )
    assert len(capped.rows) == 30 and capped.total_rows == ROWS


def test_numeric_is_decimal_and_timestamp_is_aware(client: BigQueryClient, emulator: BigQueryEmulator) -> None:
    result = client.query_run(
        sql=f"SELECT order_ts, revenue, DATE(order_ts) AS day, quantity, region FROM {SALES} "
        "ORDER BY order_id, line_no LIMIT 3",
        params={},
        maximum_bytes_billed=None,
    )
    expected = emulator.duckdb_query(
        "SELECT order_ts, revenue, CAST(order_ts AS DATE), quantity, region FROM sales.order_lines "
        "ORDER BY order_id, line_no LIMIT 3"
    )
    for row, (ts, revenue, day, quantity, region) in zip(result.rows, expected, strict=True):
        assert isinstance(row["revenue"], Decimal) and row["revenue"] == revenue
        assert row["order_ts"].tzinfo is not None and row["order_ts"] == ts
        assert row["order_ts"].utcoffset() == timedelta(0)
        assert row["day"] == day and row["quantity"] == quantity and row["region"] == region


def test_job_statistics_are_reported(client: BigQueryClient, emulator: BigQueryEmulator) -> None:
    estimate = client.query_dry_run(sql=f"SELECT channel, revenue FROM {SALES}", params={})
    result = client.query_run(
        sql=f"SELECT channel, SUM(revenue) AS r FROM {SALES} GROUP BY channel",
        params={},
        maximum_bytes_billed=50 * MIB,
        labels={"job": "stats-test"},
        job_id_prefix="stats_",
    )
    assert result.job_id.startswith("stats_") and result.location == "US"
    assert result.bytes_processed == estimate.bytes_processed
    assert result.bytes_billed == 10 * MIB and result.bytes_billed % MIB == 0
    assert result.slot_ms >= 1 and result.cache_hit is False
    assert result.started is not None and result.ended is not None and result.started <= result.ended
    assert result.started.tzinfo is not None and result.duration_s > 0
    assert result.labels == {"job": "stats-test"}
    assert emulator.job(result.job_id)["configuration"]["labels"] == {"job": "stats-test"}
    # One insert, one status call (maxResults=0) and one page of rows.
    assert emulator.counters() == {JOBS_POST: 2, RESULTS_GET: 2, "total": 4}


def test_repeat_is_a_cache_hit_billing_nothing(client: BigQueryClient, emulator: BigQueryEmulator) -> None:
    sql = f"SELECT product_category, SUM(quantity) AS q FROM {SALES} WHERE region IN UNNEST(@r) GROUP BY 1"
    first = client.query_run(sql=sql, params={"r": ["EMEA"]}, maximum_bytes_billed=None)
    again = client.query_run(sql=sql, params={"r": ["EMEA"]}, maximum_bytes_billed=None)
    other = client.query_run(sql=sql, params={"r": ["NA"]}, maximum_bytes_billed=None)
    assert (first.cache_hit, again.cache_hit, other.cache_hit) == (False, True, False)
    assert again.bytes_billed == 0 and again.bytes_processed == 0 and first.bytes_billed >= 10 * MIB
    assert sorted(map(str, again.rows)) == sorted(map(str, first.rows))
    assert emulator.queries_executed == 2


def test_over_maximum_bytes_billed_is_refused_before_running(
    client: BigQueryClient, emulator: BigQueryEmulator
) -> None:
    with pytest.raises(QueryTooExpensive) as caught:
        client.query_run(sql=f"SELECT * FROM {SALES}", params={}, maximum_bytes_billed=5 * MIB)
    error = caught.value
    assert isinstance(error, ConnectorRequestError)
    assert error.limit == 5 * MIB and error.required == 10 * MIB
    assert "Query exceeded limit for bytes billed" in str(error) and "running a query" in str(error)
    assert emulator.queries_executed == 0  # nothing was computed
    assert emulator.counters()[JOBS_POST] == 1  # not retried


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_invalid_sql_is_a_request_error_with_bigquerys_message(client: BigQueryClient) -> None:
    with pytest.raises(ConnectorRequestError) as caught:
        client.query_run(sql=f"SELECT nope FROM {SALES}", params={}, maximum_bytes_billed=None)
    assert "Unrecognized name: nope" in str(caught.value) and "invalidQuery" in str(caught.value)
    assert not isinstance(caught.value, QueryTooExpensive)
    with pytest.raises(ConnectorRequestError, match="Syntax error"):
        client.query_dry_run(sql="SELEC 1", params={})
    with pytest.raises(ConnectorRequestError, match="Query parameter 'missing' not found"):
        client.query_run(sql="SELECT @missing", params={}, maximum_bytes_billed=None)


def test_unknown_table_is_not_found(client: BigQueryClient) -> None:
    with pytest.raises(ConnectorNotFound, match=r"Not found: Table dataops-local:sales\.nope"):
        client.query_run(sql=f"SELECT * FROM `{PROJECT}.sales.nope`", params={}, maximum_bytes_billed=None)
    with pytest.raises(ConnectorNotFound, match="reading table sales.nope"):
        client.table_get(dataset="sales", table="nope")
    with pytest.raises(ConnectorNotFound, match="Dataset"):
        client.query_dry_run(sql="SELECT * FROM nowhere.nothing", params={})


def test_a_500_is_retried_then_succeeds(client: BigQueryClient, emulator: BigQueryEmulator) -> None:
    emulator.faults.add(FaultRule(method="POST", path_pattern="*/jobs", status=500, times=1))
    emulator.faults.add(FaultRule(method="GET", path_pattern="*/queries/*", status=503, times=1))
    result = client.query_run(sql="SELECT 1 AS one", params={}, maximum_bytes_billed=None)
    assert result.rows == [{"one": 1}]
    counters = emulator.counters()
    assert counters[JOBS_POST] == 2 and counters[RESULTS_GET] == 3


def test_persistent_5xx_gives_up_after_max_attempts(make_client: Callable[..., BigQueryClient], emulator) -> None:
    emulator.faults.add(FaultRule(method="GET", path_pattern="*/tables/*", status=503, times=None))
    with pytest.raises(ConnectorTransientError, match=r"after 3 attempts") as caught:
        make_client().table_get(dataset="sales", table="order_lines")
    assert caught.value.status == 503
    assert emulator.counters()["total"] == 3


def test_429_is_rate_limited_with_retry_after(make_client: Callable[..., BigQueryClient], emulator) -> None:
    emulator.faults.add(FaultRule(method="POST", path_pattern="*/jobs", status=429, retry_after=7, times=None))
    with pytest.raises(ConnectorRateLimited) as caught:
        make_client(max_attempts=2).query_run(sql="SELECT 1", params={}, maximum_bytes_billed=None)
    assert caught.value.retry_after == 7 and caught.value.status == 429
    assert isinstance(caught.value, ConnectorTransientError)
    assert emulator.counters()[JOBS_POST] == 2


def test_403_and_401_are_auth_errors(client: BigQueryClient, emulator: BigQueryEmulator) -> None:
    emulator.faults.add(FaultRule(method="POST", path_pattern="*/jobs", status=403, times=1))
    with pytest.raises(ConnectorAuthError, match="accessDenied"):
        client.query_dry_run(sql="SELECT 1", params={})
    emulator.faults.add(FaultRule(method="GET", path_pattern="*/tables/*", status=401, times=1))
    with pytest.raises(ConnectorAuthError):
        client.table_get(dataset="sales", table="order_lines")
    assert emulator.counters()["total"] == 2  # never retried


def test_a_timeout_is_transient(make_client: Callable[..., BigQueryClient], emulator: BigQueryEmulator) -> None:
    emulator.faults.add(FaultRule(method="POST", path_pattern="*/jobs", status=None, delay_s=2, times=None))
    with pytest.raises(ConnectorTransientError, match="timed out"):
        make_client(timeout=0.3, max_attempts=2).query_dry_run(sql="SELECT 1", params={})
    emulator.faults.clear()


def test_an_unreadable_reply_is_a_bad_response(client: BigQueryClient, emulator: BigQueryEmulator) -> None:
    emulator.faults.add(FaultRule(method="POST", path_pattern="*/jobs", status=200, body={"surprise": True}))
    with pytest.raises(ConnectorBadResponse, match="running a query"):
        client.query_run(sql="SELECT 1", params={}, maximum_bytes_billed=None)
    emulator.faults.add(
        FaultRule(method="POST", path_pattern="*/jobs", status=200, body={"jobReference": {}, "status": {}})
    )
    with pytest.raises(ConnectorBadResponse, match="totalBytesProcessed"):
        client.query_dry_run(sql="SELECT 1", params={})


# --------------------------------------------------------------------------------------------
# Metadata and settings
# --------------------------------------------------------------------------------------------


def test_table_get(client: BigQueryClient) -> None:
    info = client.table_get(dataset="sales", table="order_lines")
    assert (info.project, info.dataset, info.table) == (PROJECT, "sales", "order_lines")
    assert info.num_rows == ROWS and info.num_bytes and info.num_bytes > 0
    assert (info.partition_type, info.partition_field) == ("DAY", "order_ts")
    assert info.schema[0] == Column("order_id", "STRING") and info.schema[8] == Column("unit_price", "NUMERIC")
    assert info.created is not None and info.created.tzinfo is not None


def test_factory_reads_django_settings(settings, emulator: BigQueryEmulator) -> None:
    settings.GOOGLE_CLOUD_PROJECT = PROJECT
    settings.BIGQUERY_LOCATION = "US"
    settings.BIGQUERY_EMULATOR_HOST = emulator.base_url.removeprefix("http://")
    with bigquery_client() as client:
        assert client.api_endpoint == emulator.base_url and client.location == "US"
        assert client.query_run(sql="SELECT 2 AS two", params={}, maximum_bytes_billed=None).rows == [{"two": 2}]
    settings.BIGQUERY_EMULATOR_HOST = ""
    real = bigquery_client()
    assert real.api_endpoint is None and real.project == PROJECT  # built lazily: no credentials needed yet


def test_client_rejects_bad_options() -> None:
    with pytest.raises(ValueError):
        BigQueryClient(project="")
    with pytest.raises(ValueError):
        BigQueryClient(project=PROJECT, max_attempts=0)

"""The suite compiled to SQL, run in the BigQuery emulator, against the same suite in polars.

The differential tests generate order lines (clean, and dirty with every defect kind plus messy codes, null keys,
exact and conflicting duplicates, missing FX rates and future orders), run ``ORDER_LINES_SUITE`` in memory and in
the emulator (both SQL plans) and demand identical failing counts and failing keys for every check, the same
removed and quarantined rows with the same reason codes, the same score and gate, and the same clean rows.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from connectors.bigquery import BigQueryClient
from quality.engine import (
    REASON_CODES_COLUMN,
    Check,
    ColumnContract,
    Decision,
    DtypeFamily,
    NotCompilable,
    Severity,
    Stage,
    Suite,
    TableContract,
    contract_check,
    not_null,
    suite_run,
)
from quality.sql import suite_compile, table_replace
from quality.suites import FX_RATES_TABLE, ORDER_LINES_CONTRACT, ORDER_LINES_SUITE
from quality.warehouse import warehouse_estimate, warehouse_run
from sandbox.bigquery.testing import running_bigquery_emulator
from sandbox.salesdata import generate_fx_rates, generate_order_lines

END = date(2026, 5, 31)
AS_OF = datetime(2026, 5, 20, tzinfo=UTC)  # the last 11 days of the data are "in the future"
AFTER_END = datetime(2026, 6, 1, tzinfo=UTC)
KEYS = ("order_id", "line_no")
BIG = 1_000_000


def messy(df: pl.DataFrame) -> pl.DataFrame:
    """Extra dirt the generator does not plant: codes that need cleaning, null keys, copies equal after cleaning."""
    rows = df.head(40).to_dicts()
    extra: list[dict[str, Any]] = []
    a = dict(rows[0])
    extra.append({**a, "region": f" {a['region'].lower()} ", "country": a["country"].lower()})  # cleaning only
    b = dict(rows[1])
    extra.append({**b, "country": f"{b['country'].lower()} "})  # becomes an exact copy of b once cleaned
    extra.append({**rows[2], "order_id": None})
    extra.append({**rows[2], "order_id": None})  # two lines with a null key, equal: one removed
    extra.append({**rows[3], "order_id": None, "quantity": 7})  # a null key with other values
    extra.append({**rows[4], "line_no": None, "currency": "usd "})
    extra.append({**rows[5], "customer_email": None, "sku": None, "discount": None})  # nulls pass format checks
    c = dict(rows[6])
    extra += [c, c, c]  # three copies of one line: two removed
    return pl.concat([df, pl.DataFrame(extra, schema=df.schema)])


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, pl.DataFrame, pl.DataFrame]]:
    out = {}
    for name, share, gaps in (("clean", 0.0, 0), ("dirty", 0.03, 4)):
        directory = tmp_path_factory.mktemp(f"diff-{name}")
        lines = generate_order_lines(rows=6_000, seed=11, end=END, dirty_share=share)
        if name == "dirty":
            lines = messy(lines)
        fx = generate_fx_rates(end=END, seed=11, gaps=gaps)
        if name == "dirty":  # a rate missing on a busy day of a busy currency
            busy = lines.group_by(pl.col("order_ts").dt.date().alias("d"), "currency").len().sort("len").row(-1)
            fx = fx.filter(~((pl.col("rate_date") == busy[0]) & (pl.col("currency") == busy[1])))
        lines.write_parquet(directory / "sales.order_lines.parquet")
        (directory / "sales.order_lines.json").write_text('{"partition_field": "order_ts"}')
        fx.write_csv(directory / "fx.usd_rates.csv")
        (directory / "fx.usd_rates.json").write_text(
            '{"schema": [{"name": "rate_date", "type": "DATE"}, {"name": "currency", "type": "STRING"},'
            ' {"name": "usd_per_unit", "type": "NUMERIC"}]}'
        )
        out[name] = (directory, lines, fx)
    return out


@pytest.fixture(scope="module")
def emulators(datasets):
    started = {name: running_bigquery_emulator(data_dir=d) for name, (d, _, _) in datasets.items()}
    emulators = {name: cm.__enter__() for name, cm in started.items()}
    yield emulators
    for cm in started.values():
        cm.__exit__(None, None, None)


def client_for(emulator) -> BigQueryClient:
    return BigQueryClient(project="dataops-local", api_endpoint=emulator.base_url, max_attempts=1, timeout=60)


def sorted_keys(keys: list[tuple]) -> list[tuple]:
    return sorted(keys, key=lambda k: tuple((v is None, str(v)) for v in k))


def quarantine_codes(frame: pl.DataFrame) -> Counter:
    return Counter((row[0], row[1], tuple(row[2])) for row in frame.select(*KEYS, REASON_CODES_COLUMN).iter_rows())


# --------------------------------------------------------------------------------------------------------------
# The differential test
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["clean", "dirty"])
@pytest.mark.parametrize("plan", ["layered", "split"])
def test_warehouse_and_polars_give_identical_answers(datasets, emulators, dataset: str, plan: str) -> None:
    _, lines, fx = datasets[dataset]
    as_of = AS_OF if dataset == "dirty" else AFTER_END
    memory = suite_run(ORDER_LINES_SUITE, lines, as_of=as_of, references={FX_RATES_TABLE: fx}, max_keys_per_check=BIG)
    compiled = suite_compile(ORDER_LINES_SUITE, table="sales.order_lines", as_of=as_of, plan=plan)
    assert compiled.plan == plan
    run = warehouse_run(
        compiled=compiled,
        client=client_for(emulators[dataset]),
        maximum_bytes_billed=None,
        max_keys=BIG,
        quarantine_cap=BIG,
    )
    sql = run.result

    in_memory = [r for r in memory.check_results if r.stage is not Stage.SCHEMA]
    assert [r.name for r in in_memory] == [r.name for r in sql.check_results]
    for mem, wh in zip(in_memory, sql.check_results, strict=True):
        assert (mem.failed_count, mem.status, mem.gate_effect) == (wh.failed_count, wh.status, wh.gate_effect), mem.name
        assert sorted_keys(mem.sample_keys) == sorted_keys(wh.sample_keys), mem.name
    assert (memory.rows, memory.rows_removed, memory.rows_quarantined) == (
        sql.rows,
        sql.rows_removed,
        sql.rows_quarantined,
    )
    assert quarantine_codes(memory.quarantine) == quarantine_codes(sql.quarantine)
    assert memory.score == pytest.approx(sql.score)
    assert memory.gate == sql.gate

    # What a report would read: the same rows, with the same cleaned values.
    clean = client_for(emulators[dataset]).query_run(
        sql=compiled.clean_rows_sql(), params=compiled.params, maximum_bytes_billed=None
    )
    columns = list(compiled.columns)
    from_sql = pl.DataFrame(clean.rows, schema=memory.cleaned.select(columns).schema, orient="row", strict=False)
    assert from_sql.sort(columns, nulls_last=True).equals(memory.cleaned.select(columns).sort(columns, nulls_last=True))

    if dataset == "clean":
        assert memory.gate.decision is Decision.PASS and sql.rows_quarantined == 0 and len(run.jobs) == 1
    else:
        failing = {r.name for r in sql.check_results if r.failed_count}
        assert {
            "exact_duplicate_lines",
            "duplicate_order_line",
            "order_id_not_null",
            "line_no_not_null",
            "revenue_matches_line",
            "fx_rate_for_the_day",
            "quantity_positive",
            "order_ts_not_future",
            "region_known",
            "currency_known",
        } <= failing
        assert sql.rows_removed == memory.rows_removed >= 3  # the generator's copies, b's cleaned copy, c x 3


def test_the_split_plan_runs_windows_on_the_repeated_keys_only(emulators) -> None:
    compiled = suite_compile(ORDER_LINES_SUITE, table="sales.order_lines", as_of=AS_OF)
    assert compiled.plan == "split" and compiled.split_keys == KEYS
    sql = compiled.counts_sql()
    assert "GROUP BY `order_id`, `line_no` HAVING COUNT(*) > 1" in sql
    # The windows are in the candidate chain only (c...), never in the chain over every row (m...).
    main = sql[sql.index("m0 AS") : sql.index("c0 AS")]
    assert "OVER (" not in main
    assert "ROW_NUMBER() OVER" in sql[sql.index("c0 AS") :]


def test_small_key_and_quarantine_bounds_keep_counts_exact_and_say_so(datasets, emulators) -> None:
    compiled = suite_compile(ORDER_LINES_SUITE, table="sales.order_lines", as_of=AS_OF)
    run = warehouse_run(
        compiled=compiled,
        client=client_for(emulators["dirty"]),
        maximum_bytes_billed=None,
        max_keys=3,
        quarantine_cap=5,
    )
    result = run.result
    full = warehouse_run(
        compiled=compiled,
        client=client_for(emulators["dirty"]),
        maximum_bytes_billed=None,
        max_keys=BIG,
        quarantine_cap=BIG,
    ).result
    assert result.failed_counts == full.failed_counts
    assert all(len(r.sample_keys) == min(3, r.failed_count) for r in result.check_results)
    assert result.quarantine.height == 5 and result.rows_quarantined == full.rows_quarantined > 5
    # The first keys in key order, and the rows returned are bounded.
    assert run.jobs[1].total_rows <= 5 + 3 * len(compiled.flags)
    assert any(
        reason.startswith("quarantine capped:") and "QUALITY_QUARANTINE_CAP" in reason for reason in result.gate.reasons
    )
    assert result.gate.decision is not Decision.PASS


def test_bytes_are_those_of_the_checked_columns_and_the_selected_partitions(emulators) -> None:
    client = client_for(emulators["clean"])
    toy = Suite(
        dataset="sales.order_lines",
        keys=KEYS,
        schema=ORDER_LINES_SUITE.schema,
        steps=(not_null("region"), not_null("customer_id")),
    )
    month = suite_compile(
        toy,
        table="sales.order_lines",
        as_of=AS_OF,
        where="order_ts >= TIMESTAMP(@start) AND order_ts < TIMESTAMP(@end)",
        params={"start": date(2026, 5, 1), "end": date(2026, 6, 1)},
    )
    assert month.columns == ("order_id", "line_no", "region", "customer_id")  # keys and checked columns only
    everything = suite_compile(toy, table="sales.order_lines", as_of=AS_OF)
    small = warehouse_estimate(compiled=month, client=client, max_keys=10, quarantine_cap=10)
    large = warehouse_estimate(compiled=everything, client=client, max_keys=10, quarantine_cap=10)
    full_suite = suite_compile(ORDER_LINES_SUITE, table="sales.order_lines", as_of=AS_OF)
    widest = warehouse_estimate(compiled=full_suite, client=client, max_keys=10, quarantine_cap=10)
    assert 0 < small < large / 10  # one month of two years
    assert large < widest  # four columns of fifteen
    run = warehouse_run(compiled=month, client=client, maximum_bytes_billed=10 * 2**20)
    assert run.bytes_processed == client.query_dry_run(sql=month.counts_sql(), params=month.params).bytes_processed


def test_no_rows_in_the_range_is_the_empty_decision(emulators) -> None:
    compiled = suite_compile(
        ORDER_LINES_SUITE, table="sales.order_lines", as_of=AS_OF, where="order_ts < TIMESTAMP('2000-01-01')"
    )
    result = warehouse_run(compiled=compiled, client=client_for(emulators["clean"]), maximum_bytes_billed=None).result
    assert result.rows == 0 and result.gate.decision is Decision.FAIL
    assert result.gate.reasons == ["input has no rows: nothing to publish"]


# --------------------------------------------------------------------------------------------------------------
# Compiling: what cannot compile says so; where the clean rows go
# --------------------------------------------------------------------------------------------------------------


def test_a_check_without_a_sql_form_is_named() -> None:
    suite = Suite(
        dataset="toy",
        keys=("id",),
        schema={"id": DtypeFamily.INTEGER},
        steps=(
            not_null("id"),
            Check("odd", Stage.VALIDITY, Severity.ERROR, "id is even", pl.col("id") % 2 == 1, "ODD"),
        ),
    )
    with pytest.raises(
        NotCompilable, match=r"suite toy cannot run in the warehouse: no SQL form for odd \(declare sql="
    ):
        suite_compile(suite, table="d.t", as_of=AS_OF)
    # The same suite still runs in memory.
    assert suite_run(suite, pl.DataFrame({"id": [1, 2]})).result("odd").failed_count == 1


def test_keep_first_duplicates_have_no_sql_form() -> None:
    from quality.engine import duplicate_key

    suite = Suite(
        dataset="toy", keys=("k",), schema={"k": DtypeFamily.STRING}, steps=(duplicate_key(("k",), keep="first"),)
    )
    with pytest.raises(NotCompilable, match="duplicate_k"):
        suite_compile(suite, table="d.t", as_of=AS_OF)


def test_table_replace_puts_the_clean_rows_where_the_report_reads_the_table() -> None:
    report = (
        "SELECT DATE(l.order_ts) AS day, SUM(l.revenue * fx.usd_per_unit) AS revenue FROM `sales.order_lines` AS l "
        "LEFT JOIN `fx.usd_rates` AS fx ON fx.currency = l.currency GROUP BY day"
    )
    replaced = table_replace(
        report, table="sales.order_lines", replacement="SELECT order_ts, revenue, currency FROM x.y"
    )
    assert "FROM (SELECT order_ts, revenue, currency FROM x.y) AS l" in replaced
    assert "`fx.usd_rates`" in replaced or "fx.usd_rates" in replaced
    with pytest.raises(ValueError, match="does not read sales.order_lines"):
        table_replace("SELECT 1 FROM `other.table`", table="sales.order_lines", replacement="SELECT 1")


# --------------------------------------------------------------------------------------------------------------
# The source contract (tables.get)
# --------------------------------------------------------------------------------------------------------------


def contract_columns(**changes: tuple[str, str] | None) -> list[tuple[str, str, str]]:
    columns = {name: (c.type, c.mode) for name, c in ORDER_LINES_CONTRACT.columns.items()}
    for name, change in changes.items():
        if change is None:
            columns.pop(name)
        else:
            columns[name] = change
    return [(name, kind, mode) for name, (kind, mode) in columns.items()]


def test_the_contract_names_the_column_and_both_types() -> None:
    results, drift = contract_check(ORDER_LINES_CONTRACT, contract_columns())
    assert drift == [] and all(r.status.value == "pass" for r in results)

    _, drift = contract_check(ORDER_LINES_CONTRACT, contract_columns(region=("INT64", "NULLABLE")))
    assert drift == ["column region changed type: the contract says STRING, the table has INT64"]
    _, drift = contract_check(ORDER_LINES_CONTRACT, contract_columns(region=None))
    assert drift == ["column region is missing (the contract says STRING NULLABLE)"]
    _, drift = contract_check(ORDER_LINES_CONTRACT, contract_columns(region=("STRING", "REPEATED")))
    assert drift == ["column region changed mode: the contract says NULLABLE, the table has REPEATED"]
    # Synonyms are the same type; a stricter mode keeps the promise; extra columns are reported, not drift.
    results, drift = contract_check(
        ORDER_LINES_CONTRACT,
        [*contract_columns(line_no=("INTEGER", "REQUIRED")), ("note", "STRING", "NULLABLE")],
    )
    assert drift == [] and "note" in results[-1].message


def test_a_required_column_that_became_nullable_is_drift() -> None:
    contract = TableContract(table="d.t", columns={"id": ColumnContract("INT64", "REQUIRED")})
    _, drift = contract_check(contract, [("id", "INTEGER", "NULLABLE")])
    assert drift == ["column id changed mode: the contract says REQUIRED, the table has NULLABLE"]


def test_the_emulator_reports_required_modes(tmp_path: Path) -> None:
    frame = pl.DataFrame({"id": [1, 2], "name": ["a", None], "amount": [Decimal("1.5"), Decimal("2")]})
    with running_bigquery_emulator(data_dir=None) as emulator:
        emulator.load_table("d", "t", frame, schema=[{"name": "id", "type": "INT64", "mode": "REQUIRED"}])
        info = client_for(emulator).table_get(dataset="d", table="t")
        assert [(c.name, c.type, c.mode) for c in info.schema] == [
            ("id", "INT64", "REQUIRED"),
            ("name", "STRING", "NULLABLE"),
            ("amount", "NUMERIC", "NULLABLE"),
        ]
        with pytest.raises(ValueError, match="column name is REQUIRED but has nulls"):
            emulator.load_table("d", "u", frame, schema=[{"name": "name", "mode": "REQUIRED"}])


def test_dates_in_the_future_follow_as_of(datasets) -> None:
    _, lines, fx = datasets["clean"]
    later = suite_run(ORDER_LINES_SUITE, lines, as_of=AS_OF + timedelta(days=30), references={FX_RATES_TABLE: fx})
    assert later.result("order_ts_not_future").failed_count == 0
    assert later.result("fx_rate_for_the_day").failed_count == 0

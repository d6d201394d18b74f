"""The quality engine: stages, schema drift, empty input, gate boundaries, quarantine, reprocessing, score."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from quality.engine import (
    REASON_CODES_COLUMN,
    Check,
    CheckStatus,
    Decision,
    DtypeFamily,
    GatePolicy,
    Severity,
    Stage,
    Suite,
    Threshold,
    Transform,
    duplicate_key,
    not_null,
    quality_score,
    quarantine_reprocess,
    suite_run,
)
from quality.suites import (
    COUNTRY_CURRENCY,
    COUNTRY_REGION,
    ORDER_LINES_SUITE,
    SALES_REPORT_SUITE,
    SUITES,
    suite_for,
)

AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KEYS = ("order_id", "line_no")
POLARS_SCHEMA: dict[str, Any] = {
    "order_id": pl.String,
    "line_no": pl.Int64,
    "order_ts": pl.Datetime("us", "UTC"),
    "region": pl.String,
    "country": pl.String,
    "sku": pl.String,
    "product_category": pl.String,
    "quantity": pl.Int64,
    "unit_price": pl.Float64,
    "discount": pl.Float64,
    "revenue": pl.Float64,
    "currency": pl.String,
    "customer_id": pl.String,
    "customer_email": pl.String,
    "channel": pl.String,
}
COUNTRIES = ["US", "DE", "JP", "BR", "GB", "AE"]


def clean_rows(n: int) -> list[dict[str, Any]]:
    """``n`` order lines that pass every check of ORDER_LINES_SUITE (one line per order)."""
    rows = []
    for i in range(n):
        country = COUNTRIES[i % len(COUNTRIES)]
        rows.append(
            {
                "order_id": f"SO-{10_000_001 + i}",
                "line_no": 1,
                "order_ts": AS_OF - timedelta(hours=i + 1),
                "region": COUNTRY_REGION[country],
                "country": country,
                "sku": f"SKU-ELE-{i:05d}",
                "product_category": "Electronics",
                "quantity": 2,
                "unit_price": 10.0,
                "discount": 0.1,
                "revenue": 18.0,
                "currency": COUNTRY_CURRENCY[country],
                "customer_id": f"C{i:07d}",
                "customer_email": f"user{i}@example.com",
                "channel": "web",
            }
        )
    return rows


def frame(rows: list[dict[str, Any]], schema: dict[str, Any] | None = None) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema or POLARS_SCHEMA, orient="row")


def key(i: int) -> tuple[str, int]:
    return (f"SO-{10_000_001 + i}", 1)


def run(df: pl.DataFrame | pl.LazyFrame, suite: Suite = ORDER_LINES_SUITE, **kw: Any):
    return suite_run(suite, df, as_of=AS_OF, **kw)


# ---------------------------------------------------------------------------------------------------------------
# A dirty batch: one planted defect per row, every stage
# ---------------------------------------------------------------------------------------------------------------


def dirty_batch() -> list[dict[str, Any]]:
    rows = clean_rows(24)
    rows[1]["customer_email"] = "user1.example.com"  # format (warning): no @
    rows[2]["sku"] = "SKU-EL-1"  # format
    rows[3].update(country="US", region="NA", currency="US$")  # format + consistency + validity (unknown)
    rows[4].update(country=" us ", region="na ", currency=" usd", sku=" sku-ele-00004")  # cleaning fixes it all
    rows[6].update(order_id=rows[5]["order_id"])  # dedup: rows 5 and 6 share (order_id, line_no)
    rows[7]["region"] = None  # completeness
    rows[8]["customer_id"] = None  # completeness
    rows[9]["order_ts"] = None  # completeness
    rows[10]["revenue"] = 23.0  # accuracy: 5.00 off
    rows[11]["revenue"] = 18.01  # exactly a cent off: within tolerance, passes
    rows[12].update(country="DE", region="EMEA", currency="USD")  # consistency: not DE's currency
    rows[13].update(country="JP", region="EMEA", currency="JPY")  # consistency: JP is not in EMEA
    rows[14].update(quantity=-2, revenue=-18.0)  # validity
    rows[15].update(discount=1.0, revenue=0.0)  # validity
    rows[16].update(unit_price=0.0, revenue=0.0)  # validity
    rows[17]["order_ts"] = AS_OF + timedelta(days=3)  # validity: in the future
    rows[18].update(country="US", region="NA", currency="XXX")  # consistency + validity (unknown currency)
    return rows


EXPECTED_FAILURES: dict[str, list[int]] = {
    "email_format": [1],
    "currency_format": [3],
    "sku_format": [2],
    "duplicate_order_line": [5, 5],  # both rows share row 5's key
    "order_id_not_null": [],
    "line_no_not_null": [],
    "region_not_null": [7],
    "customer_id_not_null": [8],
    "order_ts_not_null": [9],
    "revenue_matches_line": [10],
    "currency_matches_country": [3, 12, 18],
    "country_in_region": [13],
    "quantity_positive": [14],
    "discount_in_range": [15],
    "unit_price_positive": [16],
    "order_ts_not_future": [17],
    "currency_known": [3, 18],
}


def test_every_stage_counts_exactly_the_planted_dirt_with_keys() -> None:
    result = run(frame(dirty_batch()))

    assert result.rows == 24
    for name, rows in EXPECTED_FAILURES.items():
        check = result.result(name)
        assert check.failed_count == len(rows), name
        assert check.sample_keys == [key(i) for i in rows], name
        assert check.failed_share == pytest.approx(len(rows) / 24)
    assert [r.name for r in result.check_results if r.stage is Stage.SCHEMA] == [
        "schema_columns_present",
        "schema_column_types",
        "schema_no_extra_columns",
    ]
    stages = [r.stage.rank for r in result.check_results]
    assert stages == sorted(stages), "results come in stage order"


def test_dirty_batch_gate_quarantine_and_cleaned() -> None:
    result = run(frame(dirty_batch()))

    # 15 error rows (2 for the duplicate) out of 24 fail several error checks well above 1%: review or fail.
    assert result.gate.decision is Decision.FAIL
    assert any("below the review minimum" in reason for reason in result.gate.reasons)
    quarantined = {row[0]: row for row in result.quarantine.iter_rows()}
    expected_ids = {key(i)[0] for i in (2, 3, 5, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18)}
    assert set(quarantined) == expected_ids
    assert result.quarantine.height == 15  # row 5's key twice
    assert result.cleaned.height == 24 - 15
    # The warning-only row stays in cleaned; the tolerance row and the cleaned-up row too.
    assert set(result.cleaned["order_id"]) == {key(i)[0] for i in (0, 1, 4, 11, 19, 20, 21, 22, 23)}


def test_quarantine_rows_carry_keys_every_reason_code_and_the_row() -> None:
    rows = clean_rows(6)
    rows[2].update(country="US", region="NA", currency="US$", customer_email="bad")  # 3 errors + 1 warning
    rows[4]["customer_email"] = "also bad"  # warning only: not quarantined
    result = run(frame(rows))

    q = result.quarantine
    assert q.columns[:3] == ["order_id", "line_no", REASON_CODES_COLUMN]
    assert set(POLARS_SCHEMA) <= set(q.columns)
    assert {"order_date", "gross_revenue", "net_revenue"} <= set(q.columns)
    assert not any(c.startswith("__qc") for c in q.columns + result.cleaned.columns)
    assert q.height == 1
    assert q.row(0, named=True)[REASON_CODES_COLUMN] == [
        "EMAIL_MALFORMED",
        "CURRENCY_MALFORMED",
        "CURRENCY_COUNTRY_MISMATCH",
        "CURRENCY_UNKNOWN",
    ]
    assert q.row(0, named=True)["order_id"] == key(2)[0]
    assert key(4)[0] in set(result.cleaned["order_id"])
    assert result.result("email_format").status is CheckStatus.FAIL  # 2 of 6 rows, above 5%: still kept


def test_transforms_clean_codes_and_derive_columns_after_format_checks_saw_raw_values() -> None:
    rows = clean_rows(3)
    rows[1].update(country=" de", region="emea ", currency="eur", sku="sku-ele-00001 ")
    result = run(frame(rows))

    assert result.gate.decision is Decision.PASS
    assert result.transforms_applied == ["codes_strip_upper", "derive_order_date_and_revenue"]
    row = result.cleaned.row(1, named=True)
    assert (row["country"], row["region"], row["currency"], row["sku"]) == ("DE", "EMEA", "EUR", "SKU-ELE-00001")
    assert row["order_date"] == (AS_OF - timedelta(hours=2)).date()
    assert row["gross_revenue"] == pytest.approx(20.0)
    assert row["net_revenue"] == pytest.approx(18.0)
    assert result.cleaned.columns[: len(POLARS_SCHEMA)] == list(POLARS_SCHEMA)


def test_a_format_check_sees_the_value_before_cleaning_and_a_validity_check_after() -> None:
    suite = Suite(
        dataset="toy",
        keys=("id",),
        schema={"id": DtypeFamily.INTEGER, "code": DtypeFamily.STRING},
        steps=(
            Check("code_is_upper_raw", Stage.FORMAT, Severity.WARNING, "raw upper", pl.col("code") != "AB", "RAW"),
            Transform("upper", Stage.CLEANING, "upper", (pl.col("code").str.to_uppercase(),)),
            Check("code_is_upper_clean", Stage.VALIDITY, Severity.ERROR, "clean upper", pl.col("code") != "AB", "C"),
        ),
    )
    result = suite_run(suite, pl.DataFrame({"id": [1, 2], "code": ["ab", "AB"]}))
    assert result.result("code_is_upper_raw").failed_count == 1
    assert result.result("code_is_upper_clean").failed_count == 0


def test_decimal_money_columns_like_bigquery_numeric() -> None:
    rows = clean_rows(4)
    rows[2]["revenue"] = 25.0
    schema = {**POLARS_SCHEMA, "unit_price": pl.Decimal(18, 2), "discount": pl.Decimal(18, 2)}
    schema["revenue"] = pl.Decimal(18, 2)
    for row in rows:
        for column in ("unit_price", "discount", "revenue"):
            row[column] = Decimal(str(row[column])).quantize(Decimal("0.01"))
    result = run(frame(rows, schema))

    assert result.result("revenue_matches_line").sample_keys == [key(2)]
    assert result.failed_counts["discount_in_range"] == 0
    assert result.cleaned.schema["revenue"] == pl.Decimal(18, 2)


# ---------------------------------------------------------------------------------------------------------------
# Bad input: schema drift, empty, unreadable, unevaluable
# ---------------------------------------------------------------------------------------------------------------


def test_missing_column_fails_the_gate_with_a_readable_reason_and_quarantines_the_batch() -> None:
    result = run(frame(clean_rows(5)).drop("region"))

    assert result.gate.decision is Decision.FAIL
    assert result.gate.reasons == ["schema drift: missing column(s): region"]
    assert result.score == 0.0
    assert result.cleaned.height == 0
    assert result.quarantine.height == 5
    assert result.quarantine[REASON_CODES_COLUMN].to_list() == [["SCHEMA_MISSING_COLUMN"]] * 5
    assert result.result("schema_columns_present").status is CheckStatus.FAIL
    assert all(r.status is CheckStatus.SKIPPED for r in result.check_results if r.stage is not Stage.SCHEMA)


def test_changed_type_fails_the_gate_naming_the_column_and_both_types() -> None:
    df = frame(clean_rows(3)).with_columns(pl.col("quantity").cast(pl.String))
    result = run(df)

    assert result.gate.decision is Decision.FAIL
    assert result.gate.reasons == ["schema drift: column quantity changed type: expected integer, got String"]
    assert result.result("schema_column_types").failed_count == 3


def test_missing_key_column_still_gives_a_quarantine_with_null_keys() -> None:
    result = run(frame(clean_rows(2)).drop("order_id"))
    assert result.gate.decision is Decision.FAIL
    assert result.quarantine.columns[:3] == ["order_id", "line_no", REASON_CODES_COLUMN]
    assert result.quarantine["order_id"].to_list() == [None, None]


def test_extra_columns_are_reported_and_kept() -> None:
    result = run(frame(clean_rows(3)).with_columns(pl.lit("x").alias("note")))
    assert result.gate.decision is Decision.PASS
    extra = result.result("schema_no_extra_columns")
    assert extra.status is CheckStatus.WARN and "note" in extra.message
    assert "note" in result.cleaned.columns


def test_empty_input_is_a_clear_fail_not_a_crash() -> None:
    result = run(frame([]))
    assert result.rows == 0
    assert result.gate.decision is Decision.FAIL
    assert result.gate.reasons == ["input has no rows: nothing to publish"]
    assert result.score == 0.0
    assert all(r.status is CheckStatus.SKIPPED for r in result.check_results if r.stage is not Stage.SCHEMA)
    assert result.cleaned.height == 0 and result.quarantine.height == 0


def test_empty_input_decision_follows_the_policy() -> None:
    lenient = Suite(
        dataset="toy",
        keys=("id",),
        schema={"id": DtypeFamily.INTEGER},
        steps=(not_null("id"),),
        policy=GatePolicy(empty_decision=Decision.REVIEW),
    )
    assert suite_run(lenient, pl.DataFrame({"id": []}, schema={"id": pl.Int64})).gate.decision is Decision.REVIEW


def test_a_frame_without_columns_is_schema_drift() -> None:
    result = run(pl.DataFrame())
    assert result.gate.decision is Decision.FAIL
    assert result.gate.reasons[0].startswith("schema drift: missing column(s): order_id, line_no, order_ts")


def test_unreadable_input_fails_the_gate(tmp_path: Path) -> None:
    result = run(pl.scan_parquet(tmp_path / "missing.parquet"))
    assert result.gate.decision is Decision.FAIL
    assert result.gate.reasons[0].startswith("input could not be read:")


def test_a_check_that_cannot_be_evaluated_fails_the_gate() -> None:
    def explode(ctx: Any) -> pl.Expr:
        return pl.col("code").str.to_integer()  # strict: "x" is malformed

    suite = Suite(
        dataset="toy",
        keys=("code",),
        schema={"code": DtypeFamily.STRING},
        steps=(Check("code_numeric", Stage.VALIDITY, Severity.ERROR, "numeric", explode, "NOT_NUMERIC"),),
    )
    result = suite_run(suite, pl.DataFrame({"code": ["1", "x"]}))
    assert result.gate.decision is Decision.FAIL
    assert result.gate.reasons[0].startswith("checks could not be evaluated:")


def test_all_null_column_is_typed_and_fails_completeness_not_the_schema() -> None:
    rows = clean_rows(3)
    for row in rows:
        row["region"] = None
    df = pl.DataFrame(rows)  # region infers as the Null dtype
    assert df.schema["region"] == pl.Null
    result = run(df)
    assert result.result("schema_column_types").status is CheckStatus.PASS
    assert result.result("region_not_null").failed_count == 3
    assert result.gate.decision is Decision.FAIL


def test_lazy_input_gives_the_same_result_as_eager(tmp_path: Path) -> None:
    path = tmp_path / "lines.parquet"
    df = frame(dirty_batch())
    df.write_parquet(path)
    eager, lazy = run(df), run(pl.scan_parquet(path))
    assert eager.failed_counts == lazy.failed_counts
    assert eager.quarantine.equals(lazy.quarantine)
    assert eager.cleaned.equals(lazy.cleaned)


def test_cleaned_sink_writes_the_cleaned_rows_to_parquet_and_keeps_every_other_result(tmp_path: Path) -> None:
    path, sink = tmp_path / "lines.parquet", tmp_path / "cleaned.parquet"
    rows = dirty_batch()
    rows.append(dict(rows[0]))  # an exact copy: removed, so neither cleaned nor quarantined
    frame(rows).write_parquet(path)
    kept, sunk = run(pl.scan_parquet(path)), run(pl.scan_parquet(path), cleaned_sink=sink)
    assert kept.cleaned_path is None and kept.cleaned_rows == kept.cleaned.height
    assert sunk.cleaned_path == str(sink) and sunk.cleaned.height == 0
    written = pl.read_parquet(sink)
    assert written.equals(kept.cleaned) and sunk.cleaned_rows == written.height
    assert sunk.cleaned.schema == kept.cleaned.schema
    assert 0 < written.height < len(rows) - kept.rows_quarantined
    assert sunk.failed_counts == kept.failed_counts and sunk.quarantine.equals(kept.quarantine)
    assert [r.sample_keys for r in sunk.check_results] == [r.sample_keys for r in kept.check_results]
    assert sunk.rows_removed == kept.rows_removed == 1 and sunk.gate == kept.gate
    assert sorted(f.name for f in tmp_path.iterdir()) == ["cleaned.parquet", "lines.parquet"]  # no temporary file


def test_a_failed_cleaned_sink_leaves_no_partial_file_and_keeps_the_earlier_one(tmp_path: Path) -> None:
    path, sink = tmp_path / "lines.parquet", tmp_path / "cleaned.parquet"
    frame(dirty_batch()).write_parquet(path)
    sink.write_bytes(b"earlier run's file")

    def broken(lazy: pl.LazyFrame, target: str, **kwargs: Any) -> None:
        Path(target).write_bytes(b"half a parquet file")  # what a crash mid-write leaves
        raise OSError("disk full")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pl.LazyFrame, "sink_parquet", broken)
        failed = run(pl.scan_parquet(path), cleaned_sink=sink)
    assert failed.gate.decision == Decision.FAIL and failed.cleaned_path is None
    assert "disk full" in " ".join(failed.gate.reasons)
    assert sink.read_bytes() == b"earlier run's file"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["cleaned.parquet", "lines.parquet"]


def test_without_key_columns_the_sample_keys_are_the_rows_positions_in_the_input() -> None:
    suite = Suite(
        dataset="keyless",
        keys=(),
        schema={"v": DtypeFamily.INTEGER},
        steps=(Check("v_small", Stage.VALIDITY, Severity.WARNING, "v < 5", pl.col("v") >= 5, "V_BIG"),),
    )
    result = suite_run(suite, pl.DataFrame({"v": [9, 1, 2, 7, 3, 8]}))
    assert result.result("v_small").sample_keys == [(0,), (3,), (5,)]
    assert result.cleaned["v"].to_list() == [9, 1, 2, 7, 3, 8]  # warnings stay, in their order


# ---------------------------------------------------------------------------------------------------------------
# Gate, thresholds and score
# ---------------------------------------------------------------------------------------------------------------


def toy_suite(severity: Severity = Severity.ERROR, **policy: Any) -> Suite:
    return Suite(
        dataset="toy",
        keys=("id",),
        schema={"id": DtypeFamily.INTEGER, "ok": DtypeFamily.BOOLEAN},
        steps=(Check("ok_is_true", Stage.VALIDITY, severity, "ok is true", ~pl.col("ok"), "NOT_OK"),),
        policy=GatePolicy(**{"pass_min_score": 99.0, "review_min_score": 95.0, **policy}),
    )


def toy_frame(rows: int, failing: int) -> pl.DataFrame:
    return pl.DataFrame({"id": range(rows), "ok": [i >= failing for i in range(rows)]})


@pytest.mark.parametrize(
    ("failing", "score", "status", "decision"),
    [
        (0, 100.0, CheckStatus.PASS, Decision.PASS),
        (1, 99.0, CheckStatus.WARN, Decision.PASS),  # score == pass minimum; 1% == fail_above share
        (2, 98.0, CheckStatus.FAIL, Decision.REVIEW),
        (5, 95.0, CheckStatus.FAIL, Decision.REVIEW),  # score == review minimum
        (6, 94.0, CheckStatus.FAIL, Decision.FAIL),
    ],
)
def test_gate_boundaries(failing: int, score: float, status: CheckStatus, decision: Decision) -> None:
    result = suite_run(toy_suite(), toy_frame(100, failing))
    assert result.score == pytest.approx(score)
    assert result.result("ok_is_true").status is status
    assert result.gate.decision is decision


def test_an_error_check_over_its_fail_threshold_asks_for_review_whatever_the_score() -> None:
    result = suite_run(toy_suite(pass_min_score=0.0, review_min_score=0.0), toy_frame(100, 30))
    assert result.gate.decision is Decision.REVIEW
    assert result.gate.reasons[0].startswith("check ok_is_true (validity, error) failed: 30 of 100 rows")


def test_a_warning_check_over_its_threshold_does_not_block() -> None:
    result = suite_run(toy_suite(Severity.WARNING, pass_min_score=0.0, review_min_score=0.0), toy_frame(100, 30))
    assert result.result("ok_is_true").status is CheckStatus.FAIL
    assert result.gate.decision is Decision.PASS
    assert result.quarantine.height == 0 and result.cleaned.height == 100


def test_any_failing_row_of_a_critical_check_fails_the_gate() -> None:
    result = suite_run(toy_suite(Severity.CRITICAL, pass_min_score=0.0, review_min_score=0.0), toy_frame(1000, 1))
    assert result.result("ok_is_true").status is CheckStatus.WARN
    assert result.gate.decision is Decision.FAIL
    assert result.gate.reasons[0].startswith("critical check ok_is_true failed")


def test_thresholds_by_share_and_by_count() -> None:
    both = Threshold(share=0.5, count=3)
    assert not both.exceeded(3, 0.3)
    assert both.exceeded(4, 0.4)  # count
    assert both.exceeded(2, 0.6)  # share
    assert not Threshold().exceeded(10**6, 1.0)


def test_score_is_the_severity_weighted_share_of_passing_row_checks() -> None:
    suite = Suite(
        dataset="toy",
        keys=("id",),
        schema={"id": DtypeFamily.INTEGER},
        steps=(
            Check("w", Stage.VALIDITY, Severity.WARNING, "w", pl.col("id") < 1, "W"),  # weight 2, fails 1
            Check("e", Stage.VALIDITY, Severity.ERROR, "e", pl.col("id") < 3, "E"),  # weight 4, fails 3
            Check("i", Stage.VALIDITY, Severity.INFO, "i", pl.lit(False), "I"),  # weight 1, fails 0
        ),
    )
    result = suite_run(suite, pl.DataFrame({"id": range(10)}))
    expected = 100 * (2 * 9 + 4 * 7 + 1 * 10) / ((2 + 4 + 1) * 10)
    assert result.score == pytest.approx(expected, abs=1e-4)
    assert quality_score(suite, 10, {"w": 1, "e": 3}) == pytest.approx(expected, abs=1e-4)
    assert quality_score(suite, 0, {}) == 0.0


def test_sample_keys_are_bounded_and_in_row_order() -> None:
    rows = clean_rows(60)
    for row in rows[10:60]:
        row["region"] = None
    result = run(frame(rows), max_keys_per_check=7)
    check = result.result("region_not_null")
    assert check.failed_count == 50
    assert check.sample_keys == [key(i) for i in range(10, 17)]
    assert run(frame(rows), max_keys_per_check=0).result("region_not_null").sample_keys == []


# ---------------------------------------------------------------------------------------------------------------
# Dedup and reprocessing
# ---------------------------------------------------------------------------------------------------------------


def test_duplicate_key_keep_first_fails_only_later_copies() -> None:
    suite = Suite(
        dataset="toy",
        keys=("k", "n"),
        schema={"k": DtypeFamily.STRING, "n": DtypeFamily.INTEGER},
        steps=(duplicate_key(("k", "n"), keep="first"),),
    )
    df = pl.DataFrame({"k": ["a", "b", "a", "a", None, None], "n": [1, 1, 1, 2, 1, 1]})
    result = suite_run(suite, df)
    assert result.result("duplicate_k_n").sample_keys == [("a", 1), (None, 1)]
    none = Suite(dataset="toy", keys=suite.keys, schema=suite.schema, steps=(duplicate_key(("k", "n")),))
    assert suite_run(none, df).result("duplicate_k_n").failed_count == 4


def test_confirm_makes_an_over_approximating_predicate_exact() -> None:
    suite = Suite(
        dataset="toy",
        keys=("id",),
        schema={"id": DtypeFamily.INTEGER},
        steps=(
            Check(
                "even",
                Stage.VALIDITY,
                Severity.ERROR,
                "id is odd",
                pl.col("id") < 6,  # cheap superset of the failing rows
                "EVEN",
                confirm=lambda rows: rows["id"] % 2 == 0,
            ),
        ),
    )
    result = suite_run(suite, pl.DataFrame({"id": range(10)}))
    assert result.result("even").sample_keys == [(0,), (2,), (4,)]
    assert result.quarantine["id"].to_list() == [0, 2, 4]
    assert result.cleaned["id"].to_list() == [1, 3, 5, 6, 7, 8, 9]


def test_reprocessing_corrected_quarantined_rows_passes() -> None:
    first = run(frame(dirty_batch()))
    fixed = first.quarantine.filter(pl.struct(KEYS).is_first_distinct())  # the steward drops one copy
    corrections = {
        "region": pl.col("region").fill_null(pl.col("country").replace_strict(dict(COUNTRY_REGION))),
        "country": pl.col("country"),
        "sku": pl.lit("SKU-ELE-00002"),
        "currency": pl.col("country").replace_strict(dict(COUNTRY_CURRENCY)),
        "customer_id": pl.col("customer_id").fill_null("C9999999"),
        "order_ts": pl.col("order_ts").fill_null(AS_OF - timedelta(days=1)).clip(upper_bound=AS_OF),
        "quantity": pl.col("quantity").abs(),
        "unit_price": pl.lit(10.0),
        "discount": pl.lit(0.1),
    }
    fixed = fixed.with_columns(**corrections).with_columns(
        region=pl.col("country").replace_strict(dict(COUNTRY_REGION)),
        revenue=pl.col("quantity") * pl.col("unit_price") * (1 - pl.col("discount")),
    )
    again = quarantine_reprocess(ORDER_LINES_SUITE, fixed, as_of=AS_OF)

    assert again.gate.decision is Decision.PASS, again.gate.reasons
    assert again.quarantine.height == 0
    assert again.cleaned.height == fixed.height == 14
    assert REASON_CODES_COLUMN not in again.cleaned.columns
    assert again.result("schema_no_extra_columns").status is CheckStatus.PASS  # derived columns were dropped


def test_reprocessing_rows_that_went_through_json_parses_dates_and_numbers_back() -> None:
    first = run(frame(dirty_batch()))
    as_json = [
        {k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in row.items()}
        for row in first.quarantine.to_dicts()
    ]
    stored = pl.DataFrame(as_json, infer_schema_length=None).with_columns(pl.col("revenue").cast(pl.String))
    assert stored.schema["order_ts"] == pl.String and stored.schema["revenue"] == pl.String
    again = quarantine_reprocess(ORDER_LINES_SUITE, stored, as_of=AS_OF)
    assert again.result("schema_column_types").status is CheckStatus.PASS
    assert again.quarantine.sort(KEYS)[REASON_CODES_COLUMN].to_list() == (
        first.quarantine.sort(KEYS)[REASON_CODES_COLUMN].to_list()
    )
    broken = stored.with_columns(pl.col("quantity").cast(pl.String).str.replace("2", "two"))
    result = quarantine_reprocess(ORDER_LINES_SUITE, broken, as_of=AS_OF)
    assert result.gate.reasons == ["schema drift: column quantity changed type: expected integer, got String"]


def test_reprocessing_uncorrected_rows_quarantines_them_again_with_the_same_codes() -> None:
    first = run(frame(dirty_batch()))
    again = quarantine_reprocess(ORDER_LINES_SUITE, first.quarantine, as_of=AS_OF)
    assert again.quarantine.height == first.quarantine.height
    assert again.quarantine.sort(KEYS)[REASON_CODES_COLUMN].to_list() == (
        first.quarantine.sort(KEYS)[REASON_CODES_COLUMN].to_list()
    )


# ---------------------------------------------------------------------------------------------------------------
# The sales report suite and the registry
# ---------------------------------------------------------------------------------------------------------------


def report(rows: list[tuple[date, str | None, int | None, float | None]]) -> pl.DataFrame:
    schema = {"day": pl.Date, "region": pl.String, "orders": pl.Int64, "revenue": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def test_sales_report_suite() -> None:
    day = date(2026, 5, 31)
    good = report([(day, "EMEA", 10, 1200.0), (day, " na", 4, 300.5), (day, "APAC", 0, 0.0)])
    result = suite_run(SALES_REPORT_SUITE, good)
    assert result.gate.decision is Decision.PASS
    assert result.cleaned["region"].to_list() == ["EMEA", "NA", "APAC"]

    negative = report([(day, "EMEA", 10, -5.0), (day, "NA", 4, 300.5)])
    result = suite_run(SALES_REPORT_SUITE, negative)
    assert result.gate.decision is Decision.FAIL  # one bad row of two: the score is far below 95
    assert result.quarantine[REASON_CODES_COLUMN].to_list() == [["REVENUE_NEGATIVE"]]

    duplicated = report([(day, "EMEA", 10, 1.0)] * 2 + [(day, "NA", 1, 1.0)] * 60)
    result = suite_run(SALES_REPORT_SUITE, duplicated)
    assert result.gate.decision is Decision.FAIL
    assert result.gate.reasons[0].startswith("critical check duplicate_day_region failed")

    empty = suite_run(SALES_REPORT_SUITE, report([]))
    assert empty.gate.decision is Decision.FAIL and empty.gate.reasons == ["input has no rows: nothing to publish"]


def test_registry_and_suite_declaration_errors() -> None:
    assert suite_for("sales.order_lines") is ORDER_LINES_SUITE
    assert set(SUITES) == {"sales.order_lines", "sales.daily_report"}
    with pytest.raises(KeyError, match="known: sales.daily_report, sales.order_lines"):
        suite_for("nope")
    assert len(ORDER_LINES_SUITE.checks) >= 12
    assert {step.stage for step in ORDER_LINES_SUITE.steps} | {Stage.SCHEMA} == set(Stage)
    with pytest.raises(ValueError, match="duplicate step names"):
        Suite(dataset="x", keys=(), schema={"a": DtypeFamily.STRING}, steps=(not_null("a"), not_null("a")))
    with pytest.raises(ValueError, match="key columns"):
        Suite(dataset="x", keys=("b",), schema={"a": DtypeFamily.STRING}, steps=())


def test_the_canonical_generator_dirt_is_found() -> None:
    salesdata = pytest.importorskip("sandbox.salesdata")
    end = date(2026, 5, 31)
    df = salesdata.generate_order_lines(rows=20_000, seed=3, end=end, dirty_share=0.02)
    fx = salesdata.generate_fx_rates(end=end, seed=3, gaps=2)
    planted = salesdata.dirty_row_counts(df, end=end)
    as_of = datetime(2026, 6, 1, tzinfo=UTC) - timedelta(microseconds=1)
    result = suite_run(ORDER_LINES_SUITE, df, as_of=as_of, references={"fx.usd_rates": fx})

    counts = result.failed_counts
    assert counts["quantity_positive"] == planted["negative_quantity"]
    assert counts["region_not_null"] == planted["null_region"]
    assert counts["email_format"] == planted["malformed_email"]
    assert counts["order_ts_not_future"] == planted["future_order_ts"]
    assert counts["currency_known"] == planted["unknown_currency"]
    assert counts["region_known"] == planted["unknown_region"]
    # Exact copies are removed (and counted); lines that share a key but differ are flagged, both versions.
    assert counts["exact_duplicate_lines"] == result.rows_removed == planted["duplicate_key"]
    assert counts["duplicate_order_line"] == 2 * planted["conflicting_duplicate"]
    # Lines without a rate: the planted gaps, the unknown currencies, and the future days (no rates yet).
    missing = salesdata.fx_missing_lines(df, fx)
    assert counts["fx_rate_for_the_day"] == missing + planted["unknown_currency"] + planted["future_order_ts"]
    # A mismatch of exactly one cent is within the suite's tolerance, so it may find slightly fewer.
    assert 0.9 * planted["revenue_mismatch"] <= counts["revenue_matches_line"] <= planted["revenue_mismatch"]
    # Every kind of defect asks for a review at least: 2% dirt in small shares per check is not a "pass".
    assert result.gate.decision is Decision.REVIEW
    assert any(reason.startswith("check quantity_positive (validity) needs a review") for reason in result.gate.reasons)
    assert result.cleaned.height + result.quarantine.height + result.rows_removed == 20_000
    quarantined = set(result.quarantine.select(KEYS).rows())
    assert not quarantined & set(result.cleaned.select(KEYS).rows())


def test_exact_copies_are_removed_and_conflicting_ones_quarantined() -> None:
    rows = clean_rows(5)
    rows.append(dict(rows[1]))  # an exact copy: removed, counted
    rows.append({**rows[2], "region": f" {rows[2]['region'].lower()} "})  # a copy once its codes are cleaned
    rows.append({**rows[3], "quantity": 3, "revenue": 27.0})  # same key, other values: both versions quarantined
    result = run(frame(rows))

    removed = result.result("exact_duplicate_lines")
    assert removed.failed_count == result.rows_removed == 2 and removed.removes
    assert removed.sample_keys == [key(1), key(2)] and removed.gate_effect is Decision.FAIL  # 2 of 8: over 5%
    assert result.result("duplicate_order_line").sample_keys == [key(3), key(3)]
    assert sorted(result.cleaned["order_id"].to_list()) == sorted(key(i)[0] for i in (0, 1, 2, 4))
    assert result.quarantine["order_id"].to_list() == [key(3)[0], key(3)[0]]
    assert result.quarantine[REASON_CODES_COLUMN].to_list() == [["DUPLICATE_ORDER_LINE"]] * 2


def test_exact_copies_alone_publish_and_the_gate_says_how_many_went() -> None:
    rows = clean_rows(300)
    rows.append(dict(rows[7]))  # 1 of 301 lines: under the suite's 1% review threshold for copies
    result = run(frame(rows))
    assert result.gate.decision is Decision.PASS
    assert result.cleaned.height == 300 and result.quarantine.height == 0
    assert any(r.startswith("check exact_duplicate_lines removed 1 row(s)") for r in result.gate.reasons)
    copies = result.result("exact_duplicate_lines")
    assert copies.threshold == "review > 1.00%; fail > 5.00%" and copies.failed_share == pytest.approx(1 / 301)
    rows += [dict(rows[i]) for i in range(8, 12)]  # 5 of 305: over 1%
    assert run(frame(rows)).gate.decision is Decision.REVIEW


def test_per_check_gate_thresholds_review_then_fail() -> None:
    rows = clean_rows(200)
    rows[3].update(quantity=-2, revenue=-18.0)  # 1 of 200 (0.5%): reviews
    result = run(frame(rows))
    check = result.result("quantity_positive")
    assert check.gate_effect is Decision.REVIEW and check.threshold == "review > 0 rows; fail > 1.00%"
    assert result.gate.decision is Decision.REVIEW
    assert result.gate.reasons[0].startswith("check quantity_positive (validity) needs a review: 1 of 200 rows (0.50%)")
    for i in (4, 5):
        rows[i].update(quantity=-2, revenue=-18.0)  # 3 of 200 (1.5%): fails
    result = run(frame(rows))
    assert result.result("quantity_positive").gate_effect is Decision.FAIL
    assert result.gate.decision is Decision.FAIL
    assert "over its fail threshold of 1.00%" in result.gate.reasons[0]
    # A warning check declares its own: a few malformed emails do not ask for a review.
    rows = clean_rows(100)
    rows[0]["customer_email"] = "nobody"
    assert run(frame(rows)).gate.decision is Decision.PASS


def test_a_referential_check_without_its_reference_is_skipped_saying_so() -> None:
    result = run(frame(clean_rows(3)))
    fx = result.result("fx_rate_for_the_day")
    assert fx.status is CheckStatus.SKIPPED and "reference table fx.usd_rates was not given" in fx.message
    rates = pl.DataFrame({"rate_date": [(AS_OF - timedelta(hours=1)).date()], "currency": ["USD"]})
    with_rates = run(frame(clean_rows(3)), references={"fx.usd_rates": rates})
    assert with_rates.result("fx_rate_for_the_day").sample_keys == [key(1), key(2)]  # DE and JP: no EUR, JPY rate

"""Baseline runners for ``bench/quality_bench.py``: the order-lines checks in Great Expectations, pandera and pandas.

Imported only by the benchmark (its child processes, under ``.venv-bench``); the app never imports this module
and never depends on these libraries. Each runner reads the Parquet file itself (the read is part of what is
timed), normalises the code columns the later checks compare (trim + upper-case region, country, currency and
sku, as the suite's cleaning stage does), runs the same checks as ``quality.suites.ORDER_LINES_SUITE`` and
returns the failing row count per check, keyed by the suite's check names.

The check parameters (patterns, reference maps, tolerance, reference time) come from a ``spec`` dict built
from ``quality.suites`` by the parent process, so every implementation checks exactly the same thing. Null
semantics follow the suite: a null value passes every check except the not-null ones.

Libraries are imported inside :func:`load`, so that a child can measure its interpreter + imports baseline
(``load(impl)`` then nothing) separately from a run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

Spec = dict[str, Any]
Runner = Callable[[str, Spec], dict[str, int]]

CHECK_NAMES: tuple[str, ...] = (
    "email_format",
    "currency_format",
    "sku_format",
    "duplicate_order_line",
    "order_id_not_null",
    "line_no_not_null",
    "region_not_null",
    "customer_id_not_null",
    "order_ts_not_null",
    "revenue_matches_line",
    "currency_matches_country",
    "country_in_region",
    "quantity_positive",
    "discount_in_range",
    "unit_price_positive",
    "order_ts_not_future",
    "currency_known",
)
CODE_COLUMNS = ("region", "country", "currency", "sku")
NOT_NULL = {
    "order_id": "order_id_not_null",
    "line_no": "line_no_not_null",
    "region": "region_not_null",
    "customer_id": "customer_id_not_null",
    "order_ts": "order_ts_not_null",
}
IMPLEMENTATIONS = ("great_expectations", "pandera_pandas", "pandera_polars", "pandas")


def load(impl: str) -> Runner:
    """Import the libraries of ``impl`` and return its runner ``(parquet_path, spec) -> failing counts``."""
    return {
        "great_expectations": _load_ge,
        "pandera_pandas": _load_pandera_pandas,
        "pandera_polars": _load_pandera_polars,
        "pandas": _load_pandas,
    }[impl]()


def _as_of(spec: Spec) -> datetime:
    return datetime.fromisoformat(spec["as_of"])


def _tolerance(spec: Spec) -> float:
    return float(spec["revenue_tolerance"]) + float(spec["float_slack"])


# --------------------------------------------------------------------------------------------------------------
# plain pandas
# --------------------------------------------------------------------------------------------------------------


def _pandas_read_parquet(path: str) -> Any:
    """The Parquet file as pandas would read it, but with NUMERIC (decimal) columns as float64.

    ``pd.read_parquet`` turns decimals into Python ``Decimal`` objects, which are slow and do not mix with floats;
    casting them in Arrow before the conversion is the fastest path, so the baselines get it.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    schema = pa.schema([f.with_type(pa.float64()) if pa.types.is_decimal(f.type) else f for f in table.schema])
    strings = (pa.string(), pa.large_string(), pa.string_view())
    text = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas 3's default "str" dtype
    return table.cast(schema).to_pandas(types_mapper=lambda t: text if t in strings else None)


def _pandas_read(path: str) -> Any:
    frame = _pandas_read_parquet(path)
    for column in CODE_COLUMNS:
        frame[column] = frame[column].str.strip().str.upper()
    return frame


def _pandas_pair_fails(frame: Any, column: str, depends_on: str, mapping: dict[str, str]) -> Any:
    expected = frame[depends_on].map(mapping)
    present = frame[column].notna() & frame[depends_on].notna()
    return present & (expected.isna() | (frame[column] != expected).fillna(True))


def _load_pandas() -> Runner:
    import pandas as pd

    def run(path: str, spec: Spec) -> dict[str, int]:
        frame = _pandas_read_parquet(path)

        def regex_fails(column: str, pattern: str) -> int:
            values = frame[column]
            return int((values.notna() & ~values.str.contains(pattern, regex=True, na=False)).sum())

        counts = {
            "email_format": regex_fails("customer_email", spec["email_pattern"]),
            "currency_format": regex_fails("currency", spec["currency_pattern"]),
            "sku_format": regex_fails("sku", spec["sku_pattern"]),
        }
        for column in CODE_COLUMNS:
            frame[column] = frame[column].str.strip().str.upper()
        counts["duplicate_order_line"] = int(frame.duplicated(["order_id", "line_no"], keep=False).sum())
        for column, name in NOT_NULL.items():
            counts[name] = int(frame[column].isna().sum())
        expected = frame["quantity"] * frame["unit_price"] * (1.0 - frame["discount"])
        counts["revenue_matches_line"] = int(((frame["revenue"] - expected).abs() > _tolerance(spec)).sum())
        counts["currency_matches_country"] = int(
            _pandas_pair_fails(frame, "currency", "country", spec["country_currency"]).sum()
        )
        counts["country_in_region"] = int(_pandas_pair_fails(frame, "region", "country", spec["country_region"]).sum())
        counts["quantity_positive"] = int((frame["quantity"] <= 0).sum())
        counts["discount_in_range"] = int(((frame["discount"] < 0) | (frame["discount"] >= 1)).sum())
        counts["unit_price_positive"] = int((frame["unit_price"] <= 0).sum())
        counts["order_ts_not_future"] = int((frame["order_ts"] > pd.Timestamp(_as_of(spec))).sum())
        currency = frame["currency"]
        counts["currency_known"] = int((currency.notna() & ~currency.isin(spec["iso_currencies"])).sum())
        return counts

    return run


# --------------------------------------------------------------------------------------------------------------
# pandera on pandas
# --------------------------------------------------------------------------------------------------------------


def _pandera_counts(failure_cases: Any, to_name: Callable[[str, str], str | None]) -> dict[str, int]:
    """Failing rows per check name from pandera's failure cases (distinct row index per check)."""
    rows: dict[str, set[Any]] = {name: set() for name in CHECK_NAMES}
    for column, check, index in failure_cases:
        name = to_name(str(column), str(check))
        if name is None:
            raise RuntimeError(f"unmapped pandera failure: column={column} check={check}")
        rows[name].add(index)
    return {name: len(indexes) for name, indexes in rows.items()}


def _pandera_check_name(column: str, check: str) -> str | None:
    """Map a pandera (column, check) failure to the suite's check name."""
    if check in ("revenue_matches_line", "currency_matches_country", "country_in_region"):
        return check
    if check.startswith("multiple_fields_uniqueness") or check == "unique":
        return "duplicate_order_line"
    if check == "not_nullable":
        return NOT_NULL.get(column)
    by_column = {
        ("customer_email", "str_matches"): "email_format",
        ("currency", "str_matches"): "currency_format",
        ("sku", "str_matches"): "sku_format",
        ("currency", "isin"): "currency_known",
        ("quantity", "greater_than"): "quantity_positive",
        ("unit_price", "greater_than"): "unit_price_positive",
        ("discount", "greater_than_or_equal_to"): "discount_in_range",
        ("discount", "less_than"): "discount_in_range",
        ("order_ts", "less_than_or_equal_to"): "order_ts_not_future",
    }
    return by_column.get((column, check.split("(")[0]))


def _load_pandera_pandas() -> Runner:
    import pandas as pd
    import pandera.errors
    import pandera.pandas as pa

    def schema_for(spec: Spec) -> Any:
        tolerance = _tolerance(spec)

        def revenue_ok(df: Any) -> Any:
            expected = df["quantity"] * df["unit_price"] * (1.0 - df["discount"])
            return ~((df["revenue"] - expected).abs() > tolerance)

        def pair_ok(column: str, depends_on: str, mapping: dict[str, str]) -> Callable[[Any], Any]:
            return lambda df: ~_pandas_pair_fails(df, column, depends_on, mapping)

        return pa.DataFrameSchema(
            columns={
                "order_id": pa.Column(nullable=False),
                "line_no": pa.Column(nullable=False),
                "order_ts": pa.Column(nullable=False, checks=pa.Check.le(pd.Timestamp(_as_of(spec)))),
                "region": pa.Column(nullable=False),
                "country": pa.Column(nullable=True),
                "sku": pa.Column(nullable=True, checks=pa.Check.str_matches(spec["sku_pattern"])),
                "quantity": pa.Column(nullable=True, checks=pa.Check.gt(0)),
                "unit_price": pa.Column(nullable=True, checks=pa.Check.gt(0)),
                "discount": pa.Column(nullable=True, checks=[pa.Check.ge(0), pa.Check.lt(1)]),
                "currency": pa.Column(
                    nullable=True,
                    checks=[pa.Check.str_matches(spec["currency_pattern"]), pa.Check.isin(spec["iso_currencies"])],
                ),
                "customer_id": pa.Column(nullable=False),
                "customer_email": pa.Column(nullable=True, checks=pa.Check.str_matches(spec["email_pattern"])),
            },
            checks=[
                pa.Check(revenue_ok, name="revenue_matches_line"),
                pa.Check(pair_ok("currency", "country", spec["country_currency"]), name="currency_matches_country"),
                pa.Check(pair_ok("region", "country", spec["country_region"]), name="country_in_region"),
            ],
            unique=["order_id", "line_no"],
            report_duplicates="all",
        )

    def run(path: str, spec: Spec) -> dict[str, int]:
        frame = _pandas_read(path)
        try:
            schema_for(spec).validate(frame, lazy=True)
        except pandera.errors.SchemaErrors as errors:
            cases = errors.failure_cases
            return _pandera_counts(
                zip(cases["column"], cases["check"], cases["index"], strict=True), _pandera_check_name
            )
        return dict.fromkeys(CHECK_NAMES, 0)

    return run


# --------------------------------------------------------------------------------------------------------------
# pandera on polars
# --------------------------------------------------------------------------------------------------------------


def _load_pandera_polars() -> Runner:
    import pandera.errors
    import pandera.polars as pa
    import polars as pl

    def pair_fails(column: str, depends_on: str, mapping: dict[str, str]) -> pl.Expr:
        expected = pl.col(depends_on).replace_strict(mapping, default=None, return_dtype=pl.String)
        present = pl.col(column).is_not_null() & pl.col(depends_on).is_not_null()
        return present & (pl.col(column) != expected).fill_null(True)

    def frame_check(name: str, fails: pl.Expr) -> Any:
        return pa.Check(lambda data: data.lazyframe.select((~fails).fill_null(True)), name=name)

    def schema_for(spec: Spec) -> Any:
        revenue = pl.col("quantity") * pl.col("unit_price") * (1.0 - pl.col("discount"))
        return pa.DataFrameSchema(
            columns={
                "order_id": pa.Column(nullable=False),
                "line_no": pa.Column(nullable=False),
                "order_ts": pa.Column(nullable=False, checks=pa.Check.le(_as_of(spec))),
                "region": pa.Column(nullable=False),
                "country": pa.Column(nullable=True),
                "sku": pa.Column(nullable=True, checks=pa.Check.str_matches(spec["sku_pattern"])),
                "quantity": pa.Column(nullable=True, checks=pa.Check.gt(0)),
                "unit_price": pa.Column(nullable=True, checks=pa.Check.gt(0)),
                "discount": pa.Column(nullable=True, checks=[pa.Check.ge(0), pa.Check.lt(1)]),
                "currency": pa.Column(
                    nullable=True,
                    checks=[pa.Check.str_matches(spec["currency_pattern"]), pa.Check.isin(spec["iso_currencies"])],
                ),
                "customer_id": pa.Column(nullable=False),
                "customer_email": pa.Column(nullable=True, checks=pa.Check.str_matches(spec["email_pattern"])),
            },
            checks=[
                frame_check("revenue_matches_line", (pl.col("revenue") - revenue).abs() > _tolerance(spec)),
                frame_check("currency_matches_country", pair_fails("currency", "country", spec["country_currency"])),
                frame_check("country_in_region", pair_fails("region", "country", spec["country_region"])),
            ],
            unique=["order_id", "line_no"],
            report_duplicates="all",
        )

    def run(path: str, spec: Spec) -> dict[str, int]:
        frame = pl.read_parquet(path)
        frame = frame.with_columns(
            *(pl.col(column).str.strip_chars().str.to_uppercase() for column in CODE_COLUMNS),
            *(pl.col(name).cast(pl.Float64) for name, dtype in frame.schema.items() if dtype.is_decimal()),
        )
        try:
            schema_for(spec).validate(frame, lazy=True)
        except pandera.errors.SchemaErrors as errors:
            cases = errors.failure_cases
            return _pandera_counts(
                zip(cases["column"].to_list(), cases["check"].to_list(), cases["index"].to_list(), strict=True),
                _pandera_check_name,
            )
        return dict.fromkeys(CHECK_NAMES, 0)

    return run


# --------------------------------------------------------------------------------------------------------------
# Great Expectations 1.x (pandas data source)
# --------------------------------------------------------------------------------------------------------------


def _load_ge() -> Runner:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd

    def expectations(spec: Spec) -> list[tuple[str, Any]]:
        pairs = [(name, gxe.ExpectColumnValuesToNotBeNull(column=column)) for column, name in NOT_NULL.items()]
        return [
            ("email_format", gxe.ExpectColumnValuesToMatchRegex(column="customer_email", regex=spec["email_pattern"])),
            ("currency_format", gxe.ExpectColumnValuesToMatchRegex(column="currency", regex=spec["currency_pattern"])),
            ("sku_format", gxe.ExpectColumnValuesToMatchRegex(column="sku", regex=spec["sku_pattern"])),
            ("duplicate_order_line", gxe.ExpectCompoundColumnsToBeUnique(column_list=["order_id", "line_no"])),
            *pairs,
            # GE has no row-arithmetic expectation: the absolute difference is derived in pandas (see run).
            (
                "revenue_matches_line",
                gxe.ExpectColumnValuesToBeBetween(column="revenue_abs_diff", max_value=_tolerance(spec)),
            ),
            # ExpectColumnPairValuesToBeInSet applies a Python function per row (about 90 s per million rows
            # here); the fastest faithful form is the expected value mapped in pandas and a pair-equality check.
            (
                "currency_matches_country",
                gxe.ExpectColumnPairValuesToBeEqual(
                    column_A="currency", column_B="expected_currency", ignore_row_if="either_value_is_missing"
                ),
            ),
            (
                "country_in_region",
                gxe.ExpectColumnPairValuesToBeEqual(
                    column_A="region", column_B="expected_region", ignore_row_if="either_value_is_missing"
                ),
            ),
            ("quantity_positive", gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=0, strict_min=True)),
            (
                "discount_in_range",
                gxe.ExpectColumnValuesToBeBetween(column="discount", min_value=0, max_value=1, strict_max=True),
            ),
            (
                "unit_price_positive",
                gxe.ExpectColumnValuesToBeBetween(column="unit_price", min_value=0, strict_min=True),
            ),
            (
                "order_ts_not_future",
                gxe.ExpectColumnValuesToBeBetween(column="order_ts", max_value=pd.Timestamp(_as_of(spec))),
            ),
            ("currency_known", gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=spec["iso_currencies"])),
        ]

    def run(path: str, spec: Spec) -> dict[str, int]:
        frame = _pandas_read(path)
        expected = frame["quantity"] * frame["unit_price"] * (1.0 - frame["discount"])
        frame["revenue_abs_diff"] = (frame["revenue"] - expected).abs()
        # An unknown country maps to a value no currency or region has, so the pair fails as in the suite.
        for column, mapping in (("currency", spec["country_currency"]), ("region", spec["country_region"])):
            mapped = frame["country"].map(mapping)
            frame[f"expected_{column}"] = mapped.mask(mapped.isna() & frame["country"].notna(), "?")
        context = gx.get_context(mode="ephemeral")
        source = context.data_sources.add_pandas("bench")
        asset = source.add_dataframe_asset("order_lines")
        batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame})
        suite = gx.ExpectationSuite(name="order_lines")
        for name, expectation in expectations(spec):
            expectation.meta = {"check": name}
            suite.add_expectation(expectation)
        outcome = batch.validate(suite, result_format="BASIC")
        counts = {}
        for result in outcome.results:
            name = result.expectation_config.meta["check"]
            if result.exception_info and result.exception_info.get("raised_exception"):
                raise RuntimeError(f"GE expectation {name} raised: {result.exception_info}")
            counts[name] = int(result.result.get("unexpected_count") or 0)
        return counts

    return run

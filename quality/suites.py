"""The declared check suites, one per dataset, and the registry that finds them by dataset name.

``ORDER_LINES_SUITE`` is the suite of ``sales.order_lines`` (one row per order line): the sales job runs it
inside BigQuery on the lines of the requested range before its report query (:mod:`quality.sql`), and it runs
in memory (polars) on small results and files. ``SALES_REPORT_SUITE`` guards the aggregated daily sales report
before it is published to the Sheets dashboard. To add a dataset, declare a :class:`~quality.engine.Suite` with
the helpers of :mod:`quality.engine` (``not_null``, ``matches``, ``in_set``, ``duplicate_key``,
``exact_duplicates``, ``pair_in_mapping``, ``has_reference``, ``strip_upper``), which write both the polars and
the SQL form, or plain :class:`~quality.engine.Check` / :class:`~quality.engine.Transform` objects with a
polars form and, to run in the warehouse, a ``sql=`` form next to it; then add it to :data:`SUITES`.

Gate thresholds of the order lines (per check, shown on the review page and in the run summary): a check of
severity error sends the report to review from its first failing line and fails it above 1% of the lines
(the suite's policy says so once; checks that differ say so themselves); a critical one (a null key) fails
it from the first line. Exact duplicate lines are removed and counted: the report is computed without them,
and only more than 1% of them asks for a review.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from quality.engine import (
    ANY_ROW,
    Check,
    CheckContext,
    ColumnContract,
    DtypeFamily,
    GatePolicy,
    Severity,
    SqlContext,
    Stage,
    Suite,
    TableContract,
    Threshold,
    Transform,
    duplicate_key,
    exact_duplicates,
    has_reference,
    in_set,
    matches,
    not_null,
    pair_in_mapping,
    strip_upper,
)

# --------------------------------------------------------------------------------------------------------------
# Reference data for sales.order_lines
# --------------------------------------------------------------------------------------------------------------

# region -> {country: currency}: where the business sells and the currency each country is booked in.
_GEOGRAPHY: Mapping[str, Mapping[str, str]] = {
    "NA": {"US": "USD", "CA": "CAD"},
    "EMEA": {"GB": "GBP", "DE": "EUR", "FR": "EUR", "NL": "EUR", "ES": "EUR", "IT": "EUR", "SE": "SEK", "PL": "PLN"},
    "LATAM": {"BR": "BRL", "MX": "MXN", "CO": "COP", "CL": "CLP", "AR": "ARS"},
    "APAC": {"JP": "JPY", "AU": "AUD", "IN": "INR", "SG": "SGD", "KR": "KRW", "CN": "CNY"},
    "MEA": {"AE": "AED", "SA": "SAR", "ZA": "ZAR", "EG": "EGP"},
}
COUNTRY_REGION: Mapping[str, str] = {country: region for region, rows in _GEOGRAPHY.items() for country in rows}
"""The region each country belongs to."""
COUNTRY_CURRENCY: Mapping[str, str] = {country: cur for rows in _GEOGRAPHY.values() for country, cur in rows.items()}
"""The currency orders from each country are booked in."""
REGIONS: tuple[str, ...] = tuple(_GEOGRAPHY)
"""The regions the business reports on."""
FX_RATES_TABLE = "fx.usd_rates"
"""Daily USD rates: one row per (rate_date, currency) with ``usd_per_unit`` (the report converts revenue with it)."""

ISO_CURRENCIES: frozenset[str] = frozenset(
    """AED ARS AUD BRL CAD CHF CLP CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR JPY KRW MXN MYR NGN NOK NZD
    PEN PHP PLN RON SAR SEK SGD THB TRY TWD UAH USD VND ZAR""".split()
)
"""ISO 4217 codes the business trades in (a code outside this list is an unknown currency)."""

EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
CURRENCY_PATTERN = r"^\s*[A-Za-z]{3}\s*$"  # raw value, before cleaning trims and upper-cases it
SKU_PATTERN = r"(?i)^\s*SKU-[A-Z]{3}-[0-9]{5}\s*$"  # e.g. SKU-ELE-01234, raw value (cleaning upper-cases it)
REVENUE_TOLERANCE = 0.01  # revenue may differ from quantity * unit_price * (1 - discount) by at most a cent
FLOAT_SLACK = 1e-9  # so that a difference of exactly one cent, computed in floating point, still passes

ORDER_LINES_SCHEMA: Mapping[str, DtypeFamily] = {
    "order_id": DtypeFamily.STRING,
    "line_no": DtypeFamily.INTEGER,
    "order_ts": DtypeFamily.DATETIME,
    "region": DtypeFamily.STRING,
    "country": DtypeFamily.STRING,
    "sku": DtypeFamily.STRING,
    "product_category": DtypeFamily.STRING,
    "quantity": DtypeFamily.INTEGER,
    "unit_price": DtypeFamily.NUMERIC,
    "discount": DtypeFamily.NUMERIC,
    "revenue": DtypeFamily.NUMERIC,
    "currency": DtypeFamily.STRING,
    "customer_id": DtypeFamily.STRING,
    "customer_email": DtypeFamily.STRING,
    "channel": DtypeFamily.STRING,
}

ORDER_LINES_CONTRACT = TableContract(
    table="sales.order_lines",
    partition_field="order_ts",
    columns={
        column: ColumnContract(kind)
        for column, kind in (
            ("order_id", "STRING"),
            ("line_no", "INT64"),
            ("order_ts", "TIMESTAMP"),
            ("region", "STRING"),
            ("country", "STRING"),
            ("sku", "STRING"),
            ("product_category", "STRING"),
            ("quantity", "INT64"),
            ("unit_price", "NUMERIC"),
            ("discount", "NUMERIC"),
            ("revenue", "NUMERIC"),
            ("currency", "STRING"),
            ("customer_id", "STRING"),
            ("customer_email", "STRING"),
            ("channel", "STRING"),
        )
    },
)
"""What ``sales.order_lines`` promises in BigQuery (checked with ``tables.get`` before the sales job queries it).
Every column is NULLABLE: the warehouse does not enforce keys, the suite does."""


def _f64(column: str) -> pl.Expr:
    """A NUMERIC column as Float64 (BigQuery NUMERIC may arrive as Decimal)."""
    return pl.col(column).cast(pl.Float64)


def _sql_f64(column: str) -> str:
    """The same in SQL: float arithmetic on both paths, so both round alike."""
    return f"CAST(`{column}` AS FLOAT64)"


def _in_future(ctx: CheckContext) -> pl.Expr:
    # Comparing epochs works for naive (read as UTC) and tz-aware timestamps alike.
    return pl.col("order_ts").dt.epoch("us") > ctx.as_of_epoch_us


def _in_future_sql(ctx: SqlContext) -> str:
    return f"`order_ts` > {ctx.as_of}"


_CRITICAL_GATE = {"fail_above": ANY_ROW, "gate_fail_above": ANY_ROW}


ORDER_LINES_SUITE = Suite(
    dataset="sales.order_lines",
    keys=("order_id", "line_no"),
    schema=ORDER_LINES_SCHEMA,
    contract=ORDER_LINES_CONTRACT,
    description="Order lines in BigQuery, validated before they feed the sales report.",
    policy=GatePolicy(
        pass_min_score=99.5,
        review_min_score=97.0,
        fail_on_critical=True,
        check_review_above=ANY_ROW,  # every check of severity error: its first failing line asks for a review
        check_fail_above=Threshold(share=0.01),  # ... and more than 1% of the lines fails the gate
    ),
    steps=(
        # format: raw values, before cleaning
        matches(
            "customer_email",
            EMAIL_PATTERN,
            severity=Severity.WARNING,
            name="email_format",
            reason_code="EMAIL_MALFORMED",
            description="customer_email is a well-formed address",
            fail_above=Threshold(share=0.05),
            gate_review_above=Threshold(share=0.05),  # the report does not use it: only many of them matter
        ),
        matches(
            "currency",
            CURRENCY_PATTERN,
            name="currency_format",
            reason_code="CURRENCY_MALFORMED",
            description="currency is three letters",
        ),
        matches(
            "sku",
            SKU_PATTERN,
            name="sku_format",
            reason_code="SKU_MALFORMED",
            description="sku looks like SKU-ABC-01234",
        ),
        # cleaning
        strip_upper("region", "country", "currency", "sku", name="codes_strip_upper"),
        # dedup: exact copies go (counted), then lines that share a key but differ are flagged
        exact_duplicates(
            tuple(ORDER_LINES_SCHEMA),
            name="exact_duplicate_lines",
            reason_code="EXACT_DUPLICATE_LINE",
            description="no line is an exact copy of another (copies are removed and counted)",
            gate_review_above=Threshold(share=0.01),
            gate_fail_above=Threshold(share=0.05),
        ),
        duplicate_key(("order_id", "line_no"), name="duplicate_order_line", reason_code="DUPLICATE_ORDER_LINE"),
        # enrichment
        Transform(
            name="derive_order_date_and_revenue",
            stage=Stage.ENRICHMENT,
            description="order_date (UTC day of order_ts), gross_revenue and net_revenue recomputed from the line",
            exprs=(
                pl.col("order_ts").dt.date().alias("order_date"),
                (_f64("quantity") * _f64("unit_price")).alias("gross_revenue"),
                (_f64("quantity") * _f64("unit_price") * (1.0 - _f64("discount"))).alias("net_revenue"),
            ),
            sql={
                "order_date": "DATE(`order_ts`)",
                "gross_revenue": f"{_sql_f64('quantity')} * {_sql_f64('unit_price')}",
                "net_revenue": f"{_sql_f64('quantity')} * {_sql_f64('unit_price')} * (1.0 - {_sql_f64('discount')})",
            },
        ),
        # completeness
        not_null("order_id", severity=Severity.CRITICAL, reason_code="ORDER_ID_MISSING", **_CRITICAL_GATE),
        not_null("line_no", severity=Severity.CRITICAL, reason_code="LINE_NO_MISSING", **_CRITICAL_GATE),
        not_null("region", reason_code="REGION_MISSING"),
        not_null("customer_id", reason_code="CUSTOMER_ID_MISSING"),
        not_null("order_ts", reason_code="ORDER_TS_MISSING"),
        # accuracy
        Check(
            name="revenue_matches_line",
            stage=Stage.ACCURACY,
            severity=Severity.ERROR,
            description=f"revenue = quantity * unit_price * (1 - discount) within {REVENUE_TOLERANCE}",
            fails=(_f64("revenue") - pl.col("net_revenue")).abs() > REVENUE_TOLERANCE + FLOAT_SLACK,
            sql=f"ABS({_sql_f64('revenue')} - `net_revenue`) > {REVENUE_TOLERANCE + FLOAT_SLACK!r}",
            reason_code="REVENUE_MISMATCH",
        ),
        # consistency
        pair_in_mapping("currency", "country", COUNTRY_CURRENCY, name="currency_matches_country"),
        pair_in_mapping("region", "country", COUNTRY_REGION, name="country_in_region"),
        has_reference(
            {"currency": "currency", "order_date": "rate_date"},
            FX_RATES_TABLE,
            name="fx_rate_for_the_day",
            reason_code="FX_RATE_MISSING",
            description=f"the line's currency has a USD rate in {FX_RATES_TABLE} for the order's day",
        ),
        # validity
        Check(
            name="quantity_positive",
            stage=Stage.VALIDITY,
            severity=Severity.ERROR,
            description="quantity > 0",
            fails=pl.col("quantity") <= 0,
            sql="`quantity` <= 0",
            reason_code="QUANTITY_NOT_POSITIVE",
        ),
        Check(
            name="discount_in_range",
            stage=Stage.VALIDITY,
            severity=Severity.ERROR,
            description="0 <= discount < 1",
            fails=(pl.col("discount") < 0) | (pl.col("discount") >= 1),
            sql="`discount` < 0 OR `discount` >= 1",
            reason_code="DISCOUNT_OUT_OF_RANGE",
        ),
        Check(
            name="unit_price_positive",
            stage=Stage.VALIDITY,
            severity=Severity.ERROR,
            description="unit_price > 0",
            fails=pl.col("unit_price") <= 0,
            sql="`unit_price` <= 0",
            reason_code="UNIT_PRICE_NOT_POSITIVE",
        ),
        Check(
            name="order_ts_not_future",
            stage=Stage.VALIDITY,
            severity=Severity.ERROR,
            description="order_ts is not after the run's reference time",
            fails=_in_future,
            sql=_in_future_sql,
            reason_code="ORDER_TS_IN_FUTURE",
        ),
        in_set("region", REGIONS, name="region_known", reason_code="REGION_UNKNOWN"),
        in_set("currency", sorted(ISO_CURRENCIES), name="currency_known", reason_code="CURRENCY_UNKNOWN"),
    ),
)

# --------------------------------------------------------------------------------------------------------------
# The aggregated sales report (one row per day and region)
# --------------------------------------------------------------------------------------------------------------

_EXACT = Threshold(count=0)  # an aggregate has no room for bad rows: any one fails the check (gate: review)

SALES_REPORT_SUITE = Suite(
    dataset="sales.daily_report",
    keys=("day", "region"),
    schema={
        "day": DtypeFamily.DATE,
        "region": DtypeFamily.STRING,
        "orders": DtypeFamily.INTEGER,
        "revenue": DtypeFamily.NUMERIC,
    },
    description="Daily revenue and orders per region, as published to the Sheets dashboard.",
    policy=GatePolicy(pass_min_score=100.0, review_min_score=95.0, fail_on_critical=True),
    steps=(
        strip_upper("region", name="region_strip_upper"),
        duplicate_key(("day", "region"), severity=Severity.CRITICAL, name="duplicate_day_region", fail_above=_EXACT),
        not_null("day", fail_above=_EXACT),
        not_null("region", fail_above=_EXACT),
        not_null("orders", fail_above=_EXACT),
        not_null("revenue", fail_above=_EXACT),
        Check(
            name="revenue_not_negative",
            stage=Stage.VALIDITY,
            severity=Severity.ERROR,
            description="revenue >= 0",
            fails=pl.col("revenue") < 0,
            reason_code="REVENUE_NEGATIVE",
            fail_above=_EXACT,
        ),
        Check(
            name="orders_not_negative",
            stage=Stage.VALIDITY,
            severity=Severity.ERROR,
            description="orders >= 0",
            fails=pl.col("orders") < 0,
            reason_code="ORDERS_NEGATIVE",
            fail_above=_EXACT,
        ),
        Check(
            name="revenue_needs_orders",
            stage=Stage.CONSISTENCY,
            severity=Severity.WARNING,
            description="a day and region without orders has no revenue",
            fails=(pl.col("orders") == 0) & (_f64("revenue") != 0),
            reason_code="REVENUE_WITHOUT_ORDERS",
        ),
    ),
)
"""Non-empty is the engine's rule: the policy's ``empty_decision`` (fail) applies to a report without rows."""

SUITES: Mapping[str, Suite] = {suite.dataset: suite for suite in (ORDER_LINES_SUITE, SALES_REPORT_SUITE)}


def suite_for(dataset: str) -> Suite:
    """The declared suite for ``dataset``; KeyError naming the known datasets otherwise."""
    try:
        return SUITES[dataset]
    except KeyError:
        raise KeyError(f"no quality suite for dataset {dataset!r}; known: {', '.join(sorted(SUITES))}") from None

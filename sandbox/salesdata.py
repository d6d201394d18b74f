"""The canonical sales table ``sales.order_lines``: a seeded, realistic generator for the emulators.

``generate_order_lines(rows=1_000_000, seed=7)`` builds two years of order lines (numpy + polars,
vectorised: about a second per million rows) with a small share of dirty rows, one defect each:

* ``negative_quantity``: a return keyed as a sale (revenue follows the negative quantity);
* ``revenue_mismatch``: revenue that is not ``quantity * unit_price * (1 - discount)``;
* ``null_region``;
* ``malformed_email``;
* ``future_order_ts``: after ``end``;
* ``duplicate_key``: an exact copy of another row (a re-delivered line);
* ``unknown_currency``;
* ``conflicting_duplicate``: another row's ``(order_id, line_no)`` with other values (a line changed and
  delivered again: which version is right is unknown);
* ``unknown_region``: a region code the business does not report on.

``dirty_row_counts(df)`` finds them again, so tests (and the quality checks built on this table)
can compare against the generator. ``write_sales_dataset(dir)`` writes the table as the emulator
seeds it: ``sales.order_lines.parquet`` plus the sidecar ``sales.order_lines.json`` that
partitions it by day on ``order_ts``, and ``fx.usd_rates`` (daily USD rates per currency; a dirty
dataset also has a few days missing for some currency: ``fx_gaps``).

CLI: ``python -m sandbox.salesdata --out DIR --rows N [--seed 7] [--end YYYY-MM-DD]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

__all__ = [
    "COLUMNS",
    "DIRTY_KINDS",
    "FX_TABLE_FILE",
    "KNOWN_CURRENCIES",
    "TABLE_FILE",
    "dataset_current",
    "dirty_row_counts",
    "fx_missing_lines",
    "generate_fx_rates",
    "generate_order_lines",
    "write_fx_rates",
    "write_sales_dataset",
]

TABLE_FILE = "sales.order_lines.parquet"
SIDECAR_FILE = "sales.order_lines.json"
PARTITION_FIELD = "order_ts"
HISTORY_DAYS = 730

MONEY = pl.Decimal(18, 2)

# (column, BigQuery type) in table order.
COLUMNS: tuple[tuple[str, str], ...] = (
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

DIRTY_KINDS: tuple[str, ...] = (
    "negative_quantity",
    "revenue_mismatch",
    "null_region",
    "malformed_email",
    "future_order_ts",
    "duplicate_key",
    "unknown_currency",
    "conflicting_duplicate",
    "unknown_region",
)
FX_GAPS_WHEN_DIRTY = 3  # (currency, day) rates missing from fx.usd_rates in a dirty dataset

# region -> [(country, currency, weight within region, units of currency per USD)]
_GEOGRAPHY: dict[str, list[tuple[str, str, float, float]]] = {
    "NA": [("US", "USD", 0.86, 1.0), ("CA", "CAD", 0.14, 1.37)],
    "EMEA": [
        ("GB", "GBP", 0.24, 0.79),
        ("DE", "EUR", 0.22, 0.92),
        ("FR", "EUR", 0.16, 0.92),
        ("NL", "EUR", 0.09, 0.92),
        ("ES", "EUR", 0.09, 0.92),
        ("IT", "EUR", 0.09, 0.92),
        ("SE", "SEK", 0.06, 10.6),
        ("PL", "PLN", 0.05, 4.0),
    ],
    "LATAM": [
        ("BR", "BRL", 0.42, 5.0),
        ("MX", "MXN", 0.30, 17.1),
        ("CO", "COP", 0.11, 3950.0),
        ("CL", "CLP", 0.09, 930.0),
        ("AR", "ARS", 0.08, 870.0),
    ],
    "APAC": [
        ("JP", "JPY", 0.27, 151.0),
        ("AU", "AUD", 0.20, 1.52),
        ("IN", "INR", 0.19, 83.3),
        ("SG", "SGD", 0.12, 1.34),
        ("KR", "KRW", 0.12, 1330.0),
        ("CN", "CNY", 0.10, 7.2),
    ],
    "MEA": [
        ("AE", "AED", 0.35, 3.67),
        ("SA", "SAR", 0.30, 3.75),
        ("ZA", "ZAR", 0.22, 18.6),
        ("EG", "EGP", 0.13, 47.5),
    ],
}
_REGION_WEIGHTS = {"NA": 0.35, "EMEA": 0.32, "APAC": 0.18, "LATAM": 0.10, "MEA": 0.05}
KNOWN_CURRENCIES: frozenset[str] = frozenset(c for rows in _GEOGRAPHY.values() for _, c, _, _ in rows)
_BAD_CURRENCIES = ("XXX", "EURO", "N/A", "US$")
_BAD_REGIONS = ("EU", "ANTARCTICA", "NORTH", "APJ")

# category -> (SKU code, share of the catalogue, median price in USD, log-normal sigma)
_CATEGORIES: dict[str, tuple[str, float, float, float]] = {
    "Electronics": ("ELE", 0.12, 180.0, 0.8),
    "Computers": ("CMP", 0.06, 750.0, 0.6),
    "Home & Kitchen": ("HOM", 0.14, 45.0, 0.7),
    "Furniture": ("FUR", 0.07, 320.0, 0.6),
    "Apparel": ("APP", 0.16, 38.0, 0.5),
    "Footwear": ("FTW", 0.07, 85.0, 0.4),
    "Beauty": ("BTY", 0.10, 22.0, 0.5),
    "Sports & Outdoors": ("SPO", 0.09, 60.0, 0.8),
    "Toys & Games": ("TOY", 0.08, 30.0, 0.6),
    "Books": ("BOK", 0.11, 16.0, 0.4),
}
_N_SKUS = 2_000
_CHANNELS = ("web", "store", "marketplace", "partner")
_CHANNEL_WEIGHTS = (0.45, 0.25, 0.18, 0.12)
_DISCOUNTS_PCT = np.array([0, 5, 10, 15, 20, 25, 30])
_DISCOUNT_WEIGHTS = np.array([0.58, 0.14, 0.11, 0.07, 0.05, 0.03, 0.02])
_FIRST_NAMES = (
    "james mary john patricia robert jennifer michael linda david elizabeth william barbara richard susan "
    "joseph jessica thomas sarah carlos maria ana luis sofia lucas emma noah olivia liam mia yuki hiro "
    "wei li priya arjun fatima omar ahmed layla hans anna lars ingrid pierre camille marco giulia jan eva"
).split()
_LAST_NAMES = (
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez wilson "
    "anderson thomas taylor moore jackson martin lee silva santos tanaka sato kim park chen wang singh "
    "patel khan ali hassan mueller schmidt schneider dubois moreau rossi russo nowak kowalski jansen "
    "devries johansson nilsson"
).split()
_EMAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "mail.com", "example.org")
_EMAIL_DOMAIN_WEIGHTS = (0.42, 0.2, 0.12, 0.1, 0.06, 0.05, 0.05)


def _choice(rng: np.random.Generator, n: int, weights: tuple[float, ...] | list[float] | np.ndarray) -> np.ndarray:
    """``n`` indices drawn with the given (unnormalised) weights."""
    w = np.asarray(weights, dtype=float)
    return rng.choice(len(w), size=n, p=w / w.sum())


def _lookup(values: tuple[str, ...] | list[str], idx: np.ndarray) -> pl.Series:
    """``values[idx]`` as a polars string column (a gather: fast for millions of rows)."""
    return pl.Series(list(values), dtype=pl.String).gather(idx)


def _day_weights(n_days: int, start: date) -> np.ndarray:
    """Relative order volume per day: 35% growth over the period, weekends and December busier."""
    days = np.arange(n_days)
    trend = 1.0 + 0.35 * days / max(n_days - 1, 1)
    weekday = np.array([(start + timedelta(days=int(d))).weekday() for d in days])
    month = np.array([(start + timedelta(days=int(d))).month for d in days])
    weekly = np.where(weekday >= 5, 1.15, 1.0)
    seasonal = np.where(month == 12, 1.45, np.where(month == 11, 1.2, np.where(month == 1, 0.85, 1.0)))
    return trend * weekly * seasonal


def generate_order_lines(
    *, rows: int = 1_000_000, seed: int = 7, end: date | None = None, dirty_share: float = 0.003
) -> pl.DataFrame:
    """The ``sales.order_lines`` table: ``rows`` lines of two years of orders ending on ``end`` (UTC).

    Deterministic for a given ``(rows, seed, end)``; ``end`` defaults to today (UTC). About
    ``dirty_share`` of the rows carry exactly one defect from :data:`DIRTY_KINDS` (in equal
    shares). NUMERIC columns are ``Decimal(18, 2)``; ``order_ts`` is microsecond UTC.
    """
    if rows < 1:
        raise ValueError("rows must be >= 1")
    if not 0 <= dirty_share <= 0.5:
        raise ValueError("dirty_share must be between 0 and 0.5")
    end = end or datetime.now(UTC).date()
    rng = np.random.default_rng(seed)
    start = end - timedelta(days=HISTORY_DAYS - 1)

    # --- orders: lines per order (1..8, mostly 1-3), then one row per line ----------------------
    lines_choices = np.arange(1, 9)
    lines_weights = np.array([0.34, 0.26, 0.16, 0.1, 0.06, 0.04, 0.025, 0.015])
    n_orders_guess = int(rows / float((lines_choices * lines_weights / lines_weights.sum()).sum())) + 64
    lines_per_order = lines_choices[_choice(rng, n_orders_guess, lines_weights)]
    while lines_per_order.sum() < rows:  # pragma: no cover - the guess has a margin
        lines_per_order = np.concatenate([lines_per_order, lines_per_order])
    cumulative = np.cumsum(lines_per_order)
    n_orders = int(np.searchsorted(cumulative, rows) + 1)
    lines_per_order = lines_per_order[:n_orders].copy()
    lines_per_order[-1] -= int(cumulative[n_orders - 1] - rows)  # the last order is cut to fit exactly

    # Order timestamps: day by weighted choice, time of day peaking in the afternoon, sorted so
    # order ids increase with time.
    n_days = HISTORY_DAYS
    day_idx = _choice(rng, n_orders, _day_weights(n_days, start))
    seconds = np.clip(rng.normal(14.5 * 3600, 4.5 * 3600, n_orders), 0, 86_399).astype(np.int64)
    start_us = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) * 1_000_000
    order_us = np.sort(start_us + day_idx.astype(np.int64) * 86_400_000_000 + seconds * 1_000_000)
    order_us += rng.integers(0, 1_000_000, n_orders)  # sub-second part; stays inside the same second

    # Customers: each has a home country and an email; a few customers order a lot (Zipf-like).
    n_customers = max(rows // 8, 50)
    regions = list(_REGION_WEIGHTS)
    cust_region = _choice(rng, n_customers, [_REGION_WEIGHTS[r] for r in regions])
    countries: list[str] = []
    currencies: list[str] = []
    fx: list[float] = []
    country_region: list[int] = []
    for ri, region in enumerate(regions):
        for country, currency, _, rate in _GEOGRAPHY[region]:
            countries.append(country)
            currencies.append(currency)
            fx.append(rate)
            country_region.append(ri)
    cust_country = np.empty(n_customers, dtype=np.int64)
    offset = 0
    for ri, region in enumerate(regions):
        members = np.flatnonzero(cust_region == ri)
        weights = [w for _, _, w, _ in _GEOGRAPHY[region]]
        cust_country[members] = offset + _choice(rng, len(members), weights)
        offset += len(_GEOGRAPHY[region])
    popularity = 1.0 / np.arange(1, n_customers + 1) ** 0.6
    order_customer = _choice(rng, n_orders, popularity)
    order_channel = _choice(rng, n_orders, _CHANNEL_WEIGHTS)

    # SKUs: ~2,000 across 10 categories, log-normal prices per category, Zipf-like popularity.
    cat_names = list(_CATEGORIES)
    sku_cat = np.sort(_choice(rng, _N_SKUS, [_CATEGORIES[c][1] for c in cat_names]))
    medians = np.array([_CATEGORIES[c][2] for c in cat_names])
    sigmas = np.array([_CATEGORIES[c][3] for c in cat_names])
    sku_price_usd = np.round(np.exp(np.log(medians[sku_cat]) + sigmas[sku_cat] * rng.standard_normal(_N_SKUS)), 2)
    sku_price_usd = np.maximum(sku_price_usd, 0.99)
    sku_names = pl.Series(
        [f"SKU-{_CATEGORIES[cat_names[c]][0]}-{i:05d}" for i, c in enumerate(sku_cat)], dtype=pl.String
    )
    sku_popularity = rng.permutation(1.0 / np.arange(1, _N_SKUS + 1) ** 0.9)

    # --- lines ---------------------------------------------------------------------------------
    order_of_line = np.repeat(np.arange(n_orders), lines_per_order)
    first_line = np.repeat(np.cumsum(lines_per_order) - lines_per_order, lines_per_order)
    line_no = np.arange(rows) - first_line + 1
    customer = order_customer[order_of_line]
    country = cust_country[customer]
    sku = _choice(rng, rows, sku_popularity)
    quantity = 1 + _choice(rng, rows, 1.0 / np.arange(1, 11) ** 1.7)
    # Nobody buys ten sofas: big-ticket categories come in ones and twos.
    quantity = np.where(medians[sku_cat[sku]] >= 300, 1 + (quantity - 1) // 4, quantity)
    fx_arr = np.array(fx)
    price_cents = np.maximum(np.round(sku_price_usd[sku] * fx_arr[country] * 100), 1).astype(np.int64)
    discount_pct = _DISCOUNTS_PCT[_choice(rng, rows, _DISCOUNT_WEIGHTS)]
    # Integer cents, rounded half up: no float error in the money columns.
    revenue_cents = (quantity * price_cents * (100 - discount_pct) + 50) // 100

    emails = pl.DataFrame(
        {
            "first": _lookup(_FIRST_NAMES, rng.integers(0, len(_FIRST_NAMES), n_customers)),
            "last": _lookup(_LAST_NAMES, rng.integers(0, len(_LAST_NAMES), n_customers)),
            "n": np.arange(n_customers) % 997,
            "domain": _lookup(_EMAIL_DOMAINS, _choice(rng, n_customers, _EMAIL_DOMAIN_WEIGHTS)),
        }
    ).select(email=pl.format("{}.{}{}@{}", "first", "last", "n", "domain"))["email"]

    df = pl.DataFrame(
        {
            "order_num": order_of_line + 10_000_001,
            "line_no": line_no.astype(np.int64),
            "order_us": order_us[order_of_line],
            "region": _lookup(regions, np.array(country_region)[country]),
            "country": _lookup(countries, country),
            "sku": sku_names.gather(sku),
            "product_category": _lookup(cat_names, sku_cat[sku]),
            "quantity": quantity.astype(np.int64),
            "price_cents": price_cents,
            "discount_pct": discount_pct.astype(np.int64),
            "revenue_cents": revenue_cents.astype(np.int64),
            "currency": _lookup(currencies, country),
            "customer_num": customer + 1,
            "customer_email": emails.gather(customer),
            "channel": _lookup(_CHANNELS, order_channel[order_of_line]),
        }
    )
    df = _inject_defects(df, rng, dirty_share=dirty_share, end=end)
    return df.select(
        pl.format("SO-{}", "order_num").alias("order_id"),
        "line_no",
        pl.col("order_us").cast(pl.Datetime("us", "UTC")).alias("order_ts"),
        "region",
        "country",
        "sku",
        "product_category",
        "quantity",
        (pl.col("price_cents").cast(MONEY) / 100).cast(MONEY).alias("unit_price"),
        (pl.col("discount_pct").cast(MONEY) / 100).cast(MONEY).alias("discount"),
        (pl.col("revenue_cents").cast(MONEY) / 100).cast(MONEY).alias("revenue"),
        "currency",
        pl.format("C{}", pl.col("customer_num").cast(pl.String).str.zfill(7)).alias("customer_id"),
        "customer_email",
        "channel",
    ).sort("order_ts", "order_id", "line_no", maintain_order=True)


def _inject_defects(df: pl.DataFrame, rng: np.random.Generator, *, dirty_share: float, end: date) -> pl.DataFrame:
    """Give ``dirty_share`` of the rows one defect each, in equal shares across :data:`DIRTY_KINDS`."""
    n = df.height
    n_dirty = int(round(n * dirty_share))
    if n_dirty == 0:
        return df
    picked = rng.choice(n, size=n_dirty, replace=False)
    kinds = np.arange(n_dirty) % len(DIRTY_KINDS)
    idx = {kind: picked[kinds == k] for k, kind in enumerate(DIRTY_KINDS)}

    def mask(kind: str) -> pl.Series:
        m = np.zeros(n, dtype=bool)
        m[idx[kind]] = True
        return pl.Series(m)

    end_us = int(datetime(end.year, end.month, end.day, tzinfo=UTC).timestamp()) * 1_000_000
    future_us = np.full(n, 0, dtype=np.int64)
    future_us[idx["future_order_ts"]] = end_us + rng.integers(1, 400, len(idx["future_order_ts"])) * 86_400_000_000
    mismatch = np.ones(n)
    mismatch[idx["revenue_mismatch"]] = rng.choice([0.5, 0.9, 1.1, 2.0, 10.0], len(idx["revenue_mismatch"]))
    bad_email = np.full(n, "", dtype=object)
    styles = rng.integers(0, 4, len(idx["malformed_email"]))
    bad_email[idx["malformed_email"]] = styles.astype(str)
    bad_currency = np.full(n, "", dtype=object)
    bad_currency[idx["unknown_currency"]] = np.array(_BAD_CURRENCIES)[
        rng.integers(0, len(_BAD_CURRENCIES), len(idx["unknown_currency"]))
    ]
    bad_region = np.full(n, "", dtype=object)
    bad_region[idx["unknown_region"]] = np.array(_BAD_REGIONS)[
        rng.integers(0, len(_BAD_REGIONS), len(idx["unknown_region"]))
    ]

    df = df.with_columns(
        _neg=mask("negative_quantity"),
        _mis=pl.Series(mismatch),
        _nullreg=mask("null_region"),
        _email=pl.Series(bad_email, dtype=pl.String),
        _future=pl.Series(future_us),
        _cur=pl.Series(bad_currency, dtype=pl.String),
        _reg=pl.Series(bad_region, dtype=pl.String),
    )
    email = pl.col("customer_email")
    local = email.str.split("@").list.first()
    df = df.with_columns(
        quantity=pl.when("_neg").then(-pl.col("quantity")).otherwise("quantity"),
        revenue_cents=pl.when("_neg")
        .then(-pl.col("revenue_cents"))
        .when(pl.col("_mis") != 1.0)
        .then(_mismatched("revenue_cents", "_mis"))
        .otherwise("revenue_cents"),
        region=pl.when("_nullreg").then(None).when(pl.col("_reg") != "").then("_reg").otherwise("region"),
        customer_email=pl.when(pl.col("_email") == "0")
        .then(email.str.replace("@", "", literal=True))  # no @ at all
        .when(pl.col("_email") == "1")
        .then(email.str.replace("@", "@@", literal=True))
        .when(pl.col("_email") == "2")
        .then(pl.concat_str(local, pl.lit("@localhost")))  # no dot in the domain
        .when(pl.col("_email") == "3")
        .then(pl.concat_str(local, pl.lit(" @"), email.str.split("@").list.last()))  # a space
        .otherwise(email),
        order_us=pl.when(pl.col("_future") > 0).then("_future").otherwise("order_us"),
        currency=pl.when(pl.col("_cur") != "").then("_cur").otherwise("currency"),
    ).drop("_neg", "_mis", "_nullreg", "_email", "_future", "_cur", "_reg")

    # Duplicates: the chosen rows become copies of other (clean) rows, so each pair shares
    # (order_id, line_no) and the table keeps exactly `rows` rows. A conflicting copy then gets one
    # more unit (and the revenue that goes with it): same key, other values.
    dup_rows, conflicting = idx["duplicate_key"], idx["conflicting_duplicate"]
    copies = np.concatenate([dup_rows, conflicting])
    if len(copies):
        clean = np.setdiff1d(np.arange(n), picked, assume_unique=True)
        sources = rng.choice(clean, size=len(copies), replace=False)
        order = np.arange(n)
        order[copies] = sources
        df = df[order]
    if len(conflicting):
        changed = np.zeros(n, dtype=bool)
        changed[conflicting] = True
        quantity = pl.when(pl.Series(changed)).then(pl.col("quantity") + 1).otherwise("quantity")
        df = df.with_columns(quantity=quantity).with_columns(
            revenue_cents=pl.when(pl.Series(changed))
            .then((pl.col("quantity") * pl.col("price_cents") * (100 - pl.col("discount_pct")) + 50) // 100)
            .otherwise("revenue_cents")
        )
    return df


def _mismatched(cents: str, factor: str) -> pl.Expr:
    """``cents * factor`` rounded, nudged by a cent when that would still equal ``cents``."""
    scaled = (pl.col(cents) * pl.col(factor)).round(0).cast(pl.Int64)
    return pl.when(scaled == pl.col(cents)).then(scaled + 1).otherwise(scaled)


_EMAIL_RE = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"


def dirty_row_counts(df: pl.DataFrame, *, end: date) -> dict[str, int]:
    """How many rows show each defect of :data:`DIRTY_KINDS` (``duplicate_key`` counts the extra copies)."""
    expected_cents = (
        pl.col("quantity").cast(pl.Int64)
        * (pl.col("unit_price") * 100).cast(pl.Int64)
        * (100 - (pl.col("discount") * 100).cast(pl.Int64))
        + 50
    ) // 100
    end_ts = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    counts = df.select(
        negative_quantity=(pl.col("quantity") < 0).sum(),
        revenue_mismatch=(
            (pl.col("quantity") >= 0) & ((pl.col("revenue") * 100).cast(pl.Int64) != expected_cents)
        ).sum(),
        null_region=pl.col("region").is_null().sum(),
        malformed_email=(~pl.col("customer_email").str.contains(_EMAIL_RE)).sum(),
        future_order_ts=(pl.col("order_ts") >= end_ts).sum(),
        unknown_currency=(~pl.col("currency").is_in(sorted(KNOWN_CURRENCIES))).sum(),
        unknown_region=(pl.col("region").is_not_null() & ~pl.col("region").is_in(list(_GEOGRAPHY))).sum(),
    ).row(0, named=True)
    exact_copies = df.height - df.unique().height
    counts["duplicate_key"] = exact_copies
    # Rows beyond the first of each key, once exact copies are set aside: the conflicting versions.
    counts["conflicting_duplicate"] = df.height - exact_copies - df.select("order_id", "line_no").unique().height
    return {kind: int(counts[kind]) for kind in DIRTY_KINDS}


def fx_missing_lines(df: pl.DataFrame, fx: pl.DataFrame) -> int:
    """Lines in a known currency whose day has no rate in ``fx`` (the ``fx_gaps``), before ``end``'s next day."""
    last_day = fx["rate_date"].max()
    days = df.filter(pl.col("currency").is_in(sorted(KNOWN_CURRENCIES))).select(
        pl.col("order_ts").dt.date().alias("rate_date"), "currency"
    )
    days = days.filter(pl.col("rate_date") <= last_day)
    return days.join(fx.select("rate_date", "currency"), on=["rate_date", "currency"], how="anti").height


FX_TABLE_FILE = "fx.usd_rates.csv"
FX_SIDECAR_FILE = "fx.usd_rates.json"
FX_SCHEMA = (
    {"name": "rate_date", "type": "DATE"},
    {"name": "currency", "type": "STRING"},
    {"name": "usd_per_unit", "type": "NUMERIC"},
)


def generate_fx_rates(*, end: date, seed: int = 7, gaps: int = 0) -> pl.DataFrame:
    """``fx.usd_rates``: one row per day (``rate_date``: the two years ending on ``end``) and known currency.

    ``usd_per_unit`` (6 decimals, so revenue x rate is exact in NUMERIC) turns local revenue into USD; it drifts
    by up to 2% over the year around each currency's base rate. ``gaps`` (currency, day) rows are left out, as a
    rates feed that missed a day: lines of that currency on that day have no rate.
    """
    start = end - timedelta(days=HISTORY_DAYS - 1)
    bases = {currency: 1.0 / per_usd for rows in _GEOGRAPHY.values() for _, currency, _, per_usd in rows}
    currencies = sorted(bases)
    days = [start + timedelta(days=d) for d in range(HISTORY_DAYS)]
    phase = {c: i * 0.7 for i, c in enumerate(currencies)}
    rows = [
        (day, currency, round(bases[currency] * (1 + 0.02 * np.sin(2 * np.pi * d / 365 + phase[currency])), 6))
        for d, day in enumerate(days)
        for currency in currencies
    ]
    frame = pl.DataFrame(
        rows, schema={"rate_date": pl.Date, "currency": pl.String, "usd_per_unit": pl.Float64}, orient="row"
    )
    if gaps:
        rng = np.random.default_rng(seed + 1)
        dropped = rng.choice(frame.height, size=min(gaps, frame.height), replace=False)
        keep = np.ones(frame.height, dtype=bool)
        keep[dropped] = False
        frame = frame.filter(pl.Series(keep))
    return frame.with_columns(pl.col("usd_per_unit").round(6).cast(pl.Decimal(18, 6)))


def write_fx_rates(directory: str | Path, *, end: date, seed: int = 7, gaps: int = 0) -> Path:
    """Write ``fx.usd_rates.csv`` and its sidecar (BigQuery types: DATE, STRING, NUMERIC) into ``directory``."""
    path = Path(directory) / FX_TABLE_FILE
    generate_fx_rates(end=end, seed=seed, gaps=gaps).write_csv(path)
    sidecar = {"description": "Daily USD rates (generated by sandbox.salesdata)", "schema": list(FX_SCHEMA)}
    (Path(directory) / FX_SIDECAR_FILE).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    return path


def dataset_current(directory: str | Path) -> bool:
    """Whether ``directory`` holds the dataset this version writes (daily FX rates included)."""
    fx = Path(directory) / FX_TABLE_FILE
    if not (Path(directory) / TABLE_FILE).exists() or not fx.exists():
        return False
    with fx.open(encoding="utf-8") as handle:
        return handle.readline().strip().split(",") == [f["name"] for f in FX_SCHEMA]


def write_sales_dataset(
    directory: str | Path,
    *,
    rows: int = 1_000_000,
    seed: int = 7,
    end: date | None = None,
    dirty_share: float = 0.003,
) -> Path:
    """Write ``sales.order_lines.parquet`` and its partition sidecar into ``directory``; return the parquet path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    df = generate_order_lines(rows=rows, seed=seed, end=end, dirty_share=dirty_share)
    path = out / TABLE_FILE
    tmp = path.with_suffix(".parquet.tmp")
    df.write_parquet(tmp, compression="zstd", row_group_size=128 * 1024, statistics=True)
    tmp.replace(path)
    sidecar = {"partition_field": PARTITION_FIELD, "description": "Order lines (generated by sandbox.salesdata)"}
    (out / SIDECAR_FILE).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    end = end or datetime.now(UTC).date()
    write_fx_rates(out, end=end, seed=seed, gaps=FX_GAPS_WHEN_DIRTY if dirty_share > 0 else 0)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m sandbox.salesdata --out DIR --rows N``: write the dataset and print a summary."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.salesdata", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to write sales.order_lines.parquet into")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--end", type=date.fromisoformat, default=None, help="last day (YYYY-MM-DD, default today)")
    parser.add_argument("--dirty-share", type=float, default=0.003)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    path = write_sales_dataset(args.out, rows=args.rows, seed=args.seed, end=args.end, dirty_share=args.dirty_share)
    elapsed = time.perf_counter() - started
    size_mb = path.stat().st_size / 1e6
    print(f"wrote {args.rows:,} rows to {path} ({size_mb:.1f} MB) in {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

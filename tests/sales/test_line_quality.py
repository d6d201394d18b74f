"""Quality at the source: the sales job validates its order lines inside BigQuery (the emulator) before publishing.

Each defect kind is planted in a clean table loaded into the emulator; the run must stop or ask for a review with
the check named, the line quarantined with its reason code, and the sheet keeping its last good values. A clean
range publishes exactly what a hand computation gives; a retyped, dropped or re-moded column stops the run before
any query, naming the column and both types.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
import pytest
from django.conf import settings

from privacy.suppression import SUPPRESSED
from quality.models import CheckResult, QualityRun, QuarantinedRow, ReviewItem
from sales.models import QueryRun, SalesReport
from tests.cleanup.test_cleanup_job import run_job
from tests.sales.conftest import OLD_SHEET, report_values

pytestmark = pytest.mark.django_db
START, END = date(2026, 10, 1), date(2026, 10, 31)
OCTOBER = ["sales_report", "--param", f"start={START}", "--param", f"end={END}"]


@pytest.fixture
def tables(sales_dirs):
    lines = pl.read_parquet(sales_dirs["clean"] / "sales.order_lines.parquet")
    fx = pl.read_csv(sales_dirs["clean"] / "fx.usd_rates.csv", try_parse_dates=True)
    return lines, fx


def load(emulator, lines: pl.DataFrame | None = None, fx: pl.DataFrame | None = None) -> None:
    if lines is not None:
        emulator.load_table("sales", "order_lines", lines, partition_field="order_ts")
    if fx is not None:
        emulator.load_table(
            "fx",
            "usd_rates",
            fx.with_columns(pl.col("usd_per_unit").cast(pl.Decimal(38, 9))),
        )


def in_october(lines: pl.DataFrame) -> pl.Expr:
    return (pl.col("order_ts") >= datetime(2026, 10, 1, tzinfo=UTC)) & (
        pl.col("order_ts") < datetime(2026, 11, 1, tzinfo=UTC)
    )


def hand_computed(
    lines: pl.DataFrame, fx: pl.DataFrame, start: date = START, end: date = END, k: int | None = None
) -> list[list]:
    """Revenue in USD (exact decimals, rounded half up to the cent) and distinct orders per day and region; a group
    of fewer than k (default SALES_MIN_GROUP_SIZE) distinct customers shows "suppressed" instead (issue 12)."""
    k = settings.SALES_MIN_GROUP_SIZE if k is None else k
    rates = {(r["rate_date"], r["currency"]): Decimal(str(r["usd_per_unit"])) for r in fx.iter_rows(named=True)}
    totals: dict[tuple[date, str], list] = {}
    for row in lines.iter_rows(named=True):
        day = row["order_ts"].astimezone(UTC).date()
        if not start <= day <= end:
            continue
        entry = totals.setdefault((day, row["region"]), [set(), Decimal(0), set()])
        entry[0].add(row["order_id"])
        entry[1] += Decimal(row["revenue"]) * rates[(day, row["currency"])]
        entry[2].add(row["customer_id"])
    return [
        [day.isoformat(), region, SUPPRESSED, SUPPRESSED]
        if k > 0 and len(customers) < k
        else [day.isoformat(), region, len(orders), float(revenue.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))]
        for (day, region), (orders, revenue, customers) in sorted(totals.items())
    ]


def published(sheet) -> list[list]:
    values = report_values(sheet)
    assert values[0][:4] == ["day", "region", "orders", "revenue"]
    return [
        [r[0][:10], r[1], *((SUPPRESSED, SUPPRESSED) if r[3] == SUPPRESSED else (int(r[2]), float(r[3])))]
        for r in values[1:]
        if r and r[0]
    ]


def pick(lines: pl.DataFrame, n: int = 1, offset: int = 0) -> list[int]:
    """Row positions of ``n`` October lines (one per order, so keys stay apart)."""
    october = (
        lines.with_row_index("__i").filter(in_october(lines)).unique("order_id", keep="first", maintain_order=True)
    )
    return october["__i"].to_list()[offset * 7 : offset * 7 + n * 7 : 7]


def edit(lines: pl.DataFrame, positions: list[int], **values) -> pl.DataFrame:
    mask = pl.Series([False] * lines.height).scatter(positions, True)
    return lines.with_columns(**{c: pl.when(mask).then(v).otherwise(pl.col(c)) for c, v in values.items()})


# --------------------------------------------------------------------------------------------------------------
# A clean range
# --------------------------------------------------------------------------------------------------------------


def test_a_clean_range_publishes_exactly_the_hand_computed_numbers(bigquery, sheet, tables):
    lines, fx = tables
    code, out = run_job(*OCTOBER)
    assert code == 0, out
    assert published(sheet) == hand_computed(lines, fx)
    report = SalesReport.objects.get()
    assert report.status == "published" and report.quality_run.gate == "pass"
    # The line-level checks are part of the run: every one of them recorded with its threshold.
    lines_checks = CheckResult.objects.filter(quality_run=report.quality_run, dataset="sales.order_lines")
    assert lines_checks.filter(name="fx_rate_for_the_day", failed_count=0, threshold="review > 0 rows; fail > 1.00%")
    assert lines_checks.count() >= 20 and "every check passed" in out
    assert f"order lines: {lines.filter(in_october(lines)).height:,} checked in BigQuery" in out


def test_the_run_shows_the_cost_of_validation_and_report_apart(bigquery, sheet):
    code, out = run_job(*OCTOBER)
    assert code == 0, out
    validation = QueryRun.objects.filter(purpose="validation")
    report = QueryRun.objects.get(purpose="report")
    assert validation.count() == 1  # nothing failed: the counts scan only, no failing-rows query
    assert validation.get().bytes_billed > 0 and report.bytes_billed > 0
    from orchestration.models import JobRun

    counters = JobRun.objects.get().counters
    assert counters["validation_bytes_billed"] == validation.get().bytes_billed
    assert counters["report_bytes_billed"] == report.bytes_billed
    assert counters["bytes_billed"] == validation.get().bytes_billed + report.bytes_billed
    assert "cost: validation ~$" in out and " + report ~$" in out
    # Every validation query was bounded by the cost guard.
    jobs = [bigquery.job(run.bq_job_id) for run in QueryRun.objects.exclude(bq_job_id="")]
    assert all(j["configuration"]["query"]["maximumBytesBilled"] for j in jobs)


def test_the_dry_run_estimates_validation_and_report(bigquery, sheet):
    code, out = run_job(*OCTOBER, "--dry-run")
    assert code == 0, out
    assert "DRY RUN: the query would process" in out and "(validation " in out and " + report " in out
    assert not bigquery.queries_executed


# --------------------------------------------------------------------------------------------------------------
# Each defect kind stops or reviews the report, names the check, keeps the sheet
# --------------------------------------------------------------------------------------------------------------


def revenue_mismatch(lines, fx):
    return edit(lines, pick(lines), revenue=pl.col("revenue") * 2), fx


def negative_quantity(lines, fx):
    # A return keyed as a sale: quantity and revenue negative, but every day x region total stays positive.
    small = lines.with_row_index("__i").filter(
        in_october(lines) & (pl.col("region") == "NA") & (pl.col("quantity") == 1)
    )
    return edit(lines, [small["__i"][0]], quantity=-pl.col("quantity"), revenue=-pl.col("revenue")), fx


def missing_fx_rate(lines, fx):
    line = lines.row(pick(lines)[0], named=True)
    day, currency = line["order_ts"].date(), line["currency"]
    return lines, fx.filter(~((pl.col("rate_date") == day) & (pl.col("currency") == currency)))


def conflicting_duplicate(lines, fx):
    (i,) = pick(lines)
    copy = lines[i].with_columns(quantity=pl.col("quantity") + 1)
    return pl.concat([lines, copy]), fx


def unknown_region(lines, fx):
    return edit(lines, pick(lines), region=pl.lit("ANTARCTICA")), fx


def null_key(lines, fx):
    return edit(lines, pick(lines), order_id=pl.lit(None, dtype=pl.String)), fx


def future_order(lines, fx):
    (i,) = pick(lines)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    return edit(lines, [i], order_ts=pl.lit(tomorrow).cast(pl.Datetime("us", "UTC"))), fx


DEFECTS = {
    "revenue_mismatch": (revenue_mismatch, "revenue_matches_line", "REVENUE_MISMATCH", "review"),
    "negative_quantity": (negative_quantity, "quantity_positive", "QUANTITY_NOT_POSITIVE", "review"),
    "missing_fx_rate": (missing_fx_rate, "fx_rate_for_the_day", "FX_RATE_MISSING", "review"),
    "conflicting_duplicate": (conflicting_duplicate, "duplicate_order_line", "DUPLICATE_ORDER_LINE", "review"),
    "unknown_region": (unknown_region, "region_known", "REGION_UNKNOWN", "review"),
    "null_key": (null_key, "order_id_not_null", "ORDER_ID_MISSING", "fail"),
    "future_order": (future_order, "order_ts_not_future", "ORDER_TS_IN_FUTURE", "review"),
}


@pytest.mark.parametrize("kind", list(DEFECTS))
def test_each_defect_kind_stops_or_reviews_with_the_check_named(kind, bigquery, sheet, tables, settings):
    plant, check, code_name, gate = DEFECTS[kind]
    lines, fx = plant(*tables)
    load(bigquery, lines, fx)
    end = END if kind != "future_order" else (datetime.now(UTC) + timedelta(days=3)).date()
    code, out = run_job("sales_report", "--param", f"start={START}", "--param", f"end={end}")

    quality = QualityRun.objects.get()
    assert quality.gate == gate, out
    named = CheckResult.objects.get(quality_run=quality, dataset="sales.order_lines", name=check)
    assert named.failed_count >= 1 and named.gate_effect == gate
    assert f"order lines / {check}: " in out and f"-> {gate}" in out
    codes = QuarantinedRow.objects.filter(dataset="sales.order_lines").values_list("reason_codes", flat=True)
    assert any(code_name in row for row in codes)
    assert report_values(sheet) == OLD_SHEET  # nothing published
    if gate == "fail":
        assert code == 1 and "the report query did not run" in out
        assert not QueryRun.objects.filter(purpose="report").exists()
    else:
        assert code == 0 and "Waiting for a Data Steward's review" in out
        assert ReviewItem.objects.get().status == "pending"


def test_negative_quantities_hidden_in_positive_totals_are_caught_at_the_line(bigquery, sheet, tables):
    lines, fx = negative_quantity(*tables)
    load(bigquery, lines, fx)
    run_job(*OCTOBER)
    # The aggregate suite alone would have passed: the day x region totals stay positive.
    totals = hand_computed(lines, fx, k=0)
    assert all(revenue > 0 for *_, revenue in totals)
    report_checks = CheckResult.objects.filter(dataset="sales.daily_report")
    assert report_checks.exists() and not report_checks.exclude(failed_count=0).exists()
    assert QualityRun.objects.get().gate == "review"


def test_an_approved_review_publishes_what_passed(
    bigquery, sheet, tables, role_user, django_capture_on_commit_callbacks
):
    lines, fx = revenue_mismatch(*tables)
    bad = lines.row(pick(lines)[0], named=True)
    load(bigquery, lines, fx)
    run_job(*OCTOBER)
    item = ReviewItem.objects.get()
    from quality.services import review_item_approve

    # The review is an approval request; a CLI run has nobody to answer for it, so two stewards approve.
    assert item.approval.action == "sales.review_publish" and item.approval.quorum == 2
    stewards = [role_user("Data Steward"), role_user("Data Steward", username="steward2")]
    with django_capture_on_commit_callbacks(execute=True):
        for steward in stewards:
            review_item_approve(item_id=item.pk, actor=steward)
    item.refresh_from_db()
    assert item.status == "approved" and item.approval.execution == "done"
    # The quarantined line is not in the published figures: they are the hand computation without it.
    without = lines.filter(~((pl.col("order_id") == bad["order_id"]) & (pl.col("line_no") == bad["line_no"])))
    assert published(sheet) == hand_computed(without, fx)


def test_exact_duplicates_are_removed_counted_and_the_report_computed_without_them(bigquery, sheet, tables):
    lines, fx = tables
    copies = lines[pick(lines, n=2)]
    load(bigquery, pl.concat([lines, copies]))
    code, out = run_job(*OCTOBER)
    assert code == 0, out
    assert published(sheet) == hand_computed(lines, fx)  # as if the copies were never there
    removed = CheckResult.objects.get(dataset="sales.order_lines", name="exact_duplicate_lines")
    assert removed.failed_count == 2 and removed.removes and removed.gate_effect == "pass"
    assert "order lines / exact_duplicate_lines: 2 removed" in out and "2 exact duplicates removed" in out
    quality = QualityRun.objects.get()
    assert quality.rows_removed == 2 and quality.gate == "pass"


def test_many_exact_duplicates_ask_for_a_review(bigquery, sheet, tables):
    lines, _ = tables
    october = lines.filter(in_october(lines))
    load(bigquery, pl.concat([lines, october.head(october.height // 50)]))  # 2% of the range copied
    code, out = run_job(*OCTOBER)
    assert code == 0 and "exact_duplicate_lines" in out and QualityRun.objects.get().gate == "review"
    assert report_values(sheet) == OLD_SHEET


# --------------------------------------------------------------------------------------------------------------
# The quarantine: all failing lines up to the cap, then counts and a sample
# --------------------------------------------------------------------------------------------------------------


def test_past_the_cap_the_quarantine_keeps_a_sample_and_the_gate_says_so(bigquery, sheet, tables, settings):
    settings.QUALITY_QUARANTINE_CAP = 3
    lines, fx = tables
    lines = edit(lines, pick(lines, n=6), revenue=pl.col("revenue") + 1)
    load(bigquery, lines, fx)
    run_job(*OCTOBER)
    quality = QualityRun.objects.get()
    assert quality.rows_quarantined == 6
    assert QuarantinedRow.objects.filter(quality_run=quality, dataset="sales.order_lines").count() == 3
    assert any("quarantine capped" in r and "QUALITY_QUARANTINE_CAP" in r for r in quality.reasons)
    assert quality.details["parts"]["order lines"]["quarantine_kept"] == 3
    failing = CheckResult.objects.get(quality_run=quality, name="revenue_matches_line")
    assert failing.failed_count == 6 and len(failing.sample_keys) == 6


# --------------------------------------------------------------------------------------------------------------
# The source contract, before any query
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda lines: lines.with_columns(pl.col("region").cast(pl.Categorical).to_physical().cast(pl.Int64)),
            "column region changed type: the contract says STRING, the table has INT64",
        ),
        (lambda lines: lines.drop("region"), "column region is missing (the contract says STRING NULLABLE)"),
        (
            lambda lines: lines.with_columns(pl.concat_list("region").alias("region")),
            "column region changed mode: the contract says NULLABLE, the table has REPEATED",
        ),
    ],
    ids=["retyped", "dropped", "repeated"],
)
def test_a_broken_contract_stops_before_any_query(change, message, bigquery, sheet, tables):
    lines, _ = tables
    load(bigquery, change(lines))
    bigquery.reset_counters()
    code, out = run_job(*OCTOBER)
    assert code == 1 and message in out and "Nothing was queried" in out
    assert "array_contains" not in out
    assert not bigquery.queries_executed and not any(k.startswith("POST") for k in bigquery.counters())
    assert bigquery.counters()["GET /bigquery/v2/projects/<project>/datasets/<dataset>/tables/<table>"] == 1
    quality = QualityRun.objects.get()
    assert quality.gate == "fail" and quality.reasons == [f"schema drift: {message}"]
    assert report_values(sheet) == OLD_SHEET and not SalesReport.objects.exists()


def test_the_cost_estimate_names_a_broken_contract_too(bigquery, sheet, tables):
    from orchestration.registry import JobFailed
    from sales.services import sales_cost_estimate

    lines, _ = tables
    load(bigquery, lines.drop("currency"))
    with pytest.raises(JobFailed, match="column currency is missing"):
        sales_cost_estimate(params={"start": "2026-10-01", "end": "2026-10-31"})


# --------------------------------------------------------------------------------------------------------------
# The review page
# --------------------------------------------------------------------------------------------------------------


def test_the_review_page_shows_each_check_count_share_and_threshold(bigquery, sheet, tables, client, role_user):
    lines, fx = revenue_mismatch(*tables)
    load(bigquery, lines, fx)
    run_job(*OCTOBER)
    item = ReviewItem.objects.get()
    client.force_login(role_user("Data Steward"))
    page = client.get(f"/admin/quality/reviewitem/{item.pk}/change/").content.decode()
    assert "revenue_matches_line" in page and "review &gt; 0 rows; fail &gt; 1.00%" in page
    assert "order lines" in page and "report" in page
    assert "checks fail</strong>: revenue_matches_line 1 rows (" in page  # issue 11: failing checks first, counted
    row = page[page.index("<td>revenue_matches_line") :][:600]
    assert "1" in row and "%" in row and "review" in row
    # The quarantined line is evidence on the same page, with its key and reason code, next to the approval request
    # that decides the review (the approvals queue links back here).
    quarantined = QuarantinedRow.objects.get(dataset="sales.order_lines")
    evidence = page[page.index("review-quarantine") :]
    assert quarantined.row_key in evidence and "REVENUE_MISMATCH" in evidence
    assert "order lines: 1 quarantined (1 kept)" in page
    assert f"/admin/approvals/approvalrequest/{item.approval_id}/change/" in page and 'id="approve"' in page
    queue = client.get(f"/admin/approvals/approvalrequest/{item.approval_id}/change/").content.decode()
    assert f"/admin/quality/reviewitem/{item.pk}/change/" in queue and "revenue_matches_line" in queue

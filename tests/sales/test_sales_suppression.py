"""Issue 12: the published sales report suppresses day-and-region groups with fewer than k distinct customers."""

from __future__ import annotations

import pytest

from privacy.suppression import SUPPRESSED
from sales.models import SalesReport
from tests.cleanup.test_cleanup_job import run_job
from tests.sales.conftest import report_values


@pytest.mark.django_db
def test_the_published_report_suppresses_a_region_with_few_customers(bigquery, sheet, settings):
    # One day: a k above the smallest region's customers and below the largest's gives both kinds of group.
    settings.SALES_MIN_GROUP_SIZE = 0
    code, out = run_job("sales_report", "--param", "start=2026-10-01", "--param", "end=2026-10-01")
    assert code == 0, out
    assert "small groups: suppression off (SALES_MIN_GROUP_SIZE=0)" in out
    plain = {r["region"]: r for r in SalesReport.objects.get().rows}
    sizes = sorted(r["orders"] for r in plain.values())
    k = sizes[0] + 1  # orders >= customers: the smallest region has fewer than k customers
    settings.SALES_MIN_GROUP_SIZE = k
    code, out = run_job("sales_report", "--param", "start=2026-10-01", "--param", "end=2026-10-01")
    assert code == 0, out
    report = SalesReport.objects.order_by("-pk").first()
    hidden = [r for r in report.rows if r["revenue"] == SUPPRESSED]
    assert hidden and all(r["orders"] == SUPPRESSED for r in hidden)
    assert len(hidden) < len(report.rows)  # the big regions stay
    assert all("customers" not in r for r in report.rows)
    assert f"small groups: {len(hidden)} of {len(report.rows)} suppressed (fewer than {k} customers)" in out
    values = report_values(sheet)
    on_sheet = {row[1]: row for row in values[1:] if row and row[0]}
    assert all(on_sheet[r["region"]][2:4] == [SUPPRESSED, SUPPRESSED] for r in hidden)
    assert ["Suppressed groups", len(hidden)] in [row[5:7] for row in values if len(row) > 6]

"""Report charts (issue 11): one colour per region on every chart, tooltips, and they scale down to a phone."""

from __future__ import annotations

import re

from monitoring.charts import bar_chart, line_chart
from sales.charts import region_colour, revenue_by_day_svg, revenue_by_region_svg

ROWS = [
    {"day": "2026-10-01", "region": "EMEA", "revenue": 10.0},
    {"day": "2026-10-02", "region": "EMEA", "revenue": 12.5},
    {"day": "2026-10-01", "region": "APAC", "revenue": 30.0},
    {"day": "2026-10-02", "region": "APAC", "revenue": 5.0},
]


def _colour_of(svg: str, region: str) -> set[str]:
    return set(re.findall(r'fill="(#[0-9a-f]{6})"[^>]*><title>[^<]*' + region, svg))


def test_a_region_has_one_colour_on_every_chart_whatever_else_is_drawn():
    by_day = revenue_by_day_svg(ROWS)
    by_region = revenue_by_region_svg(ROWS)
    only_emea = revenue_by_day_svg([r for r in ROWS if r["region"] == "EMEA"])
    assert _colour_of(by_day, "EMEA") == _colour_of(by_region, "EMEA") == _colour_of(only_emea, "EMEA")
    assert _colour_of(by_day, "EMEA") == {region_colour("EMEA")} != {region_colour("APAC")}
    assert region_colour("Mars") == region_colour("MARS")  # unknown regions: stable, not by position


def test_charts_have_tooltips_and_scale_to_their_container():
    for svg in (
        revenue_by_day_svg(ROWS),
        revenue_by_region_svg(ROWS),
        line_chart(title="Runs", labels=["a", "b"], series={"sales_report": [1.0, None]}),
        bar_chart(title="Rows", labels=["a", "b"], series={"rows": [3.0, 4.0]}),
    ):
        assert 'viewBox="0 0 ' in svg and 'width="100%"' in svg and "height:auto" in svg
        assert "<title>" in svg
    assert "<title>2026-10-02 EMEA: 12.50</title>" in revenue_by_day_svg(ROWS)

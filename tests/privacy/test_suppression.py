"""k-suppression of small groups: unit rules, and the sales report end to end with a small group."""

from __future__ import annotations

import pytest

from privacy.suppression import SUPPRESSED, SuppressionError, groups_suppress

ROWS = [
    {"day": "2026-10-01", "region": "EMEA", "orders": 9, "revenue": 120.0, "customers": 7},
    {"day": "2026-10-01", "region": "APAC", "orders": 2, "revenue": 30.5, "customers": 2},
]


def test_groups_below_k_keep_their_keys_but_lose_their_figures():
    out = groups_suppress(ROWS, k=5, figures=("orders", "revenue"))
    assert out.suppressed == 1 and out.k == 5
    assert out.rows == [
        {"day": "2026-10-01", "region": "EMEA", "orders": 9, "revenue": 120.0},
        {"day": "2026-10-01", "region": "APAC", "orders": SUPPRESSED, "revenue": SUPPRESSED},
    ]
    assert groups_suppress(ROWS, k=2, figures=("orders", "revenue")).suppressed == 0  # 2 customers is k=2
    off = groups_suppress(ROWS, k=0, figures=("orders", "revenue"))
    assert off.suppressed == 0 and off.rows[1]["revenue"] == 30.5 and "customers" not in off.rows[1]


def test_an_aggregate_without_a_people_count_is_refused_not_published_unchecked():
    rows = [{k: v for k, v in r.items() if k != "customers"} for r in ROWS]
    with pytest.raises(SuppressionError, match="COUNT\\(DISTINCT customer_id\\) AS customers"):
        groups_suppress(rows, k=5, figures=("revenue",))
    assert groups_suppress(rows, k=5, figures=("revenue",), missing_count="suppress").suppressed == 2
    assert groups_suppress(rows, k=0, figures=("revenue",)).suppressed == 0

"""Small-group suppression for published aggregates (k-anonymity on the group's distinct people).

A group (a day and region of the sales report) counted from fewer than ``k`` distinct customers can tell
something about those few people (one customer's spend on one day). Such a group keeps its keys, so readers see
that it exists, but its figures are replaced by a marker. ``SALES_MIN_GROUP_SIZE`` is k; 0 disables suppression.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

SUPPRESSED = "suppressed"  # what a suppressed figure reads on the sheet and in the stored report
COUNT_COLUMN = "customers"  # the distinct people a group counts, as the report query returns it


class SuppressionError(ValueError):
    """The aggregate cannot be checked: it does not say how many distinct people each group counts."""


@dataclass(frozen=True)
class Suppressed:
    rows: list[dict[str, Any]]
    suppressed: int  # groups whose figures were replaced
    k: int


def groups_suppress(
    rows: Iterable[dict[str, Any]],
    *,
    k: int,
    figures: Sequence[str],
    count_column: str = COUNT_COLUMN,
    missing_count: str = "refuse",
) -> Suppressed:
    """Rows without ``count_column``, with ``figures`` replaced by ``SUPPRESSED`` where fewer than ``k`` people.

    ``k`` <= 0 disables it (rows are returned as they are, minus the count). A row without the count is refused
    (SuppressionError) rather than published unchecked, or with ``missing_count="suppress"`` taken as too small.
    """
    out: list[dict[str, Any]] = []
    suppressed = 0
    for row in rows:
        row = dict(row)
        if k > 0 and row.get(count_column) is None and missing_count != "suppress":
            raise SuppressionError(
                f"the aggregate has no {count_column!r} column (distinct people per group): groups smaller than "
                f"{k} cannot be suppressed. Add COUNT(DISTINCT customer_id) AS {count_column} to the query, or set "
                "SALES_MIN_GROUP_SIZE=0 to publish without suppression."
            )
        people = row.pop(count_column, None)
        if k > 0 and (people is None or people < k):
            row.update({f: SUPPRESSED for f in figures})
            suppressed += 1
        out.append(row)
    return Suppressed(rows=out, suppressed=suppressed, k=k)


def suppressed_count(rows: Iterable[dict[str, Any]], *, figure: str) -> int:
    """How many rows of a stored report had their figures suppressed."""
    return sum(1 for r in rows if r.get(figure) == SUPPRESSED)

"""Checks of a sales run's parameters against what BigQuery holds, before any run exists (issue 11).

The admin form and the API ask here whether the range lies within the order lines' first and last day, whether
each region exists and whether the query is known, so a 10-year range on two years of data, an unknown region or
query is refused on the form instead of ending as a failed run ("quality gate failed (no rows)").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.core.cache import cache

from connectors.errors import ConnectorError

from .models import SalesQuery

AVAILABILITY_CACHE_KEY = "sales:order_lines:availability"
AVAILABILITY_CACHE_S = 300  # new lines arrive daily: five minutes old is fresh enough for a form


@dataclass(frozen=True)
class DataAvailability:
    """The order lines BigQuery holds: first and last day, and the regions they name."""

    first_day: date | None
    last_day: date | None
    regions: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "regions": list(self.regions),
        }


def _day(value: Any) -> date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value


def sales_data_availability(*, fresh: bool = False) -> DataAvailability:
    """First and last day and the regions of ``sales.order_lines``: two small queries (one column each), cached.

    Raises ConnectorError when BigQuery cannot answer.
    """
    if not fresh:
        cached = cache.get(AVAILABILITY_CACHE_KEY)
        if cached is not None:
            return cached
    from connectors.embedded import embedded_bigquery_client

    from .services import LINES_TABLE

    client = embedded_bigquery_client()
    # Two columns at most are read; maximum_bytes_billed keeps a surprise table from costing more than 1 GiB.
    span = client.query_run(
        sql=f"SELECT MIN(order_ts) AS first_ts, MAX(order_ts) AS last_ts FROM `{LINES_TABLE}`",  # noqa: S608 - a constant
        maximum_bytes_billed=2**30,
        labels={"purpose": "form_check"},
    ).rows[0]
    regions = client.query_run(
        sql=f"SELECT DISTINCT region FROM `{LINES_TABLE}` WHERE region IS NOT NULL ORDER BY region",  # noqa: S608
        maximum_bytes_billed=2**30,
        labels={"purpose": "form_check"},
    ).rows
    availability = DataAvailability(
        first_day=_day(span["first_ts"]),
        last_day=_day(span["last_ts"]),
        regions=tuple(str(r["region"]) for r in regions),
    )
    cache.set(AVAILABILITY_CACHE_KEY, availability, AVAILABILITY_CACHE_S)
    return availability


def sales_query_names() -> list[str]:
    """The sales queries a run may name: the active ones in the admin and the files under ``sales/sql``."""
    from .services import SQL_DIR

    return sorted({*SalesQuery.objects.filter(active=True).values_list("name", flat=True),
                   *(p.stem for p in SQL_DIR.glob("*.sql"))})  # fmt: skip


def sales_param_choices() -> dict[str, list[str]]:
    """Choices only the database knows: the query names (a dropdown on the form). No network."""
    return {"query": sales_query_names()}


def sales_params_check(*, params: dict[str, Any]) -> dict[str, str]:
    """What is wrong with (well-typed) sales parameters given the queries and the data: ``{parameter: message}``."""
    problems: dict[str, str] = {}
    query = params.get("query") or "daily_revenue"
    known = sales_query_names()
    if query not in known:
        problems["query"] = f"unknown sales query {query!r}; known: {', '.join(known) or 'none'}"
    try:
        data = sales_data_availability()
    except ConnectorError as exc:
        problems[""] = f"could not ask BigQuery which data it holds ({exc}); nothing was started"
        return problems
    if data.first_day is None or data.last_day is None:
        problems[""] = "sales.order_lines holds no lines: there is nothing to report on"
        return problems
    held = f"the order lines run from {data.first_day} to {data.last_day}"
    start, end = date.fromisoformat(params["start"]), date.fromisoformat(params["end"])
    if start < data.first_day:
        problems["start"] = f"{start} is before the first order line: {held}"
    if start > data.last_day:
        problems["start"] = f"{start} is after the last order line: {held}"
    if end > data.last_day:
        problems["end"] = f"{end} is after the last order line: {held}"
    known_regions = {r.upper() for r in data.regions}
    missing = [r for r in params.get("regions") or [] if r.strip().upper() not in known_regions]
    if missing:
        problems["regions"] = (
            f"no order lines for {', '.join(missing)}; regions in the data: {', '.join(data.regions) or 'none'}"
        )
    return problems


def period_text(params: dict[str, Any]) -> str:
    """A report's period and cut in words: "2026-10-01 to 2026-10-31, per day, regions: all"."""
    regions = [str(r).upper() for r in params.get("regions") or []]
    grain = str(params.get("grain") or "day").lower()
    return f"{params.get('start')} to {params.get('end')}, per {grain}, regions: {', '.join(regions) or 'all'}"


@dataclass(frozen=True)
class SheetOverwrite:
    """The destination sheet shows another period than the run would publish: say so, ask once."""

    sheet_id: str
    shown: str
    new: str
    token: str

    @property
    def text(self) -> str:
        return (
            f"The sheet {self.sheet_id} shows {self.shown or 'a report that does not say its period'}; this run would "
            f"replace it with {self.new}. Publish over it?"
        )


def report_destination_check(*, params: dict[str, Any]) -> SheetOverwrite | None:
    """None when the sales sheet is empty or shows this run's period; else what it shows (one read request)."""
    import hashlib

    from django.conf import settings

    from connectors.embedded import embedded_sheets_client

    from .publish import REPORT_SHEET, STATUS_RANGE

    sheet_id = settings.SALES_SHEET_ID
    if not sheet_id:
        return None
    table, status = embedded_sheets_client().values_batch_get(
        spreadsheet_id=sheet_id, ranges=[f"'{REPORT_SHEET}'!A1:D2", STATUS_RANGE], value_render_option="FORMATTED_VALUE"
    )
    shown = next((str(row[1]) for row in status.values if len(row) > 1 and row[0] == "Period"), "")
    new = period_text(params)
    if shown == new or (not shown and len(table.values) < 2):
        return None
    token = hashlib.sha256(f"{sheet_id}\n{shown}\n{new}".encode()).hexdigest()[:16]
    return SheetOverwrite(sheet_id=sheet_id, shown=shown, new=new, token=token)

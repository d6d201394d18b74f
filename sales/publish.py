"""Publishing a report to the sales dashboard sheet: one batch, verified, and put back on failure.

Two requests in the usual case: a batchGet of what the sheet holds now (kept for the rollback), then one
values batchUpdate that writes the report and the status cells and returns the stored values, which are
compared with what was meant (the verification read rides on the write). A failed or unverified write puts
the previous values back with one more batchUpdate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from connectors.errors import ConnectorError, ConnectorRequestError
from connectors.sheets import SheetsClient

from .constants import REPORT_SHEET

logger = logging.getLogger(__name__)

HEADER = ["day", "region", "orders", "revenue"]
# Last updated, Quality score, Run, Rows, Suppressed groups (issue 12: small groups), Period (issue 11: the sheet
# says which period it shows)
STATUS_ROWS = 6
STATUS_RANGE = f"'{REPORT_SHEET}'!F1:G{STATUS_ROWS}"


class PublishError(Exception):
    """The sheet could not be updated; the message says whether its previous values were restored."""


@dataclass(frozen=True)
class PublishOutcome:
    requests: int
    cells: int
    range: str


def _normalise(rows: list[list[Any]]) -> list[list[Any]]:
    """Values as compared after a round trip: trailing empty cells and rows dropped, numbers as floats."""
    out = []
    for row in rows:
        cells = [float(c) if isinstance(c, int | float) and not isinstance(c, bool) else c for c in row]
        while cells and cells[-1] in ("", None):
            cells.pop()
        out.append(cells)
    while out and not out[-1]:
        out.pop()
    return out


def report_publish(
    *, sheets: SheetsClient, spreadsheet_id: str, rows: list[dict[str, Any]], status: list[list[Any]]
) -> PublishOutcome:
    """Write ``rows`` (with a header) and the status cells in one batch; verify; restore on failure."""
    before_requests = sheets.request_count
    table_range = f"'{REPORT_SHEET}'!A:D"
    previous_table, previous_status = sheets.values_batch_get(
        spreadsheet_id=spreadsheet_id, ranges=[table_range, STATUS_RANGE], value_render_option="UNFORMATTED_VALUE"
    )
    table = [HEADER] + [[r["day"], r["region"], r["orders"], r["revenue"]] for r in rows]
    height = max(len(table), len(previous_table.values))
    # Blank out rows the previous, longer report left behind, in the same write.
    padded = table + [["", "", "", ""]] * (height - len(table))
    status_padded = (status + [["", ""]] * STATUS_ROWS)[:STATUS_ROWS]
    data = [(f"'{REPORT_SHEET}'!A1:D{height}", padded), (STATUS_RANGE, status_padded)]
    try:
        try:
            result = _write(sheets, spreadsheet_id, data)
        except ConnectorRequestError as exc:
            if "grid" not in str(exc).lower():
                raise
            meta = sheets.spreadsheet_meta(spreadsheet_id=spreadsheet_id).sheet(REPORT_SHEET)
            sheets.sheet_resize(
                spreadsheet_id=spreadsheet_id, sheet_id=meta.sheet_id, rows=height + 100, cols=max(meta.cols, 7)
            )
            result = _write(sheets, spreadsheet_id, data)
        written = {vr.range.split("!")[-1].split(":")[0]: vr.values for vr in (result.values or ())}
        if _normalise(written.get("A1", [])) != _normalise(padded) or _normalise(written.get("F1", [])) != _normalise(
            status_padded
        ):
            raise PublishError("the sheet did not hold what was written (verification failed)")
    except (ConnectorError, PublishError) as exc:
        restored = _restore(sheets, spreadsheet_id, previous_table.values, previous_status.values, height)
        raise PublishError(
            f"publishing to spreadsheet {spreadsheet_id} failed: {exc}; "
            + ("the previous values were put back" if restored else "RESTORING THE PREVIOUS VALUES ALSO FAILED")
        ) from exc
    return PublishOutcome(requests=sheets.request_count - before_requests, cells=result.updated_cells, range=data[0][0])


def _write(sheets: SheetsClient, spreadsheet_id: str, data: list[tuple[str, list[list[Any]]]]):
    return sheets.values_batch_update(
        spreadsheet_id=spreadsheet_id,
        data=data,
        value_input_option="RAW",
        include_values_in_response=True,
        response_value_render_option="UNFORMATTED_VALUE",
    )


def _restore(
    sheets: SheetsClient, spreadsheet_id: str, table: list[list[Any]], status: list[list[Any]], height: int
) -> bool:
    old_table = [list(r) + [""] * (4 - len(r)) for r in table] + [["", "", "", ""]] * (height - len(table))
    old_status = ([list(r) + [""] * (2 - len(r)) for r in status] + [["", ""]] * STATUS_ROWS)[:STATUS_ROWS]
    try:
        sheets.values_batch_update(
            spreadsheet_id=spreadsheet_id,
            data=[(f"'{REPORT_SHEET}'!A1:D{max(height, 1)}", old_table), (STATUS_RANGE, old_status)],
            value_input_option="RAW",
        )
    except ConnectorError as exc:
        logger.error("restoring spreadsheet %s after a failed publish failed too: %s", spreadsheet_id, exc)
        return False
    return True


def report_on_sheet(*, sheets: SheetsClient, spreadsheet_id: str, rows: list[dict[str, Any]], run_url: str) -> bool:
    """True when the sheet already holds exactly this report (its table, and its run link in the status cells).

    One read request. Used after a crash between the sheet write and its record: the publish is then recorded
    without writing again.
    """
    table, status = sheets.values_batch_get(
        spreadsheet_id=spreadsheet_id,
        ranges=[f"'{REPORT_SHEET}'!A:D", STATUS_RANGE],
        value_render_option="UNFORMATTED_VALUE",
    )
    expected = [HEADER] + [[r["day"], r["region"], r["orders"], r["revenue"]] for r in rows]
    links = [row[1] for row in status.values if len(row) > 1 and row[0] == "Run"]
    return links == [run_url] and _normalise([list(r) for r in table.values]) == _normalise(expected)

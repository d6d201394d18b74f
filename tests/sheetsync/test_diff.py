"""The diff engine on its own: values, keys, row moves, protected columns, ranges."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from sheetsync.diff import (
    TableError,
    canon,
    grids_match,
    source_table_prepare,
    table_plan,
    to_cell,
    write_ranges,
)

COLUMNS = ["id", "name", "amount"]


def prepare(rows, columns=COLUMNS, keys=("id",)):
    return source_table_prepare(columns=columns, rows=rows, key_columns=list(keys))


def apply(current, plan, width=None):
    """The sheet after the plan's writes (a dense grid), for checking plans end to end."""
    grid = [list(r) for r in current]
    for r, c, value in plan.writes:
        while len(grid) <= r:
            grid.append([])
        while len(grid[r]) <= c:
            grid[r].append("")
        grid[r][c] = value
    out = []
    for row in grid:
        row = list(row)
        while row and row[-1] in ("", None):
            row.pop()
        out.append(row)
    while out and not out[-1]:
        out.pop()
    return out


def test_values_become_cells_and_compare_by_type():
    assert to_cell(None) == "" and to_cell(float("nan")) == ""
    assert to_cell(Decimal("1.25")) == 1.25 and to_cell(date(2026, 1, 2)) == "2026-01-02"
    assert to_cell(datetime(2026, 1, 2, 3, 4)) == "2026-01-02T03:04:00"
    assert to_cell(2**60) == str(2**60) and to_cell([1, "a"]) == '[1,"a"]' and to_cell(b"\x01") == "01"
    assert canon(1) == canon(1.0) and canon("1") != canon(1) and canon(True) != canon(1) and canon(None) == canon("")


def test_malformed_rows_are_quarantined_with_reasons():
    table = prepare([[1, "a", 1], [None, "b", 2], [1, "dup", 3], [2, "short"], [3, "x" * 60_000, 1], [4, "ok", 4]])
    assert [r[0] for r in table.rows] == [1, 4]
    reasons = {q.row: q.reason for q in table.quarantined}
    assert reasons[2] == "empty key" and "duplicate key" in reasons[3] and "2 values for 3 columns" in reasons[4]
    assert "characters" in reasons[5]


def test_unusable_columns_are_refused():
    with pytest.raises(TableError, match="'nope' is not a column of the source"):
        prepare([[1, "a", 1]], keys=("nope",))
    with pytest.raises(TableError, match="duplicate column names: id"):
        prepare([[1, 1, 1]], columns=["id", "id", "x"])


def test_first_write_fills_an_empty_range():
    plan = table_plan(source=prepare([[1, "a", 10], [2, "b", 20]]), protected=[], current=[], read_width=3)
    assert plan.cells == 9 and plan.rows_added == 2 and plan.rows_removed == 0
    assert apply([], plan) == [COLUMNS, [1, "a", 10], [2, "b", 20]]


def test_removed_row_moves_the_rest_up_and_blanks_the_end():
    current = [COLUMNS, [1, "a", 10], [2, "b", 20], [3, "c", 30]]
    plan = table_plan(source=prepare([[1, "a", 10], [3, "c", 30]]), protected=[], current=current, read_width=3)
    assert plan.rows_removed == 1 and plan.rows_added == 0
    assert apply(current, plan) == [COLUMNS, [1, "a", 10], [3, "c", 30]]
    assert plan.cells == 6  # row 3 moves up (3 cells), the old last row is blanked (3 cells)


def test_protected_values_follow_their_row_and_removed_ones_are_reported():
    header = [*COLUMNS, "note"]
    current = [header, [1, "a", 10, "keep 1"], [2, "b", 20, "gone"], [3, "c", 30, "keep 3"]]
    source = prepare([[1, "a", 11], [3, "c", 30], [4, "d", 40]])
    plan = table_plan(source=source, protected=["note"], current=current, read_width=4)
    assert apply(current, plan) == [header, [1, "a", 11, "keep 1"], [3, "c", 30, "keep 3"], [4, "d", 40]]
    assert plan.dropped_protected == ({"sheet_row": 3, "key": {"id": 2}, "values": {"note": "gone"}},)


def test_a_protected_source_column_keeps_the_sheet_value_for_existing_rows_only():
    current = [COLUMNS, [1, "edited by hand", 10]]
    plan = table_plan(source=prepare([[1, "a", 10], [2, "b", 20]]), protected=["name"], current=current, read_width=3)
    assert apply(current, plan) == [COLUMNS, [1, "edited by hand", 10], [2, "b", 20]]


def test_sheet_order_is_kept_unless_the_source_order_is_asked_for():
    current = [COLUMNS, [2, "b", 20], [1, "a", 10]]
    source = prepare([[1, "a", 10], [2, "b", 20], [3, "c", 30]])
    keep = table_plan(source=source, protected=[], current=current, read_width=3)
    assert keep.cells == 3 and apply(current, keep)[1:] == [[2, "b", 20], [1, "a", 10], [3, "c", 30]]
    follow = table_plan(source=source, protected=[], current=current, read_width=3, order="source")
    assert apply(current, follow)[1:] == [[1, "a", 10], [2, "b", 20], [3, "c", 30]]


def test_a_dropped_source_column_is_blanked_and_columns_are_found_by_header():
    current = [[*COLUMNS, "old"], [1, "a", 10, "x"], [2, "b", 20, "y"]]
    plan = table_plan(source=prepare([[1, "a", 10], [2, "b", 20]]), protected=[], current=current, read_width=4)
    assert apply(current, plan) == [COLUMNS, [1, "a", 10], [2, "b", 20]] and plan.cells == 3


def test_a_sheet_without_its_key_column_is_not_scrambled():
    with pytest.raises(TableError, match="header row has no column 'id'"):
        table_plan(source=prepare([[1, "a", 10]]), protected=[], current=[["x", "y"], [1, 2]], read_width=3)
    with pytest.raises(TableError, match="row order"):
        table_plan(source=prepare([[1, "a", 10]]), protected=[], current=[], read_width=3, order="random")


def test_duplicate_and_keyless_sheet_rows_are_removed():
    current = [COLUMNS, [1, "a", 10], [1, "a again", 10], ["", "typed below", ""]]
    plan = table_plan(source=prepare([[1, "a", 10]]), protected=[], current=current, read_width=3)
    assert apply(current, plan) == [COLUMNS, [1, "a", 10]] and plan.rows_removed == 2


def test_unchanged_numbers_are_not_rewritten():
    current = [COLUMNS, [1, "a", 10]]  # the sheet returns 10 for the 10.0 that was written
    plan = table_plan(source=prepare([[1.0, "a", 10.0]]), protected=[], current=current, read_width=3)
    assert plan.cells == 0


def test_write_ranges_send_nulls_for_unchanged_cells_between_near_changes():
    writes = [(1, 0, "a"), (1, 1, "b"), (2, 0, "c"), (4, 2, "e"), (9, 1, "f"), (9, 3, "g")]
    ranges = write_ranges(writes, sheet="Data", row0=2, col0=2)
    assert ranges == [
        ("Data!B3:D6", [["a", "b", None], ["c", None, None], [None, None, None], [None, None, "e"]]),
        ("Data!C11:E11", [["f", None, "g"]]),
    ]
    assert write_ranges([(0, 0, 1)], sheet="My tab", row0=1, col0=1) == [("'My tab'!A1", [[1]])]


def test_grids_match_ignores_trimmed_blanks_and_unwritten_cells_only():
    assert grids_match([[1, ""], ["", ""]], [[1.0]])
    assert grids_match([[None, 2]], [["someone's", 2]])
    assert not grids_match([[1, "x"]], [[1]])

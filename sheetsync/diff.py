"""The diff engine: a source table and a sheet's cells in, the exact cells to write out. No I/O, no Django.

Shape of a target's table in the sheet (from its anchor cell): a header row with the output columns (the
source's columns in source order, then the protected columns the source does not have), then one row per
source row. Rows are matched by key, never by position: the sheet's columns are found by their header
names, so a protected value follows its row wherever it moves, and a column added or dropped at the
source rewrites only what it has to.

* Rows the source no longer has are removed: the rows below move up and the cells past the new end are
  blanked. Their protected values are returned in ``dropped_protected`` (recorded, never silently lost).
* New rows are appended (``order="sheet"``, the default: existing rows never jump) or placed where the
  source has them (``order="source"``).
* Cells are compared by value and type (``1`` == ``1.0``, ``"1"`` != ``1``, ``True`` != ``1``), so an
  unchanged cell is never written.

Values go to Sheets as RAW JSON values: strings stay strings (no formula or date parsing), numbers and
booleans stay numbers and booleans, and ``""`` empties a cell. Formulas in the range are read as their
values; one whose row moves is rewritten as its value (keep formulas outside the table's columns).
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from connectors.sheets import grid_to_a1

Cell = str | int | float | bool
Key = tuple[tuple[str, Any], ...]

MAX_CELL_CHARS = 50_000  # Sheets refuses longer cell values
_MAX_EXACT_INT = 2**53  # larger ints lose precision as JSON numbers in Sheets: sent as text
ORDERS = ("sheet", "source")
SAMPLE_LIMIT = 50


class TableError(ValueError):
    """A target's table cannot be built or matched safely; the message says why and what to do."""


class CellError(ValueError):
    """A source value that cannot go into a cell."""


# --------------------------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------------------------


def to_cell(value: Any) -> Cell:
    """A source value as the RAW value written to Sheets.

    None and NaN -> ``""`` (an empty cell); bool, int and float as such (ints beyond 2**53 and infinities as
    text); Decimal -> float; dates and times -> ISO 8601 text; lists and dicts (BigQuery ARRAY/STRUCT) ->
    JSON text; bytes -> hex. ``CellError`` for text longer than a cell may hold.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < _MAX_EXACT_INT else str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        if value.is_nan():
            return ""
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, datetime | date | time):
        text = value.isoformat()
    elif isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value).hex()
    elif isinstance(value, list | tuple | dict):
        text = json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)
    else:
        text = str(value)
    if len(text) > MAX_CELL_CHARS:
        raise CellError(f"a value of {len(text):,} characters (a cell holds at most {MAX_CELL_CHARS:,})")
    return text


def canon(value: Any) -> tuple[str, Any]:
    """The comparison key of a cell value: blank, boolean, number or text (type-tagged: ``True`` != ``1``)."""
    if value is None or value == "":
        return ("", "")
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        number = float(value)
        return ("", "") if math.isnan(number) else ("n", number)
    return ("s", str(value))


def _blank(value: Any) -> bool:
    return value is None or value == ""


# --------------------------------------------------------------------------------------------------------------
# The source side
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quarantined:
    """A source row left out of the sheet, with the reason (1-based row number in the source)."""

    row: int
    reason: str
    key: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "key": self.key, "reason": self.reason}


@dataclass(frozen=True)
class SourceTable:
    """Source rows ready for the sheet: converted cells, unique non-empty keys, malformed rows set aside."""

    columns: tuple[str, ...]
    key_columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    keys: tuple[Key, ...]
    quarantined: tuple[Quarantined, ...] = ()

    def fingerprint_payload(self) -> bytes:
        """What the fingerprint hashes: the columns and the converted rows, in order."""
        return json.dumps([self.columns, self.rows], separators=(",", ":"), ensure_ascii=False).encode()


def _key_text(key: Key) -> str:
    return ", ".join(str(part[1]) for part in key)


def source_table_prepare(
    *, columns: Sequence[Any], rows: Iterable[Sequence[Any]], key_columns: Sequence[str]
) -> SourceTable:
    """Convert and check source rows: ``TableError`` when the columns are unusable (no columns, duplicate or
    blank names, a key column the source lacks); rows with a wrong number of values, an empty or duplicate
    key, or a value no cell can hold are quarantined with the reason, and the rest go on."""
    names = [str(c).strip() if c is not None else "" for c in columns]
    if not names:
        raise TableError("the source returned no columns")
    if any(not n for n in names):
        raise TableError(f"the source has a column without a name (columns: {names})")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TableError(f"the source has duplicate column names: {', '.join(duplicates)}")
    if not key_columns:
        raise TableError("the target has no key columns")
    missing = [k for k in key_columns if k not in names]
    if missing:
        raise TableError(
            f"key column{'s' if len(missing) > 1 else ''} {', '.join(repr(k) for k in missing)} "
            f"{'are' if len(missing) > 1 else 'is'} not a column of the source (columns: {', '.join(names)})"
        )
    key_index = [names.index(k) for k in key_columns]
    out_rows: list[tuple[Cell, ...]] = []
    out_keys: list[Key] = []
    quarantined: list[Quarantined] = []
    first_seen: dict[Key, int] = {}
    for number, raw in enumerate(rows, start=1):
        values = list(raw)
        if len(values) != len(names):
            quarantined.append(Quarantined(number, f"has {len(values)} values for {len(names)} columns"))
            continue
        try:
            cells = tuple(to_cell(v) for v in values)
        except CellError as exc:
            quarantined.append(Quarantined(number, str(exc)))
            continue
        key = tuple(canon(cells[i]) for i in key_index)
        if all(part == ("", "") for part in key):
            quarantined.append(Quarantined(number, "empty key"))
            continue
        if key in first_seen:
            quarantined.append(
                Quarantined(number, f"duplicate key (first at source row {first_seen[key]})", _key_text(key))
            )
            continue
        first_seen[key] = number
        out_rows.append(cells)
        out_keys.append(key)
    return SourceTable(
        columns=tuple(names),
        key_columns=tuple(key_columns),
        rows=tuple(out_rows),
        keys=tuple(out_keys),
        quarantined=tuple(quarantined),
    )


def output_columns(source_columns: Sequence[str], protected: Sequence[str]) -> tuple[str, ...]:
    """The table's header: the source's columns, then the protected columns the source does not have."""
    return tuple(source_columns) + tuple(p for p in protected if p not in source_columns)


# --------------------------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TablePlan:
    """The cells to write for one target (offsets from the anchor, 0-based) and what they amount to.

    ``previous`` holds the sheet's value at every written cell, for putting it back if the write fails.
    """

    columns: tuple[str, ...]
    desired_height: int
    writes: tuple[tuple[int, int, Cell], ...]
    previous: Mapping[tuple[int, int], Cell]
    rows_added: int
    rows_removed: int
    rows_kept: int
    dropped_protected: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def width(self) -> int:
        return len(self.columns)

    @property
    def cells(self) -> int:
        return len(self.writes)


def _header_name(value: Any) -> str:
    if _blank(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def table_plan(
    *,
    source: SourceTable,
    protected: Sequence[str],
    current: Sequence[Sequence[Any]],
    read_width: int,
    order: str = "sheet",
) -> TablePlan:
    """Diff ``current`` (the sheet's cells from the anchor, as read: trimmed rows, header first) against the
    source, cell by cell, and plan the writes.

    ``read_width`` is how many columns were read (the table's width as last written, at least the new one):
    cells of those columns past the new width are blanked. ``TableError`` when the sheet has data rows but
    its header lacks a key column (the rows could not be matched; writing would scramble them).
    """
    if order not in ORDERS:
        raise TableError(f"row order must be one of {', '.join(ORDERS)}, got {order!r}")
    columns = output_columns(source.columns, protected)
    width = len(columns)
    protected_set = set(protected)
    header = [_header_name(v) for v in current[0]] if current else []
    data = [list(r) for r in current[1:]]
    has_data = any(any(not _blank(v) for v in row) for row in data)
    position: dict[str, int] = {}
    for index, name in enumerate(header):
        if name:
            position.setdefault(name, index)
    missing_keys = [k for k in source.key_columns if k not in position]
    if has_data and missing_keys:
        raise TableError(
            f"the sheet's header row has no column {', '.join(repr(k) for k in missing_keys)}: its rows cannot be "
            f"matched to the source by key (header found: {[h for h in header if h]}). Put the header back, or "
            "clear the range so the sync can rewrite it"
        )

    def cell_at(row: Sequence[Any], name: str) -> Any:
        index = position.get(name)
        return row[index] if index is not None and index < len(row) else ""

    # Sheet rows by key (first occurrence wins); everything else is removed.
    sheet_rows: dict[Key, int] = {}
    leftover: list[int] = []
    for index, row in enumerate(data):
        if not any(not _blank(v) for v in row):
            continue
        if missing_keys:
            leftover.append(index)
            continue
        key = tuple(canon(cell_at(row, k)) for k in source.key_columns)
        if all(part == ("", "") for part in key) or key in sheet_rows:
            leftover.append(index)
        else:
            sheet_rows[key] = index
    source_index = {key: i for i, key in enumerate(source.keys)}
    kept_in_sheet_order = [k for k, _ in sorted(sheet_rows.items(), key=lambda item: item[1]) if k in source_index]
    if order == "sheet":
        new_keys = [k for k in source.keys if k not in sheet_rows]
        desired_keys = kept_in_sheet_order + new_keys
    else:
        desired_keys = list(source.keys)
    removed = [i for k, i in sheet_rows.items() if k not in source_index] + leftover

    src_pos = {name: i for i, name in enumerate(source.columns)}
    desired: list[tuple[Cell, ...]] = [tuple(columns)]
    for key in desired_keys:
        src = source.rows[source_index[key]]
        sheet_index = sheet_rows.get(key)
        sheet_row = data[sheet_index] if sheet_index is not None else None
        cells: list[Cell] = []
        for name in columns:
            if name in protected_set and sheet_row is not None and name in position:
                value = cell_at(sheet_row, name)
                cells.append("" if value is None else value)
            elif name in src_pos:
                cells.append(src[src_pos[name]])
            else:
                cells.append("")
        desired.append(tuple(cells))

    dropped: list[dict[str, Any]] = []
    for index in sorted(removed):
        row = data[index]
        kept = {name: cell_at(row, name) for name in protected if name in position}
        kept = {name: value for name, value in kept.items() if not _blank(value)}
        if kept:
            key_values = {k: cell_at(row, k) for k in source.key_columns if k in position}
            dropped.append({"sheet_row": index + 2, "key": key_values, "values": kept})

    span = max(width, read_width)
    height = max(len(desired), len(current))
    writes: list[tuple[int, int, Cell]] = []
    previous: dict[tuple[int, int], Cell] = {}
    for r in range(height):
        want_row = desired[r] if r < len(desired) else ()
        have_row = current[r] if r < len(current) else ()
        for c in range(span):
            want: Cell = want_row[c] if c < len(want_row) else ""
            have = have_row[c] if c < len(have_row) else ""
            if want == have and type(want) is type(have):
                continue
            if canon(want) != canon(have):
                writes.append((r, c, want))
                previous[(r, c)] = "" if have is None else have
    return TablePlan(
        columns=columns,
        desired_height=len(desired),
        writes=tuple(writes),
        previous=previous,
        rows_added=sum(1 for k in desired_keys if k not in sheet_rows),
        rows_removed=len(removed),
        rows_kept=sum(1 for k in desired_keys if k in sheet_rows),
        dropped_protected=tuple(dropped),
    )


# --------------------------------------------------------------------------------------------------------------
# Ranges
# --------------------------------------------------------------------------------------------------------------


ROW_GAP = 2  # unchanged rows allowed inside one range (sent as nulls)


def write_ranges(
    writes: Iterable[tuple[int, int, Cell]], *, sheet: str, row0: int, col0: int
) -> list[tuple[str, list[list[Cell | None]]]]:
    """Group single-cell writes into few A1 ranges that still write only the changed cells.

    Changed rows no more than ``ROW_GAP`` unchanged rows apart form one block; its range spans the block's
    changed columns and holds ``None`` (JSON null) for every cell that did not change: the Sheets API skips
    null cells ("Null values will be skipped"), so they are left exactly as they are, while ``""`` empties a
    cell. Scattered edits thus cost a handful of ranges instead of one per cell; ``row0``/``col0`` are the
    anchor's 1-based row and column.
    """
    by_row: dict[int, dict[int, Cell]] = {}
    for r, c, value in writes:
        by_row.setdefault(r, {})[c] = value
    blocks: list[list[int]] = []
    for r in sorted(by_row):
        if blocks and r - blocks[-1][-1] - 1 <= ROW_GAP:
            blocks[-1].append(r)
        else:
            blocks.append([r])
    out: list[tuple[str, list[list[Cell | None]]]] = []
    for rows in blocks:
        r1, r2 = rows[0], rows[-1]
        c1 = min(min(by_row[r]) for r in rows)
        c2 = max(max(by_row[r]) for r in rows)
        grid = [[by_row.get(r, {}).get(c) for c in range(c1, c2 + 1)] for r in range(r1, r2 + 1)]
        if r1 == r2 and c1 == c2:
            a1 = grid_to_a1(sheet, row0 + r1, col0 + c1)
        else:
            a1 = grid_to_a1(sheet, row0 + r1, col0 + c1, row0 + r2, col0 + c2)
        out.append((a1, grid))
    return out


def grids_match(written: Sequence[Sequence[Any]], stored: Sequence[Sequence[Any]]) -> bool:
    """Whether Sheets stored what was written in a range: every written cell compared (``None`` cells were
    not written and are not compared; blanks may come back trimmed)."""
    for r, want in enumerate(written):
        have = stored[r] if r < len(stored) else ()
        for c, value in enumerate(want):
            if value is not None and canon(value) != canon(have[c] if c < len(have) else ""):
                return False
    return True


# --------------------------------------------------------------------------------------------------------------
# What the sheet holds after a write (the stored copy)
# --------------------------------------------------------------------------------------------------------------


def sheet_after(current: Sequence[Sequence[Any]], writes: Iterable[tuple[int, int, Cell]]) -> list[list[Any]]:
    """What a read of the range returns once ``writes`` (verified) landed on ``current``: the written values in
    place, trailing blank cells and rows trimmed the way Sheets trims them, so it can stand in for the next read."""
    grid = [list(row) for row in current]
    for r, c, value in writes:
        while len(grid) <= r:
            grid.append([])
        row = grid[r]
        if len(row) <= c:
            row.extend([""] * (c + 1 - len(row)))
        row[c] = value
    for row in grid:
        while row and _blank(row[-1]):
            row.pop()
        for index, value in enumerate(row):
            if value is None:
                row[index] = ""
    while grid and not grid[-1]:
        grid.pop()
    return grid


def cells_pack(values: Sequence[Sequence[Any]]) -> bytes:
    """A grid of cells as compact bytes (JSON, zlib) for the stored copy."""
    return zlib.compress(json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode(), 1)


def cells_unpack(data: bytes | memoryview) -> list[list[Any]]:
    """The grid :func:`cells_pack` stored; ``ValueError`` when it is not one."""
    try:
        values = json.loads(zlib.decompress(bytes(data)))
    except (zlib.error, ValueError) as exc:
        raise ValueError(f"not a stored grid: {exc}") from exc
    if not isinstance(values, list) or not all(isinstance(row, list) for row in values):
        raise ValueError("not a stored grid: expected a list of rows")
    return values

"""The Sheets emulator's in-memory store: spreadsheets, cell values, Drive metadata, changes feed.

Every public method takes the store lock and returns fresh objects. Cells are kept sparse
(``{(row, col): value}``, 1-based) with Python values as Sheets holds them: ``str``, ``int``,
``float`` or ``bool``; an empty cell is absent. Every change to a spreadsheet (values, sheets,
title, trash) bumps its Drive ``version`` and ``modifiedTime`` and moves it to the head of the
changes log. The log keeps the latest change per file, which is what Drive's changes feed shows:
one entry per changed file, however many times it changed.

Fixture format (also the state file format)::

    {"version": 1,
     "spreadsheets": [{"id": "optional", "title": "Sales",
                       "sheets": {"Sheet1": [["a", 1], ["b", 2]]}}]}

``sheets`` may also be a list of ``{"title", "sheet_id", "rows", "cols", "values"}``; a bare list
of spreadsheets is accepted too. The state file adds ``deleted``, ``changes`` and
``next_change_seq`` and is rewritten atomically (temp file + ``os.replace``) after each mutation.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.common import EmulatorHTTPError, FieldTree, apply_fields, parse_fields
from sandbox.sheets.a1 import A1Ref, column_letters, format_range, parse_a1, quote_sheet

FIXTURE_VERSION = 1
DEFAULT_ROWS = 1000
DEFAULT_COLS = 26
MAX_CELLS = 10_000_000
SHEETS_MIME_TYPE = "application/vnd.google-apps.spreadsheet"
VALUE_INPUT_OPTIONS = ("RAW", "USER_ENTERED")
VALUE_RENDER_OPTIONS = ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA")
MAJOR_DIMENSIONS = ("ROWS", "COLUMNS")
DRIVE_DEFAULT_FIELDS = ("kind", "id", "name", "mimeType")

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
Cell = tuple[int, int]
Value = str | int | float | bool


def iso_ms(when: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as Drive writes it: ``2026-11-03T10:00:00.000Z``."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def write_text_atomic(path: Path, text: str, *, overwrite: bool = True) -> None:
    """Write ``text`` to ``path`` via a temp file and ``os.replace`` (or create-only with ``os.link``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp_name, path)
        else:
            os.link(tmp_name, path)  # atomic create-if-absent: FileExistsError when taken
            os.unlink(tmp_name)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _normalized_time(value: Any, default: str) -> str:
    """A fixture timestamp in Drive's exact format (so timestamps compare as text)."""
    if not value:
        return default
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return iso_ms(parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC))


def load_fixture(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a fixture or state file (a dict with ``spreadsheets``, or a bare list of spreadsheets)."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if isinstance(data, list):
        data = {"version": FIXTURE_VERSION, "spreadsheets": data}
    if not isinstance(data, dict) or not isinstance(data.get("spreadsheets"), list):
        raise ValueError(f"{path} is not a Sheets emulator fixture")
    return data


def bad_request(message: str) -> EmulatorHTTPError:
    """400 INVALID_ARGUMENT."""
    return EmulatorHTTPError(400, message)


def _not_found(spreadsheet_id: str, *, drive: bool = False) -> EmulatorHTTPError:
    if drive:
        return EmulatorHTTPError(404, f"File not found: {spreadsheet_id}.")
    return EmulatorHTTPError(404, "Requested entity was not found.")


def _check_value(value: Any, where: str) -> Value | None:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise bad_request(f"Invalid {where}: expected a string, number, boolean or null, got {type(value).__name__}")


def _parse_input(value: Value, option: str) -> Value | None:
    """A written value as Sheets stores it; None clears the cell."""
    if isinstance(value, str):
        if value == "":
            return None
        if option == "USER_ENTERED":
            if value.startswith("'"):
                return value[1:] or None
            if value.upper() in ("TRUE", "FALSE"):
                return value.upper() == "TRUE"
            if _NUMBER.match(value):
                number = float(value)
                return int(number) if number.is_integer() and abs(number) < 2**53 else number
    return value


def render_value(value: Value, option: str) -> Value:
    """A stored value as the API returns it for ``valueRenderOption``."""
    if option == "FORMATTED_VALUE":
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return str(int(value)) if value.is_integer() and abs(value) < 1e15 else format(value, ".15g")
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _google_fields(spec: str | None) -> FieldTree | None:
    """A Google ``fields`` mask (``a,b(c,d)``, ``sheets.properties.title``, ``sheets/properties``) as a tree."""
    try:
        tree = parse_fields(spec)
    except ValueError as exc:
        raise bad_request(f"Invalid field selection: {exc}") from exc
    if tree is None or "*" in tree:
        return None

    def expand(node: FieldTree) -> FieldTree:
        out: FieldTree = {}
        for key, sub in node.items():
            parts = [p for p in re.split(r"[./]", key) if p]
            if not parts:
                continue
            leaf = expand(sub) if sub is not None else None
            for part in reversed(parts[1:]):
                leaf = {part: leaf}
            head = parts[0]
            if head in out and out[head] is not None and leaf is not None:
                merged = dict(out[head] or {})
                merged.update(leaf)
                out[head] = merged
            elif head in out and (out[head] is None or leaf is None):
                out[head] = None
            else:
                out[head] = leaf
        return out

    return expand(tree)


class _Sheet:
    """One tab: grid size and sparse cells."""

    def __init__(self, *, sheet_id: int, title: str, rows: int, cols: int) -> None:
        self.sheet_id = sheet_id
        self.title = title
        self.rows = rows
        self.cols = cols
        self.cells: dict[Cell, Value] = {}

    def to_state(self) -> dict[str, Any]:
        height = max((r for r, _ in self.cells), default=0)
        width = max((c for _, c in self.cells), default=0)
        values: list[list[Value]] = [[""] * width for _ in range(height)]
        for (r, c), value in self.cells.items():
            values[r - 1][c - 1] = value
        return {"title": self.title, "sheet_id": self.sheet_id, "rows": self.rows, "cols": self.cols, "values": values}

    def properties(self, index: int) -> dict[str, Any]:
        return {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": index,
            "sheetType": "GRID",
            "gridProperties": {"rowCount": self.rows, "columnCount": self.cols},
        }


class _Spreadsheet:
    def __init__(self, *, spreadsheet_id: str, title: str, created: str, modified: str, version: int) -> None:
        self.id = spreadsheet_id
        self.title = title
        self.created_time = created
        self.modified_time = modified
        self.version = version
        self.trashed = False
        self.locale = "en_US"
        self.time_zone = "Etc/GMT"
        self.sheets: list[_Sheet] = []

    def cell_count(self) -> int:
        return sum(s.rows * s.cols for s in self.sheets)

    def to_state(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "created_time": self.created_time,
            "modified_time": self.modified_time,
            "version": self.version,
            "trashed": self.trashed,
            "locale": self.locale,
            "time_zone": self.time_zone,
            "sheets": [s.to_state() for s in self.sheets],
        }


class SheetsStore:
    """Thread-safe in-memory spreadsheets with Drive metadata and an optional state file."""

    def __init__(
        self,
        data: Mapping[str, Any] | list[Any] | None = None,
        *,
        state_path: str | Path | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self.state_path = Path(state_path) if state_path is not None else None
        self._clock = clock or (lambda: datetime.now(UTC))
        self._spreadsheets: dict[str, _Spreadsheet] = {}
        self._deleted: set[str] = set()
        self._changes: dict[str, dict[str, Any]] = {}  # file id -> latest change
        self._next_seq = 1
        self._unsaved = False
        if isinstance(data, list):
            data = {"spreadsheets": data}
        self._load(data or {})

    @classmethod
    def open(
        cls,
        *,
        fixture: Mapping[str, Any] | list[Any] | None = None,
        fixture_path: str | Path | None = None,
        state_path: str | Path | None = None,
    ) -> SheetsStore:
        """Load from ``state_path`` when it exists, else from the fixture (or empty).

        A missing state file is created right away (create-only: a second process starting at the
        same moment cannot overwrite newer state; its state wins).
        """
        state = Path(state_path) if state_path is not None else None
        if state is not None and state.exists():
            return cls(load_fixture(state), state_path=state)
        if fixture is None and fixture_path is not None:
            fixture = load_fixture(fixture_path)
        store = cls(fixture, state_path=state)
        if state is not None:
            try:
                store.flush(create_only=True)
            except FileExistsError:
                return cls(load_fixture(state), state_path=state)
        return store

    # ---- loading and persistence ------------------------------------------------------------

    def _load(self, data: Mapping[str, Any]) -> None:
        if data.get("version", FIXTURE_VERSION) != FIXTURE_VERSION:
            raise ValueError(f"unsupported fixture version {data.get('version')!r}")
        now = iso_ms(self._clock())
        for spec in data.get("spreadsheets") or []:
            spreadsheet = self._spreadsheet_from_spec(spec, now=now)
            if spreadsheet.id in self._spreadsheets:
                raise ValueError(f"duplicate spreadsheet id {spreadsheet.id}")
            self._spreadsheets[spreadsheet.id] = spreadsheet
        self._deleted = {str(i) for i in data.get("deleted") or []}
        for change in data.get("changes") or []:
            self._changes[str(change["file_id"])] = {
                "file_id": str(change["file_id"]),
                "seq": int(change["seq"]),
                "time": str(change["time"]),
                "removed": bool(change.get("removed")),
            }
        top = max((c["seq"] for c in self._changes.values()), default=0)
        self._next_seq = max(int(data.get("next_change_seq") or 1), top + 1)

    def _spreadsheet_from_spec(self, spec: Mapping[str, Any], *, now: str) -> _Spreadsheet:
        if not isinstance(spec, Mapping) or not spec.get("title"):
            raise ValueError(f"a fixture spreadsheet needs a title: {spec!r}")
        spreadsheet = _Spreadsheet(
            spreadsheet_id=str(spec.get("id") or self._new_spreadsheet_id()),
            title=str(spec["title"]),
            created=_normalized_time(spec.get("created_time"), now),
            modified=_normalized_time(spec.get("modified_time") or spec.get("created_time"), now),
            version=int(spec.get("version") or 1),
        )
        spreadsheet.trashed = bool(spec.get("trashed"))
        spreadsheet.locale = str(spec.get("locale") or "en_US")
        spreadsheet.time_zone = str(spec.get("time_zone") or "Etc/GMT")
        sheets = spec.get("sheets") or {"Sheet1": []}
        if isinstance(sheets, Mapping):
            sheets = [{"title": title, "values": values} for title, values in sheets.items()]
        for index, sheet_spec in enumerate(sheets):
            values = sheet_spec.get("values") or []
            width = max((len(row) for row in values), default=0)
            sheet = _Sheet(
                sheet_id=int(sheet_spec.get("sheet_id", 0 if index == 0 else self._new_sheet_id(spreadsheet))),
                title=str(sheet_spec["title"]),
                rows=int(sheet_spec.get("rows") or max(DEFAULT_ROWS, len(values))),
                cols=int(sheet_spec.get("cols") or max(DEFAULT_COLS, width)),
            )
            if len(values) > sheet.rows or width > sheet.cols:
                raise ValueError(f"values of sheet {sheet.title!r} do not fit its {sheet.rows}x{sheet.cols} grid")
            if any(s.title == sheet.title or s.sheet_id == sheet.sheet_id for s in spreadsheet.sheets):
                raise ValueError(f"duplicate sheet title or id in spreadsheet {spreadsheet.title!r}")
            for r, row in enumerate(values, start=1):
                for c, value in enumerate(row, start=1):
                    stored = _parse_input(_check_value(value, "fixture value"), "RAW") if value is not None else None
                    if stored is not None:
                        sheet.cells[(r, c)] = stored
            spreadsheet.sheets.append(sheet)
        if not spreadsheet.sheets:
            raise ValueError(f"spreadsheet {spreadsheet.title!r} has no sheets")
        return spreadsheet

    def _new_spreadsheet_id(self) -> str:
        while True:
            candidate = secrets.token_urlsafe(33)  # 44 characters, like Google's ids
            if candidate not in self._spreadsheets and candidate not in self._deleted:
                return candidate

    @staticmethod
    def _new_sheet_id(spreadsheet: _Spreadsheet) -> int:
        taken = {s.sheet_id for s in spreadsheet.sheets}
        while True:
            candidate = secrets.randbelow(2_000_000_000) + 1
            if candidate not in taken:
                return candidate

    def _snapshot_unlocked(self) -> dict[str, Any]:
        return {
            "version": FIXTURE_VERSION,
            "spreadsheets": [s.to_state() for s in self._spreadsheets.values()],
            "deleted": sorted(self._deleted),
            "changes": sorted(self._changes.values(), key=lambda c: c["seq"]),
            "next_change_seq": self._next_seq,
        }

    def snapshot(self) -> dict[str, Any]:
        """The whole state in fixture format (a deep copy)."""
        with self._lock:
            return copy.deepcopy(self._snapshot_unlocked())

    def flush(self, *, create_only: bool = False) -> None:
        """Write the state file now (no-op without one)."""
        if self.state_path is None:
            return
        # Mutations call this while holding the store lock; writing under the same lock keeps the
        # file in mutation order and avoids a second lock (and any lock-ordering deadlock).
        with self._lock:
            payload = json.dumps(self._snapshot_unlocked(), separators=(",", ":"))
            write_text_atomic(self.state_path, payload, overwrite=not create_only)
            self._unsaved = False

    def close(self) -> None:
        """Write pending changes, if any (a store that never changed leaves the file alone)."""
        if self.state_path is not None and self._unsaved:
            self.flush()

    def _mutated(self) -> None:
        if self.state_path is None:
            return
        self._unsaved = True
        self.flush()

    # ---- internals ------------------------------------------------------------------------------

    def _get(self, spreadsheet_id: str, *, drive: bool = False) -> _Spreadsheet:
        spreadsheet = self._spreadsheets.get(spreadsheet_id)
        if spreadsheet is None:
            raise _not_found(spreadsheet_id, drive=drive)
        return spreadsheet

    def _record_change(self, file_id: str, *, removed: bool = False) -> None:
        self._changes[file_id] = {
            "file_id": file_id,
            "seq": self._next_seq,
            "time": iso_ms(self._clock()),
            "removed": removed,
        }
        self._next_seq += 1

    def _touch(self, spreadsheet: _Spreadsheet) -> None:
        """One change to a spreadsheet: new Drive version, modifiedTime, changes-feed entry."""
        spreadsheet.version += 1
        now = iso_ms(self._clock())
        spreadsheet.modified_time = max(now, spreadsheet.modified_time)
        self._record_change(spreadsheet.id)
        self._mutated()

    def _sheet_and_ref(self, spreadsheet: _Spreadsheet, range_text: str) -> tuple[_Sheet, A1Ref]:
        try:
            ref = parse_a1(range_text)
        except ValueError as exc:
            raise bad_request(str(exc)) from exc
        if ref.sheet is None:
            return spreadsheet.sheets[0], ref
        for sheet in spreadsheet.sheets:
            if sheet.title == ref.sheet:
                return sheet, ref
        raise bad_request(f"Unable to parse range: {range_text}")

    @staticmethod
    def _grid_error(sheet: _Sheet, r1: int, c1: int, r2: int, c2: int) -> EmulatorHTTPError:
        where = format_range(sheet.title, r1, c1, r2, c2).partition("!")[2]
        quoted = "'" + sheet.title.replace("'", "''") + "'"
        return bad_request(
            f"Range ({quoted}!{where}) exceeds grid limits. Max rows: {sheet.rows}, max columns: {sheet.cols}"
        )

    def _bounds(self, sheet: _Sheet, ref: A1Ref) -> tuple[int, int, int, int]:
        """A range as concrete 1-based inclusive bounds; open ends stop at the grid's edge."""
        r1 = ref.start_row or 1
        c1 = ref.start_col or 1
        r2 = ref.end_row if ref.end_row is not None else sheet.rows
        c2 = ref.end_col if ref.end_col is not None else sheet.cols
        if r2 > sheet.rows or c2 > sheet.cols or r1 > sheet.rows or c1 > sheet.cols:
            raise self._grid_error(sheet, r1, c1, max(r1, r2), max(c1, c2))
        return r1, c1, r2, c2

    def _read(self, spreadsheet: _Spreadsheet, range_text: str, *, render: str, major: str) -> dict[str, Any]:
        sheet, ref = self._sheet_and_ref(spreadsheet, range_text)
        r1, c1, r2, c2 = self._bounds(sheet, ref)
        cells = sheet.cells
        if (r2 - r1 + 1) * (c2 - c1 + 1) < len(cells):  # a small range (a write's verification): look its cells up
            found = {(r, c): cells[(r, c)] for r in range(r1, r2 + 1) for c in range(c1, c2 + 1) if (r, c) in cells}
        else:
            found = {(r, c): value for (r, c), value in cells.items() if r1 <= r <= r2 and c1 <= c <= c2}
        if major == "COLUMNS":
            lines: dict[int, dict[int, Value]] = {}
            for (r, c), value in found.items():
                lines.setdefault(c - c1, {})[r - r1] = value
        else:
            lines = {}
            for (r, c), value in found.items():
                lines.setdefault(r - r1, {})[c - c1] = value
        out: dict[str, Any] = {"range": format_range(sheet.title, r1, c1, r2, c2), "majorDimension": major}
        if lines:
            values: list[list[Value]] = []
            for index in range(max(lines) + 1):
                line = lines.get(index, {})
                row: list[Value] = [""] * (max(line) + 1 if line else 0)
                for pos, value in line.items():
                    row[pos] = render_value(value, render)
                values.append(row)
            out["values"] = values
        return out

    def _plan_write(
        self, spreadsheet: _Spreadsheet, range_text: Any, values: Any, *, option: str, major: str
    ) -> tuple[_Sheet, list[tuple[Cell, Value | None]], dict[str, Any]]:
        """Validate one write and return (sheet, cell assignments, per-range reply) without applying it."""
        if not isinstance(range_text, str) or not range_text:
            raise bad_request("Invalid data[].range: a range is required")
        if major not in MAJOR_DIMENSIONS:
            raise bad_request(f"Invalid value at 'data.major_dimension' ({major})")
        if values is None:
            values = []
        if not isinstance(values, list) or not all(isinstance(row, list) for row in values):
            raise bad_request("Invalid values: expected a list of lists")
        sheet, ref = self._sheet_and_ref(spreadsheet, range_text)
        rows = values
        if major == "COLUMNS":
            height = max((len(col) for col in values), default=0)
            rows = [[col[i] if i < len(col) else None for col in values] for i in range(height)]
        height = len(rows)
        width = max((len(row) for row in rows), default=0)
        r1, c1 = ref.start_row or 1, ref.start_col or 1
        reply: dict[str, Any] = {"spreadsheetId": spreadsheet.id}
        if height == 0 or width == 0:
            self._bounds(sheet, ref)  # still a range of this grid
            return sheet, [], reply
        end_r, end_c = r1 + height - 1, c1 + width - 1
        if not ref.single_cell:
            bounded_r2 = ref.end_row if ref.end_row is not None else sheet.rows
            bounded_c2 = ref.end_col if ref.end_col is not None else sheet.cols
            if end_r > bounded_r2:
                raise bad_request(f"Requested writing within range [{range_text}], but tried writing to row [{end_r}]")
            if end_c > bounded_c2:
                raise bad_request(
                    f"Requested writing within range [{range_text}], but tried writing to column "
                    f"[{column_letters(end_c)}]"
                )
        if end_r > sheet.rows or end_c > sheet.cols:
            raise self._grid_error(sheet, r1, c1, end_r, end_c)
        assignments: list[tuple[Cell, Value | None]] = []
        touched_rows: set[int] = set()
        touched_cols: set[int] = set()
        for i, row in enumerate(rows):
            for j, raw in enumerate(row):
                value = _check_value(raw, f"values[{i}][{j}]")
                if value is None:
                    continue  # null means "leave this cell alone"
                assignments.append(((r1 + i, c1 + j), _parse_input(value, option)))
                touched_rows.add(i)
                touched_cols.add(j)
        reply.update(
            {
                "updatedRange": format_range(sheet.title, r1, c1, end_r, end_c),
                "updatedRows": len(touched_rows),
                "updatedColumns": len(touched_cols),
                "updatedCells": len(assignments),
            }
        )
        return sheet, assignments, reply

    @staticmethod
    def _apply(sheet: _Sheet, assignments: Iterable[tuple[Cell, Value | None]]) -> None:
        for cell, value in assignments:
            if value is None:
                sheet.cells.pop(cell, None)
            else:
                sheet.cells[cell] = value

    @staticmethod
    def _input_option(value: Any) -> str:
        if value is None or value == "":
            raise bad_request("'valueInputOption' is required but not specified")
        if value not in VALUE_INPUT_OPTIONS:
            raise bad_request(f"Invalid value at 'value_input_option' ({value})")
        return str(value)

    @staticmethod
    def render_option(value: Any) -> str:
        """A checked ``valueRenderOption`` (default FORMATTED_VALUE)."""
        if value is None or value == "":
            return "FORMATTED_VALUE"
        if value not in VALUE_RENDER_OPTIONS:
            raise bad_request(f"Invalid value at 'value_render_option' ({value})")
        return str(value)

    @staticmethod
    def major_option(value: Any) -> str:
        """A checked ``majorDimension`` (default ROWS)."""
        if value is None or value == "" or value == "DIMENSION_UNSPECIFIED":
            return "ROWS"
        if value not in MAJOR_DIMENSIONS:
            raise bad_request(f"Invalid value at 'major_dimension' ({value})")
        return str(value)

    def _render_spreadsheet(self, spreadsheet: _Spreadsheet) -> dict[str, Any]:
        return {
            "spreadsheetId": spreadsheet.id,
            "properties": {
                "title": spreadsheet.title,
                "locale": spreadsheet.locale,
                "autoRecalc": "ON_CHANGE",
                "timeZone": spreadsheet.time_zone,
            },
            "sheets": [{"properties": s.properties(i)} for i, s in enumerate(spreadsheet.sheets)],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{spreadsheet.id}/edit",
        }

    def _render_drive(self, spreadsheet: _Spreadsheet) -> dict[str, Any]:
        return {
            "kind": "drive#file",
            "id": spreadsheet.id,
            "name": spreadsheet.title,
            "mimeType": SHEETS_MIME_TYPE,
            "trashed": spreadsheet.trashed,
            "createdTime": spreadsheet.created_time,
            "modifiedTime": spreadsheet.modified_time,
            "version": str(spreadsheet.version),
            "webViewLink": f"https://docs.google.com/spreadsheets/d/{spreadsheet.id}/edit",
        }

    def _new_spreadsheet(self, title: str, sheets: list[tuple[str, int, int]]) -> _Spreadsheet:
        now = iso_ms(self._clock())
        spreadsheet = _Spreadsheet(
            spreadsheet_id=self._new_spreadsheet_id(), title=title, created=now, modified=now, version=1
        )
        for index, (sheet_title, rows, cols) in enumerate(sheets or [("Sheet1", DEFAULT_ROWS, DEFAULT_COLS)]):
            sheet_id = 0 if index == 0 else self._new_sheet_id(spreadsheet)
            spreadsheet.sheets.append(_Sheet(sheet_id=sheet_id, title=sheet_title, rows=rows, cols=cols))
        self._spreadsheets[spreadsheet.id] = spreadsheet
        self._record_change(spreadsheet.id)
        return spreadsheet

    # ---- Sheets API ---------------------------------------------------------------------------

    def api_get_spreadsheet(self, spreadsheet_id: str, fields: str | None) -> dict[str, Any]:
        """``spreadsheets.get`` (metadata only)."""
        with self._lock:
            return apply_fields(self._render_spreadsheet(self._get(spreadsheet_id)), _google_fields(fields))

    def api_create_spreadsheet(self, body: Any) -> dict[str, Any]:
        """``spreadsheets.create``."""
        body = body if isinstance(body, dict) else {}
        title = str((body.get("properties") or {}).get("title") or "Untitled spreadsheet")
        sheets: list[tuple[str, int, int]] = []
        for index, sheet in enumerate(body.get("sheets") or []):
            props = (sheet or {}).get("properties") or {}
            grid = props.get("gridProperties") or {}
            sheets.append(
                (
                    str(props.get("title") or f"Sheet{index + 1}"),
                    int(grid.get("rowCount") or DEFAULT_ROWS),
                    int(grid.get("columnCount") or DEFAULT_COLS),
                )
            )
        if len({t for t, _, _ in sheets}) != len(sheets):
            raise bad_request("Duplicate sheet titles")
        with self._lock:
            spreadsheet = self._new_spreadsheet(title, sheets)
            self._mutated()
            return self._render_spreadsheet(spreadsheet)

    def api_values_get(self, spreadsheet_id: str, range_text: str, *, render: str, major: str) -> dict[str, Any]:
        """``spreadsheets.values.get``."""
        with self._lock:
            return self._read(self._get(spreadsheet_id), range_text, render=render, major=major)

    def api_values_batch_get(
        self, spreadsheet_id: str, ranges: list[str], *, render: str, major: str
    ) -> dict[str, Any]:
        """``spreadsheets.values.batchGet``: all ranges or an error, like the API."""
        with self._lock:
            spreadsheet = self._get(spreadsheet_id)
            value_ranges = [self._read(spreadsheet, r, render=render, major=major) for r in ranges]
            return {"spreadsheetId": spreadsheet_id, "valueRanges": value_ranges}

    def api_values_update(
        self,
        spreadsheet_id: str,
        range_text: str,
        body: Any,
        *,
        input_option: Any,
        include_values: bool = False,
        response_render: str = "FORMATTED_VALUE",
    ) -> dict[str, Any]:
        """``spreadsheets.values.update``: writes from the range's top-left cell."""
        option = self._input_option(input_option)
        body = body if isinstance(body, dict) else {}
        if body.get("range") and body["range"] != range_text:
            raise bad_request(f"Requested range [{body['range']}] must match the range in the URL [{range_text}]")
        with self._lock:
            spreadsheet = self._get(spreadsheet_id)
            sheet, assignments, reply = self._plan_write(
                spreadsheet,
                range_text,
                body.get("values"),
                option=option,
                major=self.major_option(body.get("majorDimension")),
            )
            self._apply(sheet, assignments)
            self._touch(spreadsheet)
            if include_values and "updatedRange" in reply:
                reply["updatedData"] = self._read(
                    spreadsheet, reply["updatedRange"], render=response_render, major="ROWS"
                )
            return reply

    def api_values_batch_update(self, spreadsheet_id: str, body: Any) -> dict[str, Any]:
        """``spreadsheets.values.batchUpdate``: every range is validated before any is written."""
        if not isinstance(body, dict):
            raise bad_request("Invalid JSON payload: expected an object")
        option = self._input_option(body.get("valueInputOption"))
        data = body.get("data") or []
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise bad_request("Invalid 'data': expected a list of ValueRange objects")
        include_values = bool(body.get("includeValuesInResponse"))
        response_render = self.render_option(body.get("responseValueRenderOption"))
        with self._lock:
            spreadsheet = self._get(spreadsheet_id)
            plans = [
                self._plan_write(
                    spreadsheet,
                    item.get("range"),
                    item.get("values"),
                    option=option,
                    major=self.major_option(item.get("majorDimension")),
                )
                for item in data
            ]
            for sheet, assignments, _ in plans:
                self._apply(sheet, assignments)
            replies = [reply for _, _, reply in plans]
            if include_values:
                for reply in replies:
                    if "updatedRange" in reply:
                        reply["updatedData"] = self._read(
                            spreadsheet, reply["updatedRange"], render=response_render, major="ROWS"
                        )
            if data:
                self._touch(spreadsheet)
            written = [r for r in replies if "updatedRange" in r]
            return {
                "spreadsheetId": spreadsheet_id,
                "totalUpdatedRows": sum(r["updatedRows"] for r in written),
                "totalUpdatedColumns": sum(r["updatedColumns"] for r in written),
                "totalUpdatedCells": sum(r["updatedCells"] for r in written),
                "totalUpdatedSheets": len({p[0].sheet_id for p in plans if "updatedRange" in p[2]}),
                "responses": replies,
            }

    def _clear(self, spreadsheet: _Spreadsheet, range_text: str) -> tuple[_Sheet, tuple[int, int, int, int]]:
        sheet, ref = self._sheet_and_ref(spreadsheet, range_text)
        return sheet, self._bounds(sheet, ref)

    def api_values_clear(self, spreadsheet_id: str, range_text: str) -> dict[str, Any]:
        """``spreadsheets.values.clear``."""
        return self.api_values_batch_clear(spreadsheet_id, [range_text], single=True)

    def api_values_batch_clear(self, spreadsheet_id: str, ranges: Any, *, single: bool = False) -> dict[str, Any]:
        """``spreadsheets.values.batchClear`` (and ``clear`` with ``single=True``)."""
        if not isinstance(ranges, list) or not all(isinstance(r, str) for r in ranges):
            raise bad_request("Invalid 'ranges': expected a list of strings")
        with self._lock:
            spreadsheet = self._get(spreadsheet_id)
            targets = [self._clear(spreadsheet, r) for r in ranges]
            cleared = []
            for sheet, (r1, c1, r2, c2) in targets:
                for cell in [cell for cell in sheet.cells if r1 <= cell[0] <= r2 and c1 <= cell[1] <= c2]:
                    del sheet.cells[cell]
                cleared.append(format_range(sheet.title, r1, c1, r2, c2))
            if targets:
                self._touch(spreadsheet)
            if single:
                return {"spreadsheetId": spreadsheet_id, "clearedRange": cleared[0]}
            return {"spreadsheetId": spreadsheet_id, "clearedRanges": cleared}

    def api_batch_update(self, spreadsheet_id: str, body: Any) -> dict[str, Any]:
        """``spreadsheets.batchUpdate``: addSheet, deleteSheet, updateSheetProperties, appendDimension,
        updateSpreadsheetProperties; all-or-nothing."""
        if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
            raise bad_request("Invalid JSON payload: 'requests' must be a list")
        with self._lock:
            original = self._get(spreadsheet_id)
            work = copy.deepcopy(original)
            replies = [self._apply_request(work, request, index) for index, request in enumerate(body["requests"])]
            if work.cell_count() > MAX_CELLS:
                raise bad_request(
                    f"This action would increase the number of cells in the workbook above the limit of "
                    f"{MAX_CELLS} cells."
                )
            self._spreadsheets[spreadsheet_id] = work
            if body["requests"]:
                self._touch(work)
            return {"spreadsheetId": spreadsheet_id, "replies": replies}

    def _apply_request(self, spreadsheet: _Spreadsheet, request: Any, index: int) -> dict[str, Any]:
        if not isinstance(request, dict) or len(request) != 1:
            raise bad_request(f"Invalid requests[{index}]: exactly one request kind expected")
        kind, spec = next(iter(request.items()))
        spec = spec if isinstance(spec, dict) else {}
        if kind == "addSheet":
            props = spec.get("properties") or {}
            grid = props.get("gridProperties") or {}
            title = str(props.get("title") or f"Sheet{len(spreadsheet.sheets) + 1}")
            if any(s.title == title for s in spreadsheet.sheets):
                raise bad_request(
                    f'Invalid requests[{index}].addSheet: A sheet with the name "{title}" already exists. '
                    "Please enter another name."
                )
            sheet_id = props.get("sheetId")
            if sheet_id is None:
                sheet_id = self._new_sheet_id(spreadsheet)
            elif any(s.sheet_id == int(sheet_id) for s in spreadsheet.sheets):
                raise bad_request(f"Invalid requests[{index}].addSheet: A sheet with id {sheet_id} already exists.")
            sheet = _Sheet(
                sheet_id=int(sheet_id),
                title=title,
                rows=self._positive(grid.get("rowCount", DEFAULT_ROWS), index, "rowCount"),
                cols=self._positive(grid.get("columnCount", DEFAULT_COLS), index, "columnCount"),
            )
            position = props.get("index")
            position = (
                len(spreadsheet.sheets) if position is None else max(0, min(int(position), len(spreadsheet.sheets)))
            )
            spreadsheet.sheets.insert(position, sheet)
            return {"addSheet": {"properties": sheet.properties(position)}}
        if kind == "deleteSheet":
            sheet = self._sheet_by_id(spreadsheet, spec.get("sheetId"), index)
            if len(spreadsheet.sheets) == 1:
                raise bad_request(
                    f"Invalid requests[{index}].deleteSheet: You can't remove all the sheets in a document."
                )
            spreadsheet.sheets.remove(sheet)
            return {}
        if kind == "updateSheetProperties":
            props = spec.get("properties") or {}
            mask = spec.get("fields")
            if not mask:
                raise bad_request(
                    f"Invalid requests[{index}].updateSheetProperties: You must specify which fields to update."
                )
            sheet = self._sheet_by_id(spreadsheet, props.get("sheetId"), index)
            paths = {p.strip().replace("/", ".") for p in str(mask).split(",") if p.strip()}
            everything = "*" in paths
            grid = props.get("gridProperties") or {}
            if everything or "title" in paths:
                title = props.get("title")
                if title and any(s.title == title and s is not sheet for s in spreadsheet.sheets):
                    raise bad_request(
                        f'Invalid requests[{index}].updateSheetProperties: A sheet with the name "{title}" already '
                        "exists. Please enter another name."
                    )
                if title:
                    sheet.title = str(title)
            if everything or "gridProperties" in paths or "gridProperties.rowCount" in paths:
                if "rowCount" in grid:
                    self._resize(sheet, rows=self._positive(grid["rowCount"], index, "rowCount"))
            if everything or "gridProperties" in paths or "gridProperties.columnCount" in paths:
                if "columnCount" in grid:
                    self._resize(sheet, cols=self._positive(grid["columnCount"], index, "columnCount"))
            if (everything or "index" in paths) and props.get("index") is not None:
                spreadsheet.sheets.remove(sheet)
                spreadsheet.sheets.insert(max(0, min(int(props["index"]), len(spreadsheet.sheets))), sheet)
            return {}
        if kind == "appendDimension":
            sheet = self._sheet_by_id(spreadsheet, spec.get("sheetId"), index)
            length = self._positive(spec.get("length"), index, "length")
            if spec.get("dimension") == "ROWS":
                sheet.rows += length
            elif spec.get("dimension") == "COLUMNS":
                sheet.cols += length
            else:
                raise bad_request(f"Invalid requests[{index}].appendDimension: dimension must be ROWS or COLUMNS")
            return {}
        if kind == "updateSpreadsheetProperties":
            props = spec.get("properties") or {}
            mask = str(spec.get("fields") or "")
            if ("title" in mask or mask == "*") and props.get("title"):
                spreadsheet.title = str(props["title"])
            return {}
        raise bad_request(f"Invalid requests[{index}]: the emulator does not support '{kind}'")

    @staticmethod
    def _positive(value: Any, index: int, name: str) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError) as exc:
            raise bad_request(f"Invalid requests[{index}]: {name} must be an integer") from exc
        if number < 1:
            raise bad_request(f"Invalid requests[{index}]: {name} must be at least 1")
        return number

    @staticmethod
    def _sheet_by_id(spreadsheet: _Spreadsheet, sheet_id: Any, index: int) -> _Sheet:
        for sheet in spreadsheet.sheets:
            if sheet_id is not None and str(sheet.sheet_id) == str(sheet_id):
                return sheet
        raise bad_request(f"Invalid requests[{index}]: No grid with id: {sheet_id}")

    @staticmethod
    def _resize(sheet: _Sheet, *, rows: int | None = None, cols: int | None = None) -> None:
        """Shrinking drops the cells that fall outside the grid, like Sheets."""
        if rows is not None:
            sheet.rows = rows
        if cols is not None:
            sheet.cols = cols
        for cell in [cell for cell in sheet.cells if cell[0] > sheet.rows or cell[1] > sheet.cols]:
            del sheet.cells[cell]

    # ---- Drive API ----------------------------------------------------------------------------

    def api_drive_get(self, file_id: str, fields: str | None) -> dict[str, Any]:
        """``files.get``: Drive's default field set unless ``fields`` asks for more."""
        tree = _google_fields(fields) if fields else {name: None for name in DRIVE_DEFAULT_FIELDS}
        with self._lock:
            return apply_fields(self._render_drive(self._get(file_id, drive=True)), tree)

    def api_drive_list(self, query: str | None, fields: str | None) -> dict[str, Any]:
        """``files.list``: spreadsheets, optionally filtered by ``name = '...'`` and ``trashed = ...``."""
        with self._lock:
            files = [self._render_drive(s) for s in self._spreadsheets.values()]
        q = query or ""
        name = re.search(r"name\s*=\s*(['\"])(.*?)\1", q)
        if name:
            files = [f for f in files if f["name"] == name.group(2)]
        trashed = re.search(r"trashed\s*=\s*(true|false)", q)
        if trashed:
            files = [f for f in files if f["trashed"] is (trashed.group(1) == "true")]
        tree = _google_fields(fields) if fields else None
        if tree is None:
            files = [apply_fields(f, {n: None for n in DRIVE_DEFAULT_FIELDS}) for f in files]
        return apply_fields({"kind": "drive#fileList", "incompleteSearch": False, "files": files}, tree)

    def api_drive_create(self, body: Any) -> dict[str, Any]:
        """``files.create`` of an empty spreadsheet (what ``gspread.Client.create`` sends)."""
        body = body if isinstance(body, dict) else {}
        if body.get("mimeType") != SHEETS_MIME_TYPE:
            raise bad_request(f"The emulator only creates {SHEETS_MIME_TYPE} files")
        with self._lock:
            spreadsheet = self._new_spreadsheet(str(body.get("name") or "Untitled spreadsheet"), [])
            self._mutated()
            return apply_fields(self._render_drive(spreadsheet), {n: None for n in DRIVE_DEFAULT_FIELDS})

    def api_drive_update(self, file_id: str, body: Any) -> dict[str, Any]:
        """``files.update``: ``name`` and ``trashed``."""
        body = body if isinstance(body, dict) else {}
        with self._lock:
            spreadsheet = self._get(file_id, drive=True)
            if "name" in body and body["name"]:
                spreadsheet.title = str(body["name"])
            if "trashed" in body:
                spreadsheet.trashed = bool(body["trashed"])
            self._touch(spreadsheet)
            return apply_fields(self._render_drive(spreadsheet), {n: None for n in DRIVE_DEFAULT_FIELDS})

    def api_drive_delete(self, file_id: str) -> None:
        """``files.delete``: permanent."""
        self.delete_spreadsheet(file_id, drive=True)

    def start_page_token(self) -> str:
        """The token for "changes from now on"."""
        with self._lock:
            return str(self._next_seq)

    def api_changes(self, page_token: str | None, page_size: int, fields: str | None) -> dict[str, Any]:
        """``changes.list``: each file changed since the token, once, oldest change first."""
        with self._lock:
            try:
                start = int(page_token or "")
            except ValueError:
                start = 0
            if start < 1 or start > self._next_seq:
                raise bad_request(f"Invalid Value: pageToken {page_token!r}")
            pending = sorted((c for c in self._changes.values() if c["seq"] >= start), key=lambda c: c["seq"])
            page, rest = pending[:page_size], pending[page_size:]
            changes = []
            for change in page:
                entry: dict[str, Any] = {
                    "kind": "drive#change",
                    "changeType": "file",
                    "fileId": change["file_id"],
                    "time": change["time"],
                    "removed": change["removed"],
                }
                spreadsheet = self._spreadsheets.get(change["file_id"])
                if spreadsheet is not None and not change["removed"]:
                    entry["file"] = self._render_drive(spreadsheet)
                changes.append(entry)
            reply: dict[str, Any] = {"kind": "drive#changeList", "changes": changes}
            if rest:
                reply["nextPageToken"] = str(rest[0]["seq"])
            else:
                reply["newStartPageToken"] = str(self._next_seq)
        return apply_fields(reply, _google_fields(fields))

    # ---- helpers for tests and the control endpoints ------------------------------------------

    def create_spreadsheet(
        self,
        title: str,
        sheets: Mapping[str, list[list[Any]]] | None = None,
        *,
        spreadsheet_id: str | None = None,
        rows: int = DEFAULT_ROWS,
        cols: int = DEFAULT_COLS,
    ) -> str:
        """Add a spreadsheet (``{"Sheet1": [[...], ...]}``, values stored as given) and return its id.

        Each grid is ``rows`` x ``cols``, or larger when the values need it.
        """
        spec = {
            "id": spreadsheet_id,
            "title": title,
            "sheets": [
                {
                    "title": name,
                    "values": values,
                    "rows": max(rows, len(values)),
                    "cols": max(cols, max((len(r) for r in values), default=0)),
                }
                for name, values in (sheets or {"Sheet1": []}).items()
            ],
        }
        with self._lock:
            if spreadsheet_id and (spreadsheet_id in self._spreadsheets or spreadsheet_id in self._deleted):
                raise ValueError(f"spreadsheet id {spreadsheet_id} is taken")
            spreadsheet = self._spreadsheet_from_spec(spec, now=iso_ms(self._clock()))
            self._spreadsheets[spreadsheet.id] = spreadsheet
            self._record_change(spreadsheet.id)
            self._mutated()
            return spreadsheet.id

    def values(self, spreadsheet_id: str, sheet: str) -> list[list[Any]]:
        """A sheet's stored values (numbers as numbers), trimmed the way the API trims them."""
        with self._lock:
            spreadsheet = self._get(spreadsheet_id)
            reply = self._read(spreadsheet, quote_sheet(sheet), render="UNFORMATTED_VALUE", major="ROWS")
            return reply.get("values", [])

    def set_values(
        self, spreadsheet_id: str, range_text: str, values: list[list[Any]], *, value_input_option: str = "USER_ENTERED"
    ) -> None:
        """Simulate a person editing cells in the browser: writes, bumps the version, records a change."""
        with self._lock:
            spreadsheet = self._get(spreadsheet_id)
            sheet, assignments, _ = self._plan_write(
                spreadsheet, range_text, values, option=value_input_option, major="ROWS"
            )
            self._apply(sheet, assignments)
            self._touch(spreadsheet)

    def trash_spreadsheet(self, spreadsheet_id: str, *, trashed: bool = True) -> None:
        """Move a spreadsheet to (or out of) the Drive trash; the Sheets API still serves it."""
        with self._lock:
            spreadsheet = self._get(spreadsheet_id, drive=True)
            spreadsheet.trashed = trashed
            self._touch(spreadsheet)

    def delete_spreadsheet(self, spreadsheet_id: str, *, drive: bool = False) -> None:
        """Delete a spreadsheet for good: both APIs answer 404 from now on; the feed reports it removed."""
        with self._lock:
            self._get(spreadsheet_id, drive=drive)
            del self._spreadsheets[spreadsheet_id]
            self._deleted.add(spreadsheet_id)
            self._record_change(spreadsheet_id, removed=True)
            self._mutated()

    def version(self, spreadsheet_id: str) -> int:
        """The Drive version of a spreadsheet."""
        with self._lock:
            return self._get(spreadsheet_id).version

    def drive_file(self, spreadsheet_id: str) -> dict[str, Any]:
        """A spreadsheet's full Drive metadata."""
        with self._lock:
            return self._render_drive(self._get(spreadsheet_id))

    def sheet_size(self, spreadsheet_id: str, sheet: str) -> tuple[int, int]:
        """A sheet's grid as (rows, columns)."""
        with self._lock:
            found, _ = self._sheet_and_ref(self._get(spreadsheet_id), quote_sheet(sheet))
            return found.rows, found.cols

    def spreadsheet_ids(self) -> list[str]:
        """Ids of every live spreadsheet (trashed ones included), in creation order."""
        with self._lock:
            return list(self._spreadsheets)

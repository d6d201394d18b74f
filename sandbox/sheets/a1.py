"""A1 notation as the Sheets API reads it, for the emulator.

Kept apart from ``connectors.sheets`` on purpose: the emulator is a second, independent reading
of the notation, so a mistake in one is caught by tests that run the other against it.

Forms accepted (case-insensitive, ``$`` ignored): ``Sheet1``, ``'My sheet'``, ``Sheet1!B2``,
``Sheet1!A1:C10``, ``A1:B2`` (first sheet), open ranges ``A:C``, ``A2:Z``, ``2:5``. A name that
parses as a range (``A1``, ``B:C``) is a range unless quoted, as in Sheets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_COLUMN_LETTERS = 3  # ZZZ = 18278 columns, the Sheets maximum
_ENDPOINT = re.compile(r"^\$?([A-Za-z]{0,3})\$?(\d*)$")
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CELL_LIKE = re.compile(r"^([A-Za-z]{1,3}\d+|[Rr]\d*[Cc]\d*)$")


@dataclass(frozen=True)
class A1Ref:
    """A parsed range; ``None`` bounds are open (whole rows or columns, or the whole sheet)."""

    sheet: str | None
    start_row: int | None = None
    start_col: int | None = None
    end_row: int | None = None
    end_col: int | None = None
    single_cell: bool = False


def column_number(letters: str) -> int:
    """``A`` -> 1, ``Z`` -> 26, ``AA`` -> 27."""
    number = 0
    for ch in letters.upper():
        number = number * 26 + (ord(ch) - ord("A") + 1)
    return number


def column_letters(number: int) -> str:
    """1 -> ``A``, 27 -> ``AA``."""
    if number < 1:
        raise ValueError("column numbers start at 1")
    letters = ""
    while number:
        number, rem = divmod(number - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def quote_sheet(name: str) -> str:
    """A sheet name as Sheets writes it in a range: bare when plain, else quoted with ``''`` escapes."""
    if _PLAIN_NAME.match(name) and not _CELL_LIKE.match(name):
        return name
    return "'" + name.replace("'", "''") + "'"


def format_range(sheet: str, r1: int, c1: int, r2: int, c2: int) -> str:
    """``Sheet1!A1:C10`` (``Sheet1!B2`` for a single cell)."""
    start = f"{column_letters(c1)}{r1}"
    if (r1, c1) == (r2, c2):
        return f"{quote_sheet(sheet)}!{start}"
    return f"{quote_sheet(sheet)}!{start}:{column_letters(c2)}{r2}"


def _endpoint(text: str) -> tuple[int | None, int | None] | None:
    match = _ENDPOINT.match(text.strip())
    if not match or not (match.group(1) or match.group(2)):
        return None
    letters, digits = match.group(1), match.group(2)
    row = int(digits) if digits else None
    if row == 0:
        return None
    return row, (column_number(letters) if letters else None)


def _parse_cells(text: str) -> A1Ref | None:
    """The part after ``!`` (or a bare range); None when it is not a range."""
    if ":" not in text:
        point = _endpoint(text)
        if point is None or point[0] is None or point[1] is None:
            return None  # a lone column or row number is not a range
        return A1Ref(None, point[0], point[1], point[0], point[1], single_cell=True)
    left, _, right = text.partition(":")
    start, end = _endpoint(left), _endpoint(right)
    if start is None or end is None:
        return None
    (r1, c1), (r2, c2) = start, end
    # A row on one side only ("A2:Z", "A:B5") is fine; a column on one side only ("A2:5") is not.
    if (c1 is None) != (c2 is None):
        return None
    if c1 is None and (r1 is None or r2 is None):
        return None
    if r1 is not None and r2 is not None and r1 > r2:
        r1, r2 = r2, r1
    if c1 is not None and c2 is not None and c1 > c2:
        c1, c2 = c2, c1
    return A1Ref(None, r1, c1, r2, c2)


def parse_a1(text: str) -> A1Ref:
    """Parse a range; ``ValueError`` with Sheets' wording when it is not one."""
    raw = text.strip()
    if not raw:
        raise ValueError(f"Unable to parse range: {text}")
    if raw.startswith("'"):
        name_chars: list[str] = []
        pos = 1
        while True:
            if pos >= len(raw):
                raise ValueError(f"Unable to parse range: {text}")
            ch = raw[pos]
            if ch == "'":
                if raw[pos + 1 : pos + 2] == "'":
                    name_chars.append("'")
                    pos += 2
                    continue
                pos += 1
                break
            name_chars.append(ch)
            pos += 1
        name = "".join(name_chars)
        rest = raw[pos:]
        if not rest:
            return A1Ref(name)
        if not rest.startswith("!"):
            raise ValueError(f"Unable to parse range: {text}")
        cells = _parse_cells(rest[1:])
        if cells is None:
            raise ValueError(f"Unable to parse range: {text}")
        return A1Ref(name, cells.start_row, cells.start_col, cells.end_row, cells.end_col, cells.single_cell)
    if "!" in raw:
        name, _, rest = raw.partition("!")
        cells = _parse_cells(rest)
        if not name or cells is None:
            raise ValueError(f"Unable to parse range: {text}")
        return A1Ref(name, cells.start_row, cells.start_col, cells.end_row, cells.end_col, cells.single_cell)
    cells = _parse_cells(raw)
    if cells is not None:
        return cells
    return A1Ref(raw)

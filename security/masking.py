"""Masking by clearance: a value above the reader's clearance is replaced by a marker (issue 12).

The marker names the level (``[restricted]``) and nothing of the value, not its length; ``None`` stays ``None``
(an absent value reveals nothing). A *reveal* (``security.reveal``) lets a user read the values of one record
in clear for a limited time; callers pass ``revealed=True`` when :func:`security.reveal.reveal_active` says so.
"""

from __future__ import annotations

from typing import Any

from .classification import column_level, level_rank
from .clearance import cleared_for


def masked_marker(level: str) -> str:
    return f"[{level}]"


def is_masked(value: Any) -> bool:
    return isinstance(value, str) and value in {
        masked_marker(lvl) for lvl in ("confidential", "restricted", "internal", "public")
    }


def mask_value(value: Any, level: str, user: Any, *, revealed: bool = False) -> Any:
    """``value`` if ``user`` is cleared for ``level`` (or it is revealed to them), else the level's marker."""
    if value is None or revealed or cleared_for(user, level):
        return value
    return masked_marker(level)


def mask_for_clearance(value: Any, level: str, clearance: str, *, revealed: bool = False) -> Any:
    """:func:`mask_value` when the reader's clearance is already known (e.g. annotated on a queryset)."""
    if value is None or revealed or level_rank(clearance) >= level_rank(level):
        return value
    return masked_marker(level)


def mask_row(dataset: str, row: dict[str, Any], user: Any, *, revealed: bool = False) -> dict[str, Any]:
    """A copy of ``row`` (column -> value of ``dataset``) with each value above ``user``'s clearance masked."""
    return {
        column: mask_value(value, column_level(dataset, column), user, revealed=revealed)
        for column, value in row.items()
    }


def mask_row_for_clearance(dataset: str, row: dict[str, Any], clearance: str) -> dict[str, Any]:
    """:func:`mask_row` for a reader's known clearance (one e-mail body per clearance, e.g.)."""
    return {
        column: mask_for_clearance(value, column_level(dataset, column), clearance) for column, value in row.items()
    }


def mask_rows(dataset: str, rows, user: Any) -> list[dict[str, Any]]:
    """:func:`mask_row` for many rows (the clearance is looked up once per user)."""
    return [mask_row(dataset, row, user) for row in rows]

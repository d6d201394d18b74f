"""Reads of the classification registry, for the admin page and the API (issue 12)."""

from __future__ import annotations

from typing import Any

from .classification import DATASETS, column_level, dataset_level
from .clearance import ROLE_CLEARANCE, clearance_for, role_clearance


def classification_datasets() -> list[dict[str, Any]]:
    """Every declared dataset: name, description, default and overall level, columns (level, personal)."""
    return [
        {
            "dataset": name,
            "description": declared.description,
            "default": declared.default,
            "level": dataset_level(name),
            "columns": [
                {
                    "column": column,
                    "level": column_level(name, column),
                    "personal": cls.personal,
                    "description": cls.description,
                }
                for column, cls in declared.columns.items()
            ],
        }
        for name, declared in sorted(DATASETS.items())
    ]


def classification_table(*, user: Any) -> dict[str, Any]:
    """The classification page's content: datasets, role clearances and the reader's own clearance."""
    return {
        "datasets": classification_datasets(),
        "clearances": [{"role": role, "level": role_clearance(role)} for role in ROLE_CLEARANCE],
        "your_clearance": clearance_for(user),
    }

"""Data classification: how sensitive each dataset's columns are (issue 12).

Four levels, from least to most sensitive: ``public``, ``internal``, ``confidential``, ``restricted``. A dataset
is a BigQuery table (``sales.order_lines``), a sync source or target, or one of the project's own models
(``auth.user``, ``quality.quarantinedrow``: ``app_label.model``). Each declares a default level and, per column,
a level and whether the column is personal data. A column not declared takes its dataset's default; a dataset not
declared is ``internal`` (``SECURITY_DEFAULT_LEVEL``).

The registry is code (reviewed like code). Other apps add their datasets with :func:`dataset_declare` from their
``AppConfig.ready()``; ``SECURITY_CLASSIFICATION`` (settings) can raise or lower a column's level in one
deployment without a code change: ``{"sales.order_lines": {"channel": "confidential"}}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LEVELS = ("public", "internal", "confidential", "restricted")
PUBLIC, INTERNAL, CONFIDENTIAL, RESTRICTED = LEVELS


class ClassificationError(ValueError):
    """An unknown level or a malformed declaration."""


def level_rank(level: str) -> int:
    """0 for public .. 3 for restricted; a clear error for anything else."""
    try:
        return LEVELS.index(level)
    except ValueError:
        raise ClassificationError(f"unknown classification level {level!r}: use one of {', '.join(LEVELS)}") from None


def level_max(levels) -> str:
    """The most sensitive of ``levels`` (``public`` for none)."""
    return max(levels, key=level_rank, default=PUBLIC)


@dataclass(frozen=True)
class ColumnClass:
    level: str
    personal: bool = False
    description: str = ""


@dataclass(frozen=True)
class DatasetClass:
    name: str
    default: str = INTERNAL
    columns: dict[str, ColumnClass] = field(default_factory=dict)
    description: str = ""


DATASETS: dict[str, DatasetClass] = {}


def dataset_declare(name: str, *, default: str = INTERNAL, description: str = "", **columns: ColumnClass) -> None:
    """Declare (or redeclare) a dataset's classification."""
    level_rank(default)
    for column, cls in columns.items():
        if not isinstance(cls, ColumnClass):
            raise ClassificationError(f"{name}.{column}: expected a ColumnClass, got {cls!r}")
        level_rank(cls.level)
    DATASETS[name] = DatasetClass(name=name, default=default, columns=dict(columns), description=description)


def _override(dataset: str, column: str) -> str | None:
    from django.conf import settings

    overrides = getattr(settings, "SECURITY_CLASSIFICATION", None) or {}
    level = (overrides.get(dataset) or {}).get(column)
    if level is not None:
        level_rank(level)
    return level


def _default_level() -> str:
    from django.conf import settings

    return getattr(settings, "SECURITY_DEFAULT_LEVEL", INTERNAL)


def column_level(dataset: str, column: str) -> str:
    """The level of ``dataset.column``: a settings override, else its declaration, else the dataset's default."""
    override = _override(dataset, column)
    if override is not None:
        return override
    declared = DATASETS.get(dataset)
    if declared is None:
        return _default_level()
    cls = declared.columns.get(column)
    return cls.level if cls is not None else declared.default


def dataset_columns(dataset: str) -> dict[str, str]:
    """Every declared column of ``dataset`` with its effective level (overrides applied)."""
    declared = DATASETS.get(dataset)
    if declared is None:
        return {}
    return {column: column_level(dataset, column) for column in declared.columns}


def personal_columns(dataset: str) -> list[str]:
    """The columns of ``dataset`` declared as personal data, in declaration order."""
    declared = DATASETS.get(dataset)
    return [c for c, cls in declared.columns.items() if cls.personal] if declared else []


def dataset_level(dataset: str) -> str:
    """The most sensitive level of any of ``dataset``'s columns (or its default)."""
    return level_max([_known_default(dataset), *dataset_columns(dataset).values()])


def _known_default(dataset: str) -> str:
    declared = DATASETS.get(dataset)
    return declared.default if declared else _default_level()


def rows_level(dataset: str, columns) -> str:
    """The most sensitive level among ``columns`` of ``dataset`` (what sending them somewhere exposes)."""
    return level_max(column_level(dataset, c) for c in columns)


# --- the defaults ---------------------------------------------------------------------------------------------
_I = ColumnClass(INTERNAL)
dataset_declare(
    "sales.order_lines",
    default=INTERNAL,
    description="BigQuery: one row per order line (the sales report's source)",
    order_id=_I, line_no=_I, order_ts=_I, region=_I, country=_I, sku=_I, product_category=_I, quantity=_I,
    unit_price=_I, discount=_I, revenue=ColumnClass(INTERNAL, description="line revenue"), currency=_I, channel=_I,
    customer_id=ColumnClass(RESTRICTED, personal=True, description="identifies a customer"),
    customer_email=ColumnClass(RESTRICTED, personal=True, description="a customer's e-mail address"),
)  # fmt: skip
dataset_declare(
    "sales.daily_report",
    default=INTERNAL,
    description="BigQuery/Sheets: revenue and orders per day and region (published aggregate)",
    day=_I, region=_I, orders=_I, revenue=_I,
)  # fmt: skip
dataset_declare(
    "auth.user",
    default=INTERNAL,
    description="this project's user accounts (staff)",
    username=ColumnClass(INTERNAL, personal=True, description="login name, shown in the audit trail"),
    email=ColumnClass(CONFIDENTIAL, personal=True, description="a staff member's e-mail address"),
    first_name=ColumnClass(CONFIDENTIAL, personal=True),
    last_name=ColumnClass(CONFIDENTIAL, personal=True),
    password=ColumnClass(RESTRICTED, description="salted hash"),
)
dataset_declare(
    "quality.quarantinedrow",
    default=INTERNAL,
    description="rows held back by a quality gate: the source row's values (the source dataset's levels apply)",
    data=ColumnClass(RESTRICTED, personal=True, description="the row as read (encrypted at rest)"),
    row_key=ColumnClass(INTERNAL),
)
dataset_declare(
    "quality.checkresult",
    default=INTERNAL,
    description="quality check results: the keys of failing rows (samples)",
    sample_keys=ColumnClass(CONFIDENTIAL, description="keys of failing rows (encrypted at rest)"),
)

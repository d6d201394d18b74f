"""The data-quality engine: a declared check suite run in stages over a polars frame.

A :class:`Suite` names a dataset, its key columns, the schema it expects and an ordered list of steps: row
:class:`Check` s (a vectorised "row fails" predicate with a severity, thresholds and a reason code) and
:class:`Transform` s (cleaning and enrichment: trim/upper-case codes, derived columns). :func:`suite_run` runs
the steps in the design's stage order (schema, format, cleaning, dedup, enrichment, completeness, accuracy,
consistency, validity) and returns a :class:`SuiteResult`: failing counts and sample keys per check, a quality
score, a gate decision (pass / review / fail) with readable reasons, the cleaned rows and the quarantine.

The same declaration runs in the warehouse: every step may carry a BigQuery SQL form next to its polars form
(``Check.sql``, ``Transform.sql``; the helpers below write both), and :mod:`quality.sql` compiles a suite into
one counts scan plus a bounded failing-rows query. A step without a SQL form says so (:class:`NotCompilable`);
the differential test in ``tests/quality/test_sql.py`` holds both paths to the same answers.

How one run works (and why it is fast):

1. Schema stage, on the frame's schema only (no data read): a missing column or a changed type fails the gate
   and stops the run; extra columns are reported and kept. Columns that are entirely null (polars dtype
   ``Null``) are cast to the expected type rather than reported as drift.
2. Every later step is added to ONE lazy query, run in polars' streaming engine (batch by batch, so the batch
   is never held whole): each transform is a ``with_columns``; each check becomes a boolean flag column
   ``__qc_<n>`` computed on the frame as it is at that check's stage (so a validity check sees the cleaned
   codes and the enrichment columns, a format check sees the raw values). Checks of one stage share one
   ``with_columns``. The query keeps only the rows some check flagged (a small share): everything below is
   computed from them, since a row no check flagged adds nothing to a count, a sample or the quarantine.
   Set-based checks (the ones with ``helpers``: dedup compares a sorted key hash, see :func:`duplicate_key`)
   need every row at once, so each runs first in its own narrow query (only the columns it reads) that
   returns the positions of the rows it flags; the main query looks the row's position up. Their few
   candidates are confirmed exactly afterwards (``Check.confirm``), in check order, on the flagged rows.
3. A *removing* check (``Check.removes``: :func:`exact_duplicates`) takes its rows out of the batch: they are
   counted (and sampled) but neither published nor quarantined, and no later check counts them (the engine's
   ``__qc_removed`` column, set exactly after the confirms; a set-based check's confirm reads it).
4. The failing counts of all checks come from sums over the flag columns of the flagged rows; the row keys
   are gathered only for checks that failed, at most ``max_keys_per_check`` each.
5. Rows failing a check of severity error or critical go to the quarantine with every reason code they
   failed (warnings included); warnings and infos stay in ``cleaned``. The cleaned rows come from a second
   streaming pass over the input (the transforms again, less the quarantined and removed rows by position):
   collected into ``cleaned``, or written to a Parquet file with ``suite_run(..., cleaned_sink=path)``, which
   keeps the peak memory near DuckDB's on the same suite at any size (``bench/quality_memory_bench.py``).

The quality score (0..100) is the severity-weighted share of passing row-checks::

    score = 100 * sum_c(w(c) * (rows - failed_c)) / (rows * sum_c w(c))

over the row checks ``c`` of the suite, with weights info 1, warning 2, error 4, critical 8. A schema failure,
an unreadable input or an input without rows scores 0. Schema results are all-or-nothing and not in the sum.

The gate (:class:`GatePolicy`), first rule that applies wins:

1. unreadable input, schema drift, or a check that could not be evaluated -> fail;
2. no rows -> ``policy.empty_decision`` (fail by default);
3. a check over its gate fail threshold, any failing row in a critical check (``fail_on_critical``), or a
   score below ``review_min_score`` -> fail;
4. a check over its gate review threshold, a score below ``pass_min_score``, or a check of severity error
   whose status is fail -> review;
5. otherwise pass (the reasons still list warnings and the rows removing checks took out).

Gate thresholds are per check and explicit: ``Check.gate_review_above`` / ``gate_fail_above`` (failing rows
beyond which the check sends the gate to review / fail), else the policy's ``check_review_above`` /
``check_fail_above`` for checks of severity error and above; each result carries its effect on the gate and
its threshold as text (``review > 0 rows; fail > 1.00%``). A check's *status* is separate: ``fail`` when its
failing rows exceed ``fail_above``, ``warn`` when they exceed ``warn_above``, else ``pass`` (``skipped`` when
its stage did not run or its reference table was not given). Thresholds are a share of rows (0..1), an absolute
count, or both (exceeding either one counts).

Before reading a warehouse table, :func:`contract_check` compares its schema (``tables.get``) with the suite's
:class:`TableContract`: a missing column, another type or a loosened/repeated mode is drift, named with the
column and both types.

The engine is pure Python + polars: no Django. The ``quality`` Django app stores and displays its results.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import operator
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# The streaming engine's Parquet reader decodes this many row groups ahead of the query (polars reads the variable
# at its first Parquet scan in the process). Its default let the decoded row groups pile up in front of a slower
# sink, for 0.5-0.7 GB at 5M order lines; two keep the run near DuckDB's memory at no cost in time on this
# suite (bench/quality_memory_bench.py). Set the variable yourself to choose another value.
os.environ.setdefault("POLARS_ROW_GROUP_PREFETCH_SIZE", "2")

import polars as pl  # noqa: E402 -- after the reader's setting above

logger = logging.getLogger(__name__)

REASON_CODES_COLUMN = "reason_codes"
REMOVED_COLUMN = "__qc_removed"
"""Engine column (both paths): true for rows a removing check (exact duplicates) took out of the batch."""
_FLAG_PREFIX = "__qc_"
_QUARANTINE_FLAG = "__qc_quarantine"
_ROW_INDEX = "__qc_row"  # the row's position in the input: gathers flagged rows, drops them from the cleaned ones
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------------------


class Stage(enum.StrEnum):
    """The stages of a quality run, in the order the design runs them."""

    SCHEMA = "schema"
    FORMAT = "format"
    CLEANING = "cleaning"
    DEDUP = "dedup"
    ENRICHMENT = "enrichment"
    COMPLETENESS = "completeness"
    ACCURACY = "accuracy"
    CONSISTENCY = "consistency"
    VALIDITY = "validity"

    @property
    def rank(self) -> int:
        """Position in the run order (schema is 0)."""
        return _STAGE_ORDER.index(self)


_STAGE_ORDER: tuple[Stage, ...] = tuple(Stage)


class Severity(enum.StrEnum):
    """How much a failing row matters: errors and criticals quarantine the row, criticals can fail the gate."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for info up to 3 for critical."""
        return _SEVERITY_ORDER.index(self)

    @property
    def weight(self) -> int:
        """Weight of this severity in the quality score."""
        return SEVERITY_WEIGHTS[self]

    @property
    def quarantines(self) -> bool:
        """Whether a row failing a check of this severity is quarantined."""
        return self.rank >= Severity.ERROR.rank


_SEVERITY_ORDER: tuple[Severity, ...] = tuple(Severity)
SEVERITY_WEIGHTS: Mapping[Severity, int] = {
    Severity.INFO: 1,
    Severity.WARNING: 2,
    Severity.ERROR: 4,
    Severity.CRITICAL: 8,
}


class CheckStatus(enum.StrEnum):
    """Outcome of one check against its thresholds."""

    PASS = "pass"  # noqa: S105 -- a status, not a password
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


class Decision(enum.StrEnum):
    """The gate's decision: publish, put a review item in the admin queue, or block."""

    PASS = "pass"  # noqa: S105 -- a status, not a password
    REVIEW = "review"
    FAIL = "fail"


class DtypeFamily(enum.StrEnum):
    """A family of polars dtypes a column is expected to belong to (the schema stage compares families)."""

    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    NUMERIC = "numeric"  # integer, float or decimal
    DATETIME = "datetime"
    DATE = "date"
    BOOLEAN = "boolean"

    def matches(self, dtype: pl.DataType) -> bool:
        """Whether ``dtype`` belongs to this family."""
        if self is DtypeFamily.STRING:
            return dtype == pl.String
        if self is DtypeFamily.INTEGER:
            return dtype.is_integer()
        if self is DtypeFamily.FLOAT:
            return dtype.is_float()
        if self is DtypeFamily.NUMERIC:
            return dtype.is_integer() or dtype.is_float() or dtype.is_decimal()
        if self is DtypeFamily.DATETIME:
            return isinstance(dtype, pl.Datetime)
        if self is DtypeFamily.DATE:
            return dtype == pl.Date
        return dtype == pl.Boolean

    @property
    def default_dtype(self) -> pl.DataType:
        """The dtype an all-null column is cast to."""
        return {
            DtypeFamily.STRING: pl.String(),
            DtypeFamily.INTEGER: pl.Int64(),
            DtypeFamily.FLOAT: pl.Float64(),
            DtypeFamily.NUMERIC: pl.Float64(),
            DtypeFamily.DATETIME: pl.Datetime("us", "UTC"),
            DtypeFamily.DATE: pl.Date(),
            DtypeFamily.BOOLEAN: pl.Boolean(),
        }[self]


# --------------------------------------------------------------------------------------------------------------
# Declarations
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckContext:
    """What a check or transform may look at when it builds its expression.

    ``frame`` is the lazy frame as it is at the step's stage (earlier transforms applied); ``schema`` is its
    schema; ``as_of`` is the run's reference time (tz-aware UTC), for checks such as "not in the future".
    """

    as_of: datetime
    schema: pl.Schema
    keys: tuple[str, ...]
    frame: pl.LazyFrame
    references: Mapping[str, pl.DataFrame] = field(default_factory=dict)

    @property
    def as_of_epoch_us(self) -> int:
        """``as_of`` in microseconds since the Unix epoch (compare with ``pl.col(ts).dt.epoch("us")``)."""
        return (self.as_of - _EPOCH) // timedelta(microseconds=1)  # exact: no float rounding

    def reference(self, name: str) -> pl.DataFrame:
        """The reference table ``name`` passed to :func:`suite_run`; :class:`ReferenceUnavailable` otherwise."""
        try:
            return self.references[name]
        except KeyError:
            raise ReferenceUnavailable(name) from None


class ReferenceUnavailable(LookupError):
    """A referential check needs a reference table the in-memory run was not given: the check is skipped."""

    def __init__(self, name: str) -> None:
        super().__init__(f"reference table {name} was not given to the in-memory run")
        self.name = name


@dataclass(frozen=True)
class SqlContext:
    """What a check or transform may use when it writes its BigQuery SQL form (see :mod:`quality.sql`).

    ``row`` is the alias of the layer the expression is evaluated on, ``columns`` the columns that layer has;
    ``as_of`` is the SQL of the run's reference time (a TIMESTAMP query parameter); ``references`` maps a
    reference name to the warehouse table that holds it.
    """

    columns: tuple[str, ...]
    keys: tuple[str, ...]
    as_of: str = "@qc_as_of"
    row: str = "__t"
    references: Mapping[str, str] = field(default_factory=dict)

    def col(self, name: str) -> str:
        """``name`` qualified with the layer's alias (needed inside correlated subqueries)."""
        return f"{self.row}.{sql_ident(name)}"

    def table(self, reference: str) -> str:
        """The quoted warehouse table of a reference (the reference name itself when not mapped)."""
        return sql_table(self.references.get(reference, reference))


def sql_ident(name: str) -> str:
    """A BigQuery quoted identifier."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def sql_table(path: str) -> str:
    """A quoted table path (``dataset.table`` or ``project.dataset.table``)."""
    if not path or any(ch in path for ch in "`\\ \n;"):
        raise ValueError(f"invalid table path {path!r}")
    return f"`{path}`"


def sql_literal(value: Any) -> str:
    """A BigQuery literal for a Python value (str, bool, int, float, None)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        if "'" not in value and "\n" not in value and not value.endswith("\\"):
            return f"r'{value}'" if "\\" in value else f"'{value}'"
        escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
        return f"'{escaped}'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


SqlForm = str | Callable[[SqlContext], str]
"""A BigQuery boolean expression true for failing rows (nulls read as passing), or a callable building it."""


FailPredicate = pl.Expr | Callable[[CheckContext], pl.Expr]
"""A boolean polars expression that is true for failing rows, or a callable building one from the context."""


@dataclass(frozen=True)
class Threshold:
    """A limit on failing rows: a share of rows (0..1), an absolute count, or both (exceeding either counts)."""

    share: float | None = None
    count: int | None = None

    def exceeded(self, failed_count: int, failed_share: float) -> bool:
        """Whether ``failed_count`` rows (``failed_share`` of all rows) go beyond this limit."""
        if self.count is not None and failed_count > self.count:
            return True
        return self.share is not None and failed_share > self.share


ANY_ROW = Threshold(count=0)
"""Exceeded by a single failing row."""


@dataclass(frozen=True, eq=False)
class Check:
    """One declared row check.

    ``fails`` yields true for the rows that fail (nulls count as passing: completeness checks catch nulls).
    The status is ``warn`` above ``warn_above`` and ``fail`` above ``fail_above``; by default any failing
    row warns and more than 1% of rows fails the check.

    Set-based checks may need two more things. ``helpers`` are named expressions computed before the check,
    each in its own ``with_columns`` layer so a later one can read an earlier one (e.g. a key hash, then its
    sorted copy); ``fails`` refers to them by name and they never reach the outputs. ``confirm`` makes a cheap
    over-approximating ``fails`` exact: it receives the rows ``fails`` flagged (all columns, in row order)
    and returns which of them really fail (a boolean Series of the same length).
    """

    name: str
    stage: Stage
    severity: Severity
    description: str
    fails: FailPredicate
    reason_code: str
    warn_above: Threshold = ANY_ROW
    fail_above: Threshold = Threshold(share=0.01)
    helpers: tuple[pl.Expr, ...] = ()
    confirm: Callable[[pl.DataFrame], pl.Series] | None = None
    sql: SqlForm | None = None
    removes: bool = False
    repeats_of: tuple[str, ...] | None = None
    gate_review_above: Threshold | None = None
    gate_fail_above: Threshold | None = None

    def fail_expr(self, ctx: CheckContext) -> pl.Expr:
        """The "row fails" expression for this run, with nulls read as passing."""
        expr = self.fails(ctx) if callable(self.fails) else self.fails
        return expr.fill_null(False)

    def sql_expr(self, ctx: SqlContext) -> str:
        """The check's BigQuery SQL form; :class:`NotCompilable` when it declares none."""
        if self.sql is None:
            raise NotCompilable(f"check {self.name} has no SQL form, so it cannot run in the warehouse")
        return self.sql(ctx) if callable(self.sql) else self.sql

    def gate_thresholds(self, policy: GatePolicy) -> tuple[Threshold | None, Threshold | None]:
        """The failing rows beyond which this check sends the gate to review, and to fail (None: never).

        Declared on the check, else the policy's defaults for checks of severity error and above.
        """
        defaults = self.severity.rank >= Severity.ERROR.rank
        review = self.gate_review_above or (policy.check_review_above if defaults else None)
        fail = self.gate_fail_above or (policy.check_fail_above if defaults else None)
        return review, fail

    def status_for(self, failed_count: int, failed_share: float) -> CheckStatus:
        """Pass, warn or fail for these failing rows."""
        if self.fail_above.exceeded(failed_count, failed_share):
            return CheckStatus.FAIL
        if self.warn_above.exceeded(failed_count, failed_share):
            return CheckStatus.WARN
        return CheckStatus.PASS


TransformExprs = Sequence[pl.Expr] | Callable[[CheckContext], Sequence[pl.Expr]]


@dataclass(frozen=True, eq=False)
class Transform:
    """A cleaning or enrichment step: expressions applied with ``with_columns``, in declaration order."""

    name: str
    stage: Stage
    description: str
    exprs: TransformExprs
    sql: Mapping[str, str] | Callable[[SqlContext], Mapping[str, str]] | None = None

    def build(self, ctx: CheckContext) -> list[pl.Expr]:
        """The expressions for this run."""
        return list(self.exprs(ctx) if callable(self.exprs) else self.exprs)

    def sql_exprs(self, ctx: SqlContext) -> Mapping[str, str]:
        """Output column -> BigQuery SQL expression, in order; :class:`NotCompilable` when not declared."""
        if self.sql is None:
            raise NotCompilable(f"transform {self.name} has no SQL form, so it cannot run in the warehouse")
        return self.sql(ctx) if callable(self.sql) else self.sql

    def outputs(self) -> tuple[str, ...]:
        """Names of the columns this transform writes (needs static expressions)."""
        if callable(self.exprs):
            return ()
        return tuple(expr.meta.output_name() for expr in self.exprs)


Step = Check | Transform


class NotCompilable(ValueError):
    """A suite cannot run in the warehouse: the message names the step without a SQL form and why."""


@dataclass(frozen=True)
class GatePolicy:
    """Score thresholds and rules that turn a run into a gate decision (see the module docstring)."""

    pass_min_score: float = 99.5
    review_min_score: float = 97.0
    fail_on_critical: bool = True
    empty_decision: Decision = Decision.FAIL
    # Defaults of the per-check gate thresholds for checks of severity error and above that declare none.
    check_review_above: Threshold | None = None
    check_fail_above: Threshold | None = None


_TYPE_SYNONYMS = {
    "INTEGER": "INT64",
    "FLOAT": "FLOAT64",
    "BOOLEAN": "BOOL",
    "DECIMAL": "NUMERIC",
    "BIGDECIMAL": "BIGNUMERIC",
    "RECORD": "STRUCT",
}


def bigquery_type(name: str) -> str:
    """BigQuery's standard name for a type (INTEGER -> INT64, FLOAT -> FLOAT64, ...)."""
    upper = name.upper()
    return _TYPE_SYNONYMS.get(upper, upper)


@dataclass(frozen=True)
class ColumnContract:
    """What a warehouse column must be: its BigQuery type and mode (NULLABLE, REQUIRED, REPEATED)."""

    type: str
    mode: str = "NULLABLE"

    def text(self) -> str:
        """``STRING NULLABLE``."""
        return f"{bigquery_type(self.type)} {self.mode.upper()}"


@dataclass(frozen=True)
class TableContract:
    """The warehouse table a suite validates at the source, and the schema it promises.

    The schema is checked with BigQuery's ``tables.get`` before any query runs (:func:`contract_check`).
    """

    table: str
    columns: Mapping[str, ColumnContract]
    partition_field: str | None = None


@dataclass(frozen=True, eq=False)
class Suite:
    """A declared check suite for one dataset.

    ``schema`` maps each expected column to its dtype family; ``steps`` are checks and transforms, run in
    stage order and, within a stage, in declaration order.
    """

    dataset: str
    keys: tuple[str, ...]
    schema: Mapping[str, DtypeFamily]
    steps: tuple[Step, ...]
    policy: GatePolicy = field(default_factory=GatePolicy)
    description: str = ""
    contract: TableContract | None = None

    def __post_init__(self) -> None:
        names = [step.name for step in self.steps]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"suite {self.dataset}: duplicate step names {duplicates}")
        missing_keys = [key for key in self.keys if key not in self.schema]
        if missing_keys:
            raise ValueError(f"suite {self.dataset}: key columns {missing_keys} are not in the schema")

    def ordered_steps(self) -> list[Step]:
        """The steps in run order: by stage, then by declaration order."""
        return sorted(self.steps, key=lambda step: step.stage.rank)

    @property
    def checks(self) -> list[Check]:
        """The row checks, in run order."""
        return [step for step in self.ordered_steps() if isinstance(step, Check)]

    @property
    def transforms(self) -> list[Transform]:
        """The transforms, in run order."""
        return [step for step in self.ordered_steps() if isinstance(step, Transform)]

    def derived_columns(self) -> tuple[str, ...]:
        """Columns the transforms add that are not in the expected schema (e.g. ``order_date``)."""
        return tuple(name for transform in self.transforms for name in transform.outputs() if name not in self.schema)


# --------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check (or of one schema rule) in a run."""

    name: str
    stage: Stage
    severity: Severity
    reason_code: str
    failed_count: int
    failed_share: float
    status: CheckStatus
    sample_keys: list[tuple[Any, ...]]
    message: str
    gate_effect: Decision = Decision.PASS
    threshold: str = ""
    removes: bool = False
    dataset: str = ""


@dataclass(frozen=True)
class Gate:
    """The gate decision and the readable reasons for it (warnings are listed even when it passes)."""

    decision: Decision
    reasons: list[str]


@dataclass(frozen=True)
class SuiteResult:
    """Everything a run produced.

    ``cleaned`` holds the rows after the transforms, without the quarantined ones (empty when the gate could
    not evaluate the rows). ``quarantine`` holds the key columns, ``reason_codes`` (list of str) and then the
    rest of each quarantined row as the pipeline saw it.
    """

    dataset: str
    rows: int
    cleaned: pl.DataFrame
    quarantine: pl.DataFrame
    check_results: list[CheckResult]
    score: float
    gate: Gate
    duration_s: float
    as_of: datetime
    transforms_applied: list[str] = field(default_factory=list)
    rows_removed: int = 0
    quarantined_total: int | None = None  # set when ``quarantine`` holds only the first rows (warehouse path)
    cleaned_path: str | None = None  # set when the cleaned rows were written to this Parquet file (``cleaned_sink``)
    cleaned_sunk_rows: int | None = None  # the rows written to ``cleaned_path``

    @property
    def cleaned_rows(self) -> int:
        """Rows that passed: ``cleaned``'s height, or the rows written to ``cleaned_path``."""
        return self.cleaned.height if self.cleaned_sunk_rows is None else self.cleaned_sunk_rows

    @property
    def rows_quarantined(self) -> int:
        """Rows that failed a check of severity error or above (all of them, even past a capped ``quarantine``)."""
        return self.quarantine.height if self.quarantined_total is None else self.quarantined_total

    def result(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        for check_result in self.check_results:
            if check_result.name == name:
                return check_result
        raise KeyError(name)

    @property
    def failed_counts(self) -> dict[str, int]:
        """Failing rows per check name."""
        return {r.name: r.failed_count for r in self.check_results}


# --------------------------------------------------------------------------------------------------------------
# Declaration helpers (one line per check in a suite)
# --------------------------------------------------------------------------------------------------------------


def _declare(options: Mapping[str, Any], **defaults: Any) -> Check:
    """A Check from a helper's defaults, overridden by the caller's options (name, thresholds, ...)."""
    return Check(**{**defaults, **options})


def not_null(
    column: str, *, stage: Stage = Stage.COMPLETENESS, severity: Severity = Severity.ERROR, **options: Any
) -> Check:
    """A check that ``column`` has a value. ``options`` override any other :class:`Check` field."""
    return _declare(
        options,
        name=f"{column}_not_null",
        stage=stage,
        severity=severity,
        description=f"{column} is not null",
        fails=pl.col(column).is_null(),
        reason_code=f"{column.upper()}_MISSING",
        sql=f"{sql_ident(column)} IS NULL",
    )


def matches(
    column: str, pattern: str, *, stage: Stage = Stage.FORMAT, severity: Severity = Severity.ERROR, **options: Any
) -> Check:
    """A check that non-null values of the string ``column`` match the regex ``pattern``.

    The pattern must mean the same in Rust's regex (polars) and RE2 (BigQuery's ``REGEXP_CONTAINS``): character
    classes, anchors, ``\\s``, ``\\p{..}``, ``(?i)`` and ``(?:..)`` do; look-arounds and back-references do not
    exist in either.
    """
    return _declare(
        options,
        name=f"{column}_format",
        stage=stage,
        severity=severity,
        description=f"{column} matches {pattern}",
        fails=~pl.col(column).str.contains(pattern),
        reason_code=f"{column.upper()}_MALFORMED",
        sql=f"NOT REGEXP_CONTAINS({sql_ident(column)}, {sql_literal(pattern)})",
    )


def in_set(
    column: str,
    values: Sequence[Any],
    *,
    stage: Stage = Stage.VALIDITY,
    severity: Severity = Severity.ERROR,
    **options: Any,
) -> Check:
    """A check that non-null values of ``column`` are among ``values``."""
    literals = ", ".join(sql_literal(v) for v in values)
    return _declare(
        options,
        name=f"{column}_known",
        stage=stage,
        severity=severity,
        description=f"{column} is one of {len(values)} known values",
        fails=~pl.col(column).is_in(list(values)),
        reason_code=f"{column.upper()}_UNKNOWN",
        sql=f"{sql_ident(column)} NOT IN ({literals})" if values else f"{sql_ident(column)} IS NOT NULL",
    )


def duplicate_key(
    keys: Sequence[str],
    *,
    keep: str = "none",
    stage: Stage = Stage.DEDUP,
    severity: Severity = Severity.ERROR,
    **options: Any,
) -> Check:
    """A check for rows sharing the same ``keys``.

    ``keep="none"`` fails every row of a duplicated key: which copy is right is unknown, so none is published
    until a steward decides, and a re-processed copy cannot re-enter beside its twin. ``keep="first"`` fails
    every occurrence after the first; it depends on the row order, which a warehouse table does not have, so it
    has no SQL form. Rows an earlier removing check took out (:func:`exact_duplicates`) do not count.

    How: a 64-bit hash of the key per row, sorted; hashes equal to their sorted neighbour are the duplicated
    ones, and a row fails when its hash is among them. That costs a hash, a sort and a lookup (about a third
    of the time of a grouped ``is_duplicated`` and a fifth of its memory); ``confirm`` then repeats the exact
    test on the few flagged rows, so a hash collision can never fail a row.
    """
    if keep not in ("none", "first"):
        raise ValueError("keep must be 'none' or 'first'")
    name = options.pop("name", "duplicate_" + "_".join(keys))
    helpers, fast = _repeated_hash(name, keys)

    def confirm(candidates: pl.DataFrame) -> pl.Series:
        # The candidates hold every row of each repeated key hash, with the engine's exact removed flag.
        live = ~pl.col(REMOVED_COLUMN)
        group = list(keys)
        counted = live.cast(pl.Int64)
        exact = live & ((counted.sum() if keep == "none" else counted.cum_sum()).over(group) > 1)
        return candidates.select(exact).to_series()

    partition = ", ".join(sql_ident(k) for k in keys)
    removed = sql_ident(REMOVED_COLUMN)
    return _declare(
        options,
        name=name,
        stage=stage,
        severity=severity,
        description=f"no two rows share ({', '.join(keys)})",
        fails=fast,
        reason_code="DUPLICATE_KEY",
        helpers=helpers,
        confirm=confirm,
        sql=(
            f"NOT {removed} AND COUNTIF(NOT {removed}) OVER (PARTITION BY {partition}) > 1" if keep == "none" else None
        ),
        repeats_of=tuple(keys),
    )


def exact_duplicates(
    columns: Sequence[str],
    *,
    stage: Stage = Stage.DEDUP,
    severity: Severity = Severity.WARNING,
    **options: Any,
) -> Check:
    """A removing check: a row equal to an earlier one in every column of ``columns`` is taken out of the batch.

    The copies are counted (and sampled) but neither published nor quarantined: their twin stays and goes
    through every later check. Which copy stays does not matter, as they are equal. Later checks do not see
    the removed rows (``duplicate_key`` then finds only keys whose rows really differ).

    How: a hash of the row, sorted, flags the rows whose hash repeats (cheap); ``confirm`` compares those few
    rows exactly, so a hash collision never removes a row. In SQL: ``ROW_NUMBER()`` over the identical rows.
    """
    columns = tuple(columns)
    name = options.pop("name", "exact_duplicate_rows")
    helpers, fast = _repeated_hash(name, columns)

    def confirm(candidates: pl.DataFrame) -> pl.Series:
        live = ~pl.col(REMOVED_COLUMN)
        return candidates.select(live & ~pl.struct([*columns, REMOVED_COLUMN]).is_first_distinct()).to_series()

    partition = ", ".join(sql_ident(c) for c in (REMOVED_COLUMN, *columns))
    return _declare(
        options,
        name=name,
        stage=stage,
        severity=severity,
        description=f"no row is an exact copy of another ({len(columns)} columns compared)",
        fails=fast,
        reason_code="EXACT_DUPLICATE",
        helpers=helpers,
        confirm=confirm,
        removes=True,
        sql=f"ROW_NUMBER() OVER (PARTITION BY {partition}) > 1",
        repeats_of=columns,
    )


def _repeated_hash(name: str, columns: Sequence[str]) -> tuple[tuple[pl.Expr, ...], pl.Expr]:
    """Helpers (a 64-bit hash of ``columns`` per row, then its sorted copy) and "this row's hash repeats"."""
    key_hash, sorted_hash = f"{_FLAG_PREFIX}{name}_hash", f"{_FLAG_PREFIX}{name}_sorted"
    repeated = pl.col(sorted_hash).filter(pl.col(sorted_hash) == pl.col(sorted_hash).shift(1)).unique()
    helpers = (pl.struct(list(columns)).hash().alias(key_hash), pl.col(key_hash).sort().alias(sorted_hash))
    return helpers, pl.col(key_hash).is_in(repeated.implode())


def has_reference(
    columns: Mapping[str, str],
    reference: str,
    *,
    stage: Stage = Stage.CONSISTENCY,
    severity: Severity = Severity.ERROR,
    **options: Any,
) -> Check:
    """A referential check: the row's ``columns`` (local column -> reference column) match a row of ``reference``.

    In memory the reference table is passed to :func:`suite_run` (``references={name: frame}``); without it the
    check is skipped, saying so. In the warehouse it is a ``NOT EXISTS`` on the reference table. A row with a
    null in any of ``columns`` passes (the completeness checks catch nulls).
    """
    local = list(columns)
    described = ", ".join(f"{c}={r}" for c, r in columns.items())

    def fails(ctx: CheckContext) -> pl.Expr:
        ref = ctx.reference(reference)
        wanted = ref.select(pl.struct([pl.col(r).alias(c) for c, r in columns.items()])).to_series()
        present = functools.reduce(operator.and_, [pl.col(c).is_not_null() for c in local])
        return present & ~pl.struct(local).is_in(wanted.implode())

    def sql(ctx: SqlContext) -> str:
        present = " AND ".join(f"{sql_ident(c)} IS NOT NULL" for c in local)
        match = " AND ".join(f"__r.{sql_ident(r)} = {ctx.col(c)}" for c, r in columns.items())
        return f"{present} AND NOT EXISTS (SELECT 1 FROM {ctx.table(reference)} AS __r WHERE {match})"  # noqa: S608 - identifiers quoted by sql_ident/sql_table

    return _declare(
        options,
        name=f"{'_'.join(local)}_in_{reference.rsplit('.', 1)[-1]}",
        stage=stage,
        severity=severity,
        description=f"({described}) has a row in {reference}",
        fails=fails,
        reason_code=f"{'_'.join(c.upper() for c in local)}_NOT_IN_{reference.rsplit('.', 1)[-1].upper()}",
        sql=sql,
    )


def pair_in_mapping(
    column: str,
    depends_on: str,
    mapping: Mapping[Any, Any],
    *,
    stage: Stage = Stage.CONSISTENCY,
    severity: Severity = Severity.ERROR,
    **options: Any,
) -> Check:
    """A check that ``column`` equals ``mapping[depends_on]``: an unknown ``depends_on`` fails, nulls pass."""
    present = pl.col(column).is_not_null() & pl.col(depends_on).is_not_null()

    def fails(ctx: CheckContext) -> pl.Expr:
        # The (depends_on, column) pair among the mapping's pairs: a struct ``is_in`` streams (polars evaluates
        # it batch by batch), where ``replace_strict`` made the streaming engine hold the whole batch.
        dtype = ctx.schema.get(depends_on)
        keys = pl.Series(depends_on, list(mapping), dtype=dtype, strict=False) if dtype else pl.Series(list(mapping))
        values = pl.Series(column, [None if v is None else str(v) for v in mapping.values()], dtype=pl.String)
        pairs = pl.DataFrame([keys.alias(depends_on), values]).select(pl.struct(depends_on, column)).to_series()
        pair = pl.struct(pl.col(depends_on), pl.col(column).cast(pl.String))
        return present & ~pair.is_in(pairs.implode())

    col, dep = sql_ident(column), sql_ident(depends_on)
    cases = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in mapping.items())
    return _declare(
        options,
        name=f"{column}_matches_{depends_on}",
        stage=stage,
        severity=severity,
        description=f"{column} is the one {depends_on} implies",
        fails=fails,
        reason_code=f"{column.upper()}_{depends_on.upper()}_MISMATCH",
        sql=f"{col} IS NOT NULL AND {dep} IS NOT NULL AND COALESCE({col} != CASE {dep} {cases} END, TRUE)",
    )


def strip_upper(*columns: str, stage: Stage = Stage.CLEANING, name: str = "") -> Transform:
    """A transform that trims and upper-cases code columns.

    Values that need it are found first (a leading or trailing space or a lower-case letter): polars then
    skips the rewrite where none do, which is the common case and halves the cost.
    """
    return Transform(
        name=name or "strip_upper_" + "_".join(columns),
        stage=stage,
        description=f"trim and upper-case {', '.join(columns)}",
        exprs=tuple(
            pl.when(pl.col(c).str.contains(_NEEDS_CLEANING))
            .then(pl.col(c).str.strip_chars().str.to_uppercase())
            .otherwise(pl.col(c))
            .alias(c)
            for c in columns
        ),
        sql={
            c: (
                f"CASE WHEN REGEXP_CONTAINS({sql_ident(c)}, {sql_literal(_NEEDS_CLEANING)}) "
                f"THEN UPPER(REGEXP_REPLACE({sql_ident(c)}, {sql_literal(_OUTER_SPACE)}, '')) ELSE {sql_ident(c)} END"
            )
            for c in columns
        },
    )


_NEEDS_CLEANING = r"^\s|\s$|\p{Ll}"
_OUTER_SPACE = r"^\s+|\s+$"


# --------------------------------------------------------------------------------------------------------------
# Running a suite
# --------------------------------------------------------------------------------------------------------------


def suite_run(
    suite: Suite,
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    max_keys_per_check: int = 1000,
    as_of: datetime | None = None,
    references: Mapping[str, pl.DataFrame] | None = None,
    cleaned_sink: str | os.PathLike[str] | None = None,
) -> SuiteResult:
    """Run ``suite`` on ``frame`` and decide the gate; bad input gives a fail or review gate, never an exception.

    ``as_of`` (default: now) is the reference time of time-based checks; ``references`` the reference tables of
    referential checks (by name: ``{"fx.usd_rates": frame}``), which are skipped, saying so, when theirs is
    missing.

    The checks run in polars' streaming engine and only the rows some check flagged are gathered (counts,
    sample keys, confirms, quarantine), so the batch itself is never held in memory by the checks. The cleaned
    rows are then either collected into ``SuiteResult.cleaned`` (the default: fine for what fits in memory) or,
    with ``cleaned_sink`` (a Parquet path), written there in streaming mode: ``cleaned`` is then an empty
    frame with the cleaned schema, ``cleaned_path`` the file and ``cleaned_rows`` its row count. With a
    ``LazyFrame`` input (e.g. ``pl.scan_parquet``) and a sink, peak memory stays near DuckDB's on the same
    suite whatever the size (``bench/quality_memory_bench.py``); the input is read twice (flags, then the
    cleaned rows), so it must be re-readable (a scan or a frame, not a one-shot stream).
    """
    started = time.perf_counter()
    as_of = _as_utc(as_of) if as_of is not None else datetime.now(UTC)
    run = _Run(
        suite=suite, as_of=as_of, max_keys=max(0, max_keys_per_check), started=started, references=references or {}
    )
    try:
        lazy = frame.lazy()
        schema = lazy.collect_schema()
    except Exception as exc:  # noqa: BLE001 -- an unreadable input is an outcome (fail gate), not a crash
        logger.warning("quality %s: input could not be read: %s", suite.dataset, exc)
        return run.unreadable(f"input could not be read: {type(exc).__name__}: {exc}")

    schema_results, drift_codes = _schema_stage(suite, schema)
    if drift_codes:
        return run.schema_drift(lazy, schema_results, drift_codes)

    lazy = _cast_null_columns(lazy, suite, schema)
    try:
        return run.evaluate(lazy, schema_results, cleaned_sink=cleaned_sink)
    except Exception as exc:  # noqa: BLE001 -- e.g. a predicate that cannot handle the values: fail, don't crash
        logger.exception("quality %s: checks could not be evaluated", suite.dataset)
        return run.unreadable(f"checks could not be evaluated: {type(exc).__name__}: {exc}", schema_results)


def quarantine_reprocess(
    suite: Suite,
    quarantined: pl.DataFrame,
    *,
    max_keys_per_check: int = 1000,
    as_of: datetime | None = None,
    references: Mapping[str, pl.DataFrame] | None = None,
) -> SuiteResult:
    """Re-run ``suite`` on quarantined rows (typically after a steward corrected them).

    Drops ``reason_codes`` and the columns the suite derives itself, and restores the schema's column order,
    so a quarantine frame (corrected or not) can be passed back as it is. Rows kept as JSON come back with
    text where the schema wants dates, timestamps or numbers (ISO strings, ``str(Decimal)``): such columns are
    parsed when every value parses, and otherwise left as they are for the schema stage to report.
    """
    drop = {REASON_CODES_COLUMN, *suite.derived_columns()}
    ordered = [c for c in suite.schema if c in quarantined.columns]
    rest = [c for c in quarantined.columns if c not in suite.schema and c not in drop]
    frame = _coerce_text_columns(quarantined.select(ordered + rest), suite)
    return suite_run(suite, frame, max_keys_per_check=max_keys_per_check, as_of=as_of, references=references)


def rows_frame(suite: Suite, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> pl.DataFrame:
    """Rows of Python values (a query's result) as a frame for :func:`suite_run`.

    Rows with another number of values than ``columns`` are left out (their source reports them); text columns
    the suite's schema types otherwise (a SQLite date, a number sent as text) are parsed when every value parses.
    """
    width = len(columns)
    good = [row for row in rows if len(row) == width]
    data = {name: [row[i] for row in good] for i, name in enumerate(columns)}
    frame = pl.DataFrame(data, strict=False, infer_schema_length=None)
    return _coerce_text_columns(frame, suite)


def quality_score(suite: Suite, rows: int, failed_counts: Mapping[str, int]) -> float:
    """The severity-weighted share of passing row-checks, 0..100 (0 for an empty input)."""
    checks = suite.checks
    if rows <= 0 or not checks:
        return 0.0 if rows <= 0 else 100.0
    total = sum(check.severity.weight for check in checks) * rows
    failed = sum(check.severity.weight * failed_counts.get(check.name, 0) for check in checks)
    return round(100.0 * (total - failed) / total, 4)


def gate_decide(suite: Suite, *, rows: int, score: float, check_results: Sequence[CheckResult]) -> Gate:
    """The gate for an evaluated run (rules 2 to 6 of the module docstring)."""
    policy = suite.policy
    warnings = [
        f"check {r.name} ({r.stage}) warned: {r.message}"
        for r in check_results
        if r.status is CheckStatus.WARN and r.gate_effect is Decision.PASS
    ]
    removed = [
        f"check {r.name} removed {r.failed_count} row(s) ({r.failed_share:.2%}) from the batch"
        for r in check_results
        if r.removes and r.failed_count and r.gate_effect is Decision.PASS
    ]
    if rows == 0:
        return Gate(policy.empty_decision, ["input has no rows: nothing to publish"])
    over_fail = [
        f"check {r.name} ({r.stage}) fails the gate: {r.message}"
        for r in check_results
        if r.gate_effect is Decision.FAIL
    ]
    over_review = [
        f"check {r.name} ({r.stage}) needs a review: {r.message}"
        for r in check_results
        if r.gate_effect is Decision.REVIEW
    ]
    critical = [r for r in check_results if r.severity is Severity.CRITICAL and r.failed_count > 0]
    failed = [r for r in check_results if r.status is CheckStatus.FAIL and r.gate_effect is Decision.PASS]
    failed_reasons = [f"check {r.name} ({r.stage}, {r.severity}) failed: {r.message}" for r in failed]
    low_score = (
        [f"quality score {score:.2f} is below the review minimum {policy.review_min_score:g}"]
        if score < policy.review_min_score
        else []
    )
    if over_fail or (policy.fail_on_critical and critical) or low_score:
        critical_reasons = (
            [f"critical check {r.name} failed: {r.message}" for r in critical if r.gate_effect is not Decision.FAIL]
            if policy.fail_on_critical
            else []
        )
        return Gate(
            Decision.FAIL,
            [*critical_reasons, *over_fail, *low_score, *over_review, *failed_reasons, *removed, *warnings],
        )
    reasons: list[str] = list(over_review)
    if score < policy.pass_min_score:
        reasons.append(f"quality score {score:.2f} is below the pass minimum {policy.pass_min_score:g}")
    if any(r.severity.rank >= Severity.ERROR.rank for r in failed):
        reasons.extend(failed_reasons)
    if reasons:
        return Gate(Decision.REVIEW, reasons + removed + warnings)
    passed = [f"quality score {score:.2f}", *failed_reasons, *removed, *warnings]
    return Gate(Decision.PASS, passed)


_DECISION_RANK = {Decision.PASS: 0, Decision.REVIEW: 1, Decision.FAIL: 2}


def results_combine(results: Sequence[SuiteResult], *, labels: Sequence[str] | None = None) -> SuiteResult:
    """One gate and score over several suites' results (e.g. a report's order lines and the report itself).

    The gate is the strictest of the parts, with every part's reasons (prefixed with its label, or dataset,
    when there are several); the score is the lowest; the checks are all of them, each with its dataset. Rows
    and ``cleaned`` are the last part's (the one that is published); quarantined and removed rows add up.
    """
    if not results:
        raise ValueError("nothing to combine")
    if len(results) == 1:
        only = results[0]
        return dataclasses.replace(
            only, check_results=[dataclasses.replace(r, dataset=r.dataset or only.dataset) for r in only.check_results]
        )
    names = list(labels or [r.dataset for r in results])
    decision = max((r.gate.decision for r in results), key=_DECISION_RANK.__getitem__)
    reasons = [f"{name}: {reason}" for name, r in zip(names, results, strict=True) for reason in r.gate.reasons]
    last = results[-1]
    return SuiteResult(
        dataset=last.dataset,
        rows=last.rows,
        cleaned=last.cleaned,
        quarantine=last.quarantine,
        check_results=[
            dataclasses.replace(c, dataset=c.dataset or r.dataset) for r in results for c in r.check_results
        ],
        score=min(r.score for r in results),
        gate=Gate(decision, reasons),
        duration_s=sum(r.duration_s for r in results),
        as_of=last.as_of,
        transforms_applied=list(last.transforms_applied),
        rows_removed=sum(r.rows_removed for r in results),
        quarantined_total=sum(r.rows_quarantined for r in results),
    )


def check_result(
    suite: Suite, check: Check, *, failed: int, rows: int, sample_keys: list[tuple[Any, ...]]
) -> CheckResult:
    """The result of one evaluated check: status, gate effect and message from its counts (both paths use it)."""
    share = failed / rows if rows else 0.0
    status = check.status_for(failed, share)
    review, fail = check.gate_thresholds(suite.policy)
    effect = Decision.PASS
    if fail is not None and fail.exceeded(failed, share):
        effect = Decision.FAIL
    elif review is not None and review.exceeded(failed, share):
        effect = Decision.REVIEW
    return CheckResult(
        name=check.name,
        stage=check.stage,
        severity=check.severity,
        reason_code=check.reason_code,
        failed_count=failed,
        failed_share=share,
        status=status,
        sample_keys=sample_keys,
        message=_describe(check, failed, share, rows, status, effect, review, fail),
        gate_effect=effect,
        threshold=threshold_text(review, fail),
        removes=check.removes,
        dataset=suite.dataset,
    )


def threshold_text(review: Threshold | None, fail: Threshold | None) -> str:
    """``review > 0 rows; fail > 1.00%`` (what the review page and the run summary show)."""
    parts = [f"{label} > {_limit_text(limit)}" for label, limit in (("review", review), ("fail", fail)) if limit]
    return "; ".join(parts) or "no gate threshold"


def _limit_text(limit: Threshold) -> str:
    bound = []
    if limit.share is not None:
        bound.append(f"{limit.share:.2%}")
    if limit.count is not None:
        bound.append(f"{limit.count} rows")
    return " or ".join(bound) or "never"


# --------------------------------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------------------------------


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _schema_stage(suite: Suite, schema: pl.Schema) -> tuple[list[CheckResult], list[str]]:
    """Compare the frame's schema with the suite's: results for missing, retyped and extra columns."""
    missing = [column for column in suite.schema if column not in schema]
    retyped = [
        (column, family, schema[column])
        for column, family in suite.schema.items()
        if column in schema and schema[column] != pl.Null and not family.matches(schema[column])
    ]
    extra = [column for column in schema if column not in suite.schema]
    results = [
        _schema_result(
            "schema_columns_present",
            Severity.CRITICAL,
            "SCHEMA_MISSING_COLUMN",
            bool(missing),
            f"missing column(s): {', '.join(missing)}" if missing else f"all {len(suite.schema)} columns present",
        ),
        _schema_result(
            "schema_column_types",
            Severity.CRITICAL,
            "SCHEMA_TYPE_CHANGED",
            bool(retyped),
            "; ".join(f"column {c} changed type: expected {fam}, got {dt}" for c, fam, dt in retyped)
            if retyped
            else "every column has its expected type",
        ),
        _schema_result(
            "schema_no_extra_columns",
            Severity.INFO,
            "SCHEMA_EXTRA_COLUMN",
            bool(extra),
            f"extra column(s) kept as they are: {', '.join(extra)}" if extra else "no extra columns",
            status_if_bad=CheckStatus.WARN,
        ),
    ]
    codes = [r.reason_code for r in results[:2] if r.status is CheckStatus.FAIL]
    return results, codes


def contract_check(
    contract: TableContract, columns: Sequence[tuple[str, str, str]]
) -> tuple[list[CheckResult], list[str]]:
    """Compare a table's schema (``(name, type, mode)`` per column, from ``tables.get``) with the contract.

    Returns the schema-stage results and the drift, one readable line per broken column (empty: no drift).
    A column may be stricter than promised (NULLABLE -> REQUIRED); a missing column, another type, a
    loosened or repeated mode is drift. Extra columns are reported and allowed.
    """
    actual = {
        name: ColumnContract(type=bigquery_type(kind), mode=(mode or "NULLABLE").upper())
        for name, kind, mode in columns
    }
    missing = [name for name in contract.columns if name not in actual]
    retyped, remoded = [], []
    for name, want in contract.columns.items():
        have = actual.get(name)
        if have is None:
            continue
        if bigquery_type(want.type) != have.type:
            retyped.append(
                f"column {name} changed type: the contract says {bigquery_type(want.type)}, the table has {have.type}"
            )
        elif want.mode.upper() != have.mode and not (want.mode.upper() == "NULLABLE" and have.mode == "REQUIRED"):
            remoded.append(
                f"column {name} changed mode: the contract says {want.mode.upper()}, the table has {have.mode}"
            )
    extra = [name for name in actual if name not in contract.columns]
    where = f" of {contract.table}"
    results = [
        _schema_result(
            "schema_columns_present",
            Severity.CRITICAL,
            "SCHEMA_MISSING_COLUMN",
            bool(missing),
            "; ".join(f"column {c} is missing (the contract says {contract.columns[c].text()})" for c in missing)
            if missing
            else f"all {len(contract.columns)} columns{where} present",
        ),
        _schema_result(
            "schema_column_types",
            Severity.CRITICAL,
            "SCHEMA_TYPE_CHANGED",
            bool(retyped),
            "; ".join(retyped) if retyped else "every column has its contract type",
        ),
        _schema_result(
            "schema_column_modes",
            Severity.CRITICAL,
            "SCHEMA_MODE_CHANGED",
            bool(remoded),
            "; ".join(remoded) if remoded else "every column has its contract mode",
        ),
        _schema_result(
            "schema_no_extra_columns",
            Severity.INFO,
            "SCHEMA_EXTRA_COLUMN",
            bool(extra),
            f"extra column(s) ignored: {', '.join(extra)}" if extra else "no extra columns",
            status_if_bad=CheckStatus.WARN,
        ),
    ]
    drift = [r.message for r in results[:3] if r.status is CheckStatus.FAIL]
    return [dataclasses.replace(r, dataset=contract.table) for r in results], drift


def contract_drift_result(suite: Suite, schema_results: list[CheckResult], drift: list[str]) -> SuiteResult:
    """A fail result for a source whose schema broke its contract: nothing read, every check skipped."""
    skipped = [
        dataclasses.replace(_skipped(c, "the source table broke its contract"), dataset=suite.dataset)
        for c in suite.checks
    ]
    return SuiteResult(
        dataset=suite.dataset,
        rows=0,
        cleaned=pl.DataFrame(),
        quarantine=pl.DataFrame(),
        check_results=[*schema_results, *skipped],
        score=0.0,
        gate=Gate(Decision.FAIL, [f"schema drift: {line}" for line in drift]),
        duration_s=0.0,
        as_of=datetime.now(UTC),
    )


def _schema_result(
    name: str, severity: Severity, code: str, bad: bool, message: str, status_if_bad: CheckStatus = CheckStatus.FAIL
) -> CheckResult:
    # Schema rules are about columns, not rows: counts are filled in by the caller once the row count is known.
    return CheckResult(
        name=name,
        stage=Stage.SCHEMA,
        severity=severity,
        reason_code=code,
        failed_count=0,
        failed_share=0.0,
        status=status_if_bad if bad else CheckStatus.PASS,
        sample_keys=[],
        message=message,
    )


def _coerce_text_columns(frame: pl.DataFrame, suite: Suite) -> pl.DataFrame:
    """Parse String columns the schema expects as another type (JSON round trips); unparseable ones stay text."""
    # On Series, not expressions: polars infers the format (and a UTC offset) only eagerly.
    parsers: dict[DtypeFamily, Callable[[pl.Series], pl.Series]] = {
        DtypeFamily.DATE: lambda c: c.str.to_date(),
        DtypeFamily.DATETIME: lambda c: c.str.to_datetime(time_unit="us"),
        DtypeFamily.INTEGER: lambda c: c.cast(pl.Int64),
        DtypeFamily.FLOAT: lambda c: c.cast(pl.Float64),
        DtypeFamily.NUMERIC: lambda c: c.cast(pl.Float64),
        DtypeFamily.BOOLEAN: lambda c: c.str.to_lowercase().replace_strict({"true": True, "false": False}),
    }
    for column, family in suite.schema.items():
        if family not in parsers or frame.schema.get(column) != pl.String:
            continue
        try:
            frame = frame.with_columns(parsers[family](frame.get_column(column)).alias(column))
        except pl.exceptions.PolarsError:
            continue  # malformed text: the schema stage names the column and both types
    return frame


def _cast_null_columns(lazy: pl.LazyFrame, suite: Suite, schema: pl.Schema) -> pl.LazyFrame:
    """Give all-null columns (dtype ``Null``, e.g. from a small Python-built frame) their expected dtype."""
    casts = [
        pl.col(column).cast(family.default_dtype)
        for column, family in suite.schema.items()
        if schema.get(column) == pl.Null
    ]
    return lazy.with_columns(casts) if casts else lazy


def _with_counts(result: CheckResult, failed: int, rows: int) -> CheckResult:
    return dataclasses.replace(result, failed_count=failed, failed_share=failed / rows if rows else 0.0)


def check_skipped(check: Check, why: str) -> CheckResult:
    """The result of a check that did not run (``why`` says so)."""
    return _skipped(check, why)


def _skipped(check: Check, why: str) -> CheckResult:
    return CheckResult(
        name=check.name,
        stage=check.stage,
        severity=check.severity,
        reason_code=check.reason_code,
        failed_count=0,
        failed_share=0.0,
        status=CheckStatus.SKIPPED,
        sample_keys=[],
        message=f"skipped: {why}",
    )


def _describe(
    check: Check,
    failed: int,
    share: float,
    rows: int,
    status: CheckStatus,
    effect: Decision = Decision.PASS,
    review: Threshold | None = None,
    fail: Threshold | None = None,
) -> str:
    if failed == 0:
        return f"all {rows} rows pass ({check.description})"
    if check.removes:
        head = f"{failed} of {rows} rows ({share:.2%}) removed: '{check.description}' did not hold for them"
    else:
        head = f"{failed} of {rows} rows ({share:.2%}) break the rule '{check.description}'"
    if effect is not Decision.PASS:
        limit = fail if effect is Decision.FAIL else review
        assert limit is not None
        return f"{head} (over its {effect} threshold of {_limit_text(limit)})"
    limit = check.fail_above if status is CheckStatus.FAIL else check.warn_above
    bound = _limit_text(limit).replace(" or ", " / ") if limit.share is not None or limit.count is not None else ""
    over = f" (over the {status} limit of {bound})" if status is not CheckStatus.PASS and bound else ""
    return f"{head}{over}"


@dataclass
class _Run:
    suite: Suite
    as_of: datetime
    max_keys: int
    started: float
    references: Mapping[str, pl.DataFrame] = field(default_factory=dict)
    helper_columns: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # check name -> why it could not run here

    def _result(
        self,
        *,
        rows: int,
        cleaned: pl.DataFrame,
        quarantine: pl.DataFrame,
        check_results: list[CheckResult],
        score: float,
        gate: Gate,
        transforms: list[str] | None = None,
        rows_removed: int = 0,
        cleaned_path: str | None = None,
        cleaned_sunk_rows: int | None = None,
    ) -> SuiteResult:
        return SuiteResult(
            dataset=self.suite.dataset,
            rows=rows,
            cleaned=cleaned,
            quarantine=quarantine,
            check_results=check_results,
            score=score,
            gate=gate,
            duration_s=time.perf_counter() - self.started,
            as_of=self.as_of,
            transforms_applied=transforms or [],
            rows_removed=rows_removed,
            cleaned_path=cleaned_path,
            cleaned_sunk_rows=cleaned_sunk_rows,
        )

    def _empty_quarantine(self) -> pl.DataFrame:
        columns: dict[str, pl.DataType] = {key: self.suite.schema[key].default_dtype for key in self.suite.keys}
        columns[REASON_CODES_COLUMN] = pl.List(pl.String)
        return pl.DataFrame(schema=columns)

    def unreadable(self, reason: str, schema_results: list[CheckResult] | None = None) -> SuiteResult:
        """A fail result for an input that could not be read or evaluated."""
        skipped = [_skipped(c, "the input could not be evaluated") for c in self.suite.checks]
        results = list(schema_results or []) + skipped
        return self._result(
            rows=0,
            cleaned=pl.DataFrame(),
            quarantine=self._empty_quarantine(),
            check_results=results,
            score=0.0,
            gate=Gate(Decision.FAIL, [reason]),
        )

    def schema_drift(self, lazy: pl.LazyFrame, schema_results: list[CheckResult], codes: list[str]) -> SuiteResult:
        """A fail result for schema drift: the whole batch goes to the quarantine, later stages are skipped."""
        reasons = [f"schema drift: {r.message}" for r in schema_results if r.status is CheckStatus.FAIL]
        try:
            batch = lazy.collect()
        except Exception as exc:  # noqa: BLE001 -- the drift is already the outcome; keep the reason readable
            return self.unreadable(f"{'; '.join(reasons)}; and the input could not be read: {exc}", schema_results)
        rows = batch.height
        keys = [pl.col(k) if k in batch.columns else pl.lit(None).alias(k) for k in self.suite.keys]
        quarantine = batch.select(
            *keys,
            pl.lit(codes, dtype=pl.List(pl.String)).alias(REASON_CODES_COLUMN),
            *[pl.col(c) for c in batch.columns if c not in self.suite.keys],
        )
        results = [_with_counts(r, rows if r.status is CheckStatus.FAIL else 0, rows) for r in schema_results] + [
            _skipped(c, "schema drift stopped the run") for c in self.suite.checks
        ]
        return self._result(
            rows=rows,
            cleaned=batch.clear(),
            quarantine=quarantine,
            check_results=results,
            score=0.0,
            gate=Gate(Decision.FAIL, reasons),
        )

    def evaluate(
        self,
        lazy: pl.LazyFrame,
        schema_results: list[CheckResult],
        *,
        cleaned_sink: str | os.PathLike[str] | None = None,
    ) -> SuiteResult:
        """Run every stage after the schema one in one streaming query that keeps only the flagged rows, then
        count, sample and quarantine from those, and stream the rest out as the cleaned rows.

        Pass 1 (streaming): transforms and flag columns in stage order, filtered to the rows any check flagged
        (a non-flagged row has every flag false, so it adds nothing to a count, a sample or the quarantine).
        The confirms then run on those rows only. Pass 2 (streaming): the input with the transforms, less the
        quarantined and removed rows (by position), collected or written to ``cleaned_sink``.
        """
        suite = self.suite
        rows = int(lazy.select(pl.len()).collect(engine="streaming").item())
        indexed = lazy.with_row_index(_ROW_INDEX)
        plan, flags, transforms = self._plan(indexed)
        flag_names = [flag for _, flag in flags]
        any_flag = functools.reduce(operator.or_, [pl.col(f) for f in flag_names]) if flags else pl.lit(False)
        flagged = plan.filter(any_flag).collect(engine="streaming")
        if flagged.height and not flagged.get_column(_ROW_INDEX).is_sorted():  # pragma: no cover - order kept
            flagged = flagged.sort(_ROW_INDEX)
        flagged = self._confirm(flagged, flags)
        del plan
        results = [_with_counts(r, 0, rows) for r in schema_results]
        dropped = flagged.filter(pl.col(_QUARANTINE_FLAG) | pl.col(REMOVED_COLUMN)).get_column(_ROW_INDEX)
        cleaned, cleaned_path = self._cleaned_stream(indexed, dropped, cleaned_sink)
        sunk_rows = rows - dropped.len() if cleaned_path is not None else None
        if rows == 0:
            results += [_skipped(check, "the input has no rows") for check, _ in flags]
            return self._result(
                rows=0,
                cleaned=cleaned,
                quarantine=self._quarantine(flagged, flags),
                check_results=results,
                score=0.0,
                gate=gate_decide(suite, rows=0, score=0.0, check_results=results),
                transforms=transforms,
                cleaned_path=cleaned_path,
                cleaned_sunk_rows=sunk_rows,
            )

        counts = [int(n or 0) for n in flagged.select(pl.col(flag_names).sum()).row(0)] if flags else []
        results += [
            _skipped(check, self.skipped[check.name])
            if check.name in self.skipped
            else check_result(suite, check, failed=failed, rows=rows, sample_keys=self._sample(flagged, flag, failed))
            for (check, flag), failed in zip(flags, counts, strict=True)
        ]
        score = quality_score(suite, rows, {check.name: n for (check, _), n in zip(flags, counts, strict=True)})
        removed = int(flagged.get_column(REMOVED_COLUMN).sum())
        return self._result(
            rows=rows,
            cleaned=cleaned,
            quarantine=self._quarantine(flagged, flags),
            check_results=results,
            score=score,
            gate=gate_decide(suite, rows=rows, score=score, check_results=results),
            transforms=transforms,
            rows_removed=removed,
            cleaned_path=cleaned_path,
            cleaned_sunk_rows=sunk_rows,
        )

    def _cleaned_stream(
        self, indexed: pl.LazyFrame, dropped: pl.Series, sink: str | os.PathLike[str] | None
    ) -> tuple[pl.DataFrame, str | None]:
        """The cleaned rows: the input with the transforms, less the ``dropped`` row positions, without the
        engine's columns. Collected (streaming), or written to the Parquet file ``sink`` (then an empty frame
        with their schema comes back, with the path)."""
        lazy = indexed.with_columns(pl.lit(False).alias(REMOVED_COLUMN))
        for transform in self.suite.transforms:  # the same layers as the flags' plan, without the checks
            lazy = lazy.with_columns(transform.build(self._context(lazy)))
        if dropped.len():
            lazy = lazy.filter(~pl.col(_ROW_INDEX).is_in(dropped.implode()))
        lazy = lazy.drop(_ROW_INDEX, REMOVED_COLUMN)
        if sink is None:
            return lazy.collect(engine="streaming"), None
        path = os.fspath(sink)
        # Never half-written: the rows go to a temporary file beside it, renamed over ``path`` only once complete
        # (a failed or killed run leaves any earlier file as it was, and no partial one).
        partial = f"{path}.partial-{os.getpid()}"
        try:
            lazy.sink_parquet(partial)
            os.replace(partial, path)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
        return pl.DataFrame(schema=lazy.collect_schema()), path

    def _context(self, lazy: pl.LazyFrame) -> CheckContext:
        return CheckContext(
            as_of=self.as_of,
            schema=lazy.collect_schema(),
            keys=tuple(self.suite.keys),
            frame=lazy,
            references=self.references,
        )

    def _plan(self, lazy: pl.LazyFrame) -> tuple[pl.LazyFrame, list[tuple[Check, str]], list[str]]:
        """The one lazy query: transforms and flag columns in stage order, then the quarantine flag.

        The removed flag starts all false; :meth:`_confirm` sets it exactly once the rows are collected.
        """
        flags: list[tuple[Check, str]] = []
        pending: list[pl.Expr] = []
        transforms: list[str] = []
        lazy = lazy.with_columns(pl.lit(False).alias(REMOVED_COLUMN))
        ctx = self._context(lazy)
        for step in self.suite.ordered_steps():
            if isinstance(step, Transform):
                if pending:  # checks declared before this transform must see the columns before it
                    lazy, pending = lazy.with_columns(pending), []
                    ctx = self._context(lazy)
                lazy = lazy.with_columns(step.build(ctx))
                ctx = self._context(lazy)
                transforms.append(step.name)
                continue
            flag = f"{_FLAG_PREFIX}{len(flags)}"
            try:
                expr = step.fail_expr(ctx)
            except ReferenceUnavailable as exc:
                self.skipped[step.name] = str(exc)
                expr = pl.lit(False)
            else:
                if step.helpers:
                    expr = self._flag_set_based(lazy, step, expr)
            pending.append(expr.alias(flag))
            flags.append((step, flag))
        if pending:
            lazy = lazy.with_columns(pending)
        return lazy.with_columns(self._quarantine_expr(flags)), flags, transforms

    @staticmethod
    def _flag_set_based(lazy: pl.LazyFrame, check: Check, expr: pl.Expr) -> pl.Expr:
        """A set-based check (one with helpers: a key hash, its sorted copy) evaluated on its own, narrow query.

        Its helpers (own layers: a helper may read the one before it) need every row at once, which would make
        the streaming engine hold the whole batch if they ran in the main query; here only the columns they read
        flow through them, and what comes back is the positions of the rows the check flags (a few). In the
        main query the flag is then a lookup of the row's position.
        """
        narrow = lazy
        for helper in check.helpers:
            narrow = narrow.with_columns(helper)
        flagged = narrow.filter(expr).select(_ROW_INDEX).collect(engine="streaming").get_column(_ROW_INDEX)
        return pl.col(_ROW_INDEX).is_in(flagged.implode())

    @staticmethod
    def _quarantine_expr(flags: list[tuple[Check, str]]) -> pl.Expr:
        quarantining = [pl.col(flag) for check, flag in flags if check.severity.quarantines and not check.removes]
        any_bad = functools.reduce(operator.or_, quarantining) if quarantining else pl.lit(False)
        return any_bad.alias(_QUARANTINE_FLAG)

    def _confirm(self, frame: pl.DataFrame, flags: list[tuple[Check, str]]) -> pl.DataFrame:
        """Make the flags exact, in check order: each ``confirm`` on the rows its fast predicate flagged, then
        each removing check's rows into the removed flag; finally no other check counts a removed row."""
        changed = False
        for check, flag in flags:
            if check.confirm is not None:
                positions = frame.get_column(flag).arg_true()
                if positions.len():
                    confirmed = check.confirm(frame.select(pl.all().gather(positions))).fill_null(False)
                    rejected = positions.filter(~confirmed)
                    if rejected.len():
                        frame = frame.with_columns(frame.get_column(flag).scatter(rejected, False))
                        changed = True
            if check.removes:
                removed = frame.get_column(REMOVED_COLUMN)
                now = frame.get_column(flag) & ~removed
                frame = frame.with_columns(now.alias(flag), (removed | now).alias(REMOVED_COLUMN))
                changed = True
        if any(check.removes for check, _ in flags):
            live = ~pl.col(REMOVED_COLUMN)
            frame = frame.with_columns(
                [(pl.col(flag) & live).alias(flag) for check, flag in flags if not check.removes]
            )
        return frame.with_columns(self._quarantine_expr(flags)) if changed else frame

    def _sample(self, frame: pl.DataFrame, flag: str, failed: int) -> list[tuple[Any, ...]]:
        """The keys of a check's first failing rows, in row order (at most ``max_keys``)."""
        if not failed or not self.max_keys:
            return []
        positions = frame.get_column(flag).arg_true().head(self.max_keys)
        keys = list(self.suite.keys)
        if keys:
            return frame.select(pl.col(keys).gather(positions)).rows()
        rows = frame.get_column(_ROW_INDEX).gather(positions)
        return [(int(p),) for p in rows]  # no key columns declared: the row positions (in the input) are the keys

    def _quarantine(self, frame: pl.DataFrame, flags: list[tuple[Check, str]]) -> pl.DataFrame:
        """Quarantined rows: keys, every reason code the row failed, then the rest of the row."""
        keys = list(self.suite.keys)
        flag_names = [flag for _, flag in flags]
        positions = frame.get_column(_QUARANTINE_FLAG).arg_true()  # gather: the quarantine is a small share
        bad = frame.select(pl.all().gather(positions))
        codes = [(check, flag) for check, flag in flags if not check.removes]
        if codes:
            reasons = pl.concat_list(
                [pl.when(pl.col(flag)).then(pl.lit(check.reason_code)).otherwise(None) for check, flag in codes]
            ).list.drop_nulls()
        else:
            reasons = pl.lit([], dtype=pl.List(pl.String))
        internal = {*flag_names, *self.helper_columns, _QUARANTINE_FLAG, REMOVED_COLUMN, _ROW_INDEX}
        rest = [c for c in frame.columns if c not in keys and c not in internal]
        return bad.select(*keys, reasons.alias(REASON_CODES_COLUMN), *rest)


__all__ = [
    "ANY_ROW",
    "REASON_CODES_COLUMN",
    "ColumnContract",
    "TableContract",
    "bigquery_type",
    "contract_check",
    "contract_drift_result",
    "REMOVED_COLUMN",
    "SEVERITY_WEIGHTS",
    "Check",
    "CheckContext",
    "CheckResult",
    "CheckStatus",
    "Decision",
    "DtypeFamily",
    "NotCompilable",
    "ReferenceUnavailable",
    "SqlContext",
    "Gate",
    "GatePolicy",
    "Severity",
    "Stage",
    "Suite",
    "SuiteResult",
    "Threshold",
    "Transform",
    "check_result",
    "check_skipped",
    "duplicate_key",
    "exact_duplicates",
    "gate_decide",
    "has_reference",
    "in_set",
    "matches",
    "not_null",
    "pair_in_mapping",
    "quality_score",
    "quarantine_reprocess",
    "results_combine",
    "rows_frame",
    "sql_ident",
    "sql_literal",
    "sql_table",
    "strip_upper",
    "suite_run",
    "threshold_text",
]

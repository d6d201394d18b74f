"""The data-quality engine: a declared check suite run in stages over a polars frame.

A :class:`Suite` names a dataset, its key columns, the schema it expects and an ordered list of steps: row
:class:`Check` s (a vectorised "row fails" predicate with a severity, thresholds and a reason code) and
:class:`Transform` s (cleaning and enrichment: trim/upper-case codes, derived columns). :func:`suite_run` runs
the steps in the design's stage order (schema, format, cleaning, dedup, enrichment, completeness, accuracy,
consistency, validity) and returns a :class:`SuiteResult`: failing counts and sample keys per check, a quality
score, a gate decision (pass / review / fail) with readable reasons, the cleaned rows and the quarantine.

How one run works (and why it is fast):

1. Schema stage, on the frame's schema only (no data read): a missing column or a changed type fails the gate
   and stops the run; extra columns are reported and kept. Columns that are entirely null (polars dtype
   ``Null``) are cast to the expected type rather than reported as drift.
2. Every later step is added to ONE lazy query: each transform is a ``with_columns``; each check becomes a
   boolean flag column ``__qc_<n>`` computed on the frame as it is at that check's stage (so a validity check
   sees the cleaned codes and the enrichment columns, a format check sees the raw values). Checks of one stage
   share one ``with_columns`` so polars evaluates them in parallel. The query is collected once. Set-based
   checks stay in that query too: dedup compares a sorted key hash (see :func:`duplicate_key`) and confirms
   its few candidates exactly afterwards (``Check.confirm``).
3. The failing counts of all checks come from one ``select`` of sums over the flag columns (bit counts); the
   row keys are gathered only for checks that failed, at most ``max_keys_per_check`` each.
4. Rows failing a check of severity error or critical go to the quarantine with every reason code they
   failed (warnings included); warnings and infos stay in ``cleaned``. The quarantine is gathered by row
   position (it is small); ``cleaned`` is filtered a few columns at a time, each group of source columns
   released once copied, so the batch is not held twice (peak memory: see ``bench/quality_bench.py``).

The quality score (0..100) is the severity-weighted share of passing row-checks::

    score = 100 * sum_c(w(c) * (rows - failed_c)) / (rows * sum_c w(c))

over the row checks ``c`` of the suite, with weights info 1, warning 2, error 4, critical 8. A schema failure,
an unreadable input or an input without rows scores 0. Schema results are all-or-nothing and not in the sum.

The gate (:class:`GatePolicy`), first rule that applies wins:

1. unreadable input, schema drift, or a check that could not be evaluated -> fail;
2. no rows -> ``policy.empty_decision`` (fail by default);
3. any failing row in a critical check (``fail_on_critical``) -> fail;
4. score below ``review_min_score`` -> fail;
5. score below ``pass_min_score``, or a check of severity error whose status is fail -> review;
6. otherwise pass.

A check's status is ``fail`` when its failing rows exceed ``fail_above``, ``warn`` when they exceed
``warn_above``, else ``pass`` (``skipped`` when its stage did not run). Thresholds are a share of rows
(0..1), an absolute count, or both (exceeding either one counts).

The engine is pure Python + polars: no Django. The ``quality`` Django app stores and displays its results.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import operator
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

logger = logging.getLogger(__name__)

REASON_CODES_COLUMN = "reason_codes"
_FLAG_PREFIX = "__qc_"
_QUARANTINE_FLAG = "__qc_quarantine"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CLEANED_COLUMN_GROUP = 4  # columns filtered at a time when building `cleaned`: bounds the second copy


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

    @property
    def as_of_epoch_us(self) -> int:
        """``as_of`` in microseconds since the Unix epoch (compare with ``pl.col(ts).dt.epoch("us")``)."""
        return (self.as_of - _EPOCH) // timedelta(microseconds=1)  # exact: no float rounding


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

    def fail_expr(self, ctx: CheckContext) -> pl.Expr:
        """The "row fails" expression for this run, with nulls read as passing."""
        expr = self.fails(ctx) if callable(self.fails) else self.fails
        return expr.fill_null(False)

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

    def build(self, ctx: CheckContext) -> list[pl.Expr]:
        """The expressions for this run."""
        return list(self.exprs(ctx) if callable(self.exprs) else self.exprs)

    def outputs(self) -> tuple[str, ...]:
        """Names of the columns this transform writes (needs static expressions)."""
        if callable(self.exprs):
            return ()
        return tuple(expr.meta.output_name() for expr in self.exprs)


Step = Check | Transform


@dataclass(frozen=True)
class GatePolicy:
    """Score thresholds and rules that turn a run into a gate decision (see the module docstring)."""

    pass_min_score: float = 99.5
    review_min_score: float = 97.0
    fail_on_critical: bool = True
    empty_decision: Decision = Decision.FAIL


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
    )


def matches(
    column: str, pattern: str, *, stage: Stage = Stage.FORMAT, severity: Severity = Severity.ERROR, **options: Any
) -> Check:
    """A check that non-null values of the string ``column`` match the regex ``pattern`` (Rust regex syntax)."""
    return _declare(
        options,
        name=f"{column}_format",
        stage=stage,
        severity=severity,
        description=f"{column} matches {pattern}",
        fails=~pl.col(column).str.contains(pattern),
        reason_code=f"{column.upper()}_MALFORMED",
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
    return _declare(
        options,
        name=f"{column}_known",
        stage=stage,
        severity=severity,
        description=f"{column} is one of {len(values)} known values",
        fails=~pl.col(column).is_in(list(values)),
        reason_code=f"{column.upper()}_UNKNOWN",
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
    every occurrence after the first.

    How: a 64-bit hash of the key per row, sorted; hashes equal to their sorted neighbour are the duplicated
    ones, and a row fails when its hash is among them. That costs a hash, a sort and a lookup (about a third
    of the time of a grouped ``is_duplicated`` and a fifth of its memory); ``confirm`` then repeats the exact
    test on the few flagged rows, so a hash collision can never fail a row.
    """
    if keep not in ("none", "first"):
        raise ValueError("keep must be 'none' or 'first'")
    name = options.pop("name", "duplicate_" + "_".join(keys))
    key_hash, sorted_hash = f"{_FLAG_PREFIX}{name}_hash", f"{_FLAG_PREFIX}{name}_sorted"
    repeated = pl.col(sorted_hash).filter(pl.col(sorted_hash) == pl.col(sorted_hash).shift(1)).unique()

    def confirm(candidates: pl.DataFrame) -> pl.Series:
        exact = pl.struct(list(keys)).is_duplicated() if keep == "none" else ~pl.struct(list(keys)).is_first_distinct()
        return candidates.select(exact).to_series()

    return _declare(
        options,
        name=name,
        stage=stage,
        severity=severity,
        description=f"no two rows share ({', '.join(keys)})",
        fails=pl.col(key_hash).is_in(repeated.implode()),
        reason_code="DUPLICATE_KEY",
        helpers=(pl.struct(list(keys)).hash().alias(key_hash), pl.col(key_hash).sort().alias(sorted_hash)),
        confirm=confirm,
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
    expected = pl.col(depends_on).replace_strict(dict(mapping), default=None, return_dtype=pl.String)
    present = pl.col(column).is_not_null() & pl.col(depends_on).is_not_null()
    return _declare(
        options,
        name=f"{column}_matches_{depends_on}",
        stage=stage,
        severity=severity,
        description=f"{column} is the one {depends_on} implies",
        fails=present & (pl.col(column) != expected).fill_null(True),
        reason_code=f"{column.upper()}_{depends_on.upper()}_MISMATCH",
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
            pl.when(pl.col(c).str.contains(r"^\s|\s$|\p{Ll}"))
            .then(pl.col(c).str.strip_chars().str.to_uppercase())
            .otherwise(pl.col(c))
            .alias(c)
            for c in columns
        ),
    )


# --------------------------------------------------------------------------------------------------------------
# Running a suite
# --------------------------------------------------------------------------------------------------------------


def suite_run(
    suite: Suite,
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    max_keys_per_check: int = 1000,
    as_of: datetime | None = None,
) -> SuiteResult:
    """Run ``suite`` on ``frame`` and decide the gate; bad input gives a fail or review gate, never an exception.

    Pass a ``LazyFrame`` (e.g. ``pl.scan_parquet``) to let the engine read only once and keep peak memory near
    one copy of the data; a ``DataFrame`` the caller keeps costs its own copy on top. ``as_of`` (default: now)
    is the reference time of time-based checks.
    """
    started = time.perf_counter()
    as_of = _as_utc(as_of) if as_of is not None else datetime.now(UTC)
    run = _Run(suite=suite, as_of=as_of, max_keys=max(0, max_keys_per_check), started=started)
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
        return run.evaluate(lazy, schema_results)
    except Exception as exc:  # noqa: BLE001 -- e.g. a predicate that cannot handle the values: fail, don't crash
        logger.exception("quality %s: checks could not be evaluated", suite.dataset)
        return run.unreadable(f"checks could not be evaluated: {type(exc).__name__}: {exc}", schema_results)


def quarantine_reprocess(
    suite: Suite,
    quarantined: pl.DataFrame,
    *,
    max_keys_per_check: int = 1000,
    as_of: datetime | None = None,
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
    return suite_run(suite, frame, max_keys_per_check=max_keys_per_check, as_of=as_of)


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
        f"check {r.name} ({r.stage}) warned: {r.message}" for r in check_results if r.status is CheckStatus.WARN
    ]
    if rows == 0:
        return Gate(policy.empty_decision, ["input has no rows: nothing to publish"])
    critical = [r for r in check_results if r.severity is Severity.CRITICAL and r.failed_count > 0]
    if policy.fail_on_critical and critical:
        return Gate(Decision.FAIL, [f"critical check {r.name} failed: {r.message}" for r in critical] + warnings)
    failed = [r for r in check_results if r.status is CheckStatus.FAIL]
    failed_reasons = [f"check {r.name} ({r.stage}, {r.severity}) failed: {r.message}" for r in failed]
    if score < policy.review_min_score:
        reason = f"quality score {score:.2f} is below the review minimum {policy.review_min_score:g}"
        return Gate(Decision.FAIL, [reason, *failed_reasons, *warnings])
    reasons: list[str] = []
    if score < policy.pass_min_score:
        reasons.append(f"quality score {score:.2f} is below the pass minimum {policy.pass_min_score:g}")
    if any(r.severity.rank >= Severity.ERROR.rank for r in failed):
        reasons.extend(failed_reasons)
    if reasons:
        return Gate(Decision.REVIEW, reasons + warnings)
    passed = [f"quality score {score:.2f}", *failed_reasons, *warnings]
    return Gate(Decision.PASS, passed)


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


def _describe(check: Check, failed: int, share: float, rows: int, status: CheckStatus) -> str:
    if failed == 0:
        return f"all {rows} rows pass ({check.description})"
    limit = check.fail_above if status is CheckStatus.FAIL else check.warn_above
    bound = []
    if limit.share is not None:
        bound.append(f"{limit.share:.2%}")
    if limit.count is not None:
        bound.append(f"{limit.count} rows")
    over = f" (over the {status} limit of {' / '.join(bound)})" if status is not CheckStatus.PASS and bound else ""
    return f"{failed} of {rows} rows ({share:.2%}) break the rule '{check.description}'{over}"


@dataclass
class _Run:
    suite: Suite
    as_of: datetime
    max_keys: int
    started: float
    helper_columns: list[str] = field(default_factory=list)

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

    def evaluate(self, lazy: pl.LazyFrame, schema_results: list[CheckResult]) -> SuiteResult:
        """Run every stage after the schema one in one lazy query, then count, sample and split the rows."""
        suite = self.suite
        lazy, flags, transforms = self._plan(lazy)
        frame = self._confirm(lazy.collect(), flags)
        del lazy
        rows = frame.height
        results = [_with_counts(r, 0, rows) for r in schema_results]
        if rows == 0:
            results += [_skipped(check, "the input has no rows") for check, _ in flags]
            return self._result(
                rows=0,
                cleaned=frame.drop(_QUARANTINE_FLAG, *(flag for _, flag in flags), *self.helper_columns),
                quarantine=self._quarantine(frame, flags),
                check_results=results,
                score=0.0,
                gate=gate_decide(suite, rows=0, score=0.0, check_results=results),
                transforms=transforms,
            )

        flag_names = [flag for _, flag in flags]
        counts = [int(n or 0) for n in frame.select(pl.col(flag_names).sum()).row(0)] if flags else []
        results += [
            self._check_result(frame, check, flag, failed, rows)
            for (check, flag), failed in zip(flags, counts, strict=True)
        ]
        score = quality_score(suite, rows, {check.name: n for (check, _), n in zip(flags, counts, strict=True)})
        quarantine = self._quarantine(frame, flags)
        holder = [frame]
        del frame  # _cleaned_take owns the only reference now, so it can free columns as it filters them
        cleaned = self._cleaned_take(holder, [*flag_names, *self.helper_columns])
        return self._result(
            rows=rows,
            cleaned=cleaned,
            quarantine=quarantine,
            check_results=results,
            score=score,
            gate=gate_decide(suite, rows=rows, score=score, check_results=results),
            transforms=transforms,
        )

    def _plan(self, lazy: pl.LazyFrame) -> tuple[pl.LazyFrame, list[tuple[Check, str]], list[str]]:
        """The one lazy query: transforms and flag columns in stage order, then the quarantine flag."""
        keys = tuple(self.suite.keys)
        flags: list[tuple[Check, str]] = []
        pending: list[pl.Expr] = []
        transforms: list[str] = []
        ctx = CheckContext(as_of=self.as_of, schema=lazy.collect_schema(), keys=keys, frame=lazy)
        for step in self.suite.ordered_steps():
            if isinstance(step, Transform):
                if pending:  # checks declared before this transform must see the columns before it
                    lazy, pending = lazy.with_columns(pending), []
                    ctx = CheckContext(as_of=self.as_of, schema=lazy.collect_schema(), keys=keys, frame=lazy)
                lazy = lazy.with_columns(step.build(ctx))
                ctx = CheckContext(as_of=self.as_of, schema=lazy.collect_schema(), keys=keys, frame=lazy)
                transforms.append(step.name)
                continue
            for helper in step.helpers:  # own layers: a helper may read the one before it
                lazy = lazy.with_columns(helper)
                self.helper_columns.append(helper.meta.output_name())
            flag = f"{_FLAG_PREFIX}{len(flags)}"
            pending.append(step.fail_expr(ctx).alias(flag))
            flags.append((step, flag))
        if pending:
            lazy = lazy.with_columns(pending)
        return lazy.with_columns(self._quarantine_expr(flags)), flags, transforms

    @staticmethod
    def _quarantine_expr(flags: list[tuple[Check, str]]) -> pl.Expr:
        quarantining = [pl.col(flag) for check, flag in flags if check.severity.quarantines]
        any_bad = functools.reduce(operator.or_, quarantining) if quarantining else pl.lit(False)
        return any_bad.alias(_QUARANTINE_FLAG)

    def _confirm(self, frame: pl.DataFrame, flags: list[tuple[Check, str]]) -> pl.DataFrame:
        """Apply each check's ``confirm`` to the rows its fast predicate flagged; clear the ones it rejects."""
        changed = False
        for check, flag in flags:
            if check.confirm is None:
                continue
            positions = frame.get_column(flag).arg_true()
            if positions.len() == 0:
                continue
            confirmed = check.confirm(frame.select(pl.all().gather(positions))).fill_null(False)
            rejected = positions.filter(~confirmed)
            if rejected.len():
                frame = frame.with_columns(frame.get_column(flag).scatter(rejected, False))
                changed = True
        return frame.with_columns(self._quarantine_expr(flags)) if changed else frame

    def _check_result(self, frame: pl.DataFrame, check: Check, flag: str, failed: int, rows: int) -> CheckResult:
        """The result of one check, with the keys of its first failing rows (at most ``max_keys``)."""
        share = failed / rows
        status = check.status_for(failed, share)
        sample: list[tuple[Any, ...]] = []
        if failed and self.max_keys:
            positions = frame.get_column(flag).arg_true().head(self.max_keys)
            keys = list(self.suite.keys)
            if keys:
                sample = frame.select(pl.col(keys).gather(positions)).rows()
            else:  # no key columns declared: the row positions are the keys
                sample = [(int(p),) for p in positions]
        return CheckResult(
            name=check.name,
            stage=check.stage,
            severity=check.severity,
            reason_code=check.reason_code,
            failed_count=failed,
            failed_share=share,
            status=status,
            sample_keys=sample,
            message=_describe(check, failed, share, rows, status),
        )

    def _quarantine(self, frame: pl.DataFrame, flags: list[tuple[Check, str]]) -> pl.DataFrame:
        """Quarantined rows: keys, every reason code the row failed, then the rest of the row."""
        keys = list(self.suite.keys)
        flag_names = [flag for _, flag in flags]
        positions = frame.get_column(_QUARANTINE_FLAG).arg_true()  # gather: the quarantine is a small share
        bad = frame.select(pl.all().gather(positions))
        if flags:
            reasons = pl.concat_list(
                [pl.when(pl.col(flag)).then(pl.lit(check.reason_code)).otherwise(None) for check, flag in flags]
            ).list.drop_nulls()
        else:
            reasons = pl.lit([], dtype=pl.List(pl.String))
        internal = {*flag_names, *self.helper_columns, _QUARANTINE_FLAG}
        rest = [c for c in frame.columns if c not in keys and c not in internal]
        return bad.select(*keys, reasons.alias(REASON_CODES_COLUMN), *rest)

    @staticmethod
    def _cleaned_take(holder: list[pl.DataFrame], internal: list[str]) -> pl.DataFrame:
        """The rows that stay, without the engine's own columns.

        Takes the frame out of ``holder`` so that it is released as soon as the cleaned copy exists.
        """
        frame = holder.pop()
        keep = ~frame.get_column(_QUARANTINE_FLAG)
        frame = frame.drop(_QUARANTINE_FLAG, *internal)
        if keep.all():
            return frame
        parts: list[pl.DataFrame] = []
        columns = frame.columns
        for start in range(0, len(columns), _CLEANED_COLUMN_GROUP):
            group = columns[start : start + _CLEANED_COLUMN_GROUP]
            parts.append(frame.select(group).filter(keep))
            frame = frame.drop(group)  # releases these columns (unless the caller's frame shares them)
        return pl.concat(parts, how="horizontal")


__all__ = [
    "ANY_ROW",
    "REASON_CODES_COLUMN",
    "SEVERITY_WEIGHTS",
    "Check",
    "CheckContext",
    "CheckResult",
    "CheckStatus",
    "Decision",
    "DtypeFamily",
    "Gate",
    "GatePolicy",
    "Severity",
    "Stage",
    "Suite",
    "SuiteResult",
    "Threshold",
    "Transform",
    "duplicate_key",
    "gate_decide",
    "in_set",
    "matches",
    "not_null",
    "pair_in_mapping",
    "quality_score",
    "quarantine_reprocess",
    "strip_upper",
    "suite_run",
]

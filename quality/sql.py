"""A declared suite compiled to BigQuery SQL, so validation runs where the data is.

:func:`suite_compile` turns a :class:`~quality.engine.Suite` (the same declaration :func:`~quality.engine.suite_run`
runs in polars) into queries over a warehouse table, restricted to the rows a ``where`` predicate selects:

* :meth:`CompiledSuite.counts_sql`: ONE scan that returns every check's failing count, the rows removed by
  removing checks (exact duplicates) and the rows quarantined. Nothing but counts leaves the warehouse.
* :meth:`CompiledSuite.failing_rows_sql`: a bounded query for the failing keys and rows: per check its first
  ``max_keys`` failing rows, plus the first ``quarantine_cap`` quarantined rows, in key order, with one boolean
  column per check (the reason codes) and the row as the checks saw it.
* :meth:`CompiledSuite.clean_rows_sql`: the rows that passed (not removed, not quarantined), cleaned by the
  transforms: what a report computes from. :func:`table_replace` puts it in place of the table in a report query.

Each step brings its own SQL form (``Check.sql``, ``Transform.sql``; the engine's helpers write theirs); a step
without one raises :class:`~quality.engine.NotCompilable` naming it. Semantics follow the polars engine exactly
(the differential test in ``tests/quality`` holds both to identical counts and keys): a layer per transform,
checks of one stage side by side, nulls read as passing (``COALESCE(.., FALSE)``), a removing check takes its
rows out of what later checks see (``__qc_removed``), and no check but a removing one counts a removed row.

Two plans, the same answers:

* ``layered``: one chain of CTEs over the scanned rows; window checks (duplicates) run over every row.
* ``split`` (chosen when it applies): window checks whose rows must repeat some columns to fail
  (``Check.repeats_of``: duplicate keys, exact duplicates) run only on the rows whose common key ``K`` repeats,
  a small set found with one ``GROUP BY K HAVING COUNT(*) > 1``. The row checks run over every row in a chain
  without windows; the counts subtract what the removed copies contributed. Windows over a few thousand
  candidate rows instead of millions of rows are what makes the scan cheap.

Every table read selects only the columns some step refers to (found by parsing the SQL forms with sqlglot), and
the ``where`` predicate sits on the table read, so BigQuery bills the checked columns of the selected partitions.
"""

# ruff: noqa: S608 -- this module writes SQL: identifiers go through sql_ident/sql_table, values are parameters
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from .engine import (
    REMOVED_COLUMN,
    Check,
    NotCompilable,
    SqlContext,
    Suite,
    Transform,
    sql_ident,
    sql_table,
)

__all__ = ["CompiledSuite", "NotCompilable", "suite_compile", "table_replace"]

AS_OF_PARAM = "qc_as_of"
_ROW = "__t"
_RANK = "__qc_rank_"
_MASK_BITS = 62  # checks per INT64 bit mask of the failing-rows query


@dataclass(frozen=True)
class _Flag:
    check: Check
    column: str  # __qc_<index in suite.checks>
    set_based: bool  # runs on the candidate rows only (split plan)


@dataclass
class _Chain:
    """A chain of CTEs ending in ``final``; ``columns`` are its data columns (no flags, no removed flag)."""

    ctes: list[tuple[str, str]] = field(default_factory=list)
    final: str = ""
    columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CompiledSuite:
    """A suite compiled for one warehouse table and row selection (see the module docstring)."""

    suite: Suite
    table: str
    where: str
    params: Mapping[str, Any]
    columns: tuple[str, ...]  # source columns read from the table
    output_columns: tuple[str, ...]  # source columns then the columns the transforms derive
    flags: tuple[_Flag, ...]
    plan: str  # "layered" or "split"
    split_keys: tuple[str, ...] = ()
    references: Mapping[str, str] = field(default_factory=dict)

    # ---- queries ------------------------------------------------------------------------------------------------

    def counts_sql(self) -> str:
        """One scan: ``__rows``, ``__removed``, ``__quarantined`` and ``n__qc_<i>`` per check (see :meth:`counts`)."""
        if self.plan == "layered":
            chain = self._chain("q", self._source(), set_checks=True, row_checks=True)
            live = f"NOT {sql_ident(REMOVED_COLUMN)}"
            items = ["COUNT(*) AS __rows", f"COUNTIF({sql_ident(REMOVED_COLUMN)}) AS __removed"]
            for flag in self.flags:
                mask = "" if flag.check.removes else f" AND {live}"
                items.append(f"COUNTIF({sql_ident(flag.column)}{mask}) AS n{flag.column}")
            items.append(f"COUNTIF({live} AND {self._quarantine(self.flags)}) AS __quarantined")
            return _with(chain.ctes, f"SELECT {', '.join(items)} FROM {chain.final}")
        main, cand, ctes = self._split_chains()
        row_flags = [f for f in self.flags if not f.set_based]
        set_flags = [f for f in self.flags if f.set_based]
        removed = sql_ident(REMOVED_COLUMN)
        q_row, q_set = self._quarantine(row_flags), self._quarantine(set_flags)
        m_items = ["COUNT(*) AS __rows", *(f"COUNTIF({sql_ident(f.column)}) AS m{f.column}" for f in row_flags)]
        m_items.append(f"COUNTIF({q_row}) AS __m_quarantined")
        c_items = [f"COUNTIF({removed}) AS __removed"]
        c_items += [f"COUNTIF({sql_ident(f.column)} AND {removed}) AS c{f.column}" for f in row_flags]
        for flag in set_flags:
            mask = "" if flag.check.removes else f" AND NOT {removed}"
            c_items.append(f"COUNTIF({sql_ident(flag.column)}{mask}) AS c{flag.column}")
        c_items.append(f"COUNTIF({q_row} AND {removed}) AS __c_quarantined_removed")
        c_items.append(f"COUNTIF(NOT {removed} AND NOT ({q_row}) AND ({q_set})) AS __c_quarantined_added")
        select = (
            f"SELECT * FROM (SELECT {', '.join(m_items)} FROM {main.final}) "
            f"CROSS JOIN (SELECT {', '.join(c_items)} FROM {cand.final})"
        )
        return _with(ctes, select)

    def counts(self, row: Mapping[str, Any]) -> tuple[int, int, int, dict[str, int]]:
        """``(rows, removed, quarantined, failing count per check name)`` from the row of :meth:`counts_sql`."""

        def n(name: str) -> int:
            return int(row.get(name) or 0)

        if self.plan == "layered":
            per_check = {f.check.name: n(f"n{f.column}") for f in self.flags}
            return n("__rows"), n("__removed"), n("__quarantined"), per_check
        per_check = {}
        for flag in self.flags:
            if flag.set_based:
                per_check[flag.check.name] = n(f"c{flag.column}")
            else:
                per_check[flag.check.name] = n(f"m{flag.column}") - n(f"c{flag.column}")
        quarantined = n("__m_quarantined") - n("__c_quarantined_removed") + n("__c_quarantined_added")
        return n("__rows"), n("__removed"), quarantined, per_check

    def failing_rows_sql(self) -> str:
        """The failing rows: each check's first ``@qc_max_keys`` and the first ``@qc_quarantine_cap`` quarantined.

        In key order; columns: the data columns, ``__qc_removed``, then the checks that failed the row as INT64
        bit masks (``__qc_mask_<n>``: bit ``i`` of mask ``n`` is check ``62 n + i``; read them with
        :meth:`failed`): one cell instead of one per check keeps the rows small on the wire and in the client.
        Bound with :meth:`failing_rows_params`.
        """
        removed = sql_ident(REMOVED_COLUMN)
        data = ", ".join(sql_ident(c) for c in self.output_columns)
        masks = []
        for n in range(0, len(self.flags), _MASK_BITS):
            bits = " + ".join(
                f"IF({sql_ident(f.column)}, {1 << (i - n)}, 0)" for i, f in enumerate(self.flags[n : n + _MASK_BITS], n)
            )
            masks.append(f"{bits} AS __qc_mask_{n // _MASK_BITS}")
        flag_cols = ", ".join(masks)
        if self.plan == "layered":
            chain = self._chain("q", self._source(), set_checks=True, row_checks=True)
            masked = ", ".join(self._masked(f, removed) for f in self.flags)
            failing = f"SELECT {data}, {masked}, {removed} FROM {chain.final} WHERE {self._any(self.flags)}"
            ctes = chain.ctes
        else:
            main, cand, ctes = self._split_chains()
            row_flags = [f for f in self.flags if not f.set_based]
            main_flags = ", ".join(
                sql_ident(f.column) if not f.set_based else f"FALSE AS {sql_ident(f.column)}" for f in self.flags
            )
            cand_flags = ", ".join(self._masked(f, removed) for f in self.flags)
            failing = (
                f"SELECT {data}, {main_flags}, FALSE AS {removed} FROM {main.final} AS {_ROW} "
                f"WHERE ({self._any(row_flags)}) AND NOT {self._candidate(_ROW)} "
                f"UNION ALL SELECT {data}, {cand_flags}, {removed} FROM {cand.final} "
                f"WHERE {self._any(self.flags)}"
            )
        order = ", ".join(sql_ident(k) for k in self.suite.keys) or data
        frame = f"OVER (ORDER BY {order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        live_q = f"(NOT {removed} AND {self._quarantine(self.flags)})"
        ranks = [f"COUNTIF({live_q}) {frame} AS {_RANK}q"]
        ranks += [f"COUNTIF({sql_ident(f.column)}) {frame} AS {_RANK}{i}" for i, f in enumerate(self.flags)]
        keep = [f"({live_q} AND {_RANK}q <= @qc_quarantine_cap)"]
        keep += [f"({sql_ident(f.column)} AND {_RANK}{i} <= @qc_max_keys)" for i, f in enumerate(self.flags)]
        select = (
            f"SELECT {data}, {removed}, {flag_cols} FROM ("
            f"SELECT *, {', '.join(ranks)} FROM ({failing})) WHERE {' OR '.join(keep)} ORDER BY {order}"
        )
        return _with(ctes, select)

    def failed(self, row: Mapping[str, Any], index: int) -> bool:
        """Whether check ``index`` (of :attr:`flags`) failed a row of :meth:`failing_rows_sql`."""
        mask = int(row.get(f"__qc_mask_{index // _MASK_BITS}") or 0)
        return bool(mask >> (index % _MASK_BITS) & 1)

    def failing_rows_params(self, *, max_keys: int, quarantine_cap: int) -> dict[str, Any]:
        """The parameters of :meth:`failing_rows_sql`."""
        return {**self.params, "qc_max_keys": max(0, int(max_keys)), "qc_quarantine_cap": max(0, int(quarantine_cap))}

    def clean_rows_sql(self, columns: Sequence[str] | None = None) -> str:
        """The rows that passed (not removed, not quarantined), as the transforms left them.

        ``columns`` (default: the source columns) must be among :attr:`output_columns`.
        """
        wanted = list(columns or self.columns)
        unknown = [c for c in wanted if c not in self.output_columns]
        if unknown:
            raise NotCompilable(f"clean rows of {self.suite.dataset} have no column(s) {', '.join(unknown)}")
        data = ", ".join(sql_ident(c) for c in wanted)
        removed = sql_ident(REMOVED_COLUMN)
        if self.plan == "layered":
            chain = self._chain("q", self._source(), set_checks=True, row_checks=True)
            select = f"SELECT {data} FROM {chain.final} WHERE NOT {removed} AND NOT ({self._quarantine(self.flags)})"
            return _with(chain.ctes, select)
        main, cand, ctes = self._split_chains()
        row_flags = [f for f in self.flags if not f.set_based]
        select = (
            f"SELECT {data} FROM {main.final} AS {_ROW} "
            f"WHERE NOT ({self._quarantine(row_flags)}) AND NOT {self._candidate(_ROW)} "
            f"UNION ALL SELECT {data} FROM {cand.final} WHERE NOT {removed} AND NOT ({self._quarantine(self.flags)})"
        )
        return _with(ctes, select)

    # ---- building blocks ---------------------------------------------------------------------------------------

    def _source(self, *, candidates: bool = False) -> str:
        columns = ", ".join(sql_ident(c) for c in self.columns)
        where = f"({self.where})"
        if candidates:
            where += f" AND {self._candidate('__s')}"
        return (
            f"SELECT {columns}, FALSE AS {sql_ident(REMOVED_COLUMN)} FROM {sql_table(self.table)} AS __s WHERE {where}"
        )

    def _repeated_keys(self) -> str:
        keys = ", ".join(sql_ident(k) for k in self.split_keys)
        return f"SELECT {keys} FROM {sql_table(self.table)} WHERE ({self.where}) GROUP BY {keys} HAVING COUNT(*) > 1"

    def _candidate(self, alias: str) -> str:
        match = " AND ".join(f"__k.{sql_ident(k)} IS NOT DISTINCT FROM {alias}.{sql_ident(k)}" for k in self.split_keys)
        return f"EXISTS (SELECT 1 FROM __qc_repeated AS __k WHERE {match})"

    def _split_chains(self) -> tuple[_Chain, _Chain, list[tuple[str, str]]]:
        main = self._chain("m", self._source(), set_checks=False, row_checks=True)
        cand = self._chain("c", self._source(candidates=True), set_checks=True, row_checks=True)
        return main, cand, [("__qc_repeated", self._repeated_keys()), *main.ctes, *cand.ctes]

    def _chain(self, prefix: str, source: str, *, set_checks: bool, row_checks: bool) -> _Chain:
        """The layers: a SELECT per transform, checks of a stage side by side, the removed flag after a removal."""
        chain = _Chain(columns=list(self.columns))
        chain.ctes.append((f"{prefix}0", source))
        chain.final = f"{prefix}0"
        pending: list[str] = []
        by_check = {f.check.name: f for f in self.flags}

        def layer(projection: str) -> None:
            name = f"{prefix}{len(chain.ctes)}"
            chain.ctes.append((name, f"SELECT {projection} FROM {chain.final} AS {_ROW}"))
            chain.final = name

        def flush() -> None:
            if pending:
                layer(f"*, {', '.join(pending)}")
                pending.clear()

        for step in self.suite.ordered_steps():
            ctx = self._context(chain.columns)
            if isinstance(step, Transform):
                flush()
                exprs = step.sql_exprs(ctx)
                replaced = [f"({e}) AS {sql_ident(c)}" for c, e in exprs.items() if c in chain.columns]
                added = [f"({e}) AS {sql_ident(c)}" for c, e in exprs.items() if c not in chain.columns]
                star = f"* REPLACE ({', '.join(replaced)})" if replaced else "*"
                layer(", ".join([star, *added]))
                chain.columns += [c for c in exprs if c not in chain.columns]
                continue
            flag = by_check[step.name]
            if (flag.set_based and not set_checks) or (not flag.set_based and not row_checks):
                continue
            expr = f"COALESCE(({step.sql_expr(ctx)}), FALSE)"
            if step.removes:
                expr += f" AND NOT {sql_ident(REMOVED_COLUMN)}"
            pending.append(f"{expr} AS {sql_ident(flag.column)}")
            if step.removes:
                flush()
                removed = sql_ident(REMOVED_COLUMN)
                layer(f"* REPLACE ({removed} OR {sql_ident(flag.column)} AS {removed})")
        flush()
        return chain

    def _context(self, columns: Sequence[str]) -> SqlContext:
        return SqlContext(
            columns=tuple(columns),
            keys=tuple(self.suite.keys),
            as_of=f"@{AS_OF_PARAM}",
            row=_ROW,
            references=self.references,
        )

    @staticmethod
    def _quarantine(flags: Sequence[_Flag]) -> str:
        parts = [sql_ident(f.column) for f in flags if f.check.severity.quarantines and not f.check.removes]
        return f"({' OR '.join(parts)})" if parts else "FALSE"

    @staticmethod
    def _any(flags: Sequence[_Flag]) -> str:
        return " OR ".join(sql_ident(f.column) for f in flags) or "FALSE"

    @staticmethod
    def _masked(flag: _Flag, removed: str) -> str:
        column = sql_ident(flag.column)
        return column if flag.check.removes else f"({column} AND NOT {removed}) AS {column}"


def _with(ctes: Sequence[tuple[str, str]], select: str) -> str:
    if not ctes:
        return select
    return "WITH " + ",\n".join(f"{name} AS ({sql})" for name, sql in ctes) + "\n" + select


# --------------------------------------------------------------------------------------------------------------
# Compiling
# --------------------------------------------------------------------------------------------------------------


def suite_compile(
    suite: Suite,
    *,
    table: str,
    as_of: datetime,
    where: str = "TRUE",
    params: Mapping[str, Any] | None = None,
    references: Mapping[str, str] | None = None,
    plan: str = "auto",
) -> CompiledSuite:
    """Compile ``suite`` for the rows of ``table`` that ``where`` selects (BigQuery SQL over the table's columns,
    with ``params`` as named query parameters); ``as_of`` is the reference time of time-based checks.

    ``references`` maps a referential check's reference name to its warehouse table (default: the same name).
    ``plan`` is ``auto`` (``split`` when it applies, else ``layered``), ``layered`` or ``split``.
    Raises :class:`~quality.engine.NotCompilable` naming every step that has no SQL form.
    """
    missing = [
        step.name
        for step in suite.ordered_steps()
        if (isinstance(step, Check) and step.sql is None) or (isinstance(step, Transform) and step.sql is None)
    ]
    if missing:
        raise NotCompilable(
            f"suite {suite.dataset} cannot run in the warehouse: no SQL form for {', '.join(missing)} "
            "(declare sql= next to the polars form, or run it in memory with suite_run)"
        )
    refs = dict(references or {})
    flags = tuple(
        _Flag(check=check, column=f"__qc_{index}", set_based=check.repeats_of is not None)
        for index, check in enumerate(suite.checks)
    )
    columns, derived = _columns_read(suite, refs)
    split_keys = _split_keys(suite, flags, derived)
    chosen = plan
    if plan == "auto":
        chosen = "split" if split_keys else "layered"
    elif plan == "split" and not split_keys:
        raise NotCompilable(f"suite {suite.dataset}: the split plan does not apply (see quality.sql)")
    elif plan not in ("layered", "split"):
        raise ValueError("plan must be auto, layered or split")
    all_params = {**(params or {}), AS_OF_PARAM: as_of}
    compiled = CompiledSuite(
        suite=suite,
        table=table,
        where=where,
        params=all_params,
        columns=columns,
        output_columns=(*columns, *derived),
        flags=flags,
        plan=chosen,
        split_keys=split_keys if chosen == "split" else (),
        references=refs,
    )
    return compiled


def _columns_read(suite: Suite, references: Mapping[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Source columns some step refers to (keys always), in schema order, and the columns transforms derive."""
    referenced: set[str] = set(suite.keys)
    known: list[str] = list(suite.schema)
    derived: list[str] = []
    for step in suite.ordered_steps():
        ctx = SqlContext(columns=tuple(known + derived), keys=tuple(suite.keys), references=references)
        if isinstance(step, Transform):
            exprs = step.sql_exprs(ctx)
            for expr in exprs.values():
                referenced |= _referenced(expr)
            derived += [c for c in exprs if c not in known and c not in derived]
        else:
            referenced |= _referenced(step.sql_expr(ctx))
    columns = tuple(c for c in suite.schema if c in referenced)
    return columns, tuple(derived)


@functools.lru_cache(maxsize=512)
def _referenced(expr: str) -> frozenset[str]:
    """Column names an SQL expression refers to (qualified ones only when qualified with the row alias)."""
    try:
        tree = sqlglot.parse_one(expr, read="bigquery")
    except SqlglotError as exc:
        raise NotCompilable(f"SQL form {expr!r} does not parse: {exc}") from exc
    names = set()
    for column in tree.find_all(exp.Column):
        if column.table and column.table != _ROW:
            continue  # a column of a subquery's own table (e.g. a reference table)
        names.add(column.name)
    return frozenset(names)


def _split_keys(suite: Suite, flags: Sequence[_Flag], derived: Sequence[str]) -> tuple[str, ...]:
    """The common key of the window checks when the split plan applies, else ()."""
    set_flags = [f for f in flags if f.set_based]
    if not set_flags:
        return ()
    if any(f.check.removes and not f.set_based for f in flags):
        return ()  # a row-level removal would have to be subtracted from every row check: keep it layered
    transformed = {c for step in suite.transforms for c in (step.sql_exprs(_any_context(suite)) or {})}
    candidates = sorted((tuple(f.check.repeats_of or ()) for f in set_flags), key=len)
    for keys in candidates:
        if not keys or set(keys) & transformed or any(k in derived for k in keys):
            continue
        if all(set(keys) <= set(f.check.repeats_of or ()) for f in set_flags):
            return keys
    return ()


def _any_context(suite: Suite) -> SqlContext:
    return SqlContext(columns=tuple(suite.schema), keys=tuple(suite.keys))


# --------------------------------------------------------------------------------------------------------------
# Putting the clean rows in a report query
# --------------------------------------------------------------------------------------------------------------


def table_replace(sql: str, *, table: str, replacement: str) -> str:
    """``sql`` (BigQuery) with every read of ``table`` replaced by the subquery ``replacement`` (same alias).

    Raises ValueError when ``sql`` does not parse or never reads ``table``.
    """
    try:
        tree = sqlglot.parse_one(sql, read="bigquery")
        sub = sqlglot.parse_one(replacement, read="bigquery")
    except SqlglotError as exc:
        raise ValueError(f"the query does not parse: {exc}") from exc
    wanted = table.split(".")[-2:]
    hits = 0
    for node in list(tree.find_all(exp.Table)):
        if [node.db, node.name] != wanted:  # dataset.table, with or without a project in front
            continue
        alias = node.alias or node.name
        node.replace(exp.Subquery(this=sub.copy(), alias=exp.TableAlias(this=exp.to_identifier(alias))))
        hits += 1
    if not hits:
        raise ValueError(f"the query does not read {table}")
    return tree.sql(dialect="bigquery")

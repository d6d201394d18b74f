"""Governance of what leaves for a sheet (issue 12): a query that sends confidential or restricted columns of a
classified dataset to a Google Sheet needs them masked in the query or an approval.

The query is parsed (sqlglot, BigQuery dialect) and each column of its result traced back to the classified
tables it reads. A column passed through a one-way function (``TO_HEX(SHA256(customer_email))``,
``FARM_FINGERPRINT(customer_id)``) or only counted (``COUNT(DISTINCT customer_id)``) counts as masked. A query that
cannot be parsed is treated as sending everything its tables hold (fail closed).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .classification import DATASETS, dataset_columns, level_rank

MASKING_FUNCTIONS = {"SHA256", "SHA512", "SHA1", "MD5", "FARM_FINGERPRINT", "COUNT", "APPROX_COUNT_DISTINCT"}
SHEET_EXPORT_ACTION = "security.sheet_classified_export"

if TYPE_CHECKING:
    from sqlglot import exp


@dataclass(frozen=True)
class ClassifiedColumn:
    dataset: str
    column: str
    level: str


def _table_name(table: exp.Table) -> str:
    return ".".join(p for p in (table.db, table.name) if p)


_MASKING_CLASS = re.compile(r"SHA|MD5|FINGERPRINT|^COUNT|APPROXDISTINCT|HLL", re.I)


def _masked(column: exp.Expression, projection: exp.Expression) -> bool:
    """Whether ``column`` reaches the result only through a one-way function or a count."""
    from sqlglot import exp  # imported when a query is checked: run_job's start-up skips sqlglot (issue 15)

    node = column.parent
    while node is not None:
        if isinstance(node, exp.Anonymous) and str(node.this).upper() in MASKING_FUNCTIONS:
            return True
        if isinstance(node, exp.Func) and _MASKING_CLASS.search(type(node).__name__):
            return True
        if node is projection:
            return False
        node = node.parent
    return False


def classified_columns_in_sql(sql: str, *, min_level: str = "confidential") -> list[ClassifiedColumn]:
    """The columns of classified datasets at ``min_level`` or above that the query's result carries unmasked."""
    import sqlglot
    from sqlglot import exp

    floor = level_rank(min_level)
    try:
        tree = sqlglot.parse_one(sql, read="bigquery")
    except sqlglot.errors.SqlglotError:  # ParseError, and TokenError for text that does not even tokenize
        tree = None
    found: dict[tuple[str, str], ClassifiedColumn] = {}

    def add(dataset: str, column: str) -> None:
        level = dataset_columns(dataset).get(column)
        if level is not None and level_rank(level) >= floor:
            found[(dataset, column)] = ClassifiedColumn(dataset, column, level)

    if tree is None:  # fail closed: every sensitive column of every classified table the text names
        for dataset in DATASETS:
            if dataset in sql:
                for column in dataset_columns(dataset):
                    add(dataset, column)
        return sorted(found.values(), key=lambda c: (c.dataset, c.column))
    for select in tree.find_all(exp.Select):
        tables = {}
        for table in select.find_all(exp.Table):
            name = _table_name(table)
            if name in DATASETS:
                tables[table.alias_or_name] = name
                tables[name] = name
        if not tables:
            continue
        for projection in select.expressions:
            if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and projection.is_star):
                qualifier = projection.table if isinstance(projection, exp.Column) else ""
                for dataset in {tables[qualifier]} if qualifier in tables else set(tables.values()):
                    for column in dataset_columns(dataset):
                        add(dataset, column)
                continue
            for column in projection.find_all(exp.Column):
                if _masked(column, projection):
                    continue
                qualifier = column.table
                candidates = {tables[qualifier]} if qualifier in tables else set(tables.values())
                for dataset in candidates:
                    if column.name in dataset_columns(dataset):
                        add(dataset, column.name)
    return sorted(found.values(), key=lambda c: (c.dataset, c.column))


def sql_sha256(sql: str) -> str:
    return hashlib.sha256(sql.strip().encode()).hexdigest()


def _export_inputs(target) -> dict:
    return {"target_id": target.pk, "target": target.name, "sql_sha256": sql_sha256(target.source_query)}


def sheet_export_hold(*, target, actor) -> object | None:
    """Inside a sync target's save: when its query sends confidential or restricted columns unmasked and no
    approval covers exactly this query, pause the target and open (or keep) an approval request. Returns the
    pending request, or None when the target may write."""
    from approvals.models import ApprovalRequest
    from approvals.services import approval_request_create

    if target.source_kind not in ("bigquery", "database") or not target.source_query.strip():
        return None
    columns = classified_columns_in_sql(target.source_query)
    if not columns:
        return None
    inputs = _export_inputs(target)
    requests = ApprovalRequest.objects.filter(action=SHEET_EXPORT_ACTION, object_id=str(target.pk))
    mine = [r for r in requests.order_by("-pk") if r.inputs.get("sql_sha256") == inputs["sql_sha256"]]
    if any(r.status == "approved" for r in mine):
        return None
    pending = next((r for r in mine if r.status == "pending"), None)
    if pending is None:
        names = ", ".join(f"{c.dataset}.{c.column} ({c.level})" for c in columns)
        pending = approval_request_create(
            action=SHEET_EXPORT_ACTION,
            inputs={**inputs, "columns": [f"{c.dataset}.{c.column}" for c in columns]},
            reason=f"sync target {target.name} sends {names} to a Google Sheet unmasked",
            requested_by=actor,
            title=f"Send classified columns to a sheet: sync target {target.name}",
            obj=target,
        )
    if target.enabled:
        type(target).objects.filter(pk=target.pk).update(enabled=False)
        target.enabled = False
    return pending


def sheet_export_execute(*, request) -> str:
    """Approved: resume the target, if its query is still the one approved (idempotent)."""
    from approvals.registry import ApprovalExecutionFailed
    from sheetsync.models import SyncTarget

    target = SyncTarget.objects.filter(pk=request.inputs["target_id"]).first()
    if target is None:
        raise ApprovalExecutionFailed(f"sync target {request.inputs['target']} no longer exists")
    if sql_sha256(target.source_query) != request.inputs["sql_sha256"]:
        raise ApprovalExecutionFailed(f"sync target {target.name}'s query changed after the request: save it again")
    if not target.enabled:
        SyncTarget.objects.filter(pk=target.pk).update(enabled=True)
    return f"sync target {target.name} may send {', '.join(request.inputs['columns'])}; resumed"


def register() -> None:
    from approvals.registry import ApprovalAction, approval_action_register

    approval_action_register(
        ApprovalAction(
            name=SHEET_EXPORT_ACTION,
            title="Send confidential or restricted columns to a Google Sheet",
            approver_permission="security.approve_classified_export",
            approver_role="Platform Admin",
            execute=sheet_export_execute,
            reason_required=False,
        )
    )

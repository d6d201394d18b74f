"""Admin lists at production size: a paginator that does not COUNT(*) a whole large table, and a filter's choices
read with a skip scan instead of a DISTINCT over every row (issue 11).

- ``EstimatedCountPaginator``: an unfiltered list on PostgreSQL counts from the planner's statistics
  (``pg_class.reltuples``, kept fresh by autovacuum/ANALYZE) once the table is larger than ``exact_below`` rows;
  a small table, a filtered or searched list and every other database count exactly.
- ``distinct_values``: the distinct values of an indexed column, one index probe per value (PostgreSQL's "loose
  index scan" as a recursive CTE), so 200 folders over 100,000 dashboards cost 200 probes, not a scan and a sort.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property


def table_estimate(model, using: str = "default") -> int | None:
    """The planner's row estimate for ``model``'s table on PostgreSQL (None elsewhere or before any ANALYZE)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None and row[0] >= 0 else None


class EstimatedCountPaginator(Paginator):
    """Counts an unfiltered list of a large PostgreSQL table from ``pg_class.reltuples``; counts exactly otherwise.

    A page deeper than ``deferred_join_from`` rows reads its ids first (``SELECT id ... ORDER BY ... OFFSET n``,
    which an index covering the order and the id answers without touching the table), then those rows by id:
    the "deferred join", so the offset walks index entries, not whole rows.
    """

    exact_below = 20_000
    deferred_join_from = 1_000
    estimated = False  # True once ``count`` came from the planner: the list says "about N" (admin/pagination.html)

    def page(self, number):
        queryset = self.object_list
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        if not isinstance(queryset, QuerySet) or bottom < self.deferred_join_from or queryset.query.distinct:
            return super().page(number)
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        ids = list(queryset.values_list("pk", flat=True)[bottom:top])
        rows = {row.pk: row for row in queryset.order_by().filter(pk__in=ids)}
        return self._get_page([rows[pk] for pk in ids if pk in rows], number, self)

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if isinstance(queryset, QuerySet) and not queryset.query.where and not queryset.query.distinct:
            estimate = table_estimate(queryset.model, queryset.db)
            if estimate is not None and estimate >= self.exact_below:
                self.estimated = True
                return estimate
        return super().count


def distinct_values(queryset: QuerySet, field: str, *, limit: int = 500) -> list:
    """The first ``limit`` distinct non-null values of ``field`` over the model's whole table, sorted.

    On PostgreSQL a recursive CTE walks the column's index one value at a time (needs an index on ``field``);
    elsewhere an ordinary DISTINCT.
    """
    model = queryset.model
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return list(
            model._default_manager.using(queryset.db).exclude(**{f"{field}__isnull": True})
            .order_by(field).values_list(field, flat=True).distinct()[:limit]
        )  # fmt: skip
    qn = connection.ops.quote_name
    table, column = qn(model._meta.db_table), qn(model._meta.get_field(field).column)
    # Identifiers from the model's own meta, quoted by the backend; the limit is a parameter.
    sql = f"""
        WITH RECURSIVE walk(value) AS (
            (SELECT {column} FROM {table} WHERE {column} IS NOT NULL ORDER BY {column} LIMIT 1)
            UNION ALL
            SELECT (SELECT {column} FROM {table} WHERE {column} > walk.value ORDER BY {column} LIMIT 1)
            FROM walk WHERE walk.value IS NOT NULL
        )
        SELECT value FROM walk WHERE value IS NOT NULL LIMIT %s
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


def planner_estimate(queryset: QuerySet) -> int | None:
    """The planner's row estimate for ``queryset`` (``EXPLAIN``) on PostgreSQL; None elsewhere. Costs a plan, never
    a scan."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        import json

        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])

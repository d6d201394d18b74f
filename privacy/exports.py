"""Pseudonymised exports: quarantined rows with personal columns as stable tokens (joins across exports work)."""

from __future__ import annotations

import csv
import io
from typing import Any

from quality.models import QuarantinedRow

from .pseudonym import row_pseudonymise


def quarantine_csv(*, rows: Any, reader: Any = None, purpose: str = "export") -> str:
    """CSV of quarantined rows (dataset, key, reason codes, then the row's columns), personal columns pseudonymised.

    With the security half installed (issue 12) the export is access-recorded like its other exports.
    """
    rows = list(rows.order_by("pk") if hasattr(rows, "order_by") else rows)
    records = [(r, row_pseudonymise(r.dataset, dict(r.data or {}))) for r in rows]
    columns: list[str] = []
    for _, data in records:
        columns += [c for c in data if c not in columns]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "dataset", "row_key", "reason_codes", *columns])
    for row, data in records:
        cells = [data.get(c, "") for c in columns]
        writer.writerow([row.pk, row.dataset, row.row_key, " ".join(row.reason_codes),
                         *[f"'{c}" if isinstance(c, str) and c[:1] in "=+-@" else c for c in cells]])  # fmt: skip
    if reader is not None and rows:
        try:
            from security.access import VIA_EXPORT, record_access
        except ImportError:
            pass
        else:
            record_access(reader, dataset_or_model="quality.quarantinedrow", object_ref=f"{len(rows)} rows",
                          purpose=purpose, via=VIA_EXPORT, level="internal")  # fmt: skip
    return out.getvalue()


def quarantine_rows(*, run_id: int | None = None, dataset: str = "") -> Any:
    qs = QuarantinedRow.objects.all()
    if run_id is not None:
        qs = qs.filter(quality_run_id=run_id)
    if dataset:
        qs = qs.filter(dataset=dataset)
    return qs

"""Small builders for security tests: a quality run with quarantined order lines and a failing check."""

from __future__ import annotations

from quality.models import CheckResult, QualityRun, QuarantinedRow

LINE = {
    "order_id": "O-1",
    "line_no": 1,
    "region": "EMEA",
    "revenue": 12.5,
    "customer_id": "C0000042",
    "customer_email": "ann@example.com",
}


def quarantine_make(n: int = 2) -> tuple[QualityRun, list[QuarantinedRow]]:
    run = QualityRun.objects.create(dataset="sales.order_lines", rows=10, rows_quarantined=n, score=80.0, gate="review")
    CheckResult.objects.create(
        quality_run=run,
        dataset="sales.order_lines",
        name="customer_email_format",
        stage="validity",
        severity="error",
        status="failed",
        failed_count=n,
        sample_keys=[["O-1", 1], ["O-2", 1]],
    )
    rows = [
        QuarantinedRow.objects.create(
            quality_run=run,
            dataset="sales.order_lines",
            row_key=f"O-{i}|1",
            reason_codes=["EMAIL_MALFORMED"],
            data={**LINE, "order_id": f"O-{i}", "customer_email": f"person{i}@example.com"},
        )
        for i in range(1, n + 1)
    ]
    return run, rows

"""Small records that hold personal data, as the jobs would leave them (frugal: a few rows each)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from quality.models import CheckResult, QualityRun, QuarantinedRow
from sheetsync.models import SyncEvent, SyncOutcome

EMAIL = "Ann.Customer@example.com"
CUSTOMER = "C0000042"


def quality_run(*, at: datetime | None = None) -> QualityRun:
    run = QualityRun.objects.create(dataset="sales.order_lines", rows=10, rows_quarantined=2, score=80, gate="review")
    if at is not None:
        QualityRun.objects.filter(pk=run.pk).update(created_at=at)
    return run


def quarantined(run: QualityRun, *, email: str = EMAIL, customer: str = CUSTOMER, n: int = 1,
                at: datetime | None = None) -> list[QuarantinedRow]:  # fmt: skip
    rows = [
        QuarantinedRow.objects.create(
            quality_run=run,
            dataset="sales.order_lines",
            row_key=f"O{run.pk}-{i}|1",
            reason_codes=["REVENUE_NEGATIVE"],
            data={"order_id": f"O{run.pk}-{i}", "line_no": 1, "customer_email": email, "customer_id": customer,
                  "revenue": -1.0},
        )  # fmt: skip
        for i in range(n)
    ]
    if at is not None:
        QuarantinedRow.objects.filter(pk__in=[r.pk for r in rows]).update(created_at=at)
    return rows


def check_result(run: QualityRun) -> CheckResult:
    return CheckResult.objects.create(
        quality_run=run, dataset="sales.order_lines", name="revenue_not_negative", stage="validity",
        severity="error", status="fail", failed_count=2, sample_keys=[["O1", 1], ["O2", 1]],
    )  # fmt: skip


def sync_event(*, details: dict, at: datetime | None = None) -> SyncEvent:
    at = at or timezone.now()
    return SyncEvent.objects.create(
        target_name="crm", outcome=SyncOutcome.FAILED, day=at.date(), first_seen_at=at, last_seen_at=at,
        details=details,
    )  # fmt: skip

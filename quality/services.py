"""Recording quality runs, the review queue (decided through the approvals mechanism) and re-processing
quarantined rows."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.services import ApprovalError, approval_approve, approval_reject, approval_request_create
from audit.services import audit_log

from .engine import Suite, SuiteResult, quarantine_reprocess
from .models import CheckResult, QualityRun, QuarantinedRow, ReviewItem

logger = logging.getLogger(__name__)
QUARANTINE_KEEP_MAX = 10_000  # rows kept per run; the counts on the checks stay exact beyond it


# A review decision that cannot be taken (already decided, own request, missing reason): the approvals' error.
ReviewError = ApprovalError


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def quality_run_record(
    *,
    suite: Suite,
    result: SuiteResult,
    job_run: Any = None,
    requested_by: Any = None,
    requested_by_label: str = "",
    review_title: str = "",
    approval_action: str = "",
    approval_inputs: dict[str, Any] | None = None,
    shapers: Iterable[Any] = (),
    obj: Any = None,
) -> QualityRun:
    """Record a suite's result (checks, quarantined rows) and, when the gate says review, open a ReviewItem with
    the approval request that decides it.

    ``approval_action`` names a registered approval action (see :mod:`approvals.registry`) and
    ``approval_inputs`` its exact inputs: approving the request runs that action (e.g. the blocked publish).
    """
    keys = list(suite.keys)
    with transaction.atomic():
        run = QualityRun.objects.create(
            job_run=job_run,
            dataset=result.dataset,
            rows=result.rows,
            rows_quarantined=result.quarantine.height,
            score=round(result.score, 3),
            gate=str(result.gate.decision),
            reasons=list(result.gate.reasons),
            duration_s=result.duration_s,
        )
        CheckResult.objects.bulk_create(
            [
                CheckResult(
                    quality_run=run,
                    name=c.name,
                    stage=str(c.stage),
                    severity=str(c.severity),
                    reason_code=c.reason_code,
                    status=str(c.status),
                    failed_count=c.failed_count,
                    failed_share=c.failed_share,
                    sample_keys=_jsonable([list(k) for k in c.sample_keys[:100]]),
                    message=c.message,
                )
                for c in result.check_results
            ]
        )
        quarantined = result.quarantine.head(QUARANTINE_KEEP_MAX).to_dicts()
        QuarantinedRow.objects.bulk_create(
            [
                QuarantinedRow(
                    quality_run=run,
                    dataset=result.dataset,
                    row_key="|".join(str(row.get(k)) for k in keys)[:500],
                    reason_codes=list(row.get("reason_codes") or []),
                    data=_jsonable({k: v for k, v in row.items() if k != "reason_codes"}),
                )
                for row in quarantined
            ],
            batch_size=1000,
        )
        review = None
        if run.gate == QualityRun.Gate.REVIEW:
            title = review_title or f"{result.dataset}: quality score {result.score:.1f}"
            approval = None
            if approval_action:
                approval = approval_request_create(
                    action=approval_action,
                    inputs={**(approval_inputs or {}), "quality_run_id": run.pk},
                    reason="the quality gate asks for a manual review: " + "; ".join(run.reasons)[:1500],
                    requested_by=requested_by,
                    requested_by_label=requested_by_label,
                    shapers=shapers,
                    title=f"Quality review: {title}",
                    obj=obj,
                )
            review = ReviewItem.objects.create(
                quality_run=run, job_run=job_run, title=title, requested_by=requested_by, approval=approval
            )
        audit_log(
            action="quality.run_recorded",
            obj=run,
            data={
                "dataset": run.dataset,
                "gate": run.gate,
                "score": run.score,
                "rows": run.rows,
                "quarantined": run.rows_quarantined,
                "failing_checks": [c.name for c in result.check_results if str(c.status) == "fail"],
                "review_item": review.pk if review else None,
                "approval": review.approval_id if review else None,
            },
        )
    return run


def review_item_approve(*, item_id: int, actor: Any) -> ReviewItem:
    """Approve a pending review through its approval request (four-eyes, quorum); the action runs once approved."""
    item = ReviewItem.objects.get(pk=item_id)
    if item.approval_id is None:
        raise ReviewError(f"review #{item.pk} has no approval request: nothing would run")
    approval_approve(request_id=item.approval_id, actor=actor)
    item.refresh_from_db()
    return item


def review_item_reject(*, item_id: int, actor: Any, reason: str) -> ReviewItem:
    """Reject a pending review with a reason; the blocked work stays blocked and the requester is told."""
    item = ReviewItem.objects.get(pk=item_id)
    if item.approval_id is None:
        raise ReviewError(f"review #{item.pk} has no approval request")
    approval_reject(request_id=item.approval_id, actor=actor, reason=reason)
    item.refresh_from_db()
    return item


def review_item_decided(*, request: Any, actor: Any, reason: str) -> None:
    """Mirror an approval request's decision (approved, rejected, expired) on its review item (same transaction)."""
    status = {
        "approved": ReviewItem.Status.APPROVED,
        "rejected": ReviewItem.Status.REJECTED,
        "expired": ReviewItem.Status.EXPIRED,
    }[request.status]
    ReviewItem.objects.filter(approval=request).update(
        status=status, decided_by=actor, decided_at=request.decided_at or timezone.now(), decision_reason=reason
    )


def quarantine_rows_reprocess(*, rows: list[QuarantinedRow], suite: Suite, actor: Any) -> dict[str, int]:
    """Run the suite again on quarantined rows (after a fix upstream or in the data) and mark the outcome."""
    import polars as pl

    if not rows:
        return {"passed": 0, "still_failing": 0}
    frame = pl.DataFrame([r.data for r in rows], infer_schema_length=None)
    result = quarantine_reprocess(suite, frame)
    keys = list(suite.keys)
    failing = {"|".join(str(r.get(k)) for k in keys) for r in result.quarantine.to_dicts()}
    counts = {"passed": 0, "still_failing": 0}
    now = timezone.now()
    with transaction.atomic():
        for row in rows:
            ok = row.row_key not in failing and str(result.gate.decision) != "fail"
            row.status = QuarantinedRow.Status.REPROCESSED if ok else QuarantinedRow.Status.STILL_FAILING
            row.reprocessed_at = now
            counts["passed" if ok else "still_failing"] += 1
        QuarantinedRow.objects.bulk_update(rows, ["status", "reprocessed_at"])
        audit_log(
            action="quality.quarantine_reprocessed",
            actor=actor,
            object_type="quality.quarantinedrow",
            object_id=",".join(str(r.pk) for r in rows[:50]),
            data=counts,
        )
    return counts

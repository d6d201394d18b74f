"""Recording quality runs, the review queue (decided through the approvals mechanism) and re-processing
quarantined rows."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from approvals.services import ApprovalError, approval_approve, approval_reject, approval_request_create
from audit.services import audit_log
from lineage.services import lineage_quarantine_release
from privacy.pseudonym import keys_pseudonymise

from .engine import Suite, SuiteResult, quarantine_reprocess, results_combine
from .models import CheckResult, QualityRun, QuarantinedRow, ReviewItem

logger = logging.getLogger(__name__)


def quarantine_cap() -> int:
    """Quarantined rows kept per dataset and run (``QUALITY_QUARANTINE_CAP``); the counts stay exact beyond it."""
    return max(0, int(getattr(settings, "QUALITY_QUARANTINE_CAP", 10_000)))


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
    return quality_runs_record(
        parts=[(suite, result)],
        job_run=job_run,
        requested_by=requested_by,
        requested_by_label=requested_by_label,
        review_title=review_title,
        approval_action=approval_action,
        approval_inputs=approval_inputs,
        shapers=shapers,
        obj=obj,
    )


def quality_runs_record(
    *,
    parts: Sequence[tuple[Suite, SuiteResult]],
    labels: Sequence[str] | None = None,
    job_run: Any = None,
    requested_by: Any = None,
    requested_by_label: str = "",
    review_title: str = "",
    approval_action: str = "",
    approval_inputs: dict[str, Any] | None = None,
    shapers: Iterable[Any] = (),
    obj: Any = None,
    details: dict[str, Any] | None = None,
) -> QualityRun:
    """Record several suites' results as ONE run: one gate (the strictest), one score (the lowest), one review.

    Used by the sales job for its order lines (validated in BigQuery) and its report (validated in memory):
    every check is recorded with its dataset, every part's quarantined rows under its dataset and keys (the
    first ``QUALITY_QUARANTINE_CAP`` of each part). The run is recorded under the last part's dataset; when its
    gate says review, a ReviewItem is opened with the approval request that decides it: ``approval_action`` names
    a registered approval action (see :mod:`approvals.registry`), ``approval_inputs`` its exact inputs (the run's
    id is added), and approving the request runs that action (e.g. the blocked publish).
    """
    combined = results_combine([result for _, result in parts], labels=labels)
    cap = quarantine_cap()
    per_part = {
        (labels[i] if labels else result.dataset): {
            "dataset": result.dataset,
            "rows": result.rows,
            "removed": result.rows_removed,
            "quarantined": result.rows_quarantined,
            "quarantine_kept": min(result.quarantine.height, cap),
            "score": round(result.score, 3),
            "gate": str(result.gate.decision),
        }
        for i, (_, result) in enumerate(parts)
    }
    key_columns = {suite.dataset: tuple(suite.keys) for suite, _ in parts}
    with transaction.atomic():
        run = QualityRun.objects.create(
            job_run=job_run,
            dataset=combined.dataset,
            rows=combined.rows,
            rows_quarantined=combined.rows_quarantined,
            rows_removed=combined.rows_removed,
            score=round(combined.score, 3),
            gate=str(combined.gate.decision),
            reasons=list(combined.gate.reasons),
            duration_s=combined.duration_s,
            details={**({"parts": per_part} if len(parts) > 1 else {}), **(details or {})},
        )
        CheckResult.objects.bulk_create(
            [
                CheckResult(
                    quality_run=run,
                    dataset=c.dataset,
                    name=c.name,
                    stage=str(c.stage),
                    severity=str(c.severity),
                    reason_code=c.reason_code,
                    status=str(c.status),
                    failed_count=c.failed_count,
                    failed_share=c.failed_share,
                    # Issue 12: a personal key column (an e-mail...) is kept as its pseudonym in samples.
                    sample_keys=_jsonable(
                        keys_pseudonymise(
                            c.dataset, key_columns.get(c.dataset, ()), [list(k) for k in c.sample_keys[:100]]
                        )
                    ),
                    message=c.message,
                    gate_effect=str(c.gate_effect),
                    threshold=c.threshold,
                    removes=c.removes,
                )
                for c in combined.check_results
            ]
        )
        QuarantinedRow.objects.bulk_create(
            [
                QuarantinedRow(
                    quality_run=run,
                    dataset=result.dataset,
                    row_key="|".join(str(row.get(k)) for k in suite.keys)[:500],
                    reason_codes=list(row.get("reason_codes") or []),
                    data=_jsonable({k: v for k, v in row.items() if k != "reason_codes"}),
                )
                for suite, result in parts
                for row in result.quarantine.head(cap).to_dicts()
            ],
            batch_size=1000,
        )
        review = None
        if run.gate == QualityRun.Gate.REVIEW:
            title = review_title or f"{combined.dataset}: quality score {combined.score:.1f}"
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
                "removed": run.rows_removed,
                "failing_checks": [c.name for c in combined.check_results if str(c.status) == "fail"],
                "gate_checks": [
                    f"{c.dataset}:{c.name}={c.gate_effect}"
                    for c in combined.check_results
                    if str(c.gate_effect) != "pass"
                ],
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
        lineage_quarantine_release(rows=rows, actor=actor, counts=counts)
    return counts

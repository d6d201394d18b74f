"""Recording quality runs, the review queue (approve / reject / resume) and re-processing quarantined rows."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.roles import DATA_STEWARD
from audit.services import audit_log

from .engine import Suite, SuiteResult, quarantine_reprocess, results_combine
from .models import CheckResult, QualityRun, QuarantinedRow, ReviewItem

logger = logging.getLogger(__name__)


def quarantine_cap() -> int:
    """Quarantined rows kept per dataset and run (``QUALITY_QUARANTINE_CAP``); the counts stay exact beyond it."""
    return max(0, int(getattr(settings, "QUALITY_QUARANTINE_CAP", 10_000)))


class ReviewError(Exception):
    """A review decision that cannot be taken (already decided, own request, missing reason)."""


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
    review_title: str = "",
    resume: dict[str, Any] | None = None,
) -> QualityRun:
    """Record a suite's result (checks, quarantined rows) and, when the gate says review, open a ReviewItem.

    ``resume`` names what an approval resumes: ``{"handler": "app.services.fn", "kwargs": {...}}``.
    """
    return quality_runs_record(
        parts=[(suite, result)],
        job_run=job_run,
        requested_by=requested_by,
        review_title=review_title,
        resume=resume,
    )


def quality_runs_record(
    *,
    parts: Sequence[tuple[Suite, SuiteResult]],
    labels: Sequence[str] | None = None,
    job_run: Any = None,
    requested_by: Any = None,
    review_title: str = "",
    resume: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> QualityRun:
    """Record several suites' results as ONE run: one gate (the strictest), one score (the lowest), one review.

    Used by the sales job for its order lines (validated in BigQuery) and its report (validated in memory):
    every check is recorded with its dataset, every part's quarantined rows under its dataset and keys (the
    first ``QUALITY_QUARANTINE_CAP`` of each part). The run is recorded under the last part's dataset; when its
    gate says review, a ReviewItem is opened exactly as :func:`quality_run_record` does.
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
                    sample_keys=_jsonable([list(k) for k in c.sample_keys[:100]]),
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
            review = ReviewItem.objects.create(
                quality_run=run,
                job_run=job_run,
                title=review_title or f"{combined.dataset}: quality score {combined.score:.1f}",
                requested_by=requested_by,
                resume=resume or {},
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
            },
        )
        if review is not None:
            transaction.on_commit(lambda: _notify_stewards(review))
    return run


def review_item_approve(*, item_id: int, actor: Any) -> ReviewItem:
    """Approve a pending review (not one's own request) and resume the blocked work once committed."""
    from .tasks import review_resume_task

    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().get(pk=item_id)
        _check_decidable(item, actor)
        item.status = ReviewItem.Status.APPROVED
        item.decided_by = actor
        item.decided_at = timezone.now()
        item.save(update_fields=["status", "decided_by", "decided_at"])
        audit_log(action="quality.review_approved", obj=item, actor=actor, data={"quality_run": item.quality_run_id})
        transaction.on_commit(lambda: review_resume_task.delay(item.pk))
        transaction.on_commit(lambda: _notify_requester(item))
    return item


def review_item_reject(*, item_id: int, actor: Any, reason: str) -> ReviewItem:
    """Reject a pending review with a reason; the blocked work stays blocked and the requester is told."""
    reason = (reason or "").strip()
    if not reason:
        raise ReviewError("a rejection needs a reason")
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().get(pk=item_id)
        _check_decidable(item, actor)
        item.status = ReviewItem.Status.REJECTED
        item.decided_by = actor
        item.decided_at = timezone.now()
        item.decision_reason = reason
        item.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
        audit_log(
            action="quality.review_rejected",
            obj=item,
            actor=actor,
            data={"quality_run": item.quality_run_id, "reason": reason},
        )
        if item.resume.get("on_reject"):  # e.g. mark the blocked report rejected, in this same transaction
            import_string(item.resume["on_reject"])(**item.resume.get("kwargs", {}), rejected_by=actor, reason=reason)
        transaction.on_commit(lambda: _notify_requester(item))
    return item


def _check_decidable(item: ReviewItem, actor: Any) -> None:
    if item.status != ReviewItem.Status.PENDING:
        raise ReviewError(f"review #{item.pk} was already {item.status} by {item.decided_by}")
    if not actor.has_perm("quality.decide_reviewitem"):
        raise ReviewError("deciding reviews needs the Data Steward role")
    if item.requested_by_id is not None and item.requested_by_id == actor.pk:
        raise ReviewError("four-eyes rule: someone other than the requester must decide")


def review_item_resume(*, item_id: int) -> str:
    """Run what the approval resumes (e.g. the blocked publish) and record its outcome on the item."""
    item = ReviewItem.objects.select_related("decided_by").get(pk=item_id)
    if item.status != ReviewItem.Status.APPROVED or item.resume_outcome:
        return item.resume_outcome
    handler = item.resume.get("handler")
    if not handler:
        outcome = "nothing to resume"
    else:
        try:
            outcome = import_string(handler)(**item.resume.get("kwargs", {}), approved_by=item.decided_by)
        except Exception as exc:  # noqa: BLE001 - recorded on the item for the steward to see
            logger.exception("resuming review %s failed", item.pk)
            outcome = f"failed: {type(exc).__name__}: {exc}"
    with transaction.atomic():
        item.resume_outcome = outcome[:2000]
        item.save(update_fields=["resume_outcome"])
        audit_log(action="quality.review_resumed", obj=item, actor=item.decided_by, data={"outcome": outcome[:500]})
    return outcome


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


def _notify_stewards(item: ReviewItem) -> None:
    users = get_user_model().objects.filter(groups__name=DATA_STEWARD, is_active=True).exclude(email="")
    recipients = sorted(set(users.values_list("email", flat=True)))
    if not recipients:
        return
    url = f"{settings.SITE_URL.rstrip('/')}/admin/quality/reviewitem/{item.pk}/change/"
    body = (
        f"A quality gate asks for a manual review: {item.title}\n\n"
        + "\n".join(f"- {r}" for r in item.quality_run.reasons)
        + f"\n\nApprove or reject it here: {url}\n"
    )
    try:
        send_mail(f"Review needed: {item.title}", body, settings.DEFAULT_FROM_EMAIL, recipients)
    except Exception as exc:  # noqa: BLE001 - the review stays in the queue whatever the mail does
        logger.warning("review notice %s could not be sent: %s", item.pk, exc)


def _notify_requester(item: ReviewItem) -> None:
    if item.requested_by is None or not item.requested_by.email:
        return
    verdict = "approved" if item.status == ReviewItem.Status.APPROVED else f"rejected: {item.decision_reason}"
    body = f'Your run\'s quality review "{item.title}" was {verdict} (by {item.decided_by}).\n'
    if item.status == ReviewItem.Status.APPROVED:
        body += "The blocked publish resumes now.\n"
    try:
        send_mail(
            f"Quality review {item.status}: {item.title}", body, settings.DEFAULT_FROM_EMAIL, [item.requested_by.email]
        )
    except Exception as exc:  # noqa: BLE001
        logger.warning("review decision notice %s could not be sent: %s", item.pk, exc)

"""The approvals mechanism: request, decide (four-eyes, quorum), expire, execute exactly once, sweep.

A request pins the action's exact inputs (canonical JSON and its SHA-256, re-checked before running). The
requester and everyone who shaped the inputs never approve. Once the quorum is reached the action runs from
the durable row: ``not_started -> running -> done | failed``, claimed atomically, so a double delivery runs it
once; the sweeper (Celery beat, ``manage.py approvals_sweep``, Airflow) runs what a crash left approved but not
run, re-runs an execution stuck in ``running`` (actions are idempotent), and expires what nobody decided.
Every transition writes its audit event in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from audit.services import audit_log
from dataops_site.lazy import lazy_function

from .models import ApprovalDecision, ApprovalRequest, DestinationWriter
from .registry import (
    ApprovalAction,
    ApprovalExecutionFailed,
    ApprovalStillRunning,
    approval_action_get,
    approval_sweepers,
    destination_reservations,
)

# OpenLineage's client (and requests) load on the first approval, not at start-up (issue 15).
lineage_approval = lazy_function("lineage.services.lineage_approval")
logger = logging.getLogger(__name__)
OUTCOME_MAX = 2000


class ApprovalError(Exception):
    """A request or decision that cannot be taken; the message says why (shown to the person)."""


class DestinationTaken(ApprovalError):
    """The sheet is registered to another writer."""


# --- inputs ---------------------------------------------------------------------------------------------------


def inputs_canonical(inputs: Any) -> str:
    """The one canonical JSON text of an action's inputs (sorted keys, no spaces): what is hashed and stored."""
    return json.dumps(inputs, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def inputs_sha256(inputs: Any) -> str:
    """SHA-256 of the canonical JSON of ``inputs``."""
    return hashlib.sha256(inputs_canonical(inputs).encode()).hexdigest()


def _label(user: Any) -> str:
    return user.get_username() if user is not None else ""


# --- request --------------------------------------------------------------------------------------------------


def approval_request_create(
    *,
    action: str,
    inputs: dict[str, Any],
    reason: str,
    requested_by: Any = None,
    requested_by_label: str = "",
    shapers: Iterable[Any] = (),
    title: str = "",
    quorum: int | None = None,
    obj: Any = None,
) -> ApprovalRequest:
    """Open a request for ``action`` with exactly these inputs (audited; the approvers are mailed on commit).

    ``requested_by`` is the person (or the named principal's user) behind it; ``shapers`` are everyone else who
    changed the inputs. A request nobody can be held to (no user) needs two approvers, whatever the action says.
    """
    spec = approval_action_get(action)
    reason = (reason or "").strip()
    if spec.reason_required and not reason:
        raise ApprovalError(f"{spec.title}: a reason is required")
    quorum = max(quorum or spec.quorum, spec.quorum)
    if requested_by is None:
        quorum = 2
    if quorum not in (1, 2):
        raise ApprovalError("the quorum is 1 or 2 approvers")
    canonical = inputs_canonical(inputs)
    label = (requested_by_label or _label(requested_by) or "unknown")[:150]
    with transaction.atomic():
        request = ApprovalRequest.objects.create(
            action=spec.name,
            title=(title or spec.title)[:300],
            inputs=json.loads(canonical),
            inputs_sha256=hashlib.sha256(canonical.encode()).hexdigest(),
            reason=reason or spec.title,
            approver_role=spec.approver_role,
            approver_permission=spec.approver_permission,
            quorum=quorum,
            requested_by=requested_by,
            requested_by_label=label,
            object_type=obj._meta.label_lower if obj is not None else "",
            object_id=str(obj.pk) if obj is not None else "",
            expires_at=timezone.now() + timedelta(hours=float(settings.APPROVALS_EXPIRY_HOURS)),
        )
        shaper_users = {u.pk: u for u in shapers if u is not None}
        if shaper_users:
            request.shapers.set(list(shaper_users.values()))
        audit_log(
            action="approval.requested",
            obj=request,
            actor=requested_by,
            data={
                "action": spec.name,
                "inputs_sha256": request.inputs_sha256,
                "approver_role": spec.approver_role,
                "quorum": quorum,
                "reason": request.reason[:500],
                "requested_by": label,
                "shapers": sorted(_label(u) for u in shaper_users.values()),
                "expires_at": request.expires_at.isoformat(),
                "object": f"{request.object_type}:{request.object_id}" if request.object_type else "",
            },
        )
        transaction.on_commit(lambda: _mail_approvers(request.pk))
    return request


# --- who may decide -------------------------------------------------------------------------------------------


def approval_refusal(*, request: ApprovalRequest, user: Any) -> str:
    """Why ``user`` may not decide ``request`` now, or "" when they may."""
    if user is None or not user.is_active:
        return "only an active user decides approvals"
    if request.status != ApprovalRequest.Status.PENDING:
        return f"approval #{request.pk} is already {request.get_status_display().lower()}"
    if request.expires_at <= timezone.now():
        return f"approval #{request.pk} expired at {request.expires_at:%Y-%m-%d %H:%M} UTC; ask for it again"
    if not user.has_perm(request.approver_permission):
        return f"approving {request.title!r} needs the {request.approver_role} role"
    if request.requested_by_id is not None and request.requested_by_id == user.pk:
        return "four-eyes rule: someone other than the requester must decide"
    if request.shapers.filter(pk=user.pk).exists():
        return "four-eyes rule: you changed what this action would run, so someone else must decide"
    if request.decisions.filter(actor=user).exists():
        return "you already approved this request; a second, different approver is needed"
    return ""


def approval_request_url(request: ApprovalRequest) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("admin:approvals_approvalrequest_change", args=[request.pk])


# --- decisions ------------------------------------------------------------------------------------------------


def approval_approve(*, request_id: int, actor: Any) -> ApprovalRequest:
    """Record ``actor``'s approval; once the quorum is reached the request is approved and its action queued."""
    _expire_if_due(request_id)
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().get(pk=request_id)
        refusal = approval_refusal(request=request, user=actor)
        if refusal:
            raise ApprovalError(refusal)
        ApprovalDecision.objects.create(request=request, actor=actor, decision=ApprovalDecision.Decision.APPROVE)
        approvals = request.decisions.filter(decision=ApprovalDecision.Decision.APPROVE).count()
        reached = approvals >= request.quorum
        if reached:
            request.status = ApprovalRequest.Status.APPROVED
            request.decided_at = timezone.now()
            request.save(update_fields=["status", "decided_at"])
        audit_log(
            action="approval.approved" if reached else "approval.approval_recorded",
            obj=request,
            actor=actor,
            data={"action": request.action, "approvals": approvals, "quorum": request.quorum,
                  "inputs_sha256": request.inputs_sha256},
        )  # fmt: skip
        lineage_approval(request=request, actor=actor, approved=reached)
        if reached:
            spec = approval_action_get(request.action)
            if spec.on_decided:
                spec.on_decided(request=request, actor=actor, reason="")
            transaction.on_commit(lambda: _queue_execution(request.pk))
            transaction.on_commit(lambda: _mail_requester(request.pk, "approved"))
    return request


def approval_reject(*, request_id: int, actor: Any, reason: str) -> ApprovalRequest:
    """Reject with a reason: the action never runs and the requester is told."""
    reason = (reason or "").strip()
    if not reason:
        raise ApprovalError("a rejection needs a reason")
    _expire_if_due(request_id)
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().get(pk=request_id)
        refusal = approval_refusal(request=request, user=actor)
        if refusal and "already approved this request" not in refusal:
            raise ApprovalError(refusal)
        ApprovalDecision.objects.update_or_create(
            request=request, actor=actor, defaults={"decision": ApprovalDecision.Decision.REJECT, "reason": reason}
        )
        request.status = ApprovalRequest.Status.REJECTED
        request.decided_at = timezone.now()
        request.save(update_fields=["status", "decided_at"])
        audit_log(
            action="approval.rejected",
            obj=request,
            actor=actor,
            data={"action": request.action, "reason": reason[:1000]},
        )
        spec = approval_action_get(request.action)
        if spec.on_decided:
            spec.on_decided(request=request, actor=actor, reason=reason)
        transaction.on_commit(lambda: _mail_requester(request.pk, "rejected"))
    return request


def _expire_if_due(request_id: int) -> None:
    """Expire the request in its own transaction when its time is up (so the refusal that follows sticks)."""
    request = ApprovalRequest.objects.filter(pk=request_id).only("status", "expires_at").first()
    if request is None:
        raise ApprovalError(f"no approval request #{request_id}")
    if request.status == ApprovalRequest.Status.PENDING and request.expires_at <= timezone.now():
        approval_expire(request_id=request_id)


def approval_expire(*, request_id: int) -> bool:
    """Expire a pending request past its expiry: it never runs, and its requester is told. True if it expired."""
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().get(pk=request_id)
        if request.status != ApprovalRequest.Status.PENDING or request.expires_at > timezone.now():
            return False
        request.status = ApprovalRequest.Status.EXPIRED
        request.decided_at = timezone.now()
        request.save(update_fields=["status", "decided_at"])
        audit_log(
            action="approval.expired",
            obj=request,
            data={"action": request.action, "expires_at": request.expires_at.isoformat(),
                  "approvals": request.decisions.count(), "quorum": request.quorum},
        )  # fmt: skip
        spec = approval_action_get(request.action)
        if spec.on_decided:
            spec.on_decided(request=request, actor=None, reason="expired before anyone decided")
        transaction.on_commit(lambda: _mail_requester(request.pk, "expired"))
    return True


# --- execution ------------------------------------------------------------------------------------------------


def _queue_execution(request_id: int) -> None:
    from .tasks import approval_execute_task

    try:
        approval_execute_task.delay(request_id)
    except Exception as exc:  # noqa: BLE001 - a broker outage: the sweeper runs it later
        logger.warning("approval %s could not be queued (%s); the sweeper will run it", request_id, exc)


def _claim(request_id: int, *, stuck_before: Any = None) -> ApprovalRequest | None:
    """Move an approved request to ``running`` (or take over one stuck there); None when it is not ours to run."""
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().get(pk=request_id)
        if request.status != ApprovalRequest.Status.APPROVED:
            return None
        runnable = request.execution == ApprovalRequest.Execution.NOT_STARTED or (
            request.execution == ApprovalRequest.Execution.RUNNING
            and stuck_before is not None
            and (request.execution_started_at is None or request.execution_started_at < stuck_before)
        )
        if not runnable:
            return None
        taken_over = request.execution == ApprovalRequest.Execution.RUNNING
        request.execution = ApprovalRequest.Execution.RUNNING
        request.execution_attempts += 1
        request.execution_started_at = timezone.now()
        request.save(update_fields=["execution", "execution_attempts", "execution_started_at"])
        audit_log(
            action="approval.execution_started",
            obj=request,
            data={"action": request.action, "attempt": request.execution_attempts, "taken_over": taken_over},
        )
    return request


def approval_execute(*, request_id: int, stuck_before: Any = None) -> ApprovalRequest:
    """Run an approved request's action once and record the outcome (done, or failed with the reason).

    Safe to call twice (a redelivered task, the sweeper): only the caller that claims the row runs it. With
    ``stuck_before`` an execution left ``running`` since before then (its process died) is taken over.
    """
    request = _claim(request_id, stuck_before=stuck_before)
    if request is None:
        return ApprovalRequest.objects.get(pk=request_id)
    try:
        spec: ApprovalAction = approval_action_get(request.action)
        if inputs_sha256(request.inputs) != request.inputs_sha256:
            raise ApprovalExecutionFailed("the stored inputs no longer match what was approved; nothing ran")
        if _audited_inputs_sha256(request) != request.inputs_sha256:
            raise ApprovalExecutionFailed("the inputs differ from those the audit trail recorded; nothing ran")
        outcome, failed = spec.execute(request=request), False
    except ApprovalStillRunning as exc:
        # A taken-over execution whose work is still alive elsewhere: leave it running, look again later.
        logger.info("approval %s is still running: %s", request.pk, exc)
        ApprovalRequest.objects.filter(pk=request.pk).update(execution_started_at=timezone.now())
        return ApprovalRequest.objects.get(pk=request.pk)
    except ApprovalExecutionFailed as exc:
        outcome, failed = str(exc), True
    except Exception as exc:  # noqa: BLE001 - a bug: the traceback goes to the log, a short reason to the page
        logger.exception("approval %s: running %s crashed", request.pk, request.action)
        outcome, failed = f"the action crashed ({type(exc).__name__}); see the server log", True
    return _record_execution(request.pk, outcome=outcome or "done", failed=failed)


def _audited_inputs_sha256(request: ApprovalRequest) -> str:
    """The inputs hash the hash-chained audit trail recorded when the request was opened (a row edited in the
    database, inputs and hash together, no longer matches it)."""
    from audit.models import AuditEvent

    event = (
        AuditEvent.objects.filter(
            action="approval.requested", object_type="approvals.approvalrequest", object_id=str(request.pk)
        )
        .order_by("seq")
        .first()
    )
    return (event.data or {}).get("inputs_sha256", "") if event else ""


def _record_execution(request_id: int, *, outcome: str, failed: bool) -> ApprovalRequest:
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().get(pk=request_id)
        request.execution = ApprovalRequest.Execution.FAILED if failed else ApprovalRequest.Execution.DONE
        request.execution_outcome = outcome[:OUTCOME_MAX]
        request.execution_finished_at = timezone.now()
        request.save(update_fields=["execution", "execution_outcome", "execution_finished_at"])
        audit_log(
            action="approval.execution_failed" if failed else "approval.executed",
            obj=request,
            data={"action": request.action, "outcome": outcome[:1000], "attempt": request.execution_attempts},
        )
        transaction.on_commit(lambda: _mail_requester(request.pk, "failed" if failed else "done"))
    return request


# --- sweeper --------------------------------------------------------------------------------------------------


def approvals_sweep() -> dict[str, int]:
    """Expire overdue requests, run approved ones a crash left unrun, take over stuck executions, reconcile."""
    now = timezone.now()
    counts = {"expired": 0, "executed": 0, "failed": 0, "taken_over": 0}
    overdue = ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING, expires_at__lte=now)
    for pk in overdue.order_by("pk").values_list("pk", flat=True):
        counts["expired"] += int(approval_expire(request_id=pk))
    grace = now - timedelta(seconds=float(settings.APPROVALS_SWEEP_GRACE_S))
    stuck_before = now - timedelta(seconds=float(settings.APPROVALS_STUCK_AFTER_S))
    unrun = ApprovalRequest.objects.filter(
        status=ApprovalRequest.Status.APPROVED, execution=ApprovalRequest.Execution.NOT_STARTED, decided_at__lte=grace
    )
    stuck = ApprovalRequest.objects.filter(
        status=ApprovalRequest.Status.APPROVED,
        execution=ApprovalRequest.Execution.RUNNING,
        execution_started_at__lt=stuck_before,
    )
    for pk in sorted({*unrun.values_list("pk", flat=True), *stuck.values_list("pk", flat=True)}):
        was_running = ApprovalRequest.objects.filter(pk=pk, execution=ApprovalRequest.Execution.RUNNING).exists()
        result = approval_execute(request_id=pk, stuck_before=stuck_before)
        if result.execution == ApprovalRequest.Execution.DONE:
            counts["executed"] += 1
        elif result.execution == ApprovalRequest.Execution.FAILED:
            counts["failed"] += 1
        counts["taken_over"] += int(was_running)
    for name, sweep in sorted(approval_sweepers().items()):
        try:
            for key, value in sweep().items():
                counts[f"{name}.{key}"] = value
        except Exception:  # noqa: BLE001 - one reconciler's bug must not stop the others
            logger.exception("approvals sweeper %s failed", name)
            counts[f"{name}.errors"] = 1
    return counts


# --- destinations: one writer per sheet -----------------------------------------------------------------------


def destination_writer_of(*, spreadsheet_id: str, sheet: str) -> str:
    """The registered writer of the sheet (stored, or reserved by an app's settings), or ""."""
    for (sid, name), writer in destination_reservations().items():
        if sid == spreadsheet_id and name == sheet:
            return writer
    row = DestinationWriter.objects.filter(spreadsheet_id=spreadsheet_id, sheet=sheet).first()
    return row.writer if row else ""


def destination_writers_map() -> dict[tuple[str, str], str]:
    """(spreadsheet id, sheet) -> writer for every registration and reservation (one query)."""
    found = {(r.spreadsheet_id, r.sheet): r.writer for r in DestinationWriter.objects.all()}
    found.update(destination_reservations())
    return found


def destination_check(*, spreadsheet_id: str, sheet: str, writer: str) -> None:
    """Raise ``DestinationTaken`` naming the first writer when another one holds the sheet."""
    first = destination_writer_of(spreadsheet_id=spreadsheet_id, sheet=sheet)
    if first and first != writer:
        raise DestinationTaken(
            f"sheet {sheet!r} of spreadsheet {spreadsheet_id} is written by {first}; one sheet has one writer: "
            "choose another sheet or spreadsheet"
        )


def destination_register(*, spreadsheet_id: str, sheet: str, writer: str, actor: Any = None) -> DestinationWriter:
    """Register ``writer`` as the sheet's one writer (idempotent for the same writer; audited when new)."""
    destination_check(spreadsheet_id=spreadsheet_id, sheet=sheet, writer=writer)
    with transaction.atomic():
        try:
            with transaction.atomic():
                row, created = DestinationWriter.objects.get_or_create(
                    spreadsheet_id=spreadsheet_id, sheet=sheet, defaults={"writer": writer, "registered_by": actor}
                )
        except IntegrityError:
            row, created = DestinationWriter.objects.get(spreadsheet_id=spreadsheet_id, sheet=sheet), False
        if row.writer != writer:
            raise DestinationTaken(
                f"sheet {sheet!r} of spreadsheet {spreadsheet_id} is written by {row.writer}; one sheet has one writer"
            )
        if created:
            audit_log(
                action="destination.registered",
                obj=row,
                actor=actor,
                data={"spreadsheet_id": spreadsheet_id, "sheet": sheet, "writer": writer},
            )
    return row


def destination_release(*, writer: str, actor: Any = None, keep: Iterable[tuple[str, str]] = ()) -> int:
    """Drop ``writer``'s registrations except ``keep`` (spreadsheet id, sheet) pairs; audited. Returns how many."""
    kept = set(keep)
    released = 0
    with transaction.atomic():
        for row in DestinationWriter.objects.select_for_update().filter(writer=writer).order_by("pk"):
            if (row.spreadsheet_id, row.sheet) in kept:
                continue
            audit_log(
                action="destination.released",
                obj=row,
                actor=actor,
                data={"spreadsheet_id": row.spreadsheet_id, "sheet": row.sheet, "writer": writer},
            )
            row.delete()
            released += 1
    return released


# --- mail -----------------------------------------------------------------------------------------------------


def approvers_of(request: ApprovalRequest) -> list[Any]:
    """Active users holding the approver permission, minus the requester and the shapers."""
    users = get_user_model().objects.with_perm(
        request.approver_permission,
        is_active=True,
        include_superusers=False,
        backend="django.contrib.auth.backends.ModelBackend",  # the permission backend (django-axes' only guards)
    )
    excluded = {request.requested_by_id, *request.shapers.values_list("pk", flat=True)}
    return [u for u in users.order_by("pk") if u.pk not in excluded]


def _send(subject: str, body: str, recipients: list[str]) -> None:
    if not recipients:
        return
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, sorted(set(recipients)))
    except Exception as exc:  # noqa: BLE001 - the request stays in the queue whatever the mail does
        logger.warning("approval mail %r could not be sent: %s", subject, exc)


def _mail_approvers(request_id: int) -> None:
    request = ApprovalRequest.objects.get(pk=request_id)
    recipients = [u.email for u in approvers_of(request) if u.email]
    body = (
        f"{request.requested_by_label} asks for: {request.title}\n\nReason: {request.reason}\n"
        f"Approvers: {request.approver_role} (quorum {request.quorum}); expires {request.expires_at:%Y-%m-%d %H:%M} "
        f"UTC.\n\nSee the exact inputs and approve or reject here: {approval_request_url(request)}\n"
    )
    _send(f"Approval needed: {request.title}", body, recipients)


_VERDICTS = {
    "approved": "was approved; it runs now",
    "rejected": "was rejected",
    "expired": "expired before anyone decided: it will never run. Ask again if it is still needed",
    "done": "was approved and has run",
    "failed": "was approved, but running it FAILED",
}


def _mail_requester(request_id: int, event: str) -> None:
    request = ApprovalRequest.objects.select_related("requested_by").get(pk=request_id)
    recipients = [request.requested_by.email] if request.requested_by and request.requested_by.email else []
    if event in ("done", "failed"):  # the approvers look for the outcome too
        recipients += [d.actor.email for d in request.decisions.select_related("actor") if d.actor.email]
    lines = [f"The request {request.title!r} {_VERDICTS[event]}."]
    if event == "rejected":
        lines += [f"Reason: {d.reason}" for d in request.decisions.filter(decision="reject")]
    if event in ("done", "failed"):
        lines.append(f"Outcome: {request.execution_outcome}")
    lines.append(f"Details: {approval_request_url(request)}")
    _send(f"Approval {event}: {request.title}", "\n".join(lines) + "\n", recipients)

"""``/api/v1/`` resources beyond job runs and dashboards: approvals and quality reviews, Sheets sync targets and
events, the audit trail (filters, cursor pages, CSV / JSON Lines exports, chain status), quality runs and
quarantined rows, sales queries, query runs and reports.

Each view is an adapter: it checks the same permission codenames as the admin (``DjangoModelPermission``:
``view_<model>`` to read, ``required_perms`` per method to write) and calls the same service the admin calls, so
audit events and approvals are the same whichever door a change comes through.
"""

from __future__ import annotations

import csv
import io
import json

from django.db import IntegrityError
from django.http import StreamingHttpResponse
from django.urls import path
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.models import ApprovalRequest
from approvals.services import ApprovalError, approval_approve, approval_refusal, approval_reject
from audit.models import AuditEvent
from audit.selectors import audit_chain_state
from orchestration.api import JobRunOutput
from quality.models import CheckResult, QualityRun, QuarantinedRow, ReviewItem
from sales.models import QueryRun, SalesQuery, SalesReport
from security.api import MaskedSerializerMixin
from sheetsync.models import SyncEvent, SyncOutcome, SyncTarget

from .common import DjangoModelPermission, NewestFirstCursor, StrictFilterSet, conflict, model_validate
from .schema import ApiError

PERMS = [permissions.IsAuthenticated, DjangoModelPermission]


class Conflict(ApiError):
    """409: the action is refused as things stand (already decided, four-eyes rule, nothing to do)."""


# --- approvals ------------------------------------------------------------------------------------------------


class ApprovalOutput(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by_label")

    class Meta:
        model = ApprovalRequest
        fields = ["id", "action", "title", "inputs", "inputs_sha256", "reason", "approver_role", "quorum",
                  "requested_by", "object_type", "object_id", "status", "created_at", "expires_at", "decided_at",
                  "execution", "execution_outcome"]  # fmt: skip


class RejectInput(serializers.Serializer):
    reason = serializers.CharField(help_text="why: the requester reads it", max_length=1000)


class ApprovalList(generics.ListAPIView):
    """The approvals queue (every guarded action: role grants, write tokens, costly queries, reviews, ...)."""

    queryset = ApprovalRequest.objects.all().order_by("-pk")
    serializer_class = ApprovalOutput
    permission_classes = PERMS
    filterset_fields = ["status", "action", "execution"]
    search_fields = ["title", "reason"]
    pagination_class = NewestFirstCursor


class ApprovalDetail(generics.RetrieveAPIView):
    queryset = ApprovalRequest.objects.all()
    serializer_class = ApprovalOutput
    permission_classes = PERMS


def _decide(request, approval: ApprovalRequest, reject: bool, reason: str = "") -> Response:
    """Approve or reject through the approvals service: 403 without the approver's role, 409 when the four-eyes
    rule (or the request's state) refuses."""
    if not request.user.has_perm(approval.approver_permission):
        raise PermissionDenied(f"deciding {approval.title!r} needs the {approval.approver_role} role")
    try:
        if reject:
            decided = approval_reject(request_id=approval.pk, actor=request.user, reason=reason)
        else:
            decided = approval_approve(request_id=approval.pk, actor=request.user)
    except ApprovalError as exc:
        return conflict(str(exc))
    return Response(ApprovalOutput(decided).data)


DECIDE_RESPONSES = {200: ApprovalOutput, 409: OpenApiResponse(Conflict, description="refused: why")}


class ApprovalApprove(generics.GenericAPIView):
    """Approve (four-eyes: never the requester nor who shaped the action); the action runs once the quorum is met."""

    queryset = ApprovalRequest.objects.all()
    permission_classes = PERMS
    serializer_class = ApprovalOutput

    @extend_schema(request=None, responses=DECIDE_RESPONSES)
    def post(self, request, pk: int):
        return _decide(request, self.get_object(), reject=False)


class ApprovalReject(generics.GenericAPIView):
    """Reject with a reason: the action never runs and the requester is told."""

    queryset = ApprovalRequest.objects.all()
    permission_classes = PERMS
    serializer_class = RejectInput

    @extend_schema(request=RejectInput, responses=DECIDE_RESPONSES)
    def post(self, request, pk: int):
        approval = self.get_object()
        data = RejectInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _decide(request, approval, reject=True, reason=data.validated_data["reason"])


# --- quality: reviews, runs, quarantined rows -----------------------------------------------------------------


class ReviewItemOutput(serializers.ModelSerializer):
    requested_by = serializers.StringRelatedField(allow_null=True)
    decided_by = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = ReviewItem
        fields = ["id", "title", "status", "quality_run", "job_run", "approval", "requested_by", "decided_by",
                  "decided_at", "decision_reason", "created_at"]  # fmt: skip


class ReviewItemList(generics.ListAPIView):
    """Quality reviews waiting for (or decided by) a Data Steward."""

    queryset = ReviewItem.objects.select_related("requested_by", "decided_by").order_by("-pk")
    serializer_class = ReviewItemOutput
    permission_classes = PERMS
    filterset_fields = ["status"]
    search_fields = ["title"]


class ReviewItemDetail(generics.RetrieveAPIView):
    queryset = ReviewItem.objects.select_related("requested_by", "decided_by")
    serializer_class = ReviewItemOutput
    permission_classes = PERMS


class _ReviewDecide(generics.GenericAPIView):
    queryset = ReviewItem.objects.select_related("approval")
    permission_classes = PERMS
    required_perms = {"POST": ("quality.decide_reviewitem",)}

    def _approval(self) -> ApprovalRequest:
        item = self.get_object()
        if item.approval is None:
            raise ValidationError({"approval": f"review #{item.pk} has no approval request: nothing would run"})
        return item.approval

    def _answer(self, request, approval, reject: bool, reason: str = "") -> Response:
        refusal = approval_refusal(request=approval, user=request.user)
        if refusal and not request.user.has_perm(approval.approver_permission):
            raise PermissionDenied(refusal)
        response = _decide(request, approval, reject=reject, reason=reason)
        if response.status_code != 200:
            return response
        return Response(ReviewItemOutput(ReviewItem.objects.get(pk=self.kwargs["pk"])).data)


REVIEW_RESPONSES = {200: ReviewItemOutput, 409: OpenApiResponse(Conflict, description="refused: why")}


class ReviewItemApprove(_ReviewDecide):
    """Approve a review (through its approval request): the blocked publish resumes from its gate."""

    serializer_class = ReviewItemOutput

    @extend_schema(request=None, responses=REVIEW_RESPONSES)
    def post(self, request, pk: int):
        return self._answer(request, self._approval(), reject=False)


class ReviewItemReject(_ReviewDecide):
    """Reject a review with a reason: the blocked work stays blocked, the last good output stays."""

    serializer_class = RejectInput

    @extend_schema(request=RejectInput, responses=REVIEW_RESPONSES)
    def post(self, request, pk: int):
        approval = self._approval()
        data = RejectInput(data=request.data)
        data.is_valid(raise_exception=True)
        return self._answer(request, approval, reject=True, reason=data.validated_data["reason"])


class CheckOutput(MaskedSerializerMixin, serializers.ModelSerializer):
    masked_levels = {"sample_keys": "confidential"}  # failing keys: masked below confidential clearance (issue 12)

    class Meta:
        model = CheckResult
        fields = ["id", "dataset", "name", "stage", "severity", "reason_code", "status", "failed_count",
                  "failed_share", "sample_keys", "message", "gate_effect", "threshold", "removes"]  # fmt: skip


class QualityRunOutput(serializers.ModelSerializer):
    class Meta:
        model = QualityRun
        fields = ["id", "job_run", "dataset", "rows", "rows_quarantined", "rows_removed", "score", "gate",
                  "reasons", "duration_s", "created_at"]  # fmt: skip


class QualityRunDetailOutput(QualityRunOutput):
    checks = CheckOutput(many=True, read_only=True)

    class Meta(QualityRunOutput.Meta):
        fields = [*QualityRunOutput.Meta.fields, "checks"]


class QualityRunList(generics.ListAPIView):
    """Quality runs (one per dataset per job run): score and gate; the detail has every check with its failing
    sample keys."""

    queryset = QualityRun.objects.all().order_by("-pk")
    serializer_class = QualityRunOutput
    permission_classes = PERMS
    filterset_fields = ["dataset", "gate", "job_run"]
    pagination_class = NewestFirstCursor


class QualityRunDetail(generics.RetrieveAPIView):
    queryset = QualityRun.objects.prefetch_related("checks")
    serializer_class = QualityRunDetailOutput
    permission_classes = PERMS


class QuarantinedRowOutput(MaskedSerializerMixin, serializers.ModelSerializer):
    """A quarantined row; its values above the reader's clearance are masked (issue 12, security.api)."""

    masked_rows = {"data": "dataset"}
    classified_model = ""  # a list never shows a reveal (one query per row); the row's detail does
    data = serializers.JSONField()

    class Meta:
        model = QuarantinedRow
        fields = ["id", "quality_run", "dataset", "row_key", "reason_codes", "data", "status", "created_at",
                  "reprocessed_at"]  # fmt: skip


class QuarantinedRowList(generics.ListAPIView):
    """Rows kept out of a publish, with their reason codes (cursor pages: there can be many)."""

    queryset = QuarantinedRow.objects.all().order_by("-pk")
    serializer_class = QuarantinedRowOutput
    permission_classes = PERMS
    filterset_fields = ["dataset", "status", "quality_run"]
    search_fields = ["row_key"]
    pagination_class = NewestFirstCursor


class ReprocessInput(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1, max_length=1000
    )


class ReprocessOutput(serializers.Serializer):
    dataset = serializers.CharField()
    passed = serializers.IntegerField()
    still_failing = serializers.IntegerField()


class QuarantinedRowReprocess(generics.GenericAPIView):
    """Run each row's dataset suite again on these rows (after a fix upstream): reprocessed or still failing."""

    queryset = QuarantinedRow.objects.all()
    permission_classes = PERMS
    required_perms = {"POST": ("quality.reprocess_quarantinedrow",)}
    serializer_class = ReprocessInput

    @extend_schema(request=ReprocessInput, responses={200: ReprocessOutput(many=True)})
    def post(self, request):
        from quality.services import quarantine_rows_reprocess
        from quality.suites import SUITES

        data = ReprocessInput(data=request.data)
        data.is_valid(raise_exception=True)
        ids = sorted(set(data.validated_data["ids"]))
        rows = list(QuarantinedRow.objects.filter(pk__in=ids).order_by("pk"))
        missing = sorted(set(ids) - {r.pk for r in rows})
        if missing:
            raise ValidationError({"ids": f"no quarantined rows {missing}"})
        unknown = sorted({r.dataset for r in rows} - set(SUITES))
        if unknown:
            raise ValidationError({"ids": f"no quality suite is declared for {', '.join(unknown)}"})
        out = []
        for dataset in sorted({r.dataset for r in rows}):
            batch = [r for r in rows if r.dataset == dataset]
            counts = quarantine_rows_reprocess(rows=batch, suite=SUITES[dataset], actor=request.user)
            out.append({"dataset": dataset, **counts})
        return Response(ReprocessOutput(out, many=True).data)


# --- Sheets sync ----------------------------------------------------------------------------------------------

TARGET_WRITABLE = ["name", "description", "spreadsheet_id", "range", "source_kind", "source_query",
                   "source_database", "source_file", "key_columns", "protected_columns", "row_order",
                   "quality_suite", "principal"]  # fmt: skip
TARGET_STATUS = ["enabled", "broken", "broken_reason", "last_outcome", "last_checked_at", "last_synced_at",
                 "last_error", "consecutive_failures", "created_at", "updated_at"]  # fmt: skip


class SyncTargetOutput(serializers.ModelSerializer):
    owner = serializers.StringRelatedField(allow_null=True)
    last_outcome = serializers.ChoiceField(choices=SyncOutcome.choices, allow_blank=True, read_only=True)

    class Meta:
        model = SyncTarget
        fields = ["id", *TARGET_WRITABLE, "owner", *TARGET_STATUS]


class SyncTargetInput(serializers.ModelSerializer):
    class Meta:
        model = SyncTarget
        fields = TARGET_WRITABLE
        validators: list = []  # uniqueness answers through the model's own checks below

    def validate(self, attrs):
        instance = self.instance or SyncTarget()
        for field, value in attrs.items():
            setattr(instance, field, value)
        model_validate(instance, validate_constraints=True)
        return attrs


def _target_save(request, target: SyncTarget, attrs: dict, created: bool) -> SyncTarget:
    from approvals.services import DestinationTaken
    from sheetsync.services import sync_target_save

    changed = [f for f, v in attrs.items() if created or getattr(target, f) != v]
    for field, value in attrs.items():
        setattr(target, field, value)
    if created:
        target.owner = request.user
    try:
        return sync_target_save(target=target, actor=request.user, created=created, changed_fields=changed)
    except (DestinationTaken, IntegrityError) as exc:
        raise ValidationError({"range": str(exc)}) from exc


class SyncTargetListCreate(generics.ListCreateAPIView):
    """Sheets sync targets: list (filter enabled, broken, source kind) or define one (POST)."""

    queryset = SyncTarget.objects.select_related("owner").order_by("name")
    permission_classes = PERMS
    required_perms = {"POST": ("sheetsync.add_synctarget",)}
    filterset_fields = ["enabled", "broken", "source_kind", "last_outcome"]
    search_fields = ["name", "spreadsheet_id", "description"]

    def get_serializer_class(self):
        return SyncTargetInput if self.request.method == "POST" else SyncTargetOutput

    @extend_schema(request=SyncTargetInput, responses={201: SyncTargetOutput})
    def post(self, request, *args, **kwargs):
        data = SyncTargetInput(data=request.data)
        data.is_valid(raise_exception=True)
        target = _target_save(request, SyncTarget(), dict(data.validated_data), created=True)
        return Response(SyncTargetOutput(target).data, status=status.HTTP_201_CREATED)


class SyncTargetDetail(generics.RetrieveUpdateDestroyAPIView):
    """One target; PATCH edits its definition (audited, its sheet re-registered to it); DELETE removes it as the
    admin does (``sheetsync.target_deleted``, its sheet released for another writer; its events stay, the sheet's
    cells are left as they are)."""

    queryset = SyncTarget.objects.select_related("owner")
    permission_classes = PERMS
    required_perms = {
        "PATCH": ("sheetsync.change_synctarget",),
        "PUT": ("sheetsync.change_synctarget",),
        "DELETE": ("sheetsync.delete_synctarget",),
    }
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def perform_destroy(self, instance):
        from sheetsync.services import sync_target_delete

        sync_target_delete(target=instance, actor=self.request.user)

    def get_serializer_class(self):
        return SyncTargetInput if self.request.method == "PATCH" else SyncTargetOutput

    @extend_schema(request=SyncTargetInput, responses={200: SyncTargetOutput})
    def patch(self, request, *args, **kwargs):
        target = self.get_object()
        data = SyncTargetInput(SyncTarget.objects.get(pk=target.pk), data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        target = _target_save(request, target, dict(data.validated_data), created=False)
        return Response(SyncTargetOutput(target).data)


class CountOutput(serializers.Serializer):
    changed = serializers.IntegerField(help_text="targets this changed (the others were already so)")


class _TargetAction(generics.GenericAPIView):
    queryset = SyncTarget.objects.all()
    permission_classes = PERMS
    serializer_class = CountOutput


class SyncTargetStateAction(_TargetAction):
    """Pause, resume or repair one target through ``sheetsync.services.sync_targets_<service>`` (the admin's
    actions): pause leaves it out of every cycle until resumed; resume puts it back; repair clears the broken flag
    and the failure streak after the cause was fixed (the next cycle re-reads the range)."""

    required_perms = {"POST": ("sheetsync.pause_synctarget",)}
    service = ""  # pause, resume or repair

    @extend_schema(request=None, responses={200: CountOutput})
    def post(self, request, pk: int):
        from django.utils.module_loading import import_string

        service = import_string(f"sheetsync.services.sync_targets_{self.service}")
        return Response({"changed": service(targets=[self.get_object()], actor=request.user)})


class SyncTargetSyncNow(_TargetAction):
    """Queue a sheets_sync run for this target that reads its sheet even if nothing changed (202, the job run)."""

    required_perms = {"POST": ("sheetsync.sync_synctarget",)}

    @extend_schema(request=None, responses={202: OpenApiResponse(JobRunOutput, description="queued: the job run")})
    def post(self, request, pk: int):
        from sheetsync.services import sync_targets_sync_now

        run = sync_targets_sync_now(targets=[self.get_object()], actor=request.user)
        run.refresh_from_db()
        return Response(JobRunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class SyncEventOutput(serializers.ModelSerializer):
    class Meta:
        model = SyncEvent
        fields = ["id", "target", "target_name", "job_run", "outcome", "day", "first_seen_at", "last_seen_at",
                  "count"]  # fmt: skip


class SyncEventList(generics.ListAPIView):
    """What each sync cycle did per target (identical outcomes of a day fold into one row with a count)."""

    queryset = SyncEvent.objects.all().order_by("-pk")
    serializer_class = SyncEventOutput
    permission_classes = PERMS
    filterset_fields = ["target", "target_name", "outcome", "day"]
    pagination_class = NewestFirstCursor


# --- audit trail ----------------------------------------------------------------------------------------------

AUDIT_FIELDS = ["seq", "created_at", "actor_label", "action", "object_type", "object_id", "object_repr",
                "job_run_id", "data", "prev_hash", "hash"]  # fmt: skip


class AuditEventOutput(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = AUDIT_FIELDS


class AuditEventFilter(StrictFilterSet):
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    seq_from = filters.NumberFilter(field_name="seq", lookup_expr="gte", min_value=1)
    seq_to = filters.NumberFilter(field_name="seq", lookup_expr="lte", min_value=1)
    actor = filters.CharFilter(field_name="actor_label")

    class Meta:
        model = AuditEvent
        fields = ["action", "object_type", "object_id", "job_run_id"]


class SeqCursor(NewestFirstCursor):
    ordering = "-seq"


class AuditEventList(generics.ListAPIView):
    """The hash-chained audit trail, newest first, in cursor pages; filter by action, object, actor, job run,
    time or sequence range."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventOutput
    permission_classes = PERMS
    filterset_class = AuditEventFilter
    pagination_class = SeqCursor


class AuditEventExport(generics.ListAPIView):
    """The filtered trail, oldest first, streamed as CSV or JSON Lines (``?format=csv|jsonl``): any size, constant
    memory."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventOutput
    permission_classes = PERMS
    filterset_class = AuditEventFilter
    pagination_class = None
    extra_query_params = ("format",)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["csv", "jsonl"], required=True)],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="one row per event"),
            (200, "application/jsonl"): OpenApiResponse(OpenApiTypes.STR, description="one JSON object per line"),
        },
    )
    def get(self, request, *args, **kwargs):
        kind = request.query_params.get("format", "")
        if kind not in ("csv", "jsonl"):
            raise ValidationError({"format": "choose csv or jsonl"})
        events = self.filter_queryset(self.get_queryset()).order_by("seq").values_list(*AUDIT_FIELDS)
        content_type = "text/csv" if kind == "csv" else "application/jsonl"
        response = StreamingHttpResponse(
            _export_lines(events.iterator(chunk_size=2000), kind), content_type=content_type
        )
        response["Content-Disposition"] = f'attachment; filename="audit-events.{kind}"'
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, StreamingHttpResponse):
            return response  # the stream is the body: no renderer
        return super().finalize_response(request, response, *args, **kwargs)

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)  # ?format= is ours, not DRF's renderers


def _export_lines(rows, kind: str):
    if kind == "jsonl":
        for row in rows:
            record = dict(zip(AUDIT_FIELDS, row, strict=True))
            record["created_at"] = record["created_at"].isoformat()
            yield json.dumps(record, sort_keys=True, default=str) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(AUDIT_FIELDS)
    for row in rows:
        record = dict(zip(AUDIT_FIELDS, row, strict=True))
        record["created_at"] = record["created_at"].isoformat()
        record["data"] = json.dumps(record["data"], sort_keys=True, default=str)
        writer.writerow([record[f] for f in AUDIT_FIELDS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


class ChainStatusOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    kind = serializers.CharField()
    checked = serializers.IntegerField()
    head_seq = serializers.IntegerField()
    head_hash = serializers.CharField()
    broken_seq = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    anchors_checked = serializers.IntegerField()
    last_anchor_at = serializers.DateTimeField(allow_null=True)
    last_anchor_seq = serializers.IntegerField(allow_null=True)
    warnings = serializers.ListField(child=serializers.CharField())
    verified_at = serializers.DateTimeField(allow_null=True)


class AuditChainStatus(APIView):
    """The chain's state as the admin's banner shows it (a verification at most AUDIT_BANNER_CACHE_S old)."""

    permission_classes = PERMS
    queryset = AuditEvent.objects.none()

    @extend_schema(responses={200: ChainStatusOutput})
    def get(self, request):
        v = audit_chain_state()
        return Response(
            ChainStatusOutput(
                {
                    "ok": v.ok,
                    "kind": v.kind,
                    "checked": v.checked,
                    "head_seq": v.head_seq,
                    "head_hash": v.head_hash,
                    "broken_seq": v.broken_seq,
                    "reason": v.reason,
                    "anchors_checked": v.anchors_checked,
                    "last_anchor_at": v.last_anchor_at,
                    "last_anchor_seq": v.last_anchor_seq,
                    "warnings": list(v.warnings),
                    "verified_at": v.verified_at,
                }  # fmt: skip
            ).data
        )


# --- sales ----------------------------------------------------------------------------------------------------


class SalesQueryOutput(serializers.ModelSerializer):
    updated_by = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = SalesQuery
        fields = ["id", "name", "title", "description", "sql", "source_file", "active", "updated_at", "updated_by"]


class QueryRunOutput(serializers.ModelSerializer):
    query = serializers.SlugRelatedField(slug_field="name", read_only=True)
    actor = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = QueryRun
        fields = ["id", "job_run", "query", "actor", "purpose", "status", "bq_job_id", "location", "sql_hash",
                  "params", "bytes_estimated", "bytes_processed", "bytes_billed", "slot_ms", "cache_hit", "rows",
                  "duration_s", "estimated_cost_usd", "error", "created_at"]  # fmt: skip


class QueryRunList(generics.ListAPIView):
    """BigQuery runs with their job metadata and cost (cursor pages)."""

    queryset = QueryRun.objects.select_related("query", "actor").order_by("-pk")
    serializer_class = QueryRunOutput
    permission_classes = PERMS
    filterset_fields = ["status", "purpose", "query", "job_run"]
    pagination_class = NewestFirstCursor


class SalesReportOutput(serializers.ModelSerializer):
    class Meta:
        model = SalesReport
        fields = ["id", "query_run", "quality_run", "grain", "status", "sheet_id", "published_at", "publish_requests",
                  "error", "created_at"]  # fmt: skip


class SalesReportDetailOutput(SalesReportOutput):
    class Meta(SalesReportOutput.Meta):
        fields = [*SalesReportOutput.Meta.fields, "rows"]


class SalesReportList(generics.ListAPIView):
    """Sales reports and their publish state; the detail carries the rows (day, region, orders, revenue)."""

    queryset = SalesReport.objects.all().order_by("-pk")
    serializer_class = SalesReportOutput
    permission_classes = PERMS
    filterset_fields = ["status", "grain"]

    def get_queryset(self):
        return super().get_queryset().defer("rows")


class SalesReportDetail(generics.RetrieveAPIView):
    queryset = SalesReport.objects.all()
    serializer_class = SalesReportDetailOutput
    permission_classes = PERMS


urlpatterns = [
    path("approvals/", ApprovalList.as_view(), name="api-approval-list"),
    path("approvals/<int:pk>/", ApprovalDetail.as_view(), name="api-approval-detail"),
    path("approvals/<int:pk>/approve/", ApprovalApprove.as_view(), name="api-approval-approve"),
    path("approvals/<int:pk>/reject/", ApprovalReject.as_view(), name="api-approval-reject"),
    path("review-items/", ReviewItemList.as_view(), name="api-reviewitem-list"),
    path("review-items/<int:pk>/", ReviewItemDetail.as_view(), name="api-reviewitem-detail"),
    path("review-items/<int:pk>/approve/", ReviewItemApprove.as_view(), name="api-reviewitem-approve"),
    path("review-items/<int:pk>/reject/", ReviewItemReject.as_view(), name="api-reviewitem-reject"),
    path("quality-runs/", QualityRunList.as_view(), name="api-qualityrun-list"),
    path("quality-runs/<int:pk>/", QualityRunDetail.as_view(), name="api-qualityrun-detail"),
    path("quarantined-rows/", QuarantinedRowList.as_view(), name="api-quarantinedrow-list"),
    path("quarantined-rows/reprocess/", QuarantinedRowReprocess.as_view(), name="api-quarantinedrow-reprocess"),
    path("sync-targets/", SyncTargetListCreate.as_view(), name="api-synctarget-list"),
    path("sync-targets/<int:pk>/", SyncTargetDetail.as_view(), name="api-synctarget-detail"),
    *[
        path(f"sync-targets/<int:pk>/{action}/", SyncTargetStateAction.as_view(service=action),
             name=f"api-synctarget-{action}")
        for action in ("pause", "resume", "repair")
    ],  # fmt: skip
    path("sync-targets/<int:pk>/sync-now/", SyncTargetSyncNow.as_view(), name="api-synctarget-sync-now"),
    path("sync-events/", SyncEventList.as_view(), name="api-syncevent-list"),
    path("audit-events/", AuditEventList.as_view(), name="api-auditevent-list"),
    path("audit-events/export/", AuditEventExport.as_view(), name="api-auditevent-export"),
    path("audit-events/chain/", AuditChainStatus.as_view(), name="api-auditevent-chain"),
    path("query-runs/", QueryRunList.as_view(), name="api-queryrun-list"),
    path("reports/", SalesReportList.as_view(), name="api-salesreport-list"),
    path("reports/<int:pk>/", SalesReportDetail.as_view(), name="api-salesreport-detail"),
]

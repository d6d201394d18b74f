"""REST API for quarantined rows: read (recorded) and CSV export, values masked by clearance (issue 12)."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, permissions, serializers

from security.api import AccessRecordedRetrieveMixin, MaskedSerializerMixin, csv_export_response
from security.masking import mask_row

from .models import QuarantinedRow

CLASSIFIED = "quality.quarantinedrow"


class QuarantineViewPermission(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.user.has_perm("quality.view_quarantinedrow")


class QuarantinedRowDetailOutput(MaskedSerializerMixin, serializers.ModelSerializer):
    masked_rows = {"data": "dataset"}
    classified_model = CLASSIFIED
    data = serializers.JSONField()

    class Meta:
        model = QuarantinedRow
        fields = ["id", "quality_run", "dataset", "row_key", "reason_codes", "status", "data", "created_at"]


class QuarantinedRowDetail(AccessRecordedRetrieveMixin, generics.RetrieveAPIView):
    """One quarantined row; the read is recorded in the audit trail (not its values)."""

    classified_model = CLASSIFIED
    queryset = QuarantinedRow.objects.all()
    serializer_class = QuarantinedRowDetailOutput
    permission_classes = [permissions.IsAuthenticated, QuarantineViewPermission]


EXPORT_MAX_ROWS = 10_000


class QuarantinedRowExport(generics.GenericAPIView):
    """CSV of a quality run's quarantined rows (``?quality_run=<id>``), masked by clearance; recorded."""

    queryset = QuarantinedRow.objects.all()
    serializer_class = QuarantinedRowDetailOutput
    permission_classes = [permissions.IsAuthenticated, QuarantineViewPermission]

    @extend_schema(
        parameters=[OpenApiParameter("quality_run", int, required=True, description="the quality run to export")],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="one row per quarantined line, masked"),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="quality_run missing or not a number"),
        },
    )
    def get(self, request):
        from rest_framework.exceptions import ValidationError

        run = request.query_params.get("quality_run", "")
        if not run.isdigit() or int(run) > 2**63 - 1:
            raise ValidationError({"quality_run": "give the id of the quality run to export"})
        rows = list(QuarantinedRow.objects.filter(quality_run_id=int(run)).order_by("pk")[:EXPORT_MAX_ROWS])
        return quarantine_csv(user=request.user, rows=rows, object_ref=f"run:{run}")


def quarantine_csv(*, user, rows: list[QuarantinedRow], object_ref: str):
    """Quarantined rows as CSV (one column per value), masked for ``user``; the export is recorded."""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row.data if c not in columns]
    body = []
    for row in rows:
        shown = mask_row(row.dataset, row.data, user)
        body.append([row.pk, row.dataset, row.row_key, " ".join(row.reason_codes), *(shown.get(c) for c in columns)])
    return csv_export_response(
        user=user,
        dataset_or_model=CLASSIFIED,
        object_ref=object_ref,
        header=["id", "dataset", "row_key", "reason_codes", *columns],
        rows=body,
        filename="quarantined-rows.csv",
    )


# The list (cursor pages, filters, masked the same way) is api.resources' ``quarantined-rows/``.
urlpatterns = [
    path("quarantined-rows/export/", QuarantinedRowExport.as_view(), name="api-quarantinedrow-export"),
    path("quarantined-rows/<int:pk>/", QuarantinedRowDetail.as_view(), name="api-quarantinedrow-detail"),
]

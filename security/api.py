"""API building blocks for classified values (issue 12), and the classification endpoint.

:class:`MaskedSerializerMixin` masks a serializer's output by the requesting user's clearance: ``masked_rows``
names fields holding a row of a dataset (the dataset read from the instance), ``masked_levels`` fields with a
fixed level. :class:`AccessRecordedRetrieveMixin` records each detail read (``security.record_read``, via api).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django.http import HttpResponse
from django.urls import path
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .access import VIA_API, VIA_EXPORT, needs_access_record, record_access
from .clearance import clearance_for
from .masking import mask_for_clearance, mask_row
from .reveal import reveal_active
from .selectors import classification_table


class MaskedSerializerMixin:
    """Mask classified fields of the serialized output by ``context["request"].user``'s clearance."""

    masked_rows: dict[str, str] = {}  # field -> attribute of the instance naming its dataset
    masked_levels: dict[str, str] = {}  # field -> level
    classified_model: str = ""  # for reveals: a user's active reveal of this record shows it in clear

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        request = self.context.get("request")
        user = getattr(request, "user", None)
        revealed = bool(self.classified_model and reveal_active(user, self.classified_model, str(instance.pk)))
        for name, dataset_attr in self.masked_rows.items():
            if isinstance(data.get(name), dict):
                data[name] = mask_row(getattr(instance, dataset_attr), data[name], user, revealed=revealed)
        if self.masked_levels:
            clearance = clearance_for(user)
            for name, level in self.masked_levels.items():
                if name in data:
                    data[name] = mask_for_clearance(data[name], level, clearance, revealed=revealed)
        return data


class AccessRecordedRetrieveMixin:
    """A retrieve view that records the read of a confidential or restricted record."""

    classified_model: str = ""

    def retrieve(self, request, *args, **kwargs):
        instance = self.get_object()
        if needs_access_record(self.classified_model):
            record_access(
                request.user,
                dataset_or_model=self.classified_model,
                object_ref=str(instance.pk),
                purpose=request.query_params.get("purpose", "")[:200] or "api detail",
                via=VIA_API,
            )
        return Response(self.get_serializer(instance).data)


def csv_export_response(
    *, user: Any, dataset_or_model: str, object_ref: str, header: list[str], rows: list[list[Any]], filename: str
) -> HttpResponse:
    """A CSV download of rows already masked for ``user``; the export is recorded (via export), not its values."""
    if needs_access_record(dataset_or_model):
        record_access(user, dataset_or_model=dataset_or_model, object_ref=object_ref, purpose="export", via=VIA_EXPORT)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class ClassificationColumn(serializers.Serializer):
    column = serializers.CharField()
    level = serializers.CharField()
    personal = serializers.BooleanField()
    description = serializers.CharField()


class ClassificationDataset(serializers.Serializer):
    dataset = serializers.CharField()
    description = serializers.CharField()
    default = serializers.CharField()
    level = serializers.CharField()
    columns = ClassificationColumn(many=True)


class ClassificationOutput(serializers.Serializer):
    datasets = ClassificationDataset(many=True)
    clearances = serializers.ListField(child=serializers.DictField())
    your_clearance = serializers.CharField()


class ClassificationPermission(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.user.has_perm("security.view_classification")


class ClassificationView(APIView):
    """The data classification: datasets, columns, levels, personal data; role clearances; yours."""

    permission_classes = [permissions.IsAuthenticated, ClassificationPermission]
    serializer_class = ClassificationOutput

    def get(self, request):
        return Response(ClassificationOutput(classification_table(user=request.user)).data)


urlpatterns = [path("security/classification/", ClassificationView.as_view(), name="api-security-classification")]

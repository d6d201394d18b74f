"""API building blocks for classified values (issue 12), and the classification endpoint.

:class:`MaskedSerializerMixin` masks a serializer's output by the requesting user's clearance: ``masked_rows``
names fields holding a row of a dataset (the dataset read from the instance), ``masked_levels`` fields with a
fixed level. :class:`AccessRecordedRetrieveMixin` records each detail read (``security.record_read``, via api).

Endpoints: the classification; the reveal grants (read-only, as the admin shows them); and revealing a record's
masked values (the admin's "Reveal values" form: ``security.reveal.value_reveal``, same permission and audit event).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django.http import HttpResponse
from django.urls import path
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from api.common import DjangoModelPermission, StrictBooleanFilter, StrictFilterSet, conflict
from api.schema import ApiError

from .access import VIA_API, VIA_EXPORT, needs_access_record, record_access
from .clearance import clearance_for
from .masking import mask_for_clearance, mask_row
from .models import RevealGrant
from .reveal import RevealRefused, reveal_active, reveal_allowed, value_reveal
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


# --- reveals of masked values: the grants (read-only, as the admin shows them) and revealing a record's values ------


class RevealGrantOutput(serializers.ModelSerializer):
    user = serializers.StringRelatedField()

    class Meta:
        model = RevealGrant
        fields = ["id", "user", "dataset_or_model", "object_ref", "level", "reason", "created_at", "expires_at"]


class RevealGrantFilter(StrictFilterSet):
    user = filters.CharFilter(field_name="user__username", help_text="the username")
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    active = StrictBooleanFilter(method="filter_active", help_text="true: not expired yet; false: expired")

    class Meta:
        model = RevealGrant
        fields = ["dataset_or_model", "level", "object_ref"]

    def filter_active(self, queryset, name, value):
        now = timezone.now()
        return queryset.filter(expires_at__gt=now) if value else queryset.filter(expires_at__lte=now)


API_PERMS = [permissions.IsAuthenticated, DjangoModelPermission]


class RevealGrantList(generics.ListAPIView):
    """Who revealed which record's masked values, why, and until when (the admin's reveal grants), newest first."""

    queryset = RevealGrant.objects.select_related("user").order_by("-created_at", "-pk")  # security.view_revealgrant
    serializer_class = RevealGrantOutput
    permission_classes = API_PERMS
    filterset_class = RevealGrantFilter
    search_fields = ["object_ref", "user__username", "reason"]


class RevealGrantDetail(generics.RetrieveAPIView):
    queryset = RevealGrant.objects.select_related("user")
    serializer_class = RevealGrantOutput
    permission_classes = API_PERMS


class RevealInput(serializers.Serializer):
    reason = serializers.CharField(
        max_length=2000, help_text="why you need the values in clear (at least 5 characters)"
    )

    def validate_reason(self, value: str) -> str:
        if len(value.strip()) < 5:
            raise serializers.ValidationError("say why you need to see the values (a reason of at least 5 characters)")
        return value


class RevealPermission(permissions.BasePermission):
    """Who sees the record (its model's view permission, as the admin's reveal form) and may reveal."""

    def has_permission(self, request, view) -> bool:
        meta = view.queryset.model._meta
        return request.user.has_perm(f"{meta.app_label}.view_{meta.model_name}")


class RevealView(generics.GenericAPIView):
    """Reveal this record's masked values to yourself, with a reason, for ``SECURITY_REVEAL_MINUTES``; audited
    (``security.value_revealed``). The record's detail then shows its values in clear until the grant lapses."""

    classified_model = ""
    permission_classes = [permissions.IsAuthenticated, RevealPermission]
    serializer_class = RevealInput

    @extend_schema(
        request=RevealInput,
        responses={
            201: OpenApiResponse(RevealGrantOutput, description="revealed: the grant, with when it lapses"),
            409: OpenApiResponse(ApiError, description="the reveal service refused it: why"),
        },
    )
    def post(self, request, pk: int):
        obj = self.get_object()
        if not reveal_allowed(request.user):
            raise PermissionDenied("revealing masked values needs a role that allows it (security.reveal_value)")
        data = RevealInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            grant = value_reveal(user=request.user, dataset_or_model=self.classified_model, object_ref=str(obj.pk),
                                 reason=data.validated_data["reason"])  # fmt: skip
        except RevealRefused as exc:
            return conflict(str(exc))
        return Response(RevealGrantOutput(grant).data, status=status.HTTP_201_CREATED)


def _reveal_view(model_label: str):
    """The reveal endpoint of one classified model (as the admin's ClassifiedAdminMixin adds its reveal form)."""
    from django.apps import apps

    model = apps.get_model(model_label)
    return type(f"{model.__name__}Reveal", (RevealView,), {"classified_model": model_label,
                                                            "queryset": model.objects.all()})  # fmt: skip


urlpatterns = [
    path("security/classification/", ClassificationView.as_view(), name="api-security-classification"),
    path("reveal-grants/", RevealGrantList.as_view(), name="api-revealgrant-list"),
    path("reveal-grants/<int:pk>/", RevealGrantDetail.as_view(), name="api-revealgrant-detail"),
    # The records the admin lets one reveal (security.admin_mixins.ClassifiedAdminMixin): quarantined rows.
    path(
        "quarantined-rows/<int:pk>/reveal/",
        _reveal_view("quality.quarantinedrow").as_view(),
        name="api-quarantinedrow-reveal",
    ),
]

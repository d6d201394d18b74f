"""``/api/v1/`` for the destinations' writers: which job or sync target is the one writer of each spreadsheet's
sheet. Read-only, as in the admin (``DestinationWriterAdmin`` is a ``ReadOnlyAdmin``): writers are registered and
released by the services that write sheets (``approvals.services.destination_register``), never by hand."""

from __future__ import annotations

from django.urls import path
from rest_framework import generics, permissions, serializers

from api.common import DjangoModelPermission

from .models import DestinationWriter

PERMS = [permissions.IsAuthenticated, DjangoModelPermission]  # approvals.view_destinationwriter


class DestinationWriterOutput(serializers.ModelSerializer):
    registered_by = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = DestinationWriter
        fields = ["id", "spreadsheet_id", "sheet", "writer", "registered_by", "registered_at"]


class DestinationWriterList(generics.ListAPIView):
    """Each sheet's one writer (a second writer is refused), by spreadsheet and sheet."""

    queryset = DestinationWriter.objects.select_related("registered_by").order_by("spreadsheet_id", "sheet", "pk")
    serializer_class = DestinationWriterOutput
    permission_classes = PERMS
    filterset_fields = ["spreadsheet_id", "sheet", "writer"]
    search_fields = ["spreadsheet_id", "sheet", "writer"]


class DestinationWriterDetail(generics.RetrieveAPIView):
    queryset = DestinationWriter.objects.select_related("registered_by")
    serializer_class = DestinationWriterOutput
    permission_classes = PERMS


urlpatterns = [
    path("destination-writers/", DestinationWriterList.as_view(), name="api-destinationwriter-list"),
    path("destination-writers/<int:pk>/", DestinationWriterDetail.as_view(), name="api-destinationwriter-detail"),
]

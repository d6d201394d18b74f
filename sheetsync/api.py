"""``/api/v1/`` for the Sheets sync beyond targets and events (``api.resources``): the spreadsheets the sync knows
(read-only, as the admin lists them) and a target's "test" (the admin's test page: ``target_admin.sync_target_test``
reads the source and the sheet and plans the diff a sync would write; it writes nothing and records nothing)."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response

from api.resources import PERMS

from .models import SyncSpreadsheet, SyncTarget


class SyncSpreadsheetOutput(serializers.ModelSerializer):
    class Meta:
        model = SyncSpreadsheet
        fields = ["id", "spreadsheet_id", "drive_version", "trashed", "deleted_at", "updated_at"]


class SyncSpreadsheetList(generics.ListAPIView):
    """What the sync knows of each spreadsheet's Drive state (version, trashed or deleted), by spreadsheet id."""

    queryset = SyncSpreadsheet.objects.order_by("spreadsheet_id", "pk")
    serializer_class = SyncSpreadsheetOutput
    permission_classes = PERMS
    filterset_fields = ["trashed"]
    search_fields = ["spreadsheet_id"]


class SyncSpreadsheetDetail(generics.RetrieveAPIView):
    queryset = SyncSpreadsheet.objects.all()
    serializer_class = SyncSpreadsheetOutput
    permission_classes = PERMS


class CellWrite(serializers.Serializer):
    cell = serializers.CharField(help_text="A1 notation")
    now = serializers.JSONField(help_text="what the cell holds")
    would_be = serializers.JSONField(help_text="what a sync would write")


class TargetTestOutput(serializers.Serializer):
    """What a sync of the target would do now. ``error`` says why the test stopped (the source or the sheet could
    not be read): the fields after that point are then empty."""

    error = serializers.CharField(allow_blank=True, help_text="'' when the source and the sheet were read")
    share_with = serializers.CharField(allow_blank=True, help_text="the service account to share the sheet with")
    source_label = serializers.CharField(allow_blank=True)
    source_columns = serializers.ListField(child=serializers.CharField())
    source_rows = serializers.ListField(
        child=serializers.ListField(child=serializers.JSONField()), help_text="the source's first rows (up to 10)"
    )
    source_total = serializers.IntegerField(help_text="rows in the source")
    sheet_rows = serializers.ListField(
        child=serializers.ListField(child=serializers.JSONField()), help_text="the range's header and first rows"
    )
    sheet_total = serializers.IntegerField(help_text="rows under the range's header")
    cells = serializers.IntegerField(help_text="cells a sync would write")
    rows_added = serializers.IntegerField()
    rows_removed = serializers.IntegerField()
    rows_kept = serializers.IntegerField()
    quarantined = serializers.IntegerField(help_text="source rows left out (no key, duplicate key)")
    writes = CellWrite(many=True, help_text="the first writes (up to 20)")


class SyncTargetTest(generics.GenericAPIView):
    """Test the target as the admin's test page does (Data Stewards: ``sheetsync.sync_synctarget``): read its source
    and its sheet and plan the diff, writing nothing. 200 with what it found, a failure to read included (``error``);
    nothing is audited (nothing changes), as in the admin."""

    queryset = SyncTarget.objects.all()
    permission_classes = PERMS
    required_perms = {"POST": ("sheetsync.sync_synctarget",)}
    serializer_class = TargetTestOutput

    @extend_schema(request=None, responses={200: TargetTestOutput})
    def post(self, request, pk: int):
        from .target_admin import sync_target_test

        found = sync_target_test(target=self.get_object())
        body = {
            "error": found.error,
            "share_with": found.share_with,
            "source_label": found.source_label,
            "source_columns": list(found.source_columns),
            "source_rows": [list(r) for r in found.source_rows],
            "source_total": found.source_total,
            "sheet_rows": [list(r) for r in found.sheet_rows],
            "sheet_total": found.sheet_total,
            "cells": found.cells,
            "rows_added": found.rows_added,
            "rows_removed": found.rows_removed,
            "rows_kept": found.rows_kept,
            "quarantined": found.quarantined,
            "writes": [{"cell": c, "now": now, "would_be": after} for c, now, after in found.writes],
        }
        return Response(TargetTestOutput(body).data)


urlpatterns = [
    path("sync-spreadsheets/", SyncSpreadsheetList.as_view(), name="api-syncspreadsheet-list"),
    path("sync-spreadsheets/<int:pk>/", SyncSpreadsheetDetail.as_view(), name="api-syncspreadsheet-detail"),
    path("sync-targets/<int:pk>/test/", SyncTargetTest.as_view(), name="api-synctarget-test"),
]

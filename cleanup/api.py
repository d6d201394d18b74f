"""REST API for the Looker inventory and restores."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Exists, OuterRef
from django.urls import path
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from api.common import StrictBooleanFilter, StrictFilterSet, conflict
from api.schema import ApiError
from orchestration.api import DjangoViewPermission

from .models import DashboardPin, DashboardRestore, LookerDashboard
from .services import cleanup_restore_request


class DashboardOutput(serializers.ModelSerializer):
    class Meta:
        model = LookerDashboard
        fields = [
            "id",
            "looker_id",
            "title",
            "folder_id",
            "folder_name",
            "owner_id",
            "owner_name",
            "owner_email",
            "created_at",
            "last_viewed_at",
            "last_accessed_at",
            "last_activity_at",
            "view_count",
            "favorite_count",
            "has_active_schedule",
            "is_lookml",
            "deleted",
            "deleted_at",
            "missing_in_looker",
        ]


class RestoreOutput(serializers.ModelSerializer):
    looker_id = serializers.CharField(source="dashboard.looker_id")

    class Meta:
        model = DashboardRestore
        fields = [
            "id",
            "looker_id",
            "status",
            "method",
            "new_looker_id",
            "verified",
            "requested_at",
            "finished_at",
            "error",
        ]


class DashboardFilter(StrictFilterSet):
    """The admin's list filters: deleted, folder, owner, LookML, missing in Looker, pinned, inactive for N days."""

    pinned = StrictBooleanFilter(method="filter_pinned", help_text="held by a pin that has not expired")
    inactive_days = filters.NumberFilter(
        method="filter_inactive", min_value=0, max_value=36500, help_text="no activity for at least this many days"
    )

    class Meta:
        model = LookerDashboard
        fields = ["deleted", "folder_id", "folder_name", "owner_email", "is_lookml", "missing_in_looker",
                  "has_active_schedule"]  # fmt: skip

    def filter_pinned(self, queryset, name, value):
        active = DashboardPin.objects.filter(dashboard=OuterRef("pk"), expires_at__gt=timezone.now())
        return queryset.filter(Exists(active)) if value else queryset.exclude(Exists(active))

    def filter_inactive(self, queryset, name, value):
        return queryset.filter(last_activity_at__lt=timezone.now() - timedelta(days=int(value)))


class DashboardList(generics.ListAPIView):
    """The mirrored Looker inventory: filter by deleted, folder, owner; search by title, id, owner."""

    queryset = LookerDashboard.objects.all().order_by("looker_id")
    serializer_class = DashboardOutput
    permission_classes = [permissions.IsAuthenticated, DjangoViewPermission]
    filterset_class = DashboardFilter
    search_fields = ["title", "looker_id", "owner_email", "owner_name"]
    ordering_fields = ["looker_id", "last_activity_at", "title"]


class DashboardRestoreView(APIView):
    """POST: restore one soft-deleted dashboard (Content Admins). 202 with the restore, 409 when refused."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(RestoreOutput, description="the restore, queued"),
            409: OpenApiResponse(ApiError, description="refused (not deleted, a restore under way, ...): why"),
        },
    )
    def post(self, request, looker_id: str):
        if not request.user.has_perm("cleanup.restore_lookerdashboard"):
            raise PermissionDenied("restoring dashboards needs the Content Admin role")
        dashboard = generics.get_object_or_404(LookerDashboard, looker_id=looker_id)
        result = cleanup_restore_request(dashboards=[dashboard], actor=request.user)
        if result.refused:
            return conflict(result.refused[0][1])
        restore = result.requested[0]
        restore.refresh_from_db()
        return Response(RestoreOutput(restore).data, status=status.HTTP_202_ACCEPTED)


urlpatterns = [
    path("dashboards/", DashboardList.as_view(), name="api-dashboard-list"),
    path("dashboards/<str:looker_id>/restore/", DashboardRestoreView.as_view(), name="api-dashboard-restore"),
]

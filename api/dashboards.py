"""``/api/v1/`` for the Looker cleanup beyond the inventory list and restore (``cleanup.api``): a dashboard's detail,
its backups, pinning and unpinning it, every pin (holding or expired, as the admin's pin list), the cleanup plan's
preview and confirmed run, and (read-only, as the admin shows them) each run's cleanup actions and the restores.

Each view calls what the admin calls: pins go through ``cleanup.services.dashboard_pin_save``/``_delete`` (audited
as ``cleanup.dashboardpin_created``/``_deleted``), the preview is the trigger page's ``job_confirmation`` (the same
numbers and plan hash the admin's preview-then-confirm shows) and the run goes through ``job_run_request``, which
asks a second Content Admin's approval when the plan is above the guard.
"""

from __future__ import annotations

from django.urls import path
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from cleanup.api import DashboardOutput, RestoreOutput
from cleanup.models import (
    CleanupAction,
    DashboardBackup,
    DashboardPin,
    DashboardRestore,
    LookerDashboard,
    ProtectedFolder,
)
from orchestration.api import JobRunOutput
from orchestration.models import JobRun

from .common import NewestFirstCursor, StrictBooleanFilter, StrictFilterSet, conflict
from .resources import PERMS, Conflict

CLEANUP_JOB = "looker_cleanup"


# --- dashboards: detail ---------------------------------------------------------------------------------


class PinOutput(serializers.ModelSerializer):
    looker_id = serializers.CharField(source="dashboard.looker_id")
    created_by = serializers.StringRelatedField(allow_null=True)
    active = serializers.BooleanField(source="is_active")

    class Meta:
        model = DashboardPin
        fields = ["id", "looker_id", "reason", "expires_at", "active", "created_by", "created_at"]


class DashboardDetailOutput(DashboardOutput):
    pin = serializers.SerializerMethodField(help_text="the pin holding it now, if any")
    deletion = serializers.SerializerMethodField(help_text="who deleted it, when, why and in which run")
    backups = serializers.IntegerField(source="backups.count", read_only=True)

    class Meta(DashboardOutput.Meta):
        fields = [*DashboardOutput.Meta.fields, "pin", "deletion", "backups"]

    @extend_schema_field(PinOutput(allow_null=True))
    def get_pin(self, obj) -> dict | None:
        pin = _active_pin(obj)
        return PinOutput(pin).data if pin else None

    def get_deletion(self, obj) -> str:
        from cleanup.dashboard_page import dashboard_deletion_text

        return dashboard_deletion_text(obj)


def _active_pin(dashboard: LookerDashboard) -> DashboardPin | None:
    pins = dashboard.pins.filter(expires_at__gt=timezone.now()).select_related("created_by", "dashboard")
    return pins.order_by("-expires_at").first()


class _ByLookerId:
    queryset = LookerDashboard.objects.all()
    lookup_field = "looker_id"
    permission_classes = PERMS


class DashboardDetail(_ByLookerId, generics.RetrieveAPIView):
    """One dashboard as its admin page shows it: activity, the pin holding it, how it was deleted, its backups."""

    serializer_class = DashboardDetailOutput


# --- backups --------------------------------------------------------------------------------------------------


class BackupOutput(serializers.ModelSerializer):
    looker_id = serializers.CharField(source="dashboard.looker_id")

    class Meta:
        model = DashboardBackup
        fields = ["id", "looker_id", "job_run", "storage_name", "sha256", "size_bytes", "has_lookml", "created_at",
                  "verified_at"]  # fmt: skip


class BackupDetailOutput(BackupOutput):
    content = serializers.SerializerMethodField(help_text="the backup document, verified against its checksum")
    content_error = serializers.SerializerMethodField(help_text="why the content could not be read or verified")

    class Meta(BackupOutput.Meta):
        fields = [*BackupOutput.Meta.fields, "content", "content_error"]

    def _read(self, obj) -> tuple[dict | None, str]:
        if not hasattr(self, "_cache"):
            from cleanup.backups import BackupStoreError, backup_read_verified

            try:
                self._cache = (backup_read_verified(storage_name=obj.storage_name, sha256=obj.sha256), "")
            except BackupStoreError as exc:
                self._cache = (None, str(exc))
        return self._cache

    @extend_schema_field(serializers.JSONField(allow_null=True))
    def get_content(self, obj):
        return self._read(obj)[0]

    def get_content_error(self, obj) -> str:
        return self._read(obj)[1]


class DashboardBackupList(generics.ListAPIView):
    """A dashboard's verified backups, newest first (what a restore re-creates it from)."""

    queryset = DashboardBackup.objects.select_related("dashboard").order_by("-created_at", "-pk")
    serializer_class = BackupOutput
    permission_classes = PERMS
    filterset_fields = ["has_lookml", "job_run"]

    def get_queryset(self):
        dashboard = generics.get_object_or_404(LookerDashboard, looker_id=self.kwargs["looker_id"])
        return super().get_queryset().filter(dashboard=dashboard)


class DashboardBackupDetail(generics.RetrieveAPIView):
    """One backup with its document, read from the backup store and checked against its recorded sha256."""

    queryset = DashboardBackup.objects.select_related("dashboard")
    serializer_class = BackupDetailOutput
    permission_classes = PERMS


# --- pins -----------------------------------------------------------------------------------------------------


class PinInput(serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="why it stays (shown to whoever reviews the plan)")
    expires_at = serializers.DateTimeField(help_text="when the pin stops holding it (in the future)")

    def validate_expires_at(self, value):
        if value <= timezone.now():
            raise ValidationError("must be in the future")
        return value


class UnpinOutput(serializers.Serializer):
    removed = serializers.IntegerField(help_text="pins removed (every pin holding it now)")


class DashboardPinView(_ByLookerId, generics.GenericAPIView):
    """POST: pin the dashboard (kept out of every cleanup plan until ``expires_at``). DELETE: unpin it (every pin
    holding it now). Both through the admin's audited pin service."""

    required_perms = {"POST": ("cleanup.add_dashboardpin",), "DELETE": ("cleanup.delete_dashboardpin",)}
    serializer_class = PinInput

    @extend_schema(request=PinInput, responses={201: PinOutput})
    def post(self, request, looker_id: str):
        from cleanup.services import dashboard_pin_save

        dashboard = self.get_object()
        data = PinInput(data=request.data)
        data.is_valid(raise_exception=True)
        pin = DashboardPin(dashboard=dashboard, **data.validated_data)
        dashboard_pin_save(pin=pin, actor=request.user, created=True)
        return Response(PinOutput(pin).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={200: UnpinOutput, 409: OpenApiResponse(Conflict, description="no pin holds it: nothing to do")},
    )
    def delete(self, request, looker_id: str):
        from cleanup.services import dashboard_pin_delete

        dashboard = self.get_object()
        pins = list(dashboard.pins.filter(expires_at__gt=timezone.now()).order_by("pk"))
        if not pins:
            return conflict(f"dashboard {dashboard.looker_id} is not pinned")
        for pin in pins:
            dashboard_pin_delete(pin=pin, actor=request.user)
        return Response({"removed": len(pins)})


class PinFilter(StrictFilterSet):
    """The admin's pin list: active (still holding) or expired, by dashboard (its Looker id) and by who pinned."""

    active = StrictBooleanFilter(method="filter_active", help_text="true: still holding; false: expired")
    dashboard = filters.CharFilter(field_name="dashboard__looker_id", help_text="the dashboard's Looker id")
    created_by = filters.CharFilter(field_name="created_by__username", help_text="who pinned it (username)")

    class Meta:
        model = DashboardPin
        fields: list[str] = []

    def filter_active(self, queryset, name, value):
        now = timezone.now()
        return queryset.filter(expires_at__gt=now) if value else queryset.filter(expires_at__lte=now)


class DashboardPinList(generics.ListAPIView):
    """Every pin, holding or expired, latest expiry first (the admin's pin list): search by dashboard or reason."""

    queryset = DashboardPin.objects.select_related("dashboard", "created_by").order_by("-expires_at", "-pk")
    serializer_class = PinOutput
    permission_classes = PERMS
    filterset_class = PinFilter
    search_fields = ["dashboard__looker_id", "dashboard__title", "reason"]
    ordering_fields = ["expires_at", "created_at"]


class PinEdit(PinInput):
    reason = serializers.CharField(max_length=500, required=False)
    expires_at = serializers.DateTimeField(required=False, help_text="in the future")


class DashboardPinDetail(generics.RetrieveUpdateDestroyAPIView):
    """One pin. PATCH changes its reason or expiry (``cleanup.change_dashboardpin``; ``dashboardpin_changed``),
    DELETE removes it (``cleanup.delete_dashboardpin``; ``dashboardpin_deleted``): the admin's pin service."""

    queryset = DashboardPin.objects.select_related("dashboard", "created_by")
    permission_classes = PERMS
    required_perms = {"PATCH": ("cleanup.change_dashboardpin",), "DELETE": ("cleanup.delete_dashboardpin",)}
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_serializer_class(self):
        return PinEdit if self.request and self.request.method == "PATCH" else PinOutput

    @extend_schema(request=PinEdit, responses={200: PinOutput})
    def patch(self, request, *args, **kwargs):
        from cleanup.services import dashboard_pin_save

        pin = self.get_object()
        data = PinEdit(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        for name, value in data.validated_data.items():
            setattr(pin, name, value)
        dashboard_pin_save(pin=pin, actor=request.user, created=False)
        return Response(PinOutput(pin).data)

    def perform_destroy(self, instance):
        from cleanup.services import dashboard_pin_delete

        dashboard_pin_delete(pin=instance, actor=self.request.user)


# --- the cleanup plan: preview, then run exactly that plan ------------------------------------------------------


class CleanupParamsInput(serializers.Serializer):
    params = serializers.DictField(
        required=False, default=dict,
        help_text="the cleanup's parameters (inactive_days, max_deletions), checked by its declared schema",
    )  # fmt: skip


class CleanupRunInput(CleanupParamsInput):
    plan_sha256 = serializers.CharField(max_length=64, help_text="the preview's plan_sha256: the plan you read")


class PlanPreviewOutput(serializers.Serializer):
    """The plan and its numbers."""

    plan = serializers.CharField(help_text="the plan as the admin's confirmation shows it")
    planned = serializers.IntegerField(help_text="dashboards the run would move to Looker's trash")
    owners = serializers.IntegerField(help_text="distinct owners the run would mail")
    plan_sha256 = serializers.CharField(help_text="send it back to run exactly this plan")
    needs_approval = serializers.ListField(
        child=serializers.CharField(), help_text="why a second Content Admin must approve the run first ([] if not)"
    )


def _cleanup_spec(request):
    """The cleanup job, if ``request.user`` may run it (the admin trigger page's rule); else 403."""
    from orchestration.admin import job_trigger_allowed
    from orchestration.registry import job_get

    spec = job_get(CLEANUP_JOB)
    if not job_trigger_allowed(request.user, spec):
        raise PermissionDenied(f"you may not run {spec.name}")
    return spec


def _cleanup_preview(request, raw_params):
    """The admin trigger page's checks and preview: (spec, params, preview); raises 403/400, or returns a 409."""
    from orchestration.approvals import job_confirmation
    from orchestration.params import api_params_validate
    from orchestration.registry import JobError, JobFailed

    spec = _cleanup_spec(request)
    params, problems = api_params_validate(spec, raw_params)
    if problems:
        raise ValidationError({"params": problems})
    try:
        preview = job_confirmation(spec.name)(params=spec.params_parse(params))
    except (JobError, JobFailed) as exc:
        return spec, params, conflict(str(exc))
    return spec, params, preview


def _preview_body(preview) -> dict:
    return {"plan": preview.text, "planned": preview.planned, "owners": preview.owners,
            "plan_sha256": preview.plan_sha256, "needs_approval": list(preview.needs_approval)}  # fmt: skip


class PlanChangedOutput(serializers.Serializer):
    """409: the plan changed since it was read (the new plan, to read and confirm), or could not be built (the
    detail only)."""

    detail = serializers.CharField()
    plan = serializers.CharField(required=False)
    planned = serializers.IntegerField(required=False)
    owners = serializers.IntegerField(required=False)
    plan_sha256 = serializers.CharField(required=False)
    needs_approval = serializers.ListField(child=serializers.CharField(), required=False)


UPSTREAM = OpenApiResponse(Conflict, description="the plan could not be built now (Looker unreachable, ...): why")


class CleanupPlanPreview(generics.GenericAPIView):
    """The plan a real cleanup would follow now (the inventory refreshed from Looker first): how many dashboards
    go to the trash and how many owners are mailed, as the admin's confirmation shows; nothing is deleted."""

    queryset = JobRun.objects.none()
    permission_classes = PERMS
    serializer_class = CleanupParamsInput

    @extend_schema(request=CleanupParamsInput, responses={200: PlanPreviewOutput, 409: UPSTREAM})
    def post(self, request):
        _cleanup_spec(request)  # who may not run it learns nothing more (403 before the body is read)
        data = CleanupParamsInput(data=request.data)
        data.is_valid(raise_exception=True)
        _, _, preview = _cleanup_preview(request, data.validated_data["params"])
        if isinstance(preview, Response):
            return preview
        return Response(PlanPreviewOutput(_preview_body(preview)).data)


class CleanupRun(generics.GenericAPIView):
    """Run the previewed plan: 202 with the run when ``plan_sha256`` is the plan's now (a plan above the guard waits
    for a second Content Admin's approval: the run's outcome says so); 409 with the new plan when it changed."""

    queryset = JobRun.objects.none()
    permission_classes = PERMS
    serializer_class = CleanupRunInput

    @extend_schema(
        request=CleanupRunInput,
        responses={
            202: OpenApiResponse(JobRunOutput, description="queued: the run, to follow at its detail URL"),
            409: OpenApiResponse(PlanChangedOutput, description="the plan changed (or could not be built): read it"),
        },
    )
    def post(self, request):
        from orchestration.registry import JobError
        from orchestration.services import job_run_request

        _cleanup_spec(request)
        data = CleanupRunInput(data=request.data)
        data.is_valid(raise_exception=True)
        spec, params, preview = _cleanup_preview(request, data.validated_data["params"])
        if isinstance(preview, Response):
            return preview
        if data.validated_data["plan_sha256"] != preview.plan_sha256:
            return Response(
                {"detail": "the plan changed since you read it: read it again and send its plan_sha256",
                 **_preview_body(preview)},
                status=status.HTTP_409_CONFLICT,
            )  # fmt: skip
        try:
            run = job_run_request(job=spec.name, params=params, trigger=JobRun.Trigger.API, actor=request.user)
        except JobError as exc:
            raise ValidationError({"params": str(exc)}) from exc
        run.refresh_from_db()
        return Response(JobRunOutput(run).data, status=status.HTTP_202_ACCEPTED)


# --- restores and cleanup actions (read-only, as in the admin) ---------------------------------------------------


class CleanupActionOutput(serializers.ModelSerializer):
    looker_id = serializers.CharField(source="dashboard.looker_id")
    title = serializers.CharField(source="dashboard.title")

    class Meta:
        model = CleanupAction
        fields = ["id", "job_run", "looker_id", "title", "kind", "status", "inactive_days", "backup", "error",
                  "attempts", "deleted_at", "owner_notified_at", "updated_at"]  # fmt: skip


class CleanupActionList(generics.ListAPIView):
    """What each cleanup run did per dashboard (planned, backed up, soft-deleted, kept, failed), cursor pages."""

    queryset = CleanupAction.objects.select_related("dashboard").order_by("-pk")
    serializer_class = CleanupActionOutput
    permission_classes = PERMS
    filterset_fields = ["job_run", "status", "kind"]
    pagination_class = NewestFirstCursor


class DashboardRestoreList(generics.ListAPIView):
    """Restores asked for and how they ended (undeleted, re-created from a backup, failed)."""

    queryset = DashboardRestore.objects.select_related("dashboard").order_by("-pk")
    serializer_class = RestoreOutput
    permission_classes = PERMS
    filterset_fields = ["status", "method"]
    pagination_class = NewestFirstCursor


class DashboardRestoreDetail(generics.RetrieveAPIView):
    """One restore: follow it after ``POST dashboards/{looker_id}/restore/`` answered 202."""

    queryset = DashboardRestore.objects.select_related("dashboard")
    serializer_class = RestoreOutput
    permission_classes = PERMS


# --- protected folders: the admin's add / change / delete, through its audited service ---------------------------


class ProtectedFolderSerializer(serializers.ModelSerializer):
    created_by = serializers.StringRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = ProtectedFolder
        fields = ["id", "folder_id", "name", "reason", "created_by", "created_at"]
        read_only_fields = ["created_at"]


class ProtectedFolderList(generics.ListCreateAPIView):
    """Looker folders whose dashboards are never cleaned up. POST protects one more (Content Admins), audited as
    ``cleanup.protectedfolder_created`` by the admin's service (no approval: the admin asks none)."""

    queryset = ProtectedFolder.objects.select_related("created_by").order_by("folder_id")
    serializer_class = ProtectedFolderSerializer
    permission_classes = PERMS
    required_perms = {"POST": ("cleanup.add_protectedfolder",)}
    search_fields = ["folder_id", "name", "reason"]

    def perform_create(self, serializer):
        from cleanup.services import dashboard_pin_save

        folder = ProtectedFolder(**serializer.validated_data)
        dashboard_pin_save(pin=folder, actor=self.request.user, created=True)
        serializer.instance = folder


class ProtectedFolderDetail(generics.RetrieveUpdateDestroyAPIView):
    """One protected folder. PATCH changes it (``cleanup.protectedfolder_changed``); DELETE stops protecting it
    (``cleanup.protectedfolder_deleted``): the admin's change and delete permissions and service."""

    queryset = ProtectedFolder.objects.select_related("created_by")
    serializer_class = ProtectedFolderSerializer
    permission_classes = PERMS
    required_perms = {"PATCH": ("cleanup.change_protectedfolder",), "DELETE": ("cleanup.delete_protectedfolder",)}
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def perform_update(self, serializer):
        from cleanup.services import dashboard_pin_save

        folder = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(folder, name, value)
        dashboard_pin_save(pin=folder, actor=self.request.user, created=False)

    def perform_destroy(self, instance):
        from cleanup.services import dashboard_pin_delete

        dashboard_pin_delete(pin=instance, actor=self.request.user)


urlpatterns = [
    path("cleanup-actions/", CleanupActionList.as_view(), name="api-cleanupaction-list"),
    path("dashboard-restores/", DashboardRestoreList.as_view(), name="api-dashboardrestore-list"),
    path("dashboard-restores/<int:pk>/", DashboardRestoreDetail.as_view(), name="api-dashboardrestore-detail"),
    path("dashboards/<str:looker_id>/", DashboardDetail.as_view(), name="api-dashboard-detail"),
    path("dashboards/<str:looker_id>/backups/", DashboardBackupList.as_view(), name="api-dashboard-backups"),
    path("dashboards/<str:looker_id>/pin/", DashboardPinView.as_view(), name="api-dashboard-pin"),
    path("dashboard-backups/<int:pk>/", DashboardBackupDetail.as_view(), name="api-dashboardbackup-detail"),
    path("cleanup/preview/", CleanupPlanPreview.as_view(), name="api-cleanup-preview"),
    path("cleanup/run/", CleanupRun.as_view(), name="api-cleanup-run"),
    path("pins/", DashboardPinList.as_view(), name="api-dashboardpin-list"),
    path("pins/<int:pk>/", DashboardPinDetail.as_view(), name="api-dashboardpin-detail"),
    path("protected-folders/", ProtectedFolderList.as_view(), name="api-protectedfolder-list"),
    path("protected-folders/<int:pk>/", ProtectedFolderDetail.as_view(), name="api-protectedfolder-detail"),
]

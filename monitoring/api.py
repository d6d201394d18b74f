"""REST API for monitoring (issue 10): incidents (list, detail, acknowledge, mark fixed, verify and resume) and SLAs.

The same permissions as the admin (``view_incident`` to read; ``acknowledge_incident``; ``resume_incident`` and the
job's own permission to verify and resume) and the same services (``incident_acknowledge``, ``incident_mark_fixed``,
``incident_verify_and_resume``), so the timeline and the audit events are the admin's.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from api.common import DjangoModelPermission
from api.schema import ApiError
from orchestration.registry import JobError

from .admin import incident_may_resume
from .models import Incident, IncidentEvent, Sla
from .selectors import incident_timeline
from .services import IncidentError, incident_acknowledge, incident_mark_fixed, incident_verify_and_resume

PERMS = [permissions.IsAuthenticated, DjangoModelPermission]


class IncidentOutput(serializers.ModelSerializer):
    owner = serializers.StringRelatedField(allow_null=True)
    acknowledged_by = serializers.StringRelatedField(allow_null=True)
    time_to_acknowledge_s = serializers.FloatField(allow_null=True, read_only=True)
    time_to_resolve_s = serializers.FloatField(allow_null=True, read_only=True)

    class Meta:
        model = Incident
        fields = ["id", "key", "title", "kind", "failure_class", "handling", "job", "status", "level", "occurrences",
                  "retries", "next_retry_at", "owner", "job_run", "last_job_run", "resume_job_run", "last_error",
                  "detected_at", "alerted_at", "acknowledged_at", "acknowledged_by", "fixed_at", "verified_at",
                  "resumed_at", "resolved_at", "time_to_acknowledge_s", "time_to_resolve_s"]  # fmt: skip


class IncidentEventOutput(serializers.ModelSerializer):
    class Meta:
        model = IncidentEvent
        fields = ["id", "kind", "at", "actor_label", "message", "data"]


class IncidentDetailOutput(IncidentOutput):
    """An incident with its timeline, oldest first (what the admin's incident page shows)."""

    timeline = serializers.SerializerMethodField()

    class Meta(IncidentOutput.Meta):
        fields = [*IncidentOutput.Meta.fields, "timeline"]

    @extend_schema_field(IncidentEventOutput(many=True))
    def get_timeline(self, incident) -> list:
        return IncidentEventOutput(incident_timeline(incident=incident), many=True).data


class SlaOutput(serializers.ModelSerializer):
    class Meta:
        model = Sla
        fields = ["id", "name", "job", "kind", "day_of_month", "within_minutes", "objective_percent", "enabled",
                  "description", "created_at"]  # fmt: skip


class NoteInput(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="",
                                 help_text="shown on the incident's timeline")  # fmt: skip


class IncidentList(generics.ListAPIView):
    """Incidents, newest first; the admin's filters (status, kind, failure class, job, level)."""

    queryset = Incident.objects.select_related("owner", "acknowledged_by").order_by("-detected_at", "-pk")
    serializer_class = IncidentOutput
    permission_classes = PERMS
    filterset_fields = ["status", "kind", "failure_class", "job", "level"]
    search_fields = ["title", "key", "last_error"]
    ordering_fields = ["detected_at", "level", "occurrences"]


class IncidentDetail(generics.RetrieveAPIView):
    queryset = Incident.objects.select_related("owner", "acknowledged_by")
    serializer_class = IncidentDetailOutput
    permission_classes = PERMS


ACT_RESPONSES = {
    200: IncidentDetailOutput,
    409: OpenApiResponse(ApiError, description="refused as the incident stands (e.g. already acknowledged): why"),
}


class _IncidentAction(generics.GenericAPIView):
    queryset = Incident.objects.all()
    permission_classes = PERMS
    serializer_class = NoteInput

    def _done(self, incident: Incident) -> Response:
        incident = Incident.objects.select_related("owner", "acknowledged_by").get(pk=incident.pk)
        return Response(IncidentDetailOutput(incident).data)


class IncidentNoteAction(_IncidentAction):
    """Acknowledge (escalation stops) or mark fixed (verify and resume then closes it), with a note: the admin's
    buttons, through the same service (``service``); 409 when the incident's state refuses it."""

    service = None  # incident_acknowledge or incident_mark_fixed: an instance attribute set by as_view() below
    required_perms: dict = {}  # set by as_view() below, per action

    @extend_schema(request=NoteInput, responses=ACT_RESPONSES)
    def post(self, request, pk: int):
        incident = self.get_object()
        data = NoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            incident = self.service(incident=incident, actor=request.user, note=data.validated_data["note"])
        except IncidentError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return self._done(incident)


class IncidentResume(_IncidentAction):
    """Verify and resume: rerun the failed step; the incident closes when it passes. Needs ``resume_incident`` and
    the permission to rerun what failed (the job's own, or syncing the target), as in the admin."""

    required_perms = {"POST": ("monitoring.resume_incident",)}
    serializer_class = IncidentDetailOutput

    @extend_schema(request=None, responses=ACT_RESPONSES)
    def post(self, request, pk: int):
        incident = self.get_object()
        if not incident_may_resume(request.user, incident):
            raise PermissionDenied("you may not rerun this job")
        try:
            incident = incident_verify_and_resume(incident=incident, actor=request.user)
        except IncidentError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except JobError as exc:
            return Response({"detail": f"could not rerun: {exc}"}, status=status.HTTP_409_CONFLICT)
        return self._done(incident)


class SlaList(generics.ListAPIView):
    """The SLAs the monitoring tick checks (read-only here; Platform Admins edit them in the admin)."""

    queryset = Sla.objects.all().order_by("name")
    serializer_class = SlaOutput
    permission_classes = PERMS
    filterset_fields = ["kind", "enabled", "job"]


urlpatterns = [
    path("incidents/", IncidentList.as_view(), name="api-incident-list"),
    path("incidents/<int:pk>/", IncidentDetail.as_view(), name="api-incident-detail"),
    path(
        "incidents/<int:pk>/acknowledge/",
        IncidentNoteAction.as_view(
            service=incident_acknowledge, required_perms={"POST": ("monitoring.acknowledge_incident",)}
        ),
        name="api-incident-acknowledge",
    ),
    path(
        "incidents/<int:pk>/fix/",
        IncidentNoteAction.as_view(
            service=incident_mark_fixed, required_perms={"POST": ("monitoring.resume_incident",)}
        ),
        name="api-incident-fix",
    ),
    path("incidents/<int:pk>/resume/", IncidentResume.as_view(), name="api-incident-resume"),
    path("slas/", SlaList.as_view(), name="api-sla-list"),
]

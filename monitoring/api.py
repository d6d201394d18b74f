"""REST API for monitoring (issue 10): everything the monitoring admin lets a person do.

Incidents (list, detail, acknowledge, mark fixed, verify and resume); SLAs (list, create, detail, edit: never
deleted, as in the admin, which refuses it: disable one instead, so its checks keep their meaning; DELETE answers
405); SLA checks, notifications, run records, API usage, host samples and weekly performance reports (read-only,
as the admin shows them); escalation ladders (list, create, detail, edit, delete); feedback (list, and "was this
useful?" on a report or review, as the ``monitoring-feedback`` view records it).

The same permissions as the admin (``DjangoModelPermission``: ``view_<model>`` to read, ``add_``/``change_``/
``delete_`` to write, ``acknowledge_incident``; ``resume_incident`` and the job's own permission to verify and
resume) and the same services (``incident_acknowledge``, ``incident_mark_fixed``, ``incident_verify_and_resume``,
``sla_save``, ``escalation_step_save``/``_delete``, ``feedback_record``), so the timeline and the audit events are
the admin's. Inputs are checked by the model's own validation (``full_clean``, ``Sla.clean``): 400 naming the field.
"""

from __future__ import annotations

import copy

from django.db import IntegrityError
from django.urls import path
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from api.common import DjangoModelPermission, NewestFirstCursor, StrictFilterSet, conflict, model_validate
from api.schema import ApiError
from orchestration.registry import JobError

from .admin import incident_may_resume
from .models import (
    ApiUsage,
    EscalationStep,
    Feedback,
    HostSample,
    Incident,
    IncidentEvent,
    Notification,
    PerformanceReport,
    RunRecord,
    Sla,
    SlaCheck,
)
from .selectors import feedback_target, incident_timeline
from .services import (
    FEEDBACK_MODELS,
    IncidentError,
    escalation_step_delete,
    escalation_step_save,
    feedback_record,
    incident_acknowledge,
    incident_mark_fixed,
    incident_verify_and_resume,
    sla_save,
)

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


SLA_WRITABLE = ["name", "job", "kind", "day_of_month", "within_minutes", "objective_percent", "enabled",
                "description"]  # fmt: skip


class SlaOutput(serializers.ModelSerializer):
    class Meta:
        model = Sla
        fields = ["id", *SLA_WRITABLE, "created_at"]


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
            return conflict(str(exc))
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
            return conflict(str(exc))
        except JobError as exc:
            return conflict(f"could not rerun: {exc}")
        return self._done(incident)


# --- validation shared by the writes: the model's own (what the admin's form runs) --------------------------------

# The database's integer ranges, stated (SQLite would take any 64-bit value that PostgreSQL's columns refuse).
SMALLINT_MAX, INT_MAX = 32767, 2147483647


def _merged(serializer: serializers.ModelSerializer, attrs: dict):
    """The object as it would be saved: a copy of the edited one (or a new one) with ``attrs`` set."""
    instance = copy.copy(serializer.instance) if serializer.instance is not None else serializer.Meta.model()
    for name, value in attrs.items():
        setattr(instance, name, value)
    return instance


# --- SLAs: create, detail, edit (no delete: disable instead) -----------------------------------------------------


class SlaInput(serializers.ModelSerializer):
    """An SLA as the admin's form edits it; ``Sla.clean`` decides what each kind needs (a deadline: a day between 1
    and 28; latency and freshness: within how many minutes; an objective above 0 and at most 100 percent)."""

    day_of_month = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=SMALLINT_MAX,
        help_text="deadline: done by the end of this day of each month (UTC)",
    )
    within_minutes = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=INT_MAX,
                                              help_text="latency: done within N minutes of the request; freshness: "
                                                        "synced in N minutes")  # fmt: skip

    class Meta:
        model = Sla
        fields = SLA_WRITABLE

    def validate(self, attrs):
        model_validate(_merged(self, attrs))
        return attrs


class SlaListCreate(generics.ListCreateAPIView):
    """The SLAs the monitoring tick checks. POST defines one (``monitoring.add_sla``; Platform Admins), audited as
    ``sla.created`` by the admin's ``sla_save``."""

    queryset = Sla.objects.all().order_by("name")
    permission_classes = PERMS
    required_perms = {"POST": ("monitoring.add_sla",)}
    filterset_fields = ["kind", "enabled", "job"]

    def get_serializer_class(self):
        return SlaInput if self.request and self.request.method == "POST" else SlaOutput

    @extend_schema(request=SlaInput, responses={201: SlaOutput})
    def post(self, request, *args, **kwargs):
        data = SlaInput(data=request.data)
        data.is_valid(raise_exception=True)
        sla = sla_save(sla=Sla(**data.validated_data), actor=request.user, created=True)
        return Response(SlaOutput(sla).data, status=status.HTTP_201_CREATED)


class SlaDetail(generics.RetrieveUpdateAPIView):
    """One SLA. PATCH edits it (``monitoring.change_sla``), audited as ``sla.changed`` by ``sla_save``. There is no
    DELETE (405), as the admin refuses it: disable the SLA (``enabled: false``) and its checks keep their meaning."""

    queryset = Sla.objects.all()
    permission_classes = PERMS
    required_perms = {"PATCH": ("monitoring.change_sla",)}
    http_method_names = ["get", "patch", "head", "options"]

    def get_serializer_class(self):
        return SlaInput if self.request and self.request.method == "PATCH" else SlaOutput

    @extend_schema(request=SlaInput, responses={200: SlaOutput})
    def patch(self, request, pk: int):
        sla = self.get_object()
        data = SlaInput(sla, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        for name, value in data.validated_data.items():
            setattr(sla, name, value)
        return Response(SlaOutput(sla_save(sla=sla, actor=request.user, created=False)).data)


class SlaCheckOutput(serializers.ModelSerializer):
    sla_name = serializers.CharField(source="sla.name", read_only=True)

    class Meta:
        model = SlaCheck
        fields = ["id", "sla", "sla_name", "subject", "due_at", "met", "measured", "detail", "checked_at", "job_run"]


class SlaCheckList(generics.ListAPIView):
    """Each checked period of each SLA (a month, a requested run, a freshness slot): met or breached, newest first
    (cursor pages: one row per period per SLA)."""

    queryset = SlaCheck.objects.select_related("sla").order_by("-pk")
    serializer_class = SlaCheckOutput
    permission_classes = PERMS
    filterset_fields = ["met", "sla", "subject"]
    pagination_class = NewestFirstCursor


# --- escalation ladders: list, create, detail, edit, delete --------------------------------------------------------


class EscalationStepSerializer(serializers.ModelSerializer):
    """A rung of a ladder (``job`` empty: the default ladder). One rung per level per ladder."""

    level = serializers.IntegerField(min_value=0, max_value=SMALLINT_MAX)
    after_occurrences = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=INT_MAX)
    after_minutes = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=INT_MAX)

    class Meta:
        model = EscalationStep
        fields = ["id", "job", "level", "audience", "after_occurrences", "after_minutes"]
        validators: list = []  # the one-rung-per-level rule answers naming ``level`` (below), not non_field_errors

    def validate(self, attrs):
        step = _merged(self, attrs)
        # The one rule of uniqueness is checked below, naming the field.
        model_validate(step, validate_unique=False, validate_constraints=False)
        if EscalationStep.objects.filter(job=step.job, level=step.level).exclude(pk=step.pk).exists():
            raise ValidationError({"level": _level_taken(step)})
        return attrs


def _level_taken(step: EscalationStep) -> str:
    return f"the {step.job or 'default'} ladder already has a level {step.level} rung"


def _step_save(request, step: EscalationStep, created: bool) -> EscalationStep:
    try:
        return escalation_step_save(step=step, actor=request.user, created=created)
    except IntegrityError as exc:  # a rung added at that level since the check above
        raise ValidationError({"level": _level_taken(step)}) from exc


class EscalationStepListCreate(generics.ListCreateAPIView):
    """The escalation ladders' rungs, by job and level. POST adds one (``monitoring.add_escalationstep``), audited
    as ``escalation.step_created`` by the admin's ``escalation_step_save``."""

    queryset = EscalationStep.objects.all().order_by("job", "level")
    serializer_class = EscalationStepSerializer
    permission_classes = PERMS
    required_perms = {"POST": ("monitoring.add_escalationstep",)}
    filterset_fields = ["job", "audience"]

    def perform_create(self, serializer):
        serializer.instance = _step_save(self.request, EscalationStep(**serializer.validated_data), created=True)


class EscalationStepDetail(generics.RetrieveUpdateDestroyAPIView):
    """One rung. PATCH changes it (``escalation.step_changed``); DELETE removes it (``escalation.step_deleted``,
    with what it was): the admin's change and delete permissions and services."""

    queryset = EscalationStep.objects.all()
    serializer_class = EscalationStepSerializer
    permission_classes = PERMS
    required_perms = {
        "PATCH": ("monitoring.change_escalationstep",),
        "DELETE": ("monitoring.delete_escalationstep",),
    }
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def perform_update(self, serializer):
        step = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(step, name, value)
        _step_save(self.request, step, created=False)

    def perform_destroy(self, instance):
        escalation_step_delete(step=instance, actor=self.request.user)


# --- notifications -----------------------------------------------------------------------------------------------


class NotificationOutput(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "incident", "level", "channel", "status", "attempts", "subject", "error", "created_at",
                  "sent_at"]  # fmt: skip


class NotificationDetailOutput(NotificationOutput):
    """A notification with who it went to and what it said."""

    class Meta(NotificationOutput.Meta):
        fields = [*NotificationOutput.Meta.fields, "recipients", "body"]


class NotificationList(generics.ListAPIView):
    """The alerts escalation planned (e-mails to a rung's people, webhook posts) and whether they went out, newest
    first (cursor pages); the detail has the recipients and the body."""

    queryset = Notification.objects.defer("body", "recipients").order_by("-pk")
    serializer_class = NotificationOutput
    permission_classes = PERMS
    filterset_fields = ["channel", "status", "level", "incident"]
    pagination_class = NewestFirstCursor


class NotificationDetail(generics.RetrieveAPIView):
    queryset = Notification.objects.all()
    serializer_class = NotificationDetailOutput
    permission_classes = PERMS


# --- what the system records: run records, API usage, host samples ------------------------------------------------


class RunRecordOutput(serializers.ModelSerializer):
    class Meta:
        model = RunRecord
        fields = ["id", "job_run", "job", "status", "dry_run", "trigger", "requested_at", "finished_at", "duration_s",
                  "queue_wait_s", "rows", "cells", "api_calls", "bytes_billed", "quality_score", "failure_class",
                  "cpu_s", "peak_rss_bytes", "recorded_at"]  # fmt: skip


class RunRecordFilter(StrictFilterSet):
    finished_after = filters.IsoDateTimeFilter(field_name="finished_at", lookup_expr="gte")
    finished_before = filters.IsoDateTimeFilter(field_name="finished_at", lookup_expr="lt")

    class Meta:
        model = RunRecord
        fields = ["job", "status", "failure_class", "dry_run", "job_run"]


class RunRecordList(generics.ListAPIView):
    """One record per finished job run (outcome, duration, volume, quality, failure class), newest first (cursor
    pages); ``finished_after`` (inclusive) and ``finished_before`` (exclusive) bound the finish time."""

    queryset = RunRecord.objects.all().order_by("-pk")
    serializer_class = RunRecordOutput
    permission_classes = PERMS
    filterset_class = RunRecordFilter
    pagination_class = NewestFirstCursor


class ApiUsageOutput(serializers.ModelSerializer):
    class Meta:
        model = ApiUsage
        fields = ["id", "system", "minute", "requests", "errors", "throttled", "duration_s", "bytes_billed"]


class ApiUsageFilter(StrictFilterSet):
    minute_from = filters.IsoDateTimeFilter(field_name="minute", lookup_expr="gte")
    minute_before = filters.IsoDateTimeFilter(field_name="minute", lookup_expr="lt")

    class Meta:
        model = ApiUsage
        fields = ["system"]


class ApiUsageList(generics.ListAPIView):
    """Requests to each external system per minute, newest first (cursor pages); ``minute_from`` (inclusive) and
    ``minute_before`` (exclusive) bound the minute."""

    queryset = ApiUsage.objects.all().order_by("-pk")
    serializer_class = ApiUsageOutput
    permission_classes = PERMS
    filterset_class = ApiUsageFilter
    pagination_class = NewestFirstCursor


class HostSampleOutput(serializers.ModelSerializer):
    class Meta:
        model = HostSample
        fields = ["id", "host", "taken_at", "cpu_percent", "memory_percent", "memory_used_bytes", "disk_percent",
                  "disk_used_bytes", "net_sent_bytes", "net_recv_bytes", "load1"]  # fmt: skip


class HostSampleList(generics.ListAPIView):
    """CPU, memory, disk and network of each host as the monitoring tick sampled them, newest first (cursor pages)."""

    queryset = HostSample.objects.all().order_by("-pk")
    serializer_class = HostSampleOutput
    permission_classes = PERMS
    filterset_fields = ["host"]
    pagination_class = NewestFirstCursor


# --- feedback: read it (monitoring.view_feedback); give it (monitoring.add_feedback) ---------------------------


class FeedbackPermission(DjangoModelPermission):
    """Reading everyone's feedback needs ``view_feedback``; giving one's own needs ``add_feedback`` only, as the
    ``monitoring-feedback`` view asks (every role says whether a report was useful; few read all the answers)."""

    def has_permission(self, request, view) -> bool:
        if request.method == "POST":
            return request.user.has_perm("monitoring.add_feedback")
        return super().has_permission(request, view)


FEEDBACK_CHOICES = [(label, label) for label in FEEDBACK_MODELS]


class FeedbackOutput(serializers.ModelSerializer):
    content_type = serializers.SerializerMethodField(help_text="what the feedback is about: app_label.model")
    user = serializers.StringRelatedField()

    class Meta:
        model = Feedback
        fields = ["id", "content_type", "object_id", "user", "useful", "comment", "created_at"]

    def get_content_type(self, feedback) -> str:
        return f"{feedback.content_type.app_label}.{feedback.content_type.model}"


class FeedbackInput(serializers.Serializer):
    content_type = serializers.ChoiceField(choices=FEEDBACK_CHOICES, help_text="what it is about: app_label.model")
    object_id = serializers.CharField(max_length=64)
    useful = serializers.BooleanField()
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    def validate(self, attrs):
        target = feedback_target(label=attrs["content_type"], object_id=attrs["object_id"])
        if target is None:
            raise ValidationError({"object_id": f"no {attrs['content_type']} {attrs['object_id']!r}"})
        attrs["target"] = target
        return attrs


class FeedbackFilter(StrictFilterSet):
    content_type = filters.ChoiceFilter(choices=FEEDBACK_CHOICES, method="_of_kind")

    class Meta:
        model = Feedback
        fields = ["useful", "object_id"]

    def _of_kind(self, queryset, name, value):
        app_label, model = value.split(".")
        return queryset.filter(content_type__app_label=app_label, content_type__model=model)


class FeedbackListCreate(generics.ListCreateAPIView):
    """ "Was this useful?" answers on reports and reviews, newest first. POST records one's own answer on a report or
    review (``monitoring.add_feedback``) through ``feedback_record``, as the feedback button does (audited as
    ``feedback.recorded``): 201, or 200 when it replaces one's earlier answer on that object."""

    queryset = Feedback.objects.select_related("content_type", "user").order_by("-created_at", "-pk")
    permission_classes = [permissions.IsAuthenticated, FeedbackPermission]
    filterset_class = FeedbackFilter

    def get_serializer_class(self):
        return FeedbackInput if self.request and self.request.method == "POST" else FeedbackOutput

    @extend_schema(
        request=FeedbackInput,
        responses={201: FeedbackOutput, 200: OpenApiResponse(FeedbackOutput, description="replaced an earlier answer")},
    )
    def post(self, request, *args, **kwargs):
        data = FeedbackInput(data=request.data)
        data.is_valid(raise_exception=True)
        target = data.validated_data["target"]
        earlier = Feedback.objects.filter(
            content_type__app_label=target._meta.app_label, content_type__model=target._meta.model_name,
            object_id=str(target.pk), user=request.user,
        ).exists()  # fmt: skip
        feedback = feedback_record(target=target, user=request.user, useful=data.validated_data["useful"],
                                   comment=data.validated_data["comment"])  # fmt: skip
        feedback = Feedback.objects.select_related("content_type", "user").get(pk=feedback.pk)
        return Response(
            FeedbackOutput(feedback).data, status=status.HTTP_200_OK if earlier else status.HTTP_201_CREATED
        )


# --- weekly performance reports -----------------------------------------------------------------------------------


class PerformanceReportOutput(serializers.ModelSerializer):
    class Meta:
        model = PerformanceReport
        fields = ["id", "period_start", "period_end", "job_run", "recipients", "sent_at", "created_at"]


class PerformanceReportDetailOutput(PerformanceReportOutput):
    """The report with its text (as mailed) and its figures."""

    class Meta(PerformanceReportOutput.Meta):
        fields = [*PerformanceReportOutput.Meta.fields, "body", "figures"]


class PerformanceReportList(generics.ListAPIView):
    """The weekly performance reports mailed to the Platform Admins, newest first; the detail has the text and the
    figures."""

    queryset = PerformanceReport.objects.defer("body", "figures").order_by("-period_end", "-pk")
    serializer_class = PerformanceReportOutput
    permission_classes = PERMS


class PerformanceReportDetail(generics.RetrieveAPIView):
    queryset = PerformanceReport.objects.all()
    serializer_class = PerformanceReportDetailOutput
    permission_classes = PERMS


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
    path("slas/", SlaListCreate.as_view(), name="api-sla-list"),
    path("slas/<int:pk>/", SlaDetail.as_view(), name="api-sla-detail"),
    path("sla-checks/", SlaCheckList.as_view(), name="api-slacheck-list"),
    path("escalation-steps/", EscalationStepListCreate.as_view(), name="api-escalationstep-list"),
    path("escalation-steps/<int:pk>/", EscalationStepDetail.as_view(), name="api-escalationstep-detail"),
    path("notifications/", NotificationList.as_view(), name="api-notification-list"),
    path("notifications/<int:pk>/", NotificationDetail.as_view(), name="api-notification-detail"),
    path("run-records/", RunRecordList.as_view(), name="api-runrecord-list"),
    path("api-usage/", ApiUsageList.as_view(), name="api-apiusage-list"),
    path("host-samples/", HostSampleList.as_view(), name="api-hostsample-list"),
    path("feedback/", FeedbackListCreate.as_view(), name="api-feedback-list"),
    path("performance-reports/", PerformanceReportList.as_view(), name="api-performancereport-list"),
    path("performance-reports/<int:pk>/", PerformanceReportDetail.as_view(), name="api-performancereport-detail"),
]

"""REST API for job runs: list, read, and trigger (POST)."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from .approvals import job_confirmation
from .models import JobRun
from .params import api_params_validate
from .registry import JobError, JobFailed, job_get
from .services import job_run_request


class DjangoViewPermission(permissions.BasePermission):
    """Read access needs the model's ``view`` permission."""

    def has_permission(self, request, view) -> bool:
        model = view.queryset.model
        return request.user.has_perm(f"{model._meta.app_label}.view_{model._meta.model_name}")


class RunOutcomeOutput(serializers.Serializer):
    """What the run came to (orchestration.outcome): e.g. awaiting_review, blocked_by_gate, published,
    partially_failed, awaiting_approval, succeeded, failed; with the admin's label."""

    key = serializers.CharField()
    label = serializers.CharField()
    live = serializers.BooleanField(help_text="still queued or running")


class JobRunOutput(serializers.ModelSerializer):
    actor = serializers.StringRelatedField(allow_null=True)
    duration_s = serializers.FloatField(read_only=True, allow_null=True)
    outcome = serializers.SerializerMethodField(help_text="what the run came to, as the admin's run list says it")

    class Meta:
        model = JobRun
        fields = [
            "id",
            "job",
            "trigger",
            "actor",
            "params",
            "dry_run",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "duration_s",
            "attempts",
            "progress",
            "counters",
            "summary",
            "error",
            "dag_id",
            "dag_run_id",
            "airflow_state",
            "airflow_tasks",
            "outcome",
        ]

    @extend_schema_field(RunOutcomeOutput)
    def get_outcome(self, run: JobRun) -> dict:
        from .outcome import job_runs_outcomes

        known = self.context.get("outcomes") or {}
        outcome = known[run.pk] if run.pk in known else job_runs_outcomes([run])[run.pk]
        return {"key": outcome.key, "label": outcome.label, "live": outcome.live}


class JobRunInput(serializers.Serializer):
    job = serializers.CharField()
    params = serializers.DictField(
        required=False, default=dict, help_text="the job's parameters, checked by its declared schema (issue 11)"
    )
    dry_run = serializers.BooleanField(required=False, default=False)
    plan_sha256 = serializers.CharField(
        required=False, default="", help_text="for jobs that confirm a plan (a real cleanup): the plan you read"
    )


class PlanConfirmation(serializers.Serializer):
    """409 on a real cleanup: the plan to read, and the hash to send back to run exactly that plan."""

    detail = serializers.CharField()
    plan = serializers.CharField()
    planned = serializers.IntegerField()
    owners = serializers.IntegerField(required=False, help_text="distinct owners the run would mail")
    plan_sha256 = serializers.CharField()
    needs_approval = serializers.ListField(
        child=serializers.CharField(), help_text="why a second Content Admin must approve the run first ([] if not)"
    )


@extend_schema_view(
    post=extend_schema(
        request=JobRunInput,
        responses={
            202: OpenApiResponse(JobRunOutput, description="queued: the run, to follow at its detail URL"),
            409: OpenApiResponse(PlanConfirmation, description="a real cleanup: confirm the plan (send plan_sha256)"),
        },
    )
)
class JobRunListCreate(generics.ListCreateAPIView):
    """List job runs (filter by job, status, trigger) or trigger a job (POST, 202)."""

    queryset = JobRun.objects.select_related("actor").all()
    serializer_class = JobRunOutput
    permission_classes = [permissions.IsAuthenticated, DjangoViewPermission]
    filterset_fields = ["job", "status", "trigger", "dry_run"]
    search_fields = ["summary", "error"]
    ordering_fields = ["created_at", "id"]

    def get_serializer_class(self):
        return JobRunInput if self.request.method == "POST" else JobRunOutput

    def list(self, request, *args, **kwargs):
        """The page's outcomes in a bounded number of queries (orchestration.outcome), not one per run."""
        from .outcome import job_runs_outcomes

        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        outcomes = job_runs_outcomes(page)
        data = JobRunOutput(page, many=True, context={**self.get_serializer_context(), "outcomes": outcomes}).data
        return self.get_paginated_response(data)

    def create(self, request, *args, **kwargs):
        data = JobRunInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            spec = job_get(data.validated_data["job"])
        except JobError as exc:
            raise ValidationError({"job": str(exc)}) from exc
        if not (request.user.has_perm("orchestration.trigger_jobrun") and request.user.has_perm(spec.permission)):
            raise PermissionDenied(f"you may not run {spec.name}")
        # The job's declared parameters, through the serializer generated from the same schema as the admin form
        # and the DAG's params, with the job's checks against the data: bad input is refused before a run exists.
        _, problems = api_params_validate(spec, data.validated_data["params"])
        if problems:
            text = "; ".join(
                f"{k}: {' '.join(v)}" if k != "non_field_errors" else " ".join(v) for k, v in problems.items()
            )
            raise ValidationError({"params": f"{spec.name}: {text}", "params_errors": problems})
        confirm = job_confirmation(spec.name) if not data.validated_data["dry_run"] else None
        if confirm is not None:
            # A real cleanup runs only the plan its caller read: answer 409 with the plan until its hash comes back.
            try:
                preview = confirm(params=spec.params_parse(data.validated_data["params"]))
            except (JobError, JobFailed) as exc:
                raise ValidationError({"params": str(exc)}) from exc
            if data.validated_data["plan_sha256"] != preview.plan_sha256:
                return Response(
                    {"detail": "confirm the plan: send it again with this plan_sha256", "plan": preview.text,
                     "planned": preview.planned, "owners": getattr(preview, "owners", 0),
                     "plan_sha256": preview.plan_sha256, "needs_approval": preview.needs_approval},
                    status=status.HTTP_409_CONFLICT,
                )  # fmt: skip
        try:
            run = job_run_request(
                job=spec.name,
                params=data.validated_data["params"],
                dry_run=data.validated_data["dry_run"],
                trigger=JobRun.Trigger.API,
                actor=request.user,
            )
        except JobError as exc:
            raise ValidationError({"params": str(exc)}) from exc
        run.refresh_from_db()
        return Response(JobRunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class JobRunDetail(generics.RetrieveAPIView):
    queryset = JobRun.objects.select_related("actor").all()
    serializer_class = JobRunOutput
    permission_classes = [permissions.IsAuthenticated, DjangoViewPermission]


urlpatterns = [
    path("job-runs/", JobRunListCreate.as_view(), name="api-jobrun-list"),
    path("job-runs/<int:pk>/", JobRunDetail.as_view(), name="api-jobrun-detail"),
]

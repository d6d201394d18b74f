"""REST API for job runs: list, read, and trigger (POST); a job's cost estimate (the trigger form's live estimate);
Airflow's DAGs (the admin's Airflow page: their state and recent runs, pause and unpause, where a destructive DAG
asks a second Platform Admin through an approval request). A deployment without Airflow (jobs through Celery)
answers 409, Airflow unreachable 503, an error Airflow answered 502 (or 404 for a DAG it does not know), each with
``{"detail": ...}``: never a 500."""

from __future__ import annotations

import re

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from api.common import conflict
from api.schema import ApiError
from api.throttles import CostlyReadThrottle

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


# --- a job's cost estimate (the admin trigger form's live estimate: orchestration.trigger.estimate_view) --------


def _estimating_jobs() -> list[str]:
    from .registry import jobs_all

    return sorted(s.name for s in jobs_all() if s.estimator)


def _estimate_parameters() -> list[OpenApiParameter]:
    """The query parameters: the estimating jobs' declared parameters (each job checks only its own)."""
    from .registry import jobs_all

    found: dict[str, OpenApiParameter] = {}
    for spec in jobs_all():
        if not spec.estimator:
            continue
        schema = spec.params_schema()
        for name, prop in schema["properties"].items():
            kind = OpenApiTypes.DATE if prop.get("format") == "date" else str
            found.setdefault(name, OpenApiParameter(
                name, kind, required=False, enum=prop.get("enum"),
                description=f"{spec.name}: {prop.get('description', '')}"
                + (" (required)" if name in schema.get("required", []) else ""),
            ))  # fmt: skip
    return list(found.values())


class JobEstimateOutput(serializers.Serializer):
    job = serializers.CharField()
    text = serializers.CharField(help_text="the estimate in words, as the admin's form shows it")
    estimate = serializers.DictField(help_text="the job's estimate in figures (sales_report: bytes_processed, "
                                     "bytes_billed, cost_usd, limit_bytes, over_limit, ...)")  # fmt: skip
    data = serializers.DictField(allow_null=True, help_text="the data available to the job, when it says (sales)")
    data_error = serializers.CharField(help_text="why the data available could not be read ('' if it was)")


class JobEstimate(APIView):
    """Dry-run cost estimate of a job for the given parameters (query parameters named as the job's), through the
    job's own estimator: nothing runs and nothing is recorded. Needs the right to run the job."""

    permission_classes = [permissions.IsAuthenticated]
    # A GET that may call BigQuery each time: its own per-user rate (as the sales query's estimate).
    throttle_classes = [*api_settings.DEFAULT_THROTTLE_CLASSES, CostlyReadThrottle]

    @extend_schema(
        parameters=[
            OpenApiParameter("job", str, OpenApiParameter.PATH, enum=_estimating_jobs(),
                             description="a job with a cost estimate"),
            *_estimate_parameters(),
        ],
        responses={
            200: JobEstimateOutput,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="invalid parameters: each one at fault, with why"),
            409: OpenApiResponse(ApiError, description="the estimate could not be made now (BigQuery unreachable"
                                 ", ...): why"),
        },
    )  # fmt: skip
    def get(self, request, job: str):
        from django.utils.module_loading import import_string

        from connectors.errors import ConnectorError

        from .admin import job_trigger_allowed
        from .params import params_form_class

        try:
            spec = job_get(job)
        except JobError as exc:
            raise NotFound(str(exc)) from exc
        if not job_trigger_allowed(request.user, spec):
            raise PermissionDenied(f"you may not run {spec.name}")
        if not spec.estimator:
            raise NotFound(f"{spec.name} has no cost estimate")
        unknown = sorted(set(request.query_params) - set(spec.params) - {"format"})
        if unknown:
            raise ValidationError({name[:60]: "unknown query parameter" for name in unknown[:20]})
        # The admin form's own validation (the same form class, from the job's declared parameters).
        form = params_form_class(spec, dry_run_field=False)(request.query_params)
        if not form.is_valid():
            raise ValidationError({("non_field_errors" if k == "__all__" else k): [str(m) for m in v]
                                   for k, v in form.errors.items()})  # fmt: skip
        data, data_error = None, ""
        if spec.name == "sales_report":
            from sales.params import sales_data_availability

            try:
                data = sales_data_availability().as_dict()
            except ConnectorError as exc:
                data_error = str(exc)
        try:
            estimate = import_string(spec.estimator)(params=spec.params_parse(form.params()))
        except (JobError, JobFailed) as exc:
            raise ValidationError({"non_field_errors": [str(exc)]}) from exc
        except ConnectorError as exc:
            return conflict(str(exc))
        body = {"job": spec.name, "text": estimate.text(), "estimate": estimate.as_dict(), "data": data,
                "data_error": data_error}  # fmt: skip
        return Response(JobEstimateOutput(body).data)


# --- Airflow's DAGs (the admin's Airflow page: orchestration.admin.JobRunAdmin.airflow_view) -------------------


class ManageAirflow(permissions.BasePermission):
    """Platform Admins: orchestration.manage_airflow, to read and to change (as the admin's page)."""

    message = "only Platform Admins manage Airflow DAGs"

    def has_permission(self, request, view) -> bool:
        return request.user.has_perm("orchestration.manage_airflow")


AIRFLOW_ERRORS = {
    409: OpenApiResponse(ApiError, description="this deployment runs its jobs through Celery: no AIRFLOW_API_URL"),
    502: OpenApiResponse(ApiError, description="Airflow answered with an error: what it said"),
    503: OpenApiResponse(ApiError, description="Airflow is unreachable (down, or its address is wrong): why"),
}


def _airflow_error(exc: Exception, *, about_a_dag: bool = True) -> Response:
    """What an Airflow failure answers: 404 for a DAG it does not know, 503 unreachable, 502 any other error."""
    from connectors.errors import ConnectorNotFound, ConnectorTransientError

    if isinstance(exc, ConnectorNotFound) and about_a_dag:
        return Response({"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND)
    code = status.HTTP_503_SERVICE_UNAVAILABLE if isinstance(exc, ConnectorTransientError) else 502
    return Response({"detail": str(exc)}, status=code)


def _airflow_client():
    """The Airflow client, or None when Airflow is not configured (jobs then run through Celery)."""
    from connectors.airflow import AirflowClient, airflow_configured

    return AirflowClient() if airflow_configured() else None


NOT_CONFIGURED = "Airflow is not configured (AIRFLOW_API_URL): jobs run through Celery."


class DagRunOutput(serializers.Serializer):
    run_id = serializers.CharField()
    state = serializers.CharField()
    start_date = serializers.DateTimeField(allow_null=True)
    end_date = serializers.DateTimeField(allow_null=True)


class DagOutput(serializers.Serializer):
    dag_id = serializers.CharField()
    is_paused = serializers.BooleanField()
    schedule = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    owners = serializers.ListField(child=serializers.CharField())
    has_import_errors = serializers.BooleanField()
    destructive = serializers.BooleanField(help_text="its runs delete things: pausing or unpausing needs an approval")
    recent_runs = DagRunOutput(many=True, help_text="its last 10 runs")


class DagListOutput(serializers.Serializer):
    dags = DagOutput(many=True, help_text="the project's DAGs (tag dataops), by dag_id")
    airflow_url = serializers.CharField(help_text="Airflow's UI")


class AirflowDagList(APIView):
    """The project's DAGs in Airflow (tag ``dataops``, at most 100, by dag_id): paused or not, schedule, parse
    state, whether pausing needs an approval, and each one's last 10 runs."""

    permission_classes = [permissions.IsAuthenticated, ManageAirflow]

    @extend_schema(responses={200: DagListOutput, **AIRFLOW_ERRORS})
    def get(self, request):
        from django.conf import settings

        from connectors.errors import ConnectorError

        from .approvals import destructive_dags

        client = _airflow_client()
        if client is None:
            return conflict(NOT_CONFIGURED)
        destructive = destructive_dags()
        try:
            dags = [
                {**vars(dag), "destructive": dag.dag_id in destructive,
                 "recent_runs": [vars(r) for r in client.dag_runs_recent(dag_id=dag.dag_id, limit=10)]}
                for dag in sorted(client.dags_list(tags=["dataops"]), key=lambda d: d.dag_id)
            ]  # fmt: skip
        except ConnectorError as exc:
            return _airflow_error(exc, about_a_dag=False)  # a listing Airflow cannot find is its error: 502
        body = {"dags": dags, "airflow_url": settings.AIRFLOW_UI_URL or settings.AIRFLOW_API_URL}
        return Response(DagListOutput(body).data)


class DagChangeInput(serializers.Serializer):
    reason = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=2000,
        help_text="needed for a destructive DAG: the second Platform Admin reads it",
    )


class DagChangeOutput(serializers.Serializer):
    dag_id = serializers.CharField()
    operation = serializers.ChoiceField(choices=["pause", "unpause"])
    done = serializers.BooleanField(help_text="true: Airflow did it; false: it waits for the approval")
    approval = serializers.IntegerField(allow_null=True, help_text="the approval request of a destructive DAG")


class AirflowDagChange(APIView):
    """Pause or unpause a DAG (``operation``). A destructive DAG (its runs delete things) is not changed here: an
    approval request asks a second Platform Admin (202, a reason needed); any other changes at once (200, audited:
    ``airflow.dag_pause_requested`` then ``airflow.dag_paused``/``airflow.dag_unpaused``)."""

    permission_classes = [permissions.IsAuthenticated, ManageAirflow]
    operation = ""

    @extend_schema(
        request=DagChangeInput,
        responses={
            200: OpenApiResponse(DagChangeOutput, description="done in Airflow"),
            202: OpenApiResponse(DagChangeOutput, description="a destructive DAG: the approval request is open"),
            **AIRFLOW_ERRORS,
        },
    )
    def post(self, request, dag_id: str):
        from approvals.services import ApprovalError
        from connectors.errors import ConnectorError

        from .approvals import dag_change_request, destructive_dags
        from .services import airflow_dag_pause_set

        if not DAG_ID.fullmatch(dag_id):
            raise NotFound("no such DAG: a DAG id is letters, digits, '_', '.' and '-' (at most 250)")
        data = DagChangeInput(data=request.data)
        data.is_valid(raise_exception=True)
        if _airflow_client() is None:
            return conflict(NOT_CONFIGURED)
        body = {"dag_id": dag_id, "operation": self.operation}
        if dag_id in destructive_dags():
            # Pausing stops a cleanup people rely on; unpausing lets deletions run: four eyes, as in the admin.
            try:
                approval = dag_change_request(dag_id=dag_id, operation=self.operation, actor=request.user,
                                              reason=data.validated_data["reason"])  # fmt: skip
            except ApprovalError as exc:
                raise ValidationError({"reason": str(exc)}) from exc
            return Response(DagChangeOutput({**body, "done": False, "approval": approval.pk}).data,
                            status=status.HTTP_202_ACCEPTED)  # fmt: skip
        try:
            airflow_dag_pause_set(dag_id=dag_id, paused=self.operation == "pause", actor=request.user)
        except ConnectorError as exc:
            return _airflow_error(exc)
        return Response(DagChangeOutput({**body, "done": True, "approval": None}).data)


DAG_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}")


# The first API's endpoints (also at their unversioned paths, api.urls.legacy_patterns); the rest are /api/v1/ only.
legacy_urlpatterns = [
    path("job-runs/", JobRunListCreate.as_view(), name="api-jobrun-list"),
    path("job-runs/<int:pk>/", JobRunDetail.as_view(), name="api-jobrun-detail"),
]
urlpatterns = [
    *legacy_urlpatterns,
    path("jobs/<str:job>/estimate/", JobEstimate.as_view(), name="api-job-estimate"),
    path("airflow/dags/", AirflowDagList.as_view(), name="api-airflow-dag-list"),
    path("airflow/dags/<str:dag_id>/pause/", AirflowDagChange.as_view(operation="pause"), name="api-airflow-dag-pause"),
    path(
        "airflow/dags/<str:dag_id>/unpause/",
        AirflowDagChange.as_view(operation="unpause"),
        name="api-airflow-dag-unpause",
    ),
]

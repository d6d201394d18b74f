"""``/api/v1/`` for sales beyond the lists (``api.resources``): a query's dry-run cost estimate (the admin trigger
form's live estimate: ``sales.services.sales_cost_estimate``, stating BigQuery's 10 MiB minimum bill), a report's
charts' data (``sales.charts``, what the admin draws) and publish state, and asking to publish a report over its
failed quality gate (``sales.services.sales_report_override_request``: two Data Stewards approve); and a sales
query's create, edit and delete, through the admin's audited ``sales_query_save``/``sales_query_delete``."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings

from sales.models import SalesQuery, SalesReport

from .common import conflict, model_validate
from .resources import PERMS, ApprovalOutput, Conflict, SalesQueryOutput
from .throttles import CostlyReadThrottle

SALES_JOB = "sales_report"

# The estimate's query parameters: the sales job's own (its declared schema checks them; ``query`` is the path's).
ESTIMATE_PARAMS = ("start", "end", "regions", "grain")


class EstimateOutput(serializers.Serializer):
    text = serializers.CharField(help_text="the estimate in words, as the admin's form shows it")
    bytes_processed = serializers.IntegerField(help_text="what the validation and the report would read")
    bytes_billed = serializers.IntegerField(
        help_text="what they would bill: BigQuery bills every query at least 10 MiB (MiB-rounded)"
    )
    cost_usd = serializers.CharField(help_text="the cost of bytes_billed, in US dollars (a decimal string)")
    validation_bytes = serializers.IntegerField()
    report_bytes = serializers.IntegerField()
    limit_bytes = serializers.IntegerField(help_text="the cost guard's limit: above it, a run is refused")
    over_limit = serializers.BooleanField()
    min_bill_per_query_bytes = serializers.IntegerField(help_text="BigQuery's minimum bill per query (10 MiB)")


class SalesQueryEstimate(generics.GenericAPIView):
    """Dry-run the report of this query for the given period: bytes, billed bytes (10 MiB minimum per query) and
    cost, and whether the cost guard would refuse it. Nothing runs and nothing is recorded."""

    queryset = SalesQuery.objects.all()
    permission_classes = PERMS
    extra_query_params = ESTIMATE_PARAMS
    serializer_class = EstimateOutput
    # A GET that calls BigQuery each time: the write throttle (unsafe methods) does not see it, so its own rate.
    throttle_classes = [*api_settings.DEFAULT_THROTTLE_CLASSES, CostlyReadThrottle]

    @extend_schema(
        parameters=[
            OpenApiParameter("start", OpenApiTypes.DATE, required=True, description="first day (YYYY-MM-DD)"),
            OpenApiParameter("end", OpenApiTypes.DATE, required=True, description="last day, inclusive"),
            OpenApiParameter("regions", str, description="comma-separated regions (empty: all)"),
            OpenApiParameter("grain", str, enum=["day", "week", "month"], description="default day"),
        ],
        responses={
            200: EstimateOutput,
            409: OpenApiResponse(Conflict, description="BigQuery could not estimate it now (unreachable, ...): why"),
        },
    )
    def get(self, request, pk: int):
        from django.utils.module_loading import import_string

        from connectors.errors import ConnectorError
        from orchestration.admin import job_trigger_allowed
        from orchestration.params import api_params_validate
        from orchestration.registry import JobError, JobFailed, job_get

        query = self.get_object()
        spec = job_get(SALES_JOB)
        if not job_trigger_allowed(request.user, spec):
            raise PermissionDenied(f"estimating needs the right to run {spec.name}")
        raw = {k: request.query_params[k] for k in ESTIMATE_PARAMS if k in request.query_params}
        if "regions" in raw:
            raw["regions"] = [r.strip() for r in raw["regions"].split(",") if r.strip()]
        raw["query"] = query.name
        try:
            params, problems = api_params_validate(spec, raw)
        except ConnectorError as exc:
            return conflict(f"could not check the parameters against BigQuery: {exc}")
        if problems:
            raise ValidationError(problems)
        try:
            estimate = import_string(spec.estimator)(params=spec.params_parse(params))
        except (JobError, JobFailed, ConnectorError) as exc:
            return conflict(str(exc))
        return Response(EstimateOutput({"text": estimate.text(), **estimate.as_dict()}).data)


# --- reports: charts' data, publish state, override -------------------------------------------------------------


class DayPoint(serializers.Serializer):
    day = serializers.CharField()
    revenue = serializers.FloatField()


class DaySeries(serializers.Serializer):
    region = serializers.CharField()
    colour = serializers.CharField(help_text="the region's colour on every chart")
    points = DayPoint(many=True)


class RegionTotal(serializers.Serializer):
    region = serializers.CharField()
    colour = serializers.CharField()
    revenue = serializers.FloatField()


class ChartsOutput(serializers.Serializer):
    revenue_by_day = DaySeries(many=True, help_text="one line per region over the report's days")
    revenue_by_region = RegionTotal(many=True, help_text="total revenue per region, largest first")
    suppressed_rows = serializers.IntegerField(help_text="groups left out (suppressed: too few customers)")


class SalesReportCharts(generics.RetrieveAPIView):
    """The data behind the report's two charts in the admin (revenue by day and region, revenue by region)."""

    queryset = SalesReport.objects.only("pk", "rows")
    permission_classes = PERMS
    serializer_class = ChartsOutput

    def retrieve(self, request, *args, **kwargs):
        from sales.charts import region_colour, revenue_by_day_series, revenue_by_region_totals

        rows = self.get_object().rows or []
        series = revenue_by_day_series(rows)
        totals = revenue_by_region_totals(rows)
        body = {
            "revenue_by_day": [
                {"region": region, "colour": region_colour(region),
                 "points": [{"day": d, "revenue": v} for d, v in sorted(points.items())]}
                for region, points in sorted(series.items())
            ],
            "revenue_by_region": [
                {"region": region, "colour": region_colour(region), "revenue": total}
                for region, total in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "suppressed_rows": sum(1 for r in rows if not isinstance(r.get("revenue"), int | float)),
        }  # fmt: skip
        return Response(ChartsOutput(body).data)


class PublishStateOutput(serializers.Serializer):
    status = serializers.ChoiceField(choices=SalesReport.Status.choices)
    label = serializers.CharField(help_text="the status in words")
    sheet_id = serializers.CharField(allow_blank=True)
    published_at = serializers.DateTimeField(allow_null=True)
    publish_started_at = serializers.DateTimeField(allow_null=True)
    publish_requests = serializers.IntegerField(help_text="Sheets requests the publish made")
    error = serializers.CharField(allow_blank=True)
    quality_gate = serializers.CharField(allow_null=True, help_text="pass, warn or fail; null without a quality run")
    quality_score = serializers.FloatField(allow_null=True)
    job_run = serializers.IntegerField(allow_null=True)
    outcome = serializers.CharField(allow_null=True, help_text="the job run's outcome (orchestration.outcome)")
    can_request_override = serializers.BooleanField(
        help_text="blocked by a failed gate and you may ask to publish it anyway (two Data Stewards approve)"
    )


class SalesReportPublishState(generics.RetrieveAPIView):
    """Where the report's publish stands: status, sheet, when, errors, the quality gate and the run's outcome."""

    queryset = SalesReport.objects.select_related("quality_run", "query_run__job_run").defer("rows")
    permission_classes = PERMS
    serializer_class = PublishStateOutput

    def retrieve(self, request, *args, **kwargs):
        from orchestration.outcome import job_runs_outcomes

        report = self.get_object()
        job_run = report.query_run.job_run
        outcome = job_runs_outcomes([job_run])[job_run.pk].key if job_run else None
        gate = report.quality_run.gate if report.quality_run else None
        body = {
            "status": report.status,
            "label": report.get_status_display(),
            "sheet_id": report.sheet_id,
            "published_at": report.published_at,
            "publish_started_at": report.publish_started_at,
            "publish_requests": report.publish_requests,
            "error": report.error,
            "quality_gate": gate,
            "quality_score": report.quality_run.score if report.quality_run else None,
            "job_run": job_run.pk if job_run else None,
            "outcome": outcome,
            # The admin's "ask to publish over the gate" button shows on exactly these terms.
            "can_request_override": report.status == SalesReport.Status.BLOCKED
            and gate == "fail"
            and request.user.has_perm("sales.run_salesquery"),
        }
        return Response(PublishStateOutput(body).data)


class OverrideInput(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, help_text="why publish over the failed gate (Stewards read it)")


class SalesReportOverride(generics.GenericAPIView):
    """Ask to publish a report blocked by its failed quality gate: 202 with the approval request (two Data
    Stewards, neither you nor who shaped the run); 409 when the report is not blocked by a failed gate."""

    queryset = SalesReport.objects.all()
    permission_classes = PERMS
    required_perms = {"POST": ("sales.run_salesquery",)}
    serializer_class = OverrideInput

    @extend_schema(
        request=OverrideInput,
        responses={
            202: OpenApiResponse(ApprovalOutput, description="asked: the approval request"),
            409: OpenApiResponse(Conflict, description="refused: why"),
        },
    )
    def post(self, request, pk: int):
        from approvals.services import ApprovalError
        from sales.services import sales_report_override_request

        report = self.get_object()
        data = OverrideInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            approval = sales_report_override_request(
                report_id=report.pk, actor=request.user, reason=data.validated_data["reason"]
            )
        except ApprovalError as exc:
            return conflict(str(exc))
        return Response(ApprovalOutput(approval).data, status=status.HTTP_202_ACCEPTED)


# --- a sales query: create, detail, edit, delete (the admin's add/change/delete: its validation, then the audited
# save or delete; the admin asks no approval for them, so neither does the API) -----------------------------------


class SalesQueryEdit(serializers.ModelSerializer):
    """The fields the admin's form edits (``source_file``, ``updated_*`` are read-only there too)."""

    class Meta:
        model = SalesQuery
        fields = ["name", "title", "description", "sql", "active"]


def _query_validated(query: SalesQuery, data: dict) -> list[str]:
    """Apply ``data`` to ``query`` and run the model's own validation (the admin form's: a slug name, unique; SQL
    that sends no classified column unmasked to the sheet): 400 naming the field. Returns the fields changed."""
    changed = sorted(k for k, v in data.items() if getattr(query, k) != v)  # a new query: against its defaults
    for name, value in data.items():
        setattr(query, name, value)
    model_validate(query, exclude=["updated_by"])
    return changed


def _query_output(pk: int) -> dict:
    return SalesQueryOutput(SalesQuery.objects.select_related("updated_by").get(pk=pk)).data


class SalesQueryListCreate(generics.ListCreateAPIView):
    """The sales queries a report runs. POST defines one (Platform Admins, ``sales.add_salesquery``), as the
    admin's add form: 400 naming the field for a bad or taken name, a missing title or SQL, or SQL that would send
    a classified column unmasked to the sheet; then ``sales_query_save`` records ``sales.query_created`` with the
    SQL's hash. 201 with the query."""

    queryset = SalesQuery.objects.select_related("updated_by").order_by("name")
    permission_classes = PERMS
    required_perms = {"POST": ("sales.add_salesquery",)}
    filterset_fields = ["active", "name"]
    search_fields = ["name", "title"]

    def get_serializer_class(self):
        return SalesQueryEdit if self.request and self.request.method == "POST" else SalesQueryOutput

    @extend_schema(request=SalesQueryEdit, responses={201: SalesQueryOutput})
    def post(self, request):
        from sales.services import sales_query_save

        data = SalesQueryEdit(data=request.data)
        data.is_valid(raise_exception=True)
        query = SalesQuery()
        changed = _query_validated(query, dict(data.validated_data))
        sales_query_save(query=query, actor=request.user, created=True, changed_fields=changed)
        return Response(_query_output(query.pk), status=status.HTTP_201_CREATED)


class SalesQueryDetail(generics.RetrieveUpdateDestroyAPIView):
    """One sales query. PATCH edits it (Platform Admins, ``sales.change_salesquery``): the model's own validation
    (a slug name, unique; SQL that sends no classified column unmasked to the sheet) answers 400 naming the field,
    then ``sales_query_save`` records ``sales.query_changed`` with the SQL's hash before and after and who shaped it
    (an approval of a costly run of it then refuses that person). DELETE (``sales.delete_salesquery``) deletes a
    query that never ran through ``sales_query_delete`` (``sales.query_deleted``); one with runs answers 409 (its
    runs keep it, as in the admin)."""

    queryset = SalesQuery.objects.select_related("updated_by")
    permission_classes = PERMS
    required_perms = {"PATCH": ("sales.change_salesquery",), "DELETE": ("sales.delete_salesquery",)}
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_serializer_class(self):
        return SalesQueryEdit if self.request and self.request.method == "PATCH" else SalesQueryOutput

    @extend_schema(request=SalesQueryEdit, responses={200: SalesQueryOutput})
    def patch(self, request, pk: int):
        from sales.services import sales_query_save

        query = self.get_object()
        data = SalesQueryEdit(query, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changed = _query_validated(query, dict(data.validated_data))
        sales_query_save(query=query, actor=request.user, created=False, changed_fields=changed)
        return Response(_query_output(query.pk))

    @extend_schema(
        request=None,
        responses={
            204: OpenApiResponse(description="deleted (audited as sales.query_deleted)"),
            409: OpenApiResponse(Conflict, description="the query has runs, which keep it: why"),
        },
    )
    def delete(self, request, pk: int):
        from django.db.models import ProtectedError

        from sales.services import sales_query_delete

        query = self.get_object()
        try:
            sales_query_delete(query=query, actor=request.user)
        except ProtectedError:
            runs = query.runs.count()
            return conflict(f"sales query {query.name!r} has {runs} run(s), which keep it: deactivate it instead")
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("sales-queries/", SalesQueryListCreate.as_view(), name="api-salesquery-list"),
    path("sales-queries/<int:pk>/", SalesQueryDetail.as_view(), name="api-salesquery-detail"),
    path("sales-queries/<int:pk>/estimate/", SalesQueryEstimate.as_view(), name="api-salesquery-estimate"),
    path("reports/<int:pk>/charts/", SalesReportCharts.as_view(), name="api-salesreport-charts"),
    path("reports/<int:pk>/publish-state/", SalesReportPublishState.as_view(), name="api-salesreport-publish-state"),
    path("reports/<int:pk>/override/", SalesReportOverride.as_view(), name="api-salesreport-override"),
]

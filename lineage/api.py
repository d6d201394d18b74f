"""REST API: a dataset's lineage graph, the same data the admin draws; the datasets and the events as received (read-
only, as the admin shows them); the delivery outbox and its retry."""

from __future__ import annotations

from datetime import date

from django.db.models import Prefetch
from django.urls import path
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, permissions, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from api.common import DjangoModelPermission, NewestFirstCursor, StrictFilterSet
from api.schema import ApiError
from dataops_site.lazy import lazy_function

from .models import LineageDataset, LineageEvent, LineageIO, LineageOutbox
from .selectors import MAX_DEPTH, lineage_dataset_find, lineage_graph

# openlineage's client loads on the first retry, not at start-up (issue 15), as in the admin.
lineage_outbox_retry = lazy_function("lineage.services.lineage_outbox_retry")


class CanViewLineage(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.user.has_perm("lineage.view_lineagedataset")


class GraphQuery(serializers.Serializer):
    namespace = serializers.CharField(max_length=300)
    name = serializers.CharField(max_length=500)
    date = serializers.DateField(required=False)
    depth = serializers.IntegerField(required=False, min_value=1, max_value=MAX_DEPTH, default=2)


class NodeOutput(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.ChoiceField(choices=["dataset", "run", "person"])
    label = serializers.CharField()
    detail = serializers.CharField()
    url = serializers.CharField()
    level = serializers.IntegerField()


class EdgeOutput(serializers.Serializer):
    source = serializers.CharField()
    target = serializers.CharField()
    kind = serializers.ChoiceField(choices=["input", "output", "actor"])


class GraphOutput(serializers.Serializer):
    dataset = serializers.DictField()
    date = serializers.DateField(allow_null=True)
    truncated = serializers.BooleanField()
    nodes = NodeOutput(many=True)
    edges = EdgeOutput(many=True)


class LineageGraphView(APIView):
    """A dataset's upstream and downstream datasets, runs and people (``?namespace=&name=&date=&depth=``)."""

    permission_classes = [permissions.IsAuthenticated, CanViewLineage]

    @extend_schema(
        parameters=[
            OpenApiParameter("namespace", str, required=True),
            OpenApiParameter("name", str, required=True),
            OpenApiParameter("date", date, required=False, description="only runs with an event on this day"),
            OpenApiParameter("depth", int, required=False),
        ],
        responses={
            200: GraphOutput,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="a parameter missing or invalid: each named"),
            404: OpenApiResponse(ApiError, description="no lineage recorded for that dataset"),
        },
    )
    def get(self, request):
        query = GraphQuery(data=request.query_params)
        if not query.is_valid():
            raise ValidationError(query.errors)
        dataset = lineage_dataset_find(namespace=query.validated_data["namespace"], name=query.validated_data["name"])
        if dataset is None:
            raise NotFound("no lineage recorded for that dataset")
        graph = lineage_graph(
            dataset=dataset, day=query.validated_data.get("date"), depth=query.validated_data["depth"]
        )
        return Response(GraphOutput(graph.as_dict()).data)


# --- the delivery outbox (issue 10): the admin's list and its "retry delivery now" action -------------------------


class LineageOutboxOutput(serializers.ModelSerializer):
    event_type = serializers.CharField(source="event.event_type")
    job_name = serializers.CharField(source="event.job_name")
    run_id = serializers.CharField(source="event.run_id")

    class Meta:
        model = LineageOutbox
        fields = ["id", "event", "event_type", "job_name", "run_id", "status", "attempts", "next_attempt_at",
                  "delivered_at", "last_error", "created_at"]  # fmt: skip


class OutboxRetryInput(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        min_length=1,
        max_length=500,
        help_text="the outbox rows to make due now (delivered ones are left alone)",
    )


class LineageOutboxList(generics.ListAPIView):
    """Events waiting for (or having failed) delivery to the OpenLineage transport; filter by status."""

    queryset = LineageOutbox.objects.select_related("event").order_by("-created_at", "-pk")
    serializer_class = LineageOutboxOutput
    permission_classes = [permissions.IsAuthenticated, DjangoModelPermission]
    filterset_fields = ["status"]


class LineageOutboxRetry(generics.GenericAPIView):
    """Retry delivery now (the admin's action): the rows become due and the next delivery tick sends them; audited
    as ``lineage.delivery_retried``. 400 naming ``ids`` when one of them is not in the outbox."""

    queryset = LineageOutbox.objects.all()
    serializer_class = OutboxRetryInput
    permission_classes = [permissions.IsAuthenticated, DjangoModelPermission]
    required_perms = {"POST": ("lineage.deliver_lineageoutbox",)}

    @extend_schema(
        request=OutboxRetryInput,
        responses={200: inline_serializer("OutboxRetryOutput", {"due": serializers.IntegerField(
            help_text="deliveries due now")})},
    )  # fmt: skip
    def post(self, request):
        data = OutboxRetryInput(data=request.data)
        data.is_valid(raise_exception=True)
        ids = sorted(set(data.validated_data["ids"]))
        rows = list(LineageOutbox.objects.filter(pk__in=ids).order_by("pk"))
        missing = sorted(set(ids) - {r.pk for r in rows})
        if missing:
            raise ValidationError({"ids": [f"not in the outbox: {', '.join(map(str, missing[:20]))}"]})
        return Response({"due": lineage_outbox_retry(rows=rows, actor=request.user)})


# --- datasets and events as received (issue 10): the admin's read-only lists ------------------------------------


class LineageDatasetOutput(serializers.ModelSerializer):
    class Meta:
        model = LineageDataset
        fields = ["id", "namespace", "name", "first_seen_at"]


class LineageDatasetList(generics.ListAPIView):
    """The datasets lineage has seen, by namespace then name; ``?search=`` looks in both (the admin's list). The
    graph of one is ``lineage/graph/?namespace=&name=``."""

    queryset = LineageDataset.objects.order_by("namespace", "name", "pk")
    serializer_class = LineageDatasetOutput
    permission_classes = [permissions.IsAuthenticated, DjangoModelPermission]
    filterset_fields = ["namespace", "name"]
    search_fields = ["name", "namespace"]


class LineageDatasetDetail(generics.RetrieveAPIView):
    queryset = LineageDataset.objects.all()
    serializer_class = LineageDatasetOutput
    permission_classes = [permissions.IsAuthenticated, DjangoModelPermission]


class LineageEventOutput(serializers.ModelSerializer):
    class Meta:
        model = LineageEvent
        fields = ["id", "event_type", "event_time", "run_id", "job_namespace", "job_name", "parent_run_id",
                  "parent_job_name", "job_run", "actor", "received_at"]  # fmt: skip


class LineageIOOutput(serializers.ModelSerializer):
    namespace = serializers.CharField(source="dataset.namespace")
    name = serializers.CharField(source="dataset.name")

    class Meta:
        model = LineageIO
        fields = ["dataset", "namespace", "name", "direction"]


class LineageEventDetailOutput(LineageEventOutput):
    payload = serializers.JSONField(help_text="the OpenLineage run event as emitted")
    datasets = LineageIOOutput(source="io", many=True, read_only=True, help_text="what it read (input) and wrote")

    class Meta(LineageEventOutput.Meta):
        fields = [*LineageEventOutput.Meta.fields, "payload", "datasets"]


class LineageEventFilter(StrictFilterSet):
    job = filters.CharFilter(field_name="job_name", help_text="the job's name")
    run = filters.CharFilter(field_name="run_id", help_text="the OpenLineage run id")
    event_time_after = filters.IsoDateTimeFilter(field_name="event_time", lookup_expr="gte")
    event_time_before = filters.IsoDateTimeFilter(field_name="event_time", lookup_expr="lt")

    class Meta:
        model = LineageEvent
        fields = ["event_type", "job_namespace", "job_run", "actor"]


class EventTimeCursor(NewestFirstCursor):
    ordering = ("-event_time", "-pk")


class LineageEventList(generics.ListAPIView):
    """OpenLineage events as received, newest first in cursor pages; filter by job, run, event type, job run, actor
    or time (``event_time_after`` inclusive, ``event_time_before`` exclusive). The detail has the raw event."""

    queryset = LineageEvent.objects.defer("payload")
    serializer_class = LineageEventOutput
    permission_classes = [permissions.IsAuthenticated, DjangoModelPermission]
    filterset_class = LineageEventFilter
    pagination_class = EventTimeCursor


class LineageEventDetail(generics.RetrieveAPIView):
    queryset = LineageEvent.objects.prefetch_related(
        Prefetch("io", queryset=LineageIO.objects.select_related("dataset").order_by("direction", "pk"))
    )
    serializer_class = LineageEventDetailOutput
    permission_classes = [permissions.IsAuthenticated, DjangoModelPermission]


urlpatterns = [
    path("lineage/graph/", LineageGraphView.as_view(), name="api-lineage-graph"),
    path("lineage-datasets/", LineageDatasetList.as_view(), name="api-lineagedataset-list"),
    path("lineage-datasets/<int:pk>/", LineageDatasetDetail.as_view(), name="api-lineagedataset-detail"),
    path("lineage-events/", LineageEventList.as_view(), name="api-lineageevent-list"),
    path("lineage-events/<int:pk>/", LineageEventDetail.as_view(), name="api-lineageevent-detail"),
    path("lineage-outbox/", LineageOutboxList.as_view(), name="api-lineageoutbox-list"),
    path("lineage-outbox/retry/", LineageOutboxRetry.as_view(), name="api-lineageoutbox-retry"),
]

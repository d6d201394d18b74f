"""REST API: a dataset's lineage graph, the same data the admin draws."""

from __future__ import annotations

from datetime import date

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from api.schema import ApiError

from .selectors import MAX_DEPTH, lineage_dataset_find, lineage_graph


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


urlpatterns = [path("lineage/graph/", LineageGraphView.as_view(), name="api-lineage-graph")]

"""REST API for data-subject requests (issue 10): the requests' records (read-only, as the admin shows them), finding
what is stored about a person, and erasing or pseudonymising it: the admin search page's permissions
(``search_subject``, then ``erase_subject``) and services (``subject_search``, audited as
``privacy.subject_searched``; ``subject_erase``, audited as ``privacy.subject_erased``); and the compliance evidence
(the admin's evidence page: ``privacy.evidence.evidence_export``, audited as ``privacy.evidence_exported``)."""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from api.common import DjangoModelPermission
from api.schema import ApiError

from .evidence import REPORTS, evidence_csv, evidence_export
from .models import SubjectRequest
from .subjects import SubjectRequestError, identifier_parse, subject_erase, subject_search

PERMS = [permissions.IsAuthenticated, DjangoModelPermission]


class SubjectRequestOutput(serializers.ModelSerializer):
    requested_by = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = SubjectRequest
        fields = ["id", "kind", "subject", "identifier_kind", "reason", "requested_by", "found", "changed",
                  "created_at"]  # fmt: skip


class SubjectSearchInput(serializers.Serializer):
    identifier = serializers.CharField(max_length=320, help_text="the person's e-mail address or customer id")


class SubjectRequestInput(SubjectSearchInput):
    kind = serializers.ChoiceField(choices=SubjectRequest.Kind.choices)
    reason = serializers.CharField(
        max_length=2000,
        help_text="the request's reference or legal ground (never the identifier itself: it is recorded on the chain)",
    )


def _identifier(text: str):
    try:
        return identifier_parse(text)
    except SubjectRequestError as exc:
        raise ValidationError({"identifier": [str(exc)]}) from exc


def _may_search(request) -> None:
    if not request.user.has_perm("privacy.search_subject"):
        raise PermissionDenied("finding a person's data needs the Data Protection role")


class SubjectRequestList(generics.ListCreateAPIView):
    """The erase / pseudonymise requests carried out (by pseudonym only). POST carries out one more (Data
    Protection): everything found about the person is erased or pseudonymised, as the admin's search page does."""

    queryset = SubjectRequest.objects.select_related("requested_by").order_by("-created_at", "-pk")
    serializer_class = SubjectRequestOutput
    permission_classes = PERMS
    filterset_fields = ["kind", "identifier_kind"]
    search_fields = ["subject", "reason"]

    @extend_schema(request=SubjectRequestInput, responses={201: SubjectRequestOutput})
    def post(self, request):
        _may_search(request)
        if not request.user.has_perm("privacy.erase_subject"):
            raise PermissionDenied("erasing a person's data needs the Data Protection role")
        data = SubjectRequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        ident = _identifier(data.validated_data["identifier"])
        try:
            done = subject_erase(identifier=ident, kind=data.validated_data["kind"],
                                 reason=data.validated_data["reason"], actor=request.user)  # fmt: skip
        except SubjectRequestError as exc:
            raise ValidationError({"reason": [str(exc)]}) from exc
        done = SubjectRequest.objects.select_related("requested_by").get(pk=done.pk)
        return Response(SubjectRequestOutput(done).data, status=status.HTTP_201_CREATED)


class SubjectRequestDetail(generics.RetrieveAPIView):
    queryset = SubjectRequest.objects.select_related("requested_by")
    serializer_class = SubjectRequestOutput
    permission_classes = PERMS


class SubjectSearch(generics.GenericAPIView):
    """Find everything stored about a person, per place (recorded on the audit chain by pseudonym)."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = SubjectSearchInput

    @extend_schema(
        request=SubjectSearchInput,
        responses={200: inline_serializer("SubjectSearchOutput", {
            "subject": serializers.CharField(help_text="the identifier's pseudonym"),
            "found": serializers.DictField(child=serializers.IntegerField(), help_text="records per place"),
            "total": serializers.IntegerField(),
        })},
    )  # fmt: skip
    def post(self, request):
        _may_search(request)
        data = SubjectSearchInput(data=request.data)
        data.is_valid(raise_exception=True)
        ident = _identifier(data.validated_data["identifier"])
        found = subject_search(identifier=ident, actor=request.user)
        return Response({"subject": ident.pseudonym, "found": found.counts(), "total": found.total})


# --- compliance evidence (the admin's evidence page): JSON, or CSV with ?format=csv; each export audited ----------


class ChainStateOutput(serializers.Serializer):
    ok = serializers.BooleanField(help_text="the chain verified intact when the report was built")
    text = serializers.CharField(help_text="the verification in one line, as the admin's page and the CSV head say")
    kind = serializers.CharField(allow_blank=True, help_text="the first problem's kind ('' when intact)")
    checked = serializers.IntegerField()
    head_seq = serializers.IntegerField()
    head_hash = serializers.CharField(allow_blank=True)
    broken_seq = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    anchors_checked = serializers.IntegerField()
    last_anchor_at = serializers.DateTimeField(allow_null=True)
    last_anchor_seq = serializers.IntegerField(allow_null=True)
    warnings = serializers.ListField(child=serializers.CharField())


class EvidenceOutput(serializers.Serializer):
    report = serializers.ChoiceField(choices=list(REPORTS))
    title = serializers.CharField()
    generated_at = serializers.DateTimeField()
    headers = serializers.ListField(child=serializers.CharField(), help_text="the columns of every row")
    rows = serializers.ListField(
        child=serializers.ListField(child=serializers.JSONField()), help_text="one list per row, in headers' order"
    )
    chain = ChainStateOutput(help_text="the audit chain's verification then: evidence from a broken chain says so")


def _evidence_body(evidence) -> dict:
    chain = evidence.chain
    return {
        "report": evidence.report,
        "title": evidence.title,
        "generated_at": evidence.generated_at,
        "headers": list(evidence.headers),
        "rows": [list(row) for row in evidence.rows],
        "chain": {
            "ok": chain.ok, "text": chain.text(), "kind": chain.kind, "checked": chain.checked,
            "head_seq": chain.head_seq, "head_hash": chain.head_hash, "broken_seq": chain.broken_seq,
            "reason": chain.reason, "anchors_checked": chain.anchors_checked, "last_anchor_at": chain.last_anchor_at,
            "last_anchor_seq": chain.last_anchor_seq, "warnings": list(chain.warnings),
        },
    }  # fmt: skip


class ComplianceEvidence(generics.GenericAPIView):
    """A compliance report as the admin's evidence page builds it: ``gdpr`` (the record of processing), ``sox``
    (change-management evidence) or ``access`` (who read restricted records), with the audit chain's verification
    state. JSON by default; ``?format=csv`` is the admin's CSV download. Auditors, Data Protection and Platform
    Admins (``privacy.view_evidence``); every export is recorded as ``privacy.evidence_exported``. An unknown
    report is 404 (no such resource); an unknown format 400 naming ``format``."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = EvidenceOutput
    extra_query_params = ("format",)

    @extend_schema(
        parameters=[
            OpenApiParameter("report", str, OpenApiParameter.PATH, enum=list(REPORTS)),
            OpenApiParameter("format", str, enum=["json", "csv"], description="json (default) or csv"),
        ],
        responses={
            (200, "application/json"): EvidenceOutput,
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="the admin's CSV: two comment lines (title, chain state), then rows"
            ),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="an unknown format: names format"),
            404: OpenApiResponse(ApiError, description="no such report (gdpr, sox or access)"),
        },
    )
    def get(self, request, report: str):
        if not request.user.has_perm("privacy.view_evidence"):
            raise PermissionDenied("the compliance evidence needs the Auditor or Data Protection role")
        if report not in REPORTS:
            raise NotFound(f"no evidence report {report[:40]!r}: choose {', '.join(REPORTS)}")
        fmt = request.query_params.get("format", "json")
        unknown = sorted(set(request.query_params) - {"format"})
        if unknown:
            raise ValidationError({name: "unknown query parameter" for name in unknown})
        if fmt not in ("json", "csv"):
            raise ValidationError({"format": "choose json or csv"})
        evidence = evidence_export(report=report, fmt=fmt, actor=request.user)
        if fmt == "csv":
            response = HttpResponse(evidence_csv(evidence), content_type="text/csv; charset=utf-8")
            stamp = evidence.generated_at.strftime("%Y%m%dT%H%M%S")
            response["Content-Disposition"] = f'attachment; filename="evidence-{report}-{stamp}.csv"'
            return response
        return Response(EvidenceOutput(_evidence_body(evidence)).data)

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, HttpResponse) and not isinstance(response, Response):
            return response  # the CSV is the body: no renderer
        return super().finalize_response(request, response, *args, **kwargs)

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)  # ?format= is ours, not DRF's renderers


urlpatterns = [
    path("subject-requests/", SubjectRequestList.as_view(), name="api-subjectrequest-list"),
    path("subject-requests/<int:pk>/", SubjectRequestDetail.as_view(), name="api-subjectrequest-detail"),
    path("subject-requests/search/", SubjectSearch.as_view(), name="api-subject-search"),
    path("compliance-evidence/<str:report>/", ComplianceEvidence.as_view(), name="api-compliance-evidence"),
]

"""REST API for data-subject requests (issue 10): the requests' records (read-only, as the admin shows them), finding
what is stored about a person, and erasing or pseudonymising it: the admin search page's permissions
(``search_subject``, then ``erase_subject``) and services (``subject_search``, audited as
``privacy.subject_searched``; ``subject_erase``, audited as ``privacy.subject_erased``)."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from api.common import DjangoModelPermission

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


urlpatterns = [
    path("subject-requests/", SubjectRequestList.as_view(), name="api-subjectrequest-list"),
    path("subject-requests/<int:pk>/", SubjectRequestDetail.as_view(), name="api-subjectrequest-detail"),
    path("subject-requests/search/", SubjectSearch.as_view(), name="api-subject-search"),
]

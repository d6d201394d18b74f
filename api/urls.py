"""``/api/v1/``: every resource of the REST API, and the browsable root listing them (``/api/`` and ``/api/v1/``).

Each app keeps its endpoints in its own ``api.py`` (``urlpatterns`` named ``api-...``); this module mounts them.
The unversioned paths of the first API (``/api/job-runs/``, ``/api/dashboards/``) stay as aliases of the same
views, named ``api-legacy-...`` and left out of the schema.
"""

from __future__ import annotations

from importlib import import_module

from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, inline_serializer
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework import permissions, serializers
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.response import Response
from rest_framework.reverse import reverse as api_reverse
from rest_framework.views import APIView

# The apps' API modules, in the order the root lists them.
API_MODULES = [
    "orchestration.api",
    "cleanup.api",
    "api.resources",
    "api.people",
    "quality.api",  # issue 12: a quarantined row (read recorded) and the masked CSV export
    "security.api",  # issue 12: the data classification
    "lineage.api",  # issue 13: the lineage graph
    "api.dashboards",  # a dashboard's detail, backups, pin/unpin; the cleanup plan's preview and run
    "api.sales",  # a sales query's cost estimate; a report's charts' data, publish state and override request
    "monitoring.api",  # incidents (acknowledge, fix, verify and resume) and SLAs
    "privacy.api",  # data-subject requests (find, erase or pseudonymise)
    "sheetsync.api",  # the sync's spreadsheets; a sync target's test (reads the source and sheet, writes nothing)
    "approvals.api",  # the destinations' writers (read-only, as in the admin)
]
# The first API's paths, kept as aliases.
LEGACY_MODULES = ["orchestration.api", "cleanup.api"]


def _patterns(module: str) -> list[URLPattern]:
    return list(import_module(module).urlpatterns)


def v1_patterns() -> list[URLPattern]:
    found: list[URLPattern] = []
    for module in API_MODULES:
        found.extend(_patterns(module))
    return found


def legacy_patterns() -> list[URLPattern]:
    """The first API's paths only: a module that grew since lists them as ``legacy_urlpatterns`` (its new
    endpoints are /api/v1/ only)."""
    return [
        path(str(p.pattern), p.callback, name="api-legacy-" + p.name.removeprefix("api-"))
        for module in LEGACY_MODULES
        for p in getattr(import_module(module), "legacy_urlpatterns", _patterns(module))
    ]


def resource_names() -> dict[str, str]:
    """The list endpoints (no path parameter) by resource name: what the root lists."""
    return {
        str(p.pattern).rstrip("/"): p.name
        for p in v1_patterns()
        if p.name and "<" not in str(p.pattern) and str(p.pattern).count("/") == 1
    }


class ApiRoot(APIView):
    """The REST API's root: every resource of ``/api/v1/``, the schema and its documentation."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses={
            200: inline_serializer(
                "ApiRootOutput",
                {"resources": serializers.DictField(child=serializers.URLField()),
                 "schema": serializers.URLField(), "docs": serializers.URLField(), "redoc": serializers.URLField()},
            )
        }
    )  # fmt: skip
    def get(self, request):
        return Response(
            {
                "resources": {
                    name: api_reverse(url_name, request=request) for name, url_name in resource_names().items()
                },
                "schema": api_reverse("api-schema", request=request),
                "docs": api_reverse("api-docs", request=request),
                "redoc": api_reverse("api-redoc", request=request),
            }
        )


class _LoginFirst:
    """The docs pages send a browser that is not logged in to the admin's login page (and back)."""

    permission_classes = [permissions.IsAuthenticated]

    def handle_exception(self, exc):
        if isinstance(exc, (NotAuthenticated, AuthenticationFailed)) and not self.request.auth:
            return redirect_to_login(self.request.get_full_path(), reverse("admin:login"))
        return super().handle_exception(exc)


class SwaggerDocs(_LoginFirst, SpectacularSwaggerSplitView):
    """Swagger UI, served from the project's static files (drf-spectacular-sidecar), never a CDN; its settings come
    as a script file (the split view), since the Content-Security-Policy forbids inline scripts."""


class RedocDocs(_LoginFirst, SpectacularRedocView):
    """Redoc, served from the project's static files (drf-spectacular-sidecar)."""


@csrf_exempt
def api_not_found(request, rest: str = ""):
    """Any other URL under /api/: a JSON 404 as every endpoint answers it (not the site's HTML page), whatever the
    method; API clients and the schema's documented 404 body expect JSON."""
    return JsonResponse({"detail": "Not found."}, status=404)


urlpatterns = [
    path("", ApiRoot.as_view(), name="api-root"),
    path("v1/", ApiRoot.as_view(), name="api-v1-root"),
    *[path("v1/" + str(p.pattern), p.callback, name=p.name) for p in v1_patterns()],
    path("schema/", SpectacularAPIView.as_view(permission_classes=[permissions.IsAuthenticated]), name="api-schema"),
    path("docs/", SwaggerDocs.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", RedocDocs.as_view(url_name="api-schema"), name="api-redoc"),
    *legacy_patterns(),
    # Last: only what nothing above matched; paths ending in "/" (without it, APPEND_SLASH redirects here first).
    path("<path:rest>/", api_not_found, name="api-not-found"),
]

"""The OpenAPI schema tells the truth about errors: every operation documents the error answers it can give
(400 with the fields at fault, 401, 403, 404, 429), on top of what each view declares with ``extend_schema``."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import serializers


class ApiError(serializers.Serializer):
    """Every refusal but a validation error: 401, 403, 404, 405, 409, 429."""

    detail = serializers.CharField()


FIELD_ERRORS = {
    "type": "object",
    "description": "the fields (or query parameters) at fault, each with its message(s)",
    "additionalProperties": {},
}
ERROR_DESCRIPTIONS = {
    "400": "invalid input: the body names each field or query parameter at fault",
    "401": "no credentials, or credentials that are not valid (unknown, expired or revoked token)",
    "403": "the role lacks the permission, or the token's scope is read-only",
    "404": "no such object (or an invalid page cursor)",
    "429": "throttled: retry after the number of seconds in Retry-After",
}


class AutoSchema(SpectacularAutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        codes = ["401", "403", "429"]
        has_params = "{" in self.path or self._is_list_view() or self.method != "GET"
        if has_params:
            codes.insert(0, "404")
        if self.method != "GET" or self._strict_params() or self.get_filter_backends() or self._is_list_view():
            codes.insert(0, "400")
        for code in codes:
            if code in responses:
                continue
            body = FIELD_ERRORS if code == "400" else ApiError
            response = self._get_response_for_code(body, code, direction=direction)
            response["description"] = ERROR_DESCRIPTIONS[code]
            responses[code] = response
        return dict(sorted(responses.items()))

    def _strict_params(self) -> bool:
        """A view that looks its object up through the strict filter backend (``get_object`` filters the queryset)
        answers 400 for a query parameter it does not have, detail views included (drf-spectacular lists filter
        backends for list views only)."""
        from .common import StrictFilterBackend

        return any(issubclass(b, StrictFilterBackend) for b in getattr(self.view, "filter_backends", None) or ())


def only_v1(endpoints):
    """Keep the schema to ``/api/v1/``: the unversioned aliases (``/api/job-runs/`` ...) are the same views."""
    return [e for e in endpoints if e[0].startswith("/api/v1/")]


class ScopedTokenScheme(OpenApiAuthenticationExtension):
    """``Authorization: Token <key>`` (django-rest-knox keys with a read or read-write scope)."""

    target_class = "accounts.authentication.ScopedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")  # noqa: S106 - a header scheme


def path_ids_not_negative(result, generator, request, public):
    """A path's ``<int:...>`` matches digits only: say so (a negative id is no URL of this API at all)."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("schema", {}).get("type") == "integer":
                    parameter["schema"]["minimum"] = 0
    return result


# --- OpenAPI links (what a response's ids lead to), so schemathesis' stateful tests chain calls ------------------

_SUCCESS = ("200", "201", "202")
# Links beyond "a collection leads to its members, a member to its actions": (source path, method, status) ->
# [(target path, its path parameter, the runtime expression giving it)].
EXTRA_LINKS: dict[tuple[str, str, str], list[tuple[str, str, str]]] = {
    ("/api/v1/job-runs/", "post", "202"): [("/api/v1/job-runs/{id}/", "id", "$response.body#/id")],
    ("/api/v1/cleanup/run/", "post", "202"): [("/api/v1/job-runs/{id}/", "id", "$response.body#/id")],
    ("/api/v1/sync-targets/{id}/sync-now/", "post", "202"): [("/api/v1/job-runs/{id}/", "id", "$response.body#/id")],
    ("/api/v1/job-runs/{id}/retry/", "post", "202"): [("/api/v1/job-runs/{id}/", "id", "$response.body#/id")],
    ("/api/v1/dashboards/{looker_id}/backups/", "get", "200"): [
        ("/api/v1/dashboard-backups/{id}/", "id", "$response.body#/results/0/id")
    ],
    ("/api/v1/dashboards/{looker_id}/restore/", "post", "202"): [
        ("/api/v1/dashboard-restores/{id}/", "id", "$response.body#/id")
    ],
    ("/api/v1/reports/{id}/override/", "post", "202"): [("/api/v1/approvals/{id}/", "id", "$response.body#/id")],
    ("/api/v1/users/{id}/roles/", "post", "202"): [("/api/v1/approvals/{id}/", "id", "$response.body#/approval")],
}


def _path_params(path: str) -> list[str]:
    import re

    return re.findall(r"{(\w+)}", path)


def _is_page(response: dict) -> bool:
    ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
    return ref.rsplit("/", 1)[-1].startswith("Paginated")


def openapi_links(result, generator, request, public):
    """Add OpenAPI ``links`` to every success response: a list's first row (or a created object) leads to the
    operations on that member (``/x/`` -> ``/x/{id}/...``), a member to its actions (``/x/{id}/`` ->
    ``/x/{id}/pause/``), plus ``EXTRA_LINKS`` (a queued run to its detail, a dashboard's backups to a backup, ...).
    drf-spectacular has no link declaration of its own, so they are derived here from the paths."""
    paths = result.get("paths", {})
    operation_ids = {
        (path, method): operation["operationId"] for path, ops in paths.items() for method, operation in ops.items()
    }
    for path, method in operation_ids:
        operation = paths[path][method]
        params = _path_params(path)
        for status in _SUCCESS:
            response = operation.get("responses", {}).get(status)
            if response is None or "content" not in response:
                continue
            targets: list[tuple[str, str, str]] = list(EXTRA_LINKS.get((path, method, status), []))
            if not params:
                row = "/results/0" if _is_page(response) else ""
                for other, _ in operation_ids:
                    other_params = _path_params(other)
                    member = other.startswith(path) and other[len(path) :].startswith("{")
                    if member and len(other_params) == 1:
                        name = other_params[0]
                        targets.append((other, name, f"$response.body#{row}/{'id' if name == 'id' else name}"))
            elif len(params) == 1:
                for other, _ in operation_ids:
                    if other != path and other.startswith(path) and _path_params(other) == params:
                        targets.append((other, params[0], f"$request.path.{params[0]}"))
            links = {}
            for target, name, expression in targets:
                for target_method in paths.get(target, {}):
                    if (target, target_method) == (path, method):
                        continue
                    target_id = operation_ids[(target, target_method)]
                    links[target_id] = {
                        "operationId": target_id,
                        "parameters": {name: expression},
                    }
            if links:
                response["links"] = links
    return result

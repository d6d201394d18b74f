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
        if self.method != "GET" or self.get_filter_backends() or self._is_list_view():
            codes.insert(0, "400")
        for code in codes:
            if code in responses:
                continue
            body = FIELD_ERRORS if code == "400" else ApiError
            response = self._get_response_for_code(body, code, direction=direction)
            response["description"] = ERROR_DESCRIPTIONS[code]
            responses[code] = response
        return dict(sorted(responses.items()))


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

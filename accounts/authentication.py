"""DRF token authentication with scopes: a read-scope token (or one issued outside ``api_token_create``) may only
read; writing needs a write-scope token, which a second Platform Admin approved."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import SAFE_METHODS

from .selectors import api_token_scope


class ScopedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>`` as DRF's, refusing (403) an unsafe method for a token without write scope."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        if request.method not in SAFE_METHODS and api_token_scope(key=token.key) != "write":
            raise exceptions.PermissionDenied(
                "this API token is read-only: ask a Platform Admin for a write-scope token (a second one approves it)"
            )
        return result

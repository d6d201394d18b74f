"""API token authentication (django-rest-knox: keys hashed at rest, with an expiry) with scopes: a read-scope
token (or a knox token made outside ``api_token_create``) may only read; writing needs a write-scope token, which
a second Platform Admin approved."""

from __future__ import annotations

from knox.auth import TokenAuthentication
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS

from .models import ApiToken


class ScopedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``: knox's check (digest, expiry, active user), then the scope: an unsafe
    method with a token that is not write-scope answers 403. Records the token's last use."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, knox_token = result
        record = ApiToken.objects.filter(knox_token=knox_token).only("pk", "scope", "revoked_at").first()
        if record is None or record.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        from .services import api_token_mark_used

        api_token_mark_used(token_id=record.pk)
        if request.method not in SAFE_METHODS and record.scope != ApiToken.Scope.WRITE:
            raise exceptions.PermissionDenied(
                "this API token is read-only: create a write-scope token (a second Platform Admin approves it)"
            )
        request.api_token = record
        return result

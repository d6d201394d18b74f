"""Reads about accounts: API token scopes and what is waiting for a token's owner."""

from __future__ import annotations

import hashlib
from typing import Any

from .models import ApiTokenScope


def token_key_sha256(key: str) -> str:
    """The SHA-256 of a token's key: how the project refers to a token without holding its key."""
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_scope(*, key: str) -> str:
    """The scope of the token with this key: "write" or "read" (a token with no scope recorded is read-only)."""
    scope = ApiTokenScope.objects.filter(key_sha256=token_key_sha256(key)).values_list("scope", flat=True).first()
    return scope or ApiTokenScope.Scope.READ


def api_token_record(*, user: Any) -> ApiTokenScope | None:
    """The scope record of the user's current API token, or None (no token, or one issued outside the service)."""
    from rest_framework.authtoken.models import Token

    token = Token.objects.filter(user=user).first()
    if token is None:
        return None
    return ApiTokenScope.objects.filter(key_sha256=token_key_sha256(token.key)).first()

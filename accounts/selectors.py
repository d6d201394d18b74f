"""Reads about accounts: API tokens."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import ApiToken


def api_tokens_visible(*, user: Any) -> QuerySet[ApiToken]:
    """The tokens ``user`` may see: their own, or every one for who manages users (Platform Admins)."""
    tokens = ApiToken.objects.select_related("user", "issued_by", "revoked_by").order_by("-created_at")
    return tokens if user.has_perm("auth.change_user") else tokens.filter(user=user)


def api_token_for_knox(*, knox_token: Any) -> ApiToken | None:
    """The project's record of a knox token (None for one made outside ``api_token_create``)."""
    return ApiToken.objects.filter(knox_token=knox_token).first()

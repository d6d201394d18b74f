"""API tokens (django-rest-knox): scope, expiry, revocation, hashed at rest, last use, several per user."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from knox.models import AuthToken

from accounts.models import ApiToken
from accounts.services import api_token_revoke
from tests.tokens import api_token_for


def _auth(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Token {key}"}


def test_a_read_token_reads_and_is_refused_writes_with_a_message(client, role_user):
    admin = role_user("Content Admin")
    key = api_token_for(admin, scope="read")
    assert client.get("/api/v1/job-runs/", **_auth(key)).status_code == 200
    refused = client.post("/api/v1/job-runs/", {"job": "nope"}, content_type="application/json", **_auth(key))
    assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
    write = api_token_for(admin, scope="write")  # a second token of the same user
    assert (
        client.post("/api/v1/job-runs/", {"job": "nope"}, content_type="application/json", **_auth(write)).status_code
        == 400
    )
    assert ApiToken.objects.filter(user=admin, revoked_at__isnull=True).count() == 2


def test_expired_revoked_and_unknown_tokens_answer_401(client, role_user):
    viewer = role_user("Viewer")
    expired, revoked = api_token_for(viewer, scope="read", days=1), api_token_for(viewer, scope="read")
    for key in (expired, revoked):
        assert client.get("/api/v1/job-runs/", **_auth(key)).status_code == 200
    AuthToken.objects.filter(token_key=expired[:15]).update(expiry=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/v1/job-runs/", **_auth(expired)).status_code == 401
    api_token_revoke(token=ApiToken.objects.get(token_key=revoked[:15]), actor=viewer)
    assert client.get("/api/v1/job-runs/", **_auth(revoked)).status_code == 401
    assert client.get("/api/v1/job-runs/", **_auth("0" * 64)).status_code == 401
    assert ApiToken.objects.get(token_key=expired[:15]).status == "expired"


def test_keys_are_hashed_at_rest_and_last_use_is_recorded(client, role_user):
    viewer = role_user("Viewer")
    key = api_token_for(viewer, scope="read")
    token = ApiToken.objects.get(user=viewer)
    assert token.last_used_at is None
    stored = AuthToken.objects.get(pk=token.knox_token_id)
    assert len(stored.digest) == 128 and key not in stored.digest  # SHA-512 of the key; the key is nowhere
    assert not ApiToken.objects.filter(token_key=key).exists() and len(token.token_key) == 15
    client.get("/api/v1/job-runs/", **_auth(key))
    token.refresh_from_db()
    assert token.last_used_at is not None

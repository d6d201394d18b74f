"""Throttles (writes per user, token creation) and django-axes lockouts after failed logins."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from api.throttles import CostlyReadThrottle, TokenCreateThrottle, WriteRateThrottle
from tests.tokens import api_token_for


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_writes_are_throttled_per_user_reads_are_not(client, role_user, monkeypatch):
    monkeypatch.setattr(WriteRateThrottle, "THROTTLE_RATES", {"writes": "2/min"})
    auth = {"HTTP_AUTHORIZATION": f"Token {api_token_for(role_user('Content Admin'))}"}
    codes = [
        client.post("/api/v1/job-runs/", {"job": "nope"}, content_type="application/json", **auth).status_code
        for _ in range(3)
    ]
    assert codes == [400, 400, 429]
    throttled = client.post("/api/v1/job-runs/", {"job": "nope"}, content_type="application/json", **auth)
    assert int(throttled["Retry-After"]) > 0 and "throttled" in throttled.json()["detail"].lower()
    assert client.get("/api/v1/job-runs/", **auth).status_code == 200  # reading goes on


def test_the_sales_estimate_a_get_calling_bigquery_is_throttled_per_user(client, role_user, monkeypatch):
    from sales.models import SalesQuery

    monkeypatch.setattr(CostlyReadThrottle, "THROTTLE_RATES", {"costly_reads": "2/min"})
    query = SalesQuery.objects.create(name="throttled", title="Throttled", sql="SELECT 1")
    url = f"/api/v1/sales-queries/{query.pk}/estimate/"
    auth = {"HTTP_AUTHORIZATION": f"Token {api_token_for(role_user('Analyst'), scope='read')}"}
    codes = [client.get(url, **auth).status_code for _ in range(3)]  # no period: 400, BigQuery not called
    assert codes == [400, 400, 429]
    assert client.get("/api/v1/sales-queries/", **auth).status_code == 200  # other reads go on


def test_token_creation_is_throttled(client, role_user, monkeypatch):
    monkeypatch.setattr(TokenCreateThrottle, "THROTTLE_RATES", {"token_create": "2/hour"})
    client.force_login(role_user("Viewer"))
    mine = "/admin/accounts/apitoken/mine/"
    codes = [client.post(mine, {"op": "create", "name": f"t{n}", "scope": "read", "days": "7"}).status_code
             for n in range(3)]  # fmt: skip
    assert codes == [200, 200, 429]


def test_failed_logins_lock_the_account_out_and_platform_admins_see_it(client, role_user, settings):
    from axes.models import AccessAttempt

    settings.AXES_FAILURE_LIMIT = 3
    user = role_user("Analyst", "ann")
    user.set_password("right-pass")
    user.save()
    login = "/admin/login/?next=/admin/"
    for _ in range(3):
        client.post(login, {"username": "ann", "password": "wrong"})
    locked = client.post(login, {"username": "ann", "password": "right-pass"})
    assert locked.status_code == 429  # locked out even with the right password, for AXES_COOLOFF_MINUTES
    assert AccessAttempt.objects.get(username="ann").failures_since_start >= 3
    admin = role_user("Platform Admin")
    client.force_login(admin)
    listing = client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "ann" in listing.content.decode()
    attempt = AccessAttempt.objects.get(username="ann")
    assert client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"}).status_code == 302
    from audit.models import AuditEvent

    cleared = AuditEvent.objects.get(action="accounts.login_lockout_cleared")
    assert cleared.actor == admin and cleared.data["username"] == "ann" and cleared.data["failures"] >= 3
    client.logout()
    assert client.post(login, {"username": "ann", "password": "right-pass"}).status_code == 302  # unlocked
    client.force_login(role_user("Viewer"))
    assert client.get("/admin/axes/accessattempt/").status_code == 403

"""The API's dry-run cost estimate of a sales query is the admin form's live estimate (sales.services
.sales_cost_estimate): it states BigQuery's 10 MiB minimum bill, refuses bad parameters naming them, and creates
nothing. BigQuery is the emulator."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from orchestration.models import JobRun
from sales.models import QueryRun, SalesQuery
from sales.params import AVAILABILITY_CACHE_KEY
from tests.tokens import api_token_for

pytestmark = pytest.mark.django_db
GOOD = {"start": "2026-10-01", "end": "2026-10-31", "grain": "day"}


def test_the_estimate_states_the_minimum_bill_and_refuses_bad_parameters(client, role_user, bigquery):
    from sales.services import sales_cost_estimate

    cache.delete(AVAILABILITY_CACHE_KEY)
    query, _ = SalesQuery.objects.get_or_create(name="daily_revenue", defaults={"title": "Daily revenue", "sql": ""})
    if not query.sql:
        from sales.services import SQL_DIR

        query.sql = (SQL_DIR / "daily_revenue.sql").read_text()
        query.save()
    url = reverse("api-salesquery-estimate", kwargs={"pk": query.pk})
    analyst = {"HTTP_AUTHORIZATION": f"Token {api_token_for(role_user('Analyst'), scope='read')}"}
    viewer = {"HTTP_AUTHORIZATION": f"Token {api_token_for(role_user('Viewer'), scope='read')}"}
    assert client.get(url, GOOD, **viewer).status_code == 403  # estimating is for who may run the report
    answer = client.get(url, GOOD, **analyst)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["bytes_billed"] >= 2 * 10 * 2**20 and body["min_bill_per_query_bytes"] == 10 * 2**20
    assert "BigQuery bills every query at least 10 MiB" in body["text"]
    same = sales_cost_estimate(params={**GOOD, "query": "daily_revenue"}).as_dict()  # the admin's estimate
    assert {k: body[k] for k in same} == same
    bad = client.get(url, {**GOOD, "start": "2026-11-05", "end": "2026-11-01"}, **analyst)
    assert bad.status_code == 400 and "is before start" in " ".join(bad.json()["end"])
    assert client.get(url, {**GOOD, "colour": "red"}, **analyst).status_code == 400  # unknown parameter
    assert not JobRun.objects.exists() and not QueryRun.objects.exists()

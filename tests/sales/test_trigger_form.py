"""The sales trigger form and the API refuse bad input before any run exists; the estimate states the minimum bill;
publishing over a sheet that shows another period asks first (issue 11). BigQuery and Sheets are the emulators."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.utils.html import escape

from orchestration.models import JobRun
from sales.params import AVAILABILITY_CACHE_KEY
from tests.sales.conftest import END
from tests.tokens import api_token_for

pytestmark = pytest.mark.django_db
URL = "/admin/orchestration/jobrun/trigger/sales_report/"
GOOD = {"start": "2026-10-01", "end": "2026-10-31", "grain": "day", "query": "daily_revenue", "regions": ""}


@pytest.fixture
def analyst(client, role_user):
    cache.delete(AVAILABILITY_CACHE_KEY)  # each test's emulator holds its own data
    user = role_user("Analyst")
    client.force_login(user)
    return user


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"start": "2026-10-31", "end": "2026-10-01"}, "end", "is before start"),
        ({"start": "2024-01-01"}, "start", "is before the first order line"),
        ({"end": "2027-06-30"}, "end", "is after the last order line: the order lines run from"),
        ({"regions": "EMEA,ATLANTIS"}, "regions", "no order lines for ATLANTIS"),
        ({"query": "no_such_query"}, "query", "unknown sales query 'no_such_query'"),
        ({"grain": "year"}, "grain", "must be one of day, week, month"),
    ],
)
def test_the_form_stops_bad_input_inline_before_any_run(client, analyst, bigquery, sheet, change, field, words):
    before = JobRun.objects.count()
    page = client.post(URL, {**GOOD, **change, "_run": "1"})
    body = page.content.decode()
    assert page.status_code == 200 and "Nothing was started" in body
    assert words in " ".join(page.context["form"].errors[field]), page.context["form"].errors
    assert f'id="row-{field}"' in body and escape(words.split(":")[0]) in body
    assert JobRun.objects.count() == before


def test_the_api_refuses_the_same_way(client, analyst, bigquery, sheet):
    auth = {"HTTP_AUTHORIZATION": f"Token {api_token_for(analyst)}"}
    before = JobRun.objects.count()
    bad = client.post(
        "/api/job-runs/",
        {"job": "sales_report", "params": {**GOOD, "start": "2024-01-01", "regions": ["ATLANTIS"]}},
        content_type="application/json",
        **auth,
    )
    assert bad.status_code == 400, bad.content
    errors = bad.json()["params_errors"]
    assert "before the first order line" in errors["start"][0] and "ATLANTIS" in errors["regions"][0]
    assert "sales_report: start:" in bad.json()["params"]
    assert JobRun.objects.count() == before


def test_the_estimate_endpoint_states_the_minimum_bill_and_the_data(client, analyst, bigquery, sheet):
    answer = client.get(URL + "estimate/", GOOD).json()
    assert answer["ok"] is True, answer
    assert answer["bytes_billed"] >= 2 * 10 * 2**20  # two queries, each billed at least 10 MiB
    assert answer["bytes_billed"] >= answer["bytes_processed"] and float(answer["cost_usd"]) > 0
    assert "BigQuery bills every query at least 10 MiB" in answer["text"]
    assert answer["data"]["last_day"] == END.isoformat() and answer["data"]["regions"]
    bad = client.get(URL + "estimate/", {**GOOD, "start": "2026-11-05", "end": "2026-11-01"}).json()
    assert bad["ok"] is False and "is before start" in " ".join(bad["errors"]["end"])
    assert JobRun.objects.count() == 0


def test_the_form_loads_the_live_estimate_script_without_inline_code(client, analyst):
    body = client.get(URL).content.decode()
    assert 'data-estimate-url="/admin/orchestration/jobrun/trigger/sales_report/estimate/"' in body
    assert "orchestration/trigger.js" in body and "<script>" not in body
    assert "10 MiB" in body


def test_publishing_over_another_period_asks_first(client, analyst, bigquery, sheet):
    first = client.post(URL, {**GOOD, "_run": "1"})
    body = first.content.decode()
    assert first.status_code == 200 and 'id="sheet-warning"' in body, body[-3000:]
    assert "does not say its period" in body and "2026-10-01 to 2026-10-31, per day, regions: all" in body
    assert JobRun.objects.count() == 0
    token = body.split('name="_overwrite_confirmed" value="')[1].split('"')[0]
    done = client.post(URL, {**GOOD, "_run": "1", "_overwrite_confirmed": token})
    assert done.status_code == 302 and JobRun.objects.count() == 1
    # Once the sheet names this period, the same run does not ask again; another period does.
    from connectors.embedded import embedded_sheets_client

    period = "2026-10-01 to 2026-10-31, per day, regions: all"
    embedded_sheets_client().values_batch_update(
        spreadsheet_id="sales-dash", data=[("'Report'!F6:G6", [["Period", period]])], value_input_option="RAW"
    )
    assert client.post(URL, {**GOOD, "_run": "1"}).status_code == 302 and JobRun.objects.count() == 2
    other = client.post(URL, {**GOOD, "start": "2026-09-01", "_run": "1"}).content.decode()
    assert f"shows {period}" in other and "replace it with 2026-09-01 to 2026-10-31" in other
    assert JobRun.objects.count() == 2

"""The API's root, its schema and docs (logged in only, served from local static files), and strict filters."""

from __future__ import annotations

import pytest
import yaml
from django.contrib.staticfiles import finders

from cleanup.models import LookerDashboard
from tests.tokens import api_token_for


@pytest.fixture
def viewer_auth(role_user):
    return {"HTTP_AUTHORIZATION": f"Token {api_token_for(role_user('Viewer'), scope='read')}"}


def test_root_lists_every_resource(client, viewer_auth, admin_user):
    from api.urls import resource_names

    assert client.get("/api/").status_code == 401
    root = client.get("/api/", **viewer_auth).json()
    assert set(root["resources"]) == set(resource_names())
    assert {"job-runs", "dashboards"} <= set(root["resources"])
    admin_auth = {"HTTP_AUTHORIZATION": f"Token {api_token_for(admin_user, scope='read')}"}
    for url in root["resources"].values():
        assert url.startswith("http://testserver/api/v1/")
        assert client.get(url, **admin_auth).status_code == 200, url
    assert client.get("/api/v1/", **viewer_auth).json() == root
    # The browsable root answers a browser with HTML.
    page = client.get("/api/", HTTP_ACCEPT="text/html", **viewer_auth)
    assert page.status_code == 200 and b"/api/v1/dashboards/" in page.content


def test_schema_and_docs_need_a_login_and_no_cdn(client, role_user):
    assert client.get("/api/schema/").status_code == 401
    docs = client.get("/api/docs/")
    assert docs.status_code == 302 and docs["Location"].startswith("/admin/login/?next=/api/docs/")
    assert client.get("/api/redoc/").status_code == 302
    client.force_login(role_user("Viewer"))
    for url in ("/api/docs/", "/api/redoc/"):
        page = client.get(url).content.decode()
        assert "cdn" not in page.lower() and "@latest" not in page and "unpkg" not in page
        assert "/static/drf_spectacular_sidecar/" in page
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert finders.find("drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js")


def test_schema_documents_what_the_views_answer(client, role_user):
    client.force_login(role_user("Viewer"))
    schema = yaml.safe_load(client.get("/api/schema/").content)
    assert all(p.startswith("/api/v1/") for p in schema["paths"])  # the aliases are not documented twice
    post = schema["paths"]["/api/v1/job-runs/"]["post"]["responses"]
    assert set(post) >= {"202", "400", "401", "403", "409", "429"} and "201" not in post
    assert post["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobRunOutput")
    assert post["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/PlanConfirmation")
    restore = schema["paths"]["/api/v1/dashboards/{looker_id}/restore/"]["post"]["responses"]
    assert set(restore) >= {"202", "401", "403", "404", "409"}
    assert restore["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/RestoreOutput")
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            assert {"401", "403"} <= set(op["responses"]), (method, path)


def test_bad_filters_answer_400_naming_the_parameter(client, viewer_auth):
    LookerDashboard.objects.create(looker_id="1", title="a", deleted=False)
    LookerDashboard.objects.create(looker_id="2", title="b", deleted=True)
    bad = client.get("/api/v1/dashboards/?deleted=-1", **viewer_auth)
    assert bad.status_code == 400 and "deleted" in bad.json()
    assert client.get("/api/v1/dashboards/?deleted=true", **viewer_auth).json()["count"] == 1
    assert client.get("/api/v1/dashboards/?deleted=0", **viewer_auth).json()["count"] == 1
    typo = client.get("/api/v1/dashboards/?delted=true", **viewer_auth)
    assert typo.status_code == 400 and typo.json() == {"delted": "unknown query parameter"}
    order = client.get("/api/v1/dashboards/?ordering=owner_password", **viewer_auth)
    assert order.status_code == 400 and "ordering" in order.json()
    assert client.get("/api/v1/dashboards/?ordering=-title", **viewer_auth).status_code == 200
    status = client.get("/api/v1/job-runs/?status=exploded", **viewer_auth)
    assert status.status_code == 400 and "status" in status.json()
    # The aliases of the first API answer the same.
    assert client.get("/api/dashboards/?deleted=-1", **viewer_auth).status_code == 400


def test_date_time_filters_reach_the_database_in_utc(client, role_user):
    """Python accepts a +19:23 offset, PostgreSQL refuses more than +-15:59 (schemathesis found the 500 on
    lineage events): every date-time filter is turned to UTC first; a moment UTC cannot hold is a 400."""
    from django.utils import timezone

    from lineage.models import LineageEvent

    auth = {"HTTP_AUTHORIZATION": f"Token {api_token_for(role_user('Auditor'), scope='read')}"}
    LineageEvent.objects.create(event_type="COMPLETE", event_time=timezone.now(), payload={})
    url = "/api/v1/lineage-events/"
    odd = client.get(url, {"event_time_before": "2999-05-15T03:00:44+19:23"}, **auth)
    assert odd.status_code == 200 and len(odd.json()["results"]) == 1
    assert client.get(url, {"event_time_before": "0056-05-15T03:00:44.51+19:23"}, **auth).json()["results"] == []
    edge = client.get(url, {"event_time_after": "0001-01-01T00:00:00+05:00"}, **auth)
    assert edge.status_code == 400 and "event_time_after" in edge.json()

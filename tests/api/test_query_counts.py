"""Every list endpoint of /api/v1/ (found from the URL patterns: each view that lists, none named by hand) answers
in the same number of queries for 2 rows as for 20: no query per row, whatever the serializer shows."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.mixins import ListModelMixin

from tests.rolewalk.objects import build
from tests.tokens import api_token_for

pytestmark = pytest.mark.django_db

# Exports stream the whole filtered set with ``iterator(chunk_size=2000)``: one query per 2000 rows, by design.
STREAMED = {"api-auditevent-export"}
_n = itertools.count(1)


def list_routes() -> dict[str, Any]:
    """URL name -> view class of every /api/v1/ endpoint that lists rows."""
    from api.urls import v1_patterns

    return {
        p.name: p.callback.view_class
        for p in v1_patterns()
        if issubclass(getattr(p.callback, "view_class", object), ListModelMixin) and p.name not in STREAMED
    }


def _jobrun(_: dict) -> Any:
    """Succeeded sales runs: their outcome reads the report query and the report (orchestration.outcome)."""
    from orchestration.models import JobRun

    return JobRun.objects.create(job="sales_report", trigger="api", status=JobRun.Status.SUCCEEDED)


def _backup(state: dict) -> Any:
    """Backups of one dashboard (the list is per dashboard)."""
    from cleanup.models import DashboardBackup, LookerDashboard

    if "dashboard" not in state:
        state["dashboard"] = build(LookerDashboard)
    sha = hashlib.sha256(str(next(_n)).encode()).hexdigest()
    return DashboardBackup.objects.create(dashboard=state["dashboard"], storage_name=f"walk/{sha}.json", sha256=sha,
                                          size_bytes=1, verified_at=timezone.now())  # fmt: skip


def _user(_: dict) -> Any:
    """Users holding a role each (the roles are prefetched, not read per user)."""
    from django.contrib.auth.models import Group

    from accounts.roles import roles_sync

    if not Group.objects.filter(name="Viewer").exists():
        from django.apps import apps

        roles_sync(apps)
    user = build(get_user_model())
    user.groups.add(Group.objects.get(name="Viewer"))
    return user


# Rows a list needs beyond "one of its model" (any other list is filled with tests.rolewalk.objects.build).
FACTORIES: dict[str, Callable[[dict], Any]] = {
    "api-jobrun-list": _jobrun,
    "api-dashboard-backups": _backup,
    "api-user-list": _user,
}
KWARGS: dict[str, Callable[[dict], dict]] = {
    "api-dashboard-backups": lambda state: {"looker_id": state["dashboard"].looker_id},
}


def _rows(name: str, view) -> Callable[[dict], Any]:
    if name in FACTORIES:
        return FACTORIES[name]
    model = view.queryset.model
    return lambda state: build(model)


def test_the_routes_are_found():
    routes = list_routes()
    assert len(routes) >= 14 and {"api-jobrun-list", "api-dashboard-backups", "api-auditevent-list"} <= set(routes)


@pytest.mark.parametrize("name", sorted(list_routes()))
def test_list_query_count_does_not_grow_with_rows(client, admin_user, name):
    view = list_routes()[name]
    make, state = _rows(name, view), {}
    auth = {"HTTP_AUTHORIZATION": f"Token {api_token_for(admin_user, scope='read')}"}

    def measure(expected_rows: int) -> int:
        url = reverse(name, kwargs=KWARGS[name](state) if name in KWARGS else {})
        client.get(url, **auth)  # warm: first-use lookups (content types, the chain head) are not per row
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url, **auth)
        assert response.status_code == 200, response.content[:500]
        body = response.json()
        rows = body["results"] if isinstance(body, dict) else body
        assert len(rows) >= expected_rows, (name, len(rows))
        return len(captured.captured_queries)

    for _ in range(2):
        make(state)
    two = measure(2)
    for _ in range(18):
        make(state)
    twenty = measure(20)
    print(f"{name}: {two} queries with 2 rows, {twenty} with 20")
    assert twenty == two, f"{name}: {two} queries for 2 rows but {twenty} for 20"

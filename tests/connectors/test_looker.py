"""connectors.looker through the real looker-sdk against the Looker emulator on loopback."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace

import pytest

import connectors.looker as looker_module
from connectors.errors import (
    ConnectorAuthError,
    ConnectorBadResponse,
    ConnectorNotFound,
    ConnectorRateLimited,
    ConnectorRequestError,
    ConnectorTransientError,
)
from connectors.looker import LookerClient, LookerDashboardSummary, dashboard_json_normalized, looker_client
from sandbox.common import FaultRule
from sandbox.looker import EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET
from sandbox.looker.fixtures import generate_fixture
from sandbox.looker.server import LookerEmulator
from sandbox.looker.testing import running_looker_emulator

SEARCH = "GET /api/4.0/dashboards/search"
LOOKML_SEARCH = "GET /api/4.0/dashboards/lookml/search"
GET_DASHBOARD = "GET /api/4.0/dashboards/<dashboard_id>"
PATCH_DASHBOARD = "PATCH /api/4.0/dashboards/<dashboard_id>"
LOGIN = "POST /api/4.0/login"

MakeClient = Callable[..., LookerClient]


def _active_udds(emulator: LookerEmulator) -> list[str]:
    return emulator.store.dashboard_ids(deleted=False, lookml=False)


# --- reads --------------------------------------------------------------------------------------------------


def test_search_pages_until_a_short_page(emulator: LookerEmulator, client: LookerClient) -> None:
    expected = _active_udds(emulator)
    assert len(expected) % 10 != 0
    summaries = client.dashboards_search(page_size=10, include_lookml=False)
    assert [s.id for s in summaries] == expected
    assert emulator.counters()[SEARCH] == len(expected) // 10 + 1
    assert LOOKML_SEARCH not in emulator.counters()


def test_search_when_the_count_is_an_exact_multiple_of_the_page(client: LookerClient) -> None:
    fixture = generate_fixture(30, seed=2)
    for dashboard in fixture["dashboards"]:
        dashboard["deleted"] = False
    with running_looker_emulator(fixture=fixture) as emulator:
        exact = LookerClient(
            base_url=emulator.base_url, client_id=EMULATOR_CLIENT_ID, client_secret=EMULATOR_CLIENT_SECRET
        )
        summaries = exact.dashboards_search(page_size=10, include_lookml=False)
        assert [s.id for s in summaries] == [str(i) for i in range(1, 31)]
        assert emulator.counters()[SEARCH] == 4  # three full pages and the empty one that ends the loop
        assert exact.request_count == 5  # plus the login


def test_search_returns_complete_aware_summaries(emulator: LookerEmulator, client: LookerClient) -> None:
    summaries = {s.id: s for s in client.dashboards_search(page_size=25)}
    lookml_ids = emulator.store.dashboard_ids(lookml=True)
    assert set(summaries) == set(_active_udds(emulator)) | set(lookml_ids)
    assert all(summaries[i].is_lookml for i in lookml_ids)
    assert emulator.counters()[LOOKML_SEARCH] == 1

    first = _active_udds(emulator)[0]
    raw = emulator.store.dashboard(first)
    s = summaries[first]
    assert isinstance(s, LookerDashboardSummary)
    assert (s.title, s.folder_id, s.user_id, s.view_count, s.favorite_count) == (
        raw["title"],
        raw["folder_id"],
        raw["user_id"],
        raw["view_count"],
        raw["favorite_count"],
    )
    assert s.folder_name == raw["folder"]["name"] and s.deleted is False and s.deleted_at is None
    for stamp in (s.created_at, s.updated_at, s.last_viewed_at, s.last_accessed_at):
        assert stamp is None or (isinstance(stamp, datetime) and stamp.utcoffset().total_seconds() == 0)
    assert s.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z") == raw["created_at"]

    linked = [x for x in summaries.values() if x.lookml_link_id and "::" not in x.id]
    assert linked and not any(x.is_lookml for x in linked)  # linked UDDs can be soft-deleted


def test_search_asks_only_for_the_summary_fields(emulator: LookerEmulator, client: LookerClient) -> None:
    seen: list[str] = []
    original = emulator.store.search_dashboards

    def spy(**kwargs):
        seen.append(json.dumps(kwargs["tree"], sort_keys=True))
        return original(**kwargs)

    emulator.store.search_dashboards = spy  # type: ignore[method-assign]
    client.dashboards_search(page_size=100, include_lookml=False)
    tree = json.loads(seen[0])
    assert tree["folder"] == {"id": None, "name": None}
    assert "dashboard_elements" not in tree and "description" not in tree
    assert {"id", "last_viewed_at", "last_accessed_at", "deleted", "lookml_link_id"} <= set(tree)


def test_deleted_filter(emulator: LookerEmulator, client: LookerClient) -> None:
    trashed = client.dashboards_search(deleted=True, page_size=3)
    assert [s.id for s in trashed] == emulator.store.dashboard_ids(deleted=True)
    assert trashed and all(s.deleted and s.deleted_at is not None and not s.is_lookml for s in trashed)
    assert LOOKML_SEARCH not in emulator.counters()  # LookML dashboards never sit in the trash


def test_users_folders_and_plans(emulator: LookerEmulator, client: LookerClient) -> None:
    users = client.users_all(page_size=2)
    assert [u.id for u in users] == ["1", "2", "3", "4", "5"]
    assert emulator.counters()["GET /api/4.0/users"] == 3
    assert users[0].display_name == "API Admin" and users[4].email is None

    folders = {f.id: f for f in client.folders_all()}
    assert folders["6"].name == "Protected" and folders["6"].parent_id == "1" and folders["1"].parent_id is None

    plans = client.scheduled_plans_all()
    assert len(plans) == emulator.store.counts()["scheduled_plans"]
    assert {p.enabled for p in plans} == {True, False} and all(p.dashboard_id for p in plans)


def test_users_by_id_asks_for_few_owners_by_id_and_lists_users_only_until_all_are_found(
    emulator: LookerEmulator, client: LookerClient
) -> None:
    users = "GET /api/4.0/users"
    found = client.users_by_id(ids=["2", "4", "999"], ids_per_request=2)  # two requests' worth: by id
    assert sorted(found) == ["2", "4"] and found["2"].display_name and emulator.counters()[users] == 2
    emulator.reset_counters()
    found = client.users_by_id(ids=["1", "2", "3"], ids_per_request=1, page_size=2)  # more: list, stop when done
    assert sorted(found) == ["1", "2", "3"] and emulator.counters()[users] == 2  # of three pages of two
    emulator.reset_counters()
    found = client.users_by_id(ids=["1", "2", "999"], ids_per_request=1, page_size=2)  # one never found: to the end
    assert sorted(found) == ["1", "2"] and emulator.counters()[users] == 3
    assert client.users_by_id(ids=[]) == {}


def test_export_includes_lookml_and_the_full_json(emulator: LookerEmulator, client: LookerClient) -> None:
    dashboard_id = _active_udds(emulator)[0]
    export = client.dashboard_export(dashboard_id=dashboard_id)
    data = json.loads(export.dashboard_json)
    raw = emulator.store.dashboard(dashboard_id)
    assert export.dashboard_id == dashboard_id and data["id"] == dashboard_id
    assert [e["id"] for e in data["dashboard_elements"]] == [e["id"] for e in raw["dashboard_elements"]]
    assert export.lookml is not None and export.lookml.startswith("- dashboard:")
    assert raw["title"] in export.lookml
    assert json.loads(client.dashboard_get_json(dashboard_id=dashboard_id)) == data

    lookml_dashboard = client.dashboard_export(dashboard_id="thelook::sales_overview")
    assert lookml_dashboard.lookml is None and json.loads(lookml_dashboard.dashboard_json)["readonly"] is True


# --- writes -------------------------------------------------------------------------------------------------


def test_soft_delete_and_undelete_round_trip(emulator: LookerEmulator, client: LookerClient) -> None:
    dashboard_id = _active_udds(emulator)[0]
    before = client.dashboard_get_json(dashboard_id=dashboard_id)

    deleted = client.dashboard_soft_delete(dashboard_id=dashboard_id)
    assert deleted.deleted is True and deleted.deleted_at is not None and deleted.id == dashboard_id
    stored = emulator.store.dashboard(dashboard_id)
    assert stored["deleted"] is True and stored["deleter_id"] == "1"
    assert dashboard_id in {s.id for s in client.dashboards_search(deleted=True)}
    assert dashboard_id not in {s.id for s in client.dashboards_search(include_lookml=False)}

    restored = client.dashboard_undelete(dashboard_id=dashboard_id)
    assert restored.deleted is False and restored.deleted_at is None
    assert emulator.store.dashboard(dashboard_id)["deleted"] is False
    after = client.dashboard_get_json(dashboard_id=dashboard_id)
    assert dashboard_json_normalized(after, ignore_identity=False) == dashboard_json_normalized(
        before, ignore_identity=False
    )


def test_lookml_dashboards_refuse_soft_delete(emulator: LookerEmulator, client: LookerClient) -> None:
    with pytest.raises(ConnectorRequestError) as caught:
        client.dashboard_soft_delete(dashboard_id="thelook::sales_overview")
    assert caught.value.status == 422 and caught.value.system == "looker"
    assert "soft-deleting dashboard thelook::sales_overview failed: HTTP 422" in str(caught.value)
    assert "LookML dashboards cannot be soft-deleted" in str(caught.value)
    assert emulator.counters()[PATCH_DASHBOARD] == 1  # a refusal is not retried
    assert emulator.store.dashboard("thelook::sales_overview")["deleted"] is False


def test_hard_delete_then_recreate_matches_the_backup(emulator: LookerEmulator, client: LookerClient) -> None:
    dashboard_id = next(
        i
        for i in _active_udds(emulator)
        if len(emulator.store.dashboard(i)["dashboard_elements"]) >= 3
        and emulator.store.dashboard(i)["dashboard_filters"]
    )
    backup = client.dashboard_get_json(dashboard_id=dashboard_id)
    client.dashboard_hard_delete(dashboard_id=dashboard_id)
    with pytest.raises(ConnectorNotFound):
        client.dashboard_get_json(dashboard_id=dashboard_id)

    new_id = client.dashboard_recreate(dashboard_json=backup)
    assert new_id != dashboard_id
    restored = client.dashboard_get_json(dashboard_id=new_id)
    assert dashboard_json_normalized(restored, ignore_identity=True) == dashboard_json_normalized(
        backup, ignore_identity=True
    )
    assert dashboard_json_normalized(restored, ignore_identity=False) != dashboard_json_normalized(
        backup, ignore_identity=False
    )
    # Tiles were moved back where they were (the emulator stacks new tiles at the left edge).
    tiles = [
        (c["row"], c["column"], c["width"], c["height"])
        for c in json.loads(restored)["dashboard_layouts"][0]["dashboard_layout_components"]
    ]
    original = [
        (c["row"], c["column"], c["width"], c["height"])
        for c in json.loads(backup)["dashboard_layouts"][0]["dashboard_layout_components"]
    ]
    assert tiles == original


def test_recreate_removes_its_partial_copy_when_a_step_fails(emulator: LookerEmulator, client: LookerClient) -> None:
    dashboard_id = _active_udds(emulator)[0]
    backup = client.dashboard_get_json(dashboard_id=dashboard_id)
    client.dashboard_hard_delete(dashboard_id=dashboard_id)
    count = len(emulator.store.dashboard_ids())
    emulator.faults.add(FaultRule(method="POST", path_pattern="/api/4.0/dashboard_elements", status=500, times=None))
    with pytest.raises(ConnectorTransientError, match="partial copy .* was deleted"):
        client.dashboard_recreate(dashboard_json=backup)
    assert len(emulator.store.dashboard_ids()) == count
    assert emulator.counters()["POST /api/4.0/dashboard_elements"] == 1  # creates are not blindly retried
    with pytest.raises(ValueError):
        client.dashboard_recreate(dashboard_json="{not json")


def test_hard_delete_of_a_missing_dashboard(client: LookerClient) -> None:
    with pytest.raises(ConnectorNotFound, match="permanently deleting dashboard 424242"):
        client.dashboard_hard_delete(dashboard_id="424242")


# --- failures -----------------------------------------------------------------------------------------------


def test_a_500_is_retried_then_succeeds(emulator: LookerEmulator, client: LookerClient) -> None:
    dashboard_id = _active_udds(emulator)[0]
    emulator.faults.add(FaultRule(method="GET", path_pattern="/api/4.0/dashboards/*", status=500, times=1))
    assert json.loads(client.dashboard_get_json(dashboard_id=dashboard_id))["id"] == dashboard_id
    assert emulator.counters()[GET_DASHBOARD] == 2
    assert client.request_count == 3  # login, the failed GET, the retry


def test_a_429_waits_for_retry_after(emulator: LookerEmulator, client: LookerClient) -> None:
    dashboard_id = _active_udds(emulator)[0]
    emulator.faults.add(FaultRule(method="PATCH", status=429, retry_after=1, times=1))
    started = time.perf_counter()
    assert client.dashboard_soft_delete(dashboard_id=dashboard_id).deleted is True
    assert time.perf_counter() - started >= 1.0  # backoff_base is 0.01: only Retry-After explains the wait
    assert emulator.counters()[PATCH_DASHBOARD] == 2


def test_a_retry_after_beyond_backoff_max_is_left_to_the_caller(emulator: LookerEmulator, make_client) -> None:
    client = make_client(backoff_max=2)
    emulator.faults.add(FaultRule(method="PATCH", status=429, retry_after=120, times=1))
    started = time.perf_counter()
    with pytest.raises(ConnectorRateLimited) as caught:
        client.dashboard_soft_delete(dashboard_id=_active_udds(emulator)[0])
    assert caught.value.retry_after == 120 and caught.value.status == 429
    assert time.perf_counter() - started < 1 and emulator.counters()[PATCH_DASHBOARD] == 1


def test_429_after_n_calls_stops_paging(emulator: LookerEmulator, make_client: MakeClient) -> None:
    client = make_client(max_attempts=2)
    emulator.faults.add(
        FaultRule(method="GET", path_pattern="/api/4.0/dashboards/search", status=429, after=2, times=None)
    )
    with pytest.raises(ConnectorRateLimited) as caught:
        client.dashboards_search(page_size=5)
    assert "searching active dashboards (offset 10) failed: HTTP 429" in str(caught.value)
    assert "after 2 attempts" in str(caught.value)
    assert emulator.counters()[SEARCH] == 4  # two good pages, then the third page twice


def test_a_timeout_is_transient_after_max_attempts(emulator: LookerEmulator, make_client: MakeClient) -> None:
    client = make_client(timeout=0.3, max_attempts=2)
    emulator.faults.add(
        FaultRule(method="GET", path_pattern="/api/4.0/dashboards/*", status=None, delay_s=1.5, times=None)
    )
    with pytest.raises(ConnectorTransientError) as caught:
        client.dashboard_get_json(dashboard_id="1")
    message = str(caught.value)
    assert "fetching dashboard 1 failed: timed out after 0.3s (after 2 attempts)" in message
    assert not isinstance(caught.value, ConnectorRateLimited)
    assert emulator.counters()[GET_DASHBOARD] == 2


def test_connection_refused_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = LookerClient(
        base_url=f"http://127.0.0.1:{port}", client_id="a", client_secret="b", max_attempts=2, backoff_base=0.01
    )
    with pytest.raises(ConnectorTransientError, match="connection failed"):
        client.folders_all()
    assert client.request_count == 2


def test_wrong_credentials(emulator: LookerEmulator, make_client: MakeClient) -> None:
    client = make_client(client_secret="wrong")
    with pytest.raises(ConnectorAuthError) as caught:
        client.folders_all()
    assert "listing folders failed: login refused (HTTP 404" in str(caught.value)
    assert emulator.counters() == {LOGIN: 1, "total": 1}


def test_an_expired_token_triggers_one_fresh_login(emulator: LookerEmulator, client: LookerClient) -> None:
    client.folders_all()
    emulator.revoke_tokens()
    client.folders_all()
    assert emulator.counters()[LOGIN] == 2 and emulator.counters()["GET /api/4.0/folders"] == 3
    emulator.faults.add(FaultRule(path_pattern="/api/4.0/folders", status=401, times=None))
    with pytest.raises(ConnectorAuthError):
        client.folders_all()


def test_not_found(client: LookerClient) -> None:
    with pytest.raises(ConnectorNotFound) as caught:
        client.dashboard_get_json(dashboard_id="999999")
    assert caught.value.status == 404
    assert str(caught.value) == "Looker: fetching dashboard 999999 failed: HTTP 404 Not found"


def test_odd_replies_are_bad_responses(emulator: LookerEmulator, client: LookerClient) -> None:
    emulator.faults.add(FaultRule(path_pattern="/api/4.0/dashboards/search", status=200, body={"oops": 1}))
    with pytest.raises(ConnectorBadResponse, match="searching active dashboards"):
        client.dashboards_search()
    emulator.faults.add(FaultRule(path_pattern="/api/4.0/dashboards/7", status=200, body={"title": "no id"}))
    with pytest.raises(ConnectorBadResponse, match="fetching dashboard 7"):
        client.dashboard_get_json(dashboard_id="7")
    emulator.faults.add(FaultRule(path_pattern="/api/4.0/dashboards/search", status=200, body=[{"title": "no id"}]))
    with pytest.raises(ConnectorBadResponse, match="without an id"):
        client.dashboards_search()
    emulator.faults.add(FaultRule(path_pattern="/api/4.0/folders", status=200, body=[{"id": "1"}]))
    with pytest.raises(ConnectorBadResponse, match="listing folders"):  # a folder without its required name
        client.folders_all()


def test_a_server_ignoring_offset_is_caught(emulator: LookerEmulator, client: LookerClient) -> None:
    page = [{"id": str(i), "folder": {"id": "1", "name": "Shared"}} for i in range(1, 4)]
    emulator.faults.add(FaultRule(path_pattern="/api/4.0/dashboards/search", status=200, body=page, times=None))
    with pytest.raises(ConnectorBadResponse, match="the page repeats earlier rows"):
        client.dashboards_search(page_size=3)


def test_request_count_covers_logins_pages_and_retries(emulator: LookerEmulator, client: LookerClient) -> None:
    assert client.request_count == 0
    client.folders_all()
    assert client.request_count == 2
    client.users_all(page_size=100)
    assert client.request_count == 3
    assert client.request_count == emulator.counters()["total"]


def test_invalid_configuration_is_refused_up_front() -> None:
    for base_url in ("looker.example.com", "https://looker.example.com/api", "ftp://x"):
        with pytest.raises(ValueError):
            LookerClient(base_url=base_url, client_id="a", client_secret="b")
    with pytest.raises(ValueError):
        LookerClient(base_url="https://looker.example.com", client_id="", client_secret="b")
    with pytest.raises(ValueError):
        LookerClient(base_url="https://looker.example.com", client_id="a", client_secret="b", max_attempts=0)


# --- normalisation and the factory -----------------------------------------------------------------------


def test_normalisation_drops_volatile_fields() -> None:
    doc = {
        "id": "1",
        "slug": "abc",
        "title": "T",
        "deleted": True,
        "deleted_at": "x",
        "view_count": 3,
        "can": {"show": True},
        "description": None,
        "folder": {"id": "2", "name": "F", "child_count": 4, "created_at": "y"},
        "dashboard_elements": [
            {
                "id": "9",
                "dashboard_id": "1",
                "title": "E",
                "query_id": "5",
                "query": {"id": "5", "model": "m", "view": "v"},
            }
        ],
        "dashboard_layouts": [
            {
                "id": "3",
                "dashboard_id": "1",
                "dashboard_layout_components": [{"id": "4", "dashboard_element_id": "9", "row": 0}],
            }
        ],
    }
    kept = dashboard_json_normalized(json.dumps(doc), ignore_identity=False)
    assert kept == {
        "id": "1",
        "slug": "abc",
        "title": "T",
        "folder": {"id": "2", "name": "F"},
        "dashboard_elements": [
            {"id": "9", "dashboard_id": "1", "title": "E", "query_id": "5", "query": {"model": "m", "view": "v"}}
        ],
        "dashboard_layouts": [
            {
                "id": "3",
                "dashboard_id": "1",
                "dashboard_layout_components": [{"id": "4", "dashboard_element_id": "9", "row": 0}],
            }
        ],
    }
    anonymous = dashboard_json_normalized(json.dumps(doc), ignore_identity=True)
    assert anonymous == {
        "title": "T",
        "folder": {"id": "2", "name": "F"},
        "dashboard_elements": [{"title": "E", "query": {"model": "m", "view": "v"}}],
        "dashboard_layouts": [{"dashboard_layout_components": [{"row": 0, "element_index": 0}]}],
    }


def test_factory_reads_django_settings(emulator: LookerEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    import django.conf

    fake = SimpleNamespace(
        LOOKER_BASE_URL=emulator.base_url,
        LOOKER_CLIENT_ID=EMULATOR_CLIENT_ID,
        LOOKER_CLIENT_SECRET=EMULATOR_CLIENT_SECRET,
        LOOKER_TIMEOUT=3.0,
        LOOKER_VERIFY_SSL=False,
        LOOKER_MAX_ATTEMPTS=2,
    )
    monkeypatch.setattr(django.conf, "settings", fake)
    client = looker_client()
    assert (client.base_url, client.timeout, client.max_attempts, client.backoff_base) == (
        emulator.base_url,
        3.0,
        2,
        0.5,
    )
    assert client.folders_all()


def test_factory_starts_the_embedded_emulator_when_no_url_is_set(
    emulator: LookerEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import django.conf

    import sandbox.runner

    calls: list[dict] = []

    def fake_ensure_running(name: str, **kwargs) -> str:
        calls.append({"name": name, **kwargs})
        return emulator.base_url

    fixture = tmp_path / "fixture.json"
    fixture.write_text("{}")
    monkeypatch.setattr(sandbox.runner, "ensure_running", fake_ensure_running)
    monkeypatch.setattr(
        django.conf,
        "settings",
        SimpleNamespace(
            LOOKER_BASE_URL="",
            LOOKER_EMULATOR_PORT=9555,
            LOOKER_EMULATOR_FIXTURE=str(fixture),
            LOOKER_EMULATOR_STATE=str(tmp_path / "state.json"),
            VAR_DIR=tmp_path,
        ),
    )
    client = looker_client()
    assert client.folders_all()  # used the emulator credentials
    (call,) = calls
    assert call["name"] == "looker" and call["module"] == "sandbox.looker" and call["port"] == 9555
    assert call["args"] == ["--fixture", str(fixture), "--state", str(tmp_path / "state.json")]
    assert call["log_path"] == tmp_path / "looker_emulator.log"
    assert looker_module.SYSTEM == "looker"

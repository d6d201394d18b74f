"""The Looker emulator over plain HTTP: auth, routes, parameters, errors, persistence."""

from __future__ import annotations

import json
import time

import pytest
import requests

from sandbox.common import FaultRule
from sandbox.looker import EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET
from sandbox.looker.fixtures import write_text_atomic
from sandbox.looker.server import LookerEmulator
from sandbox.looker.store import LookerStore
from sandbox.looker.testing import running_looker_emulator
from tests.sandbox.conftest import login

API = "/api/4.0"


def test_login_and_token_schemes(emulator: LookerEmulator) -> None:
    base = emulator.base_url
    wrong = requests.post(f"{base}{API}/login", data={"client_id": "x", "client_secret": "y"}, timeout=5)
    assert wrong.status_code == 404  # what Looker answers to unknown credentials
    assert wrong.json()["message"] == "Not found" and "documentation_url" in wrong.json()

    ok = requests.post(
        f"{base}{API}/login",
        data={"client_id": EMULATOR_CLIENT_ID, "client_secret": EMULATOR_CLIENT_SECRET},
        timeout=5,
    ).json()
    assert ok["token_type"] == "Bearer" and ok["expires_in"] == 3600 and ok["access_token"]

    anonymous = requests.get(f"{base}{API}/folders", timeout=5)
    assert anonymous.status_code == 401 and anonymous.json()["message"] == "Requires authentication."
    bogus = requests.get(f"{base}{API}/folders", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert bogus.status_code == 401
    for scheme in ("Bearer", "token"):
        reply = requests.get(
            f"{base}{API}/folders", headers={"Authorization": f"{scheme} {ok['access_token']}"}, timeout=5
        )
        assert reply.status_code == 200

    emulator.revoke_tokens()
    expired = requests.get(f"{base}{API}/folders", headers={"Authorization": f"token {ok['access_token']}"}, timeout=5)
    assert expired.status_code == 401


def test_logout_revokes_the_token(emulator: LookerEmulator) -> None:
    session = login(emulator)
    assert session.delete(f"{emulator.base_url}/api/logout", timeout=5).status_code == 204
    assert session.get(f"{emulator.base_url}{API}/folders", timeout=5).status_code == 401


def test_search_pages_sorts_filters_and_projects_fields(emulator: LookerEmulator) -> None:
    session = login(emulator)
    url = f"{emulator.base_url}{API}/dashboards/search"
    active = emulator.store.dashboard_ids(deleted=False, lookml=False)

    first = session.get(url, params={"fields": "id,title,folder(id,name)", "limit": 7, "sorts": "id"}).json()
    assert [d["id"] for d in first] == active[:7]
    assert all(set(d) == {"id", "title", "folder"} and set(d["folder"]) == {"id", "name"} for d in first)
    second = session.get(url, params={"fields": "id", "limit": 7, "offset": 7, "sorts": "id"}).json()
    assert [d["id"] for d in second] == active[7:14]

    everything = session.get(url, params={"fields": "id,deleted", "deleted": "false"}).json()
    assert [d["id"] for d in everything] == active and not any(d["deleted"] for d in everything)
    trashed = session.get(url, params={"fields": "id,deleted", "deleted": "true"}).json()
    assert [d["id"] for d in trashed] == emulator.store.dashboard_ids(deleted=True)
    assert trashed and all(d["deleted"] for d in trashed)

    descending = session.get(url, params={"fields": "id", "sorts": "id desc", "limit": 3}).json()
    assert [d["id"] for d in descending] == active[::-1][:3]
    by_id = session.get(url, params={"fields": "id", "id": f"{active[0]},{active[2]}"}).json()
    assert [d["id"] for d in by_id] == [active[0], active[2]]
    in_folder = session.get(url, params={"fields": "id,folder_id", "folder_id": "6"}).json()
    assert in_folder and all(d["folder_id"] == "6" for d in in_folder)
    title = emulator.store.dashboard(active[0])["title"]
    like = session.get(url, params={"fields": "id,title", "title": title[:5].upper() + "%"}).json()
    assert active[0] in [d["id"] for d in like] and all(d["title"].startswith(title[:5]) for d in like)

    assert session.get(url, params={"limit": "x"}).status_code == 400
    assert session.get(url, params={"fields": "id,folder(id"}).status_code == 400


def test_search_never_returns_lookml_dashboards_but_lookml_search_does(emulator: LookerEmulator) -> None:
    session = login(emulator)
    udds = session.get(f"{emulator.base_url}{API}/dashboards/search", params={"fields": "id"}).json()
    assert not any("::" in d["id"] for d in udds)
    lookml = session.get(f"{emulator.base_url}{API}/dashboards/lookml/search", params={"fields": "id,title"}).json()
    assert [d["id"] for d in lookml] == emulator.store.dashboard_ids(lookml=True)
    named = session.get(
        f"{emulator.base_url}{API}/dashboards/lookml/search", params={"fields": "id", "title": "sales_%"}
    ).json()
    assert [d["id"] for d in named] == ["thelook::sales_overview"]


def test_get_dashboard_full_and_with_fields(emulator: LookerEmulator) -> None:
    session = login(emulator)
    trashed_id = emulator.store.dashboard_ids(deleted=True)[0]
    full = session.get(f"{emulator.base_url}{API}/dashboards/{trashed_id}").json()
    assert full["id"] == trashed_id and full["deleted"] is True and full["deleted_at"].endswith("Z")
    assert full["folder"]["id"] == full["folder_id"] and full["folder"]["name"]
    assert full["dashboard_elements"] and full["dashboard_layouts"][0]["dashboard_layout_components"]
    components = full["dashboard_layouts"][0]["dashboard_layout_components"]
    assert [c["dashboard_element_id"] for c in components] == [e["id"] for e in full["dashboard_elements"]]
    for key in ("created_at", "updated_at", "view_count", "favorite_count", "slug", "hidden", "lookml_link_id"):
        assert key in full

    some = session.get(
        f"{emulator.base_url}{API}/dashboards/{trashed_id}", params={"fields": "id,dashboard_elements(id,query(model))"}
    ).json()
    assert set(some) == {"id", "dashboard_elements"}
    assert all(set(e) == {"id", "query"} for e in some["dashboard_elements"])

    lookml = session.get(f"{emulator.base_url}{API}/dashboards/thelook%3A%3Asales_overview").json()
    assert lookml["id"] == "thelook::sales_overview" and lookml["readonly"] is True

    missing = session.get(f"{emulator.base_url}{API}/dashboards/999999")
    assert missing.status_code == 404 and missing.json()["message"] == "Not found"


def test_soft_delete_restore_and_lookml_refusal(emulator: LookerEmulator) -> None:
    session = login(emulator)
    dashboard_id = emulator.store.dashboard_ids(deleted=False, lookml=False)[0]
    url = f"{emulator.base_url}{API}/dashboards/{dashboard_id}"
    deleted = session.patch(url, json={"deleted": True}).json()
    assert deleted["deleted"] is True and deleted["deleter_id"] == "1" and deleted["deleted_at"]
    assert emulator.store.dashboard(dashboard_id)["deleted"] is True
    restored = session.patch(url, json={"deleted": False}).json()
    assert restored["deleted"] is False and restored["deleted_at"] is None and restored["deleter_id"] is None

    renamed = session.patch(url, json={"title": "Renamed", "unknown_field": 1}).json()
    assert renamed["title"] == "Renamed" and renamed["updated_at"] != deleted["updated_at"]
    assert session.patch(url, json={"deleted": "yes"}).status_code == 422
    assert session.patch(url, json={"folder_id": "nope"}).status_code == 422

    refused = session.patch(f"{emulator.base_url}{API}/dashboards/thelook::sales_overview", json={"deleted": True})
    assert refused.status_code == 422
    assert refused.json()["message"] == "LookML dashboards cannot be soft-deleted"
    assert emulator.store.dashboard("thelook::sales_overview")["deleted"] is False


def test_create_elements_filters_layout_and_hard_delete(emulator: LookerEmulator) -> None:
    session = login(emulator)
    base = emulator.base_url
    assert session.post(f"{base}{API}/dashboards", json={"title": "No folder"}).status_code == 422
    created = session.post(f"{base}{API}/dashboards", json={"title": "New", "folder_id": "3"}).json()
    new_id = created["id"]
    assert int(new_id) > max(int(i) for i in emulator.store.dashboard_ids(lookml=False) if i != new_id)
    assert created["user_id"] == "1" and created["folder"]["name"] == "Sales"

    element = session.post(
        f"{base}{API}/dashboard_elements",
        json={"dashboard_id": new_id, "title": "Tile", "query": {"model": "thelook", "view": "users", "fields": ["a"]}},
    ).json()
    assert element["dashboard_id"] == new_id and element["query"]["id"] == element["query_id"]
    assert session.post(f"{base}{API}/dashboard_elements", json={"dashboard_id": "999999"}).status_code == 422
    dashboard_filter = session.post(
        f"{base}{API}/dashboard_filters",
        json={"dashboard_id": new_id, "name": "Date", "title": "Date", "type": "date_filter"},
    ).json()
    assert dashboard_filter["dashboard_id"] == new_id and dashboard_filter["row"] == 0
    assert session.post(f"{base}{API}/dashboard_filters", json={"dashboard_id": new_id}).status_code == 422

    elements = session.get(f"{base}{API}/dashboards/{new_id}/dashboard_elements").json()
    assert [e["id"] for e in elements] == [element["id"]]
    (layout,) = session.get(f"{base}{API}/dashboards/{new_id}/dashboard_layouts").json()
    (component,) = layout["dashboard_layout_components"]
    assert component["dashboard_element_id"] == element["id"] and (component["row"], component["column"]) == (0, 0)
    moved = session.patch(
        f"{base}{API}/dashboard_layout_components/{component['id']}", json={"row": 4, "column": 12, "width": 12}
    ).json()
    assert (moved["row"], moved["column"], moved["width"], moved["height"]) == (4, 12, 12, 6)

    assert session.delete(f"{base}{API}/dashboards/{new_id}").status_code == 204
    assert session.get(f"{base}{API}/dashboards/{new_id}").status_code == 404
    again = session.post(f"{base}{API}/dashboards", json={"title": "Next", "folder_id": "3"}).json()
    assert int(again["id"]) == int(new_id) + 1  # ids are never reused


def test_lookml_export_and_import_round_trip(emulator: LookerEmulator) -> None:
    session = login(emulator)
    base = emulator.base_url
    source_id = next(
        i
        for i in emulator.store.dashboard_ids(deleted=False, lookml=False)
        if emulator.store.dashboard(i)["dashboard_filters"]
    )
    before = emulator.store.dashboard(source_id)
    exported = session.get(f"{base}{API}/dashboards/lookml/{source_id}").json()
    assert exported["dashboard_id"] == source_id and exported["folder_id"] == before["folder_id"]
    assert exported["lookml"].startswith("- dashboard: ")
    refused = session.get(f"{base}{API}/dashboards/lookml/thelook::sales_overview")
    assert refused.status_code == 422

    session.delete(f"{base}{API}/dashboards/{source_id}")
    imported = session.post(
        f"{base}{API}/dashboards/lookml", json={"folder_id": before["folder_id"], "lookml": exported["lookml"]}
    ).json()
    assert imported["id"] != source_id and imported["slug"] == before["slug"]
    assert imported["title"] == before["title"] and imported["folder_id"] == before["folder_id"]

    def shape(d: dict) -> tuple:
        elements = [
            (
                e["type"],
                e["title"],
                e["body_text"],
                e["query"] and (e["query"]["model"], e["query"]["view"], e["query"]["fields"]),
            )
            for e in d["dashboard_elements"]
        ]
        filters = [(f["name"], f["type"], f["default_value"], f["dimension"]) for f in d["dashboard_filters"]]
        tiles = [
            (c["row"], c["column"], c["width"], c["height"])
            for c in d["dashboard_layouts"][0]["dashboard_layout_components"]
        ]
        return elements, filters, tiles

    assert shape(imported) == shape(before)

    # Importing again with the same preferred_slug overwrites that dashboard instead of adding one.
    count = len(emulator.store.dashboard_ids())
    again = session.post(f"{base}{API}/dashboards/lookml", json={"lookml": exported["lookml"]}).json()
    assert again["id"] == imported["id"] and len(emulator.store.dashboard_ids()) == count
    bad = session.post(f"{base}{API}/dashboards/lookml", json={"lookml": "not lookml at all"})
    assert bad.status_code == 422 and bad.json()["message"] == "Validation Failed"


def test_users_folders_and_scheduled_plans(emulator: LookerEmulator) -> None:
    session = login(emulator)
    base = emulator.base_url
    users = session.get(f"{base}{API}/users", params={"fields": "id,email", "sorts": "id"}).json()
    assert [u["id"] for u in users] == [str(i) for i in range(1, 6)] and set(users[0]) == {"id", "email"}
    some = session.get(f"{base}{API}/users", params={"ids": "2,4", "fields": "id"}).json()
    assert [u["id"] for u in some] == ["2", "4"]
    paged = session.get(f"{base}{API}/users", params={"limit": 2, "offset": 4, "fields": "id"}).json()
    assert [u["id"] for u in paged] == ["5"]
    assert session.get(f"{base}{API}/users/3").json()["display_name"]
    assert session.get(f"{base}{API}/users/999").status_code == 404

    folders = session.get(f"{base}{API}/folders").json()
    assert {"Protected", "Finance Certified", "Shared"} <= {f["name"] for f in folders}
    assert session.get(f"{base}{API}/folders/6").json()["name"] == "Protected"

    everyone = session.get(f"{base}{API}/scheduled_plans", params={"all_users": "true"}).json()
    mine = session.get(f"{base}{API}/scheduled_plans").json()
    assert len(everyone) == emulator.store.counts()["scheduled_plans"] and {p["enabled"] for p in everyone} == {
        True,
        False,
    }
    assert all(p["user_id"] == "1" for p in mine) and len(mine) < len(everyone)
    dashboard_id = everyone[0]["dashboard_id"]
    for_dashboard = session.get(
        f"{base}{API}/scheduled_plans/dashboard/{dashboard_id}", params={"all_users": "true"}
    ).json()
    assert for_dashboard and all(p["dashboard_id"] == dashboard_id for p in for_dashboard)


def test_counters_and_faults_on_looker_routes(emulator: LookerEmulator) -> None:
    session = login(emulator)
    base = emulator.base_url
    emulator.reset_counters()
    ids = emulator.store.dashboard_ids(deleted=False, lookml=False)[:3]
    for dashboard_id in ids:
        session.patch(f"{base}{API}/dashboards/{dashboard_id}", json={"hidden": False})
    session.get(f"{base}{API}/dashboards/search", params={"limit": 1})
    assert emulator.counters() == {
        "PATCH /api/4.0/dashboards/<dashboard_id>": 3,
        "GET /api/4.0/dashboards/search": 1,
        "total": 4,
    }

    emulator.faults.add(
        FaultRule(method="GET", path_pattern="/api/4.0/dashboards/search", status=429, after=2, times=None)
    )
    statuses = [session.get(f"{base}{API}/dashboards/search", params={"limit": 1}).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]


def test_latency_setting(emulator: LookerEmulator) -> None:
    session = login(emulator)
    emulator.latency_ms = 100
    started = time.perf_counter()
    session.get(f"{emulator.base_url}{API}/folders")
    assert time.perf_counter() - started >= 0.1


def test_state_file_survives_a_restart(tmp_path) -> None:
    state = tmp_path / "looker_state.json"
    with running_looker_emulator(n_dashboards=20, state_path=state) as first:
        assert state.exists()  # written at start, before any mutation
        session = login(first)
        base = first.base_url
        soft_id, hard_id = first.store.dashboard_ids(deleted=False, lookml=False)[:2]
        session.patch(f"{base}{API}/dashboards/{soft_id}", json={"deleted": True})
        session.delete(f"{base}{API}/dashboards/{hard_id}")
        created = session.post(f"{base}{API}/dashboards", json={"title": "Made here", "folder_id": "8"}).json()
    saved = json.loads(state.read_text())
    assert {d["id"] for d in saved["dashboards"]} >= {soft_id, created["id"]}

    # A different fixture is ignored: the state file wins.
    with running_looker_emulator(n_dashboards=5, seed=99, state_path=state) as second:
        assert second.store.dashboard(soft_id)["deleted"] is True
        assert second.store.dashboard(created["id"])["title"] == "Made here"
        assert hard_id not in second.store.dashboard_ids()
        session = login(second)
        newer = session.post(f"{second.base_url}{API}/dashboards", json={"title": "After", "folder_id": "8"}).json()
        assert int(newer["id"]) == int(created["id"]) + 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_store_that_never_changed_does_not_rewrite_the_state(tmp_path) -> None:
    state = tmp_path / "state.json"
    with running_looker_emulator(n_dashboards=5, state_path=state):
        pass
    saved = json.loads(state.read_text())
    saved["dashboards"][0]["title"] = "Changed by the emulator that is really running"
    state.write_text(json.dumps(saved))
    # A second process loads the state, fails to start (port taken, say) and closes: nothing written.
    store = LookerStore.open(fixture=None, state_path=state)
    store.close()
    assert json.loads(state.read_text())["dashboards"][0]["title"].startswith("Changed by")
    with pytest.raises(FileExistsError):
        write_text_atomic(state, "{}", overwrite=False)
    assert json.loads(state.read_text())["dashboards"][0]["title"].startswith("Changed by")


def test_the_search_index_follows_every_mutation_and_never_sorts_a_page() -> None:
    """The ``sorts=id`` paging reads the index; after trash, restore, create, import and delete it must list exactly
    what a full filter-and-sort would."""
    from sandbox.common import parse_fields
    from sandbox.looker.fixtures import generate_fixture
    from sandbox.looker.lookml import render_dashboard_lookml

    store = LookerStore(generate_fixture(3000, seed=3), copy_data=False)
    tree = parse_fields("id,deleted")

    def paged(deleted: bool) -> list[str]:
        pages = [
            store.search_dashboards(deleted=deleted, tree=tree, limit=700, offset=o, sorts="id")
            for o in range(0, 4000, 700)
        ]
        return [d["id"] for page in pages for d in page]

    def expected(deleted: bool) -> list[str]:  # the generic path: filter every record, then sort
        return [d["id"] for d in store.search_dashboards(deleted=deleted, tree=tree, sorts="title, id") if d]

    live = store.dashboard_ids(deleted=False, lookml=False)
    store.update_dashboard(live[10], {"deleted": True}, actor_id="1")
    store.update_dashboard(store.dashboard_ids(deleted=True)[0], {"deleted": False}, actor_id="1")
    store.delete_dashboard(live[20])
    made = store.create_dashboard({"title": "New", "folder_id": "3"}, actor_id="1")["id"]
    trashed_new = store.create_dashboard({"title": "Born deleted", "folder_id": "3", "deleted": True}, actor_id="1")
    lookml = render_dashboard_lookml(store.snapshot()["dashboards"][5])
    imported = store.import_lookml({"lookml": lookml}, actor_id="1")["id"]
    for deleted in (False, True):
        assert paged(deleted) == sorted(expected(deleted), key=int)
    assert made in paged(False) and imported in paged(False) and trashed_new["id"] in paged(True)
    assert live[20] not in paged(False) + paged(True) and live[10] in paged(True)

    # The paging itself never filters or sorts the records (that made a full scan quadratic): no timing needed.
    import sandbox.looker.store as store_module

    def no_sorting(*args: object, **kwargs: object) -> None:
        raise AssertionError("the sorts=id paging sorted every record")

    original = store_module._sort_records
    store_module._sort_records = no_sorting  # type: ignore[assignment]
    try:
        deep = store.search_dashboards(deleted=False, tree=tree, limit=100, offset=2800, sorts="id")
    finally:
        store_module._sort_records = original
    assert [d["id"] for d in deep] == paged(False)[2800:2900]

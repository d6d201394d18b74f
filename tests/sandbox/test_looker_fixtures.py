"""The Looker fixture generator and the LookML renderer/reader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sandbox.looker.fixtures import (
    PROTECTED_FOLDER_IDS,
    generate_fixture,
    iso,
    load_fixture,
    parse_iso,
    write_fixture,
)
from sandbox.looker.lookml import LookmlError, parse_dashboard_lookml, render_dashboard_lookml

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_same_seed_and_now_give_the_same_fixture() -> None:
    assert generate_fixture(120, seed=3, now=NOW) == generate_fixture(120, seed=3, now=NOW)
    assert generate_fixture(120, seed=3, now=NOW) != generate_fixture(120, seed=4, now=NOW)


def test_fixture_has_the_mix_cleanup_policies_need() -> None:
    data = generate_fixture(400, seed=7, now=NOW)
    users, dashboards, plans = data["users"], data["dashboards"], data["scheduled_plans"]
    udds = [d for d in dashboards if "::" not in d["id"]]
    lookml = [d for d in dashboards if "::" in d["id"]]

    assert len(users) == 20 and users[0]["id"] == "1"
    assert any(u["email"] is None for u in users) and all(u["display_name"] for u in users)
    assert {f["name"] for f in data["folders"]} >= {"Protected", "Finance Certified"}
    assert set(PROTECTED_FOLDER_IDS) <= {f["id"] for f in data["folders"]}

    assert [d["id"] for d in udds] == [str(i) for i in range(1, 401)]
    assert lookml and all(d["lookml_link_id"] == d["id"] and d["slug"] is None for d in lookml)
    assert any(d["lookml_link_id"] for d in udds)  # UDDs linked to LookML dashboards

    user_ids = {u["id"] for u in users}
    assert any(d["user_id"] not in user_ids for d in udds)  # owners gone from Looker
    deleted = [d for d in udds if d["deleted"]]
    assert deleted and all(d["deleted_at"] and d["deleter_id"] for d in deleted)

    created = [parse_iso(d["created_at"]) for d in udds]
    assert min(created) >= NOW - timedelta(days=3 * 365 + 1) and max(created) <= NOW
    ages = [(NOW - parse_iso(d["last_viewed_at"])).days for d in udds if d["last_viewed_at"]]
    assert any(a < 60 for a in ages) and any(100 <= a <= 400 for a in ages)
    assert any(d["last_viewed_at"] is None for d in udds)
    for d in udds:
        if d["last_viewed_at"]:
            assert parse_iso(d["last_viewed_at"]) >= parse_iso(d["created_at"])
    favourites = [d["favorite_count"] for d in udds]
    assert favourites.count(0) > len(udds) / 2 and any(f > 0 for f in favourites)

    for d in dashboards:
        assert 1 <= len(d["dashboard_elements"]) <= 6 and 0 <= len(d["dashboard_filters"]) <= 3
        assert all(e["dashboard_id"] == d["id"] for e in d["dashboard_elements"])
        assert all(f["dashboard_id"] == d["id"] for f in d["dashboard_filters"])
        (layout,) = d["dashboard_layouts"]
        assert [c["dashboard_element_id"] for c in layout["components"]] == [e["id"] for e in d["dashboard_elements"]]
        for e in d["dashboard_elements"]:
            if e["type"] == "vis":
                assert e["query"]["model"] and e["query"]["view"] and e["query"]["fields"]

    assert {p["enabled"] for p in plans} == {True, False}
    assert all(p["dashboard_id"] in {d["id"] for d in udds} for p in plans)
    assert all(isinstance(x["id"], str) for x in [*users, *dashboards, *plans])


def test_small_fixtures_still_have_every_awkward_case() -> None:
    data = generate_fixture(6, seed=1, now=NOW)
    udds = [d for d in data["dashboards"] if "::" not in d["id"]]
    assert len(data["users"]) == 5 and data["users"][4]["email"] is None
    assert udds[0]["folder_id"] == "6" and udds[1]["deleted"] and udds[3]["lookml_link_id"]
    assert udds[2]["user_id"] not in {u["id"] for u in data["users"]}
    assert any(p["dashboard_id"] == "5" and p["enabled"] for p in data["scheduled_plans"])
    assert any(p["dashboard_id"] == "6" and not p["enabled"] for p in data["scheduled_plans"])
    assert any(d["id"] == "thelook::sales_overview" for d in data["dashboards"])


def test_ten_thousand_dashboards() -> None:
    data = generate_fixture(10_000, seed=7, now=NOW)
    assert sum("::" not in d["id"] for d in data["dashboards"]) == 10_000
    assert len(data["users"]) == 500


def test_timestamps_are_utc_with_z() -> None:
    stamp = iso(datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))
    assert stamp == "2026-01-02T03:04:05.678Z"
    assert parse_iso(stamp) == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert iso(None) is None and parse_iso(None) is None


def test_write_and_load_fixture(tmp_path) -> None:
    data = generate_fixture(10, now=NOW)
    path = write_fixture(tmp_path / "sub" / "fixture.json", data)
    assert load_fixture(path) == data
    assert [p.name for p in path.parent.iterdir()] == ["fixture.json"]  # no temp files left behind
    (tmp_path / "bad.json").write_text('{"x": 1}')
    with pytest.raises(ValueError):
        load_fixture(tmp_path / "bad.json")


def test_lookml_round_trips_through_the_reader() -> None:
    dashboard = generate_fixture(12, seed=5, now=NOW)["dashboards"][7]
    text = render_dashboard_lookml(dashboard)
    spec = parse_dashboard_lookml(text)
    assert spec["title"] == dashboard["title"] and spec["preferred_slug"] == dashboard["slug"]
    assert len(spec["elements"]) == len(dashboard["dashboard_elements"])
    for element, parsed in zip(dashboard["dashboard_elements"], spec["elements"], strict=True):
        if element["type"] == "vis":
            assert parsed["fields"] == element["query"]["fields"]
            assert parsed["model"] == element["query"]["model"]
            assert parsed["explore"] == element["query"]["view"]
        else:
            assert parsed["type"] == "text" and parsed["body_text"] == element["body_text"]
    assert [f["name"] for f in spec.get("filters") or []] == [f["name"] for f in dashboard["dashboard_filters"]]


def test_lookml_reader_accepts_plain_scalars_and_rejects_garbage() -> None:
    spec = parse_dashboard_lookml(
        "- dashboard: hand_written\n"
        "  title: Hand Written\n"
        "  elements:\n"
        "  - name: tile\n"
        "    model: thelook\n"
        "    explore: users\n"
        "    fields: [users.count]\n"
        "    limit: 10\n"
        "  filters:\n"
        "  - name: Date\n"
        "    default_value: 7 days\n"
    )
    assert spec["dashboard"] == "hand_written" and spec["title"] == "Hand Written"
    assert spec["elements"] == [
        {"name": "tile", "model": "thelook", "explore": "users", "fields": ["users.count"], "limit": 10}
    ]
    assert spec["filters"] == [{"name": "Date", "default_value": "7 days"}]
    for garbage in ("", "just words", "- a: 1\n- b: 2\n", "- dashboard: x\n      title: over-indented\n"):
        with pytest.raises(LookmlError):
            parse_dashboard_lookml(garbage)

"""The reusable emulator base: counters, faults, latency, control endpoints, field projection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.common import (
    EmulatorHTTPError,
    EmulatorServer,
    FaultRule,
    apply_fields,
    json_response,
    parse_fields,
)


def _item(request: Request, item_id: str) -> Response:
    if item_id == "missing":
        raise EmulatorHTTPError(404, "no such item")
    if item_id == "boom":
        raise RuntimeError("handler bug")
    return json_response({"id": item_id, "method": request.method})


def _items(request: Request) -> Response:
    return json_response([{"id": "1", "name": "one", "meta": {"a": 1, "b": 2}}])


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    url_map = Map(
        [
            Rule("/v1/items", endpoint=_items, methods=["GET"]),
            Rule("/v1/items/<item_id>", endpoint=_item, methods=["GET", "PATCH"]),
        ]
    )
    with EmulatorServer(name="toy", url_map=url_map) as emu:
        yield emu


def test_start_picks_a_free_port_and_stop_releases_it() -> None:
    emu = EmulatorServer(name="toy", url_map=Map([]))
    url = emu.start()
    assert url.startswith("http://127.0.0.1:") and emu.port > 0
    assert requests.get(f"{url}/__emulator/health", timeout=5).json()["name"] == "toy"
    emu.stop()
    emu.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/__emulator/health", timeout=2)


def test_counters_use_the_rule_pattern_and_skip_control_routes(server: EmulatorServer) -> None:
    base = server.base_url
    requests.get(f"{base}/v1/items/1", timeout=5)
    requests.patch(f"{base}/v1/items/2", timeout=5)
    requests.patch(f"{base}/v1/items/3", timeout=5)
    requests.get(f"{base}/nope", timeout=5)
    requests.get(f"{base}/__emulator/health", timeout=5)
    requests.get(f"{base}/__emulator/counters", timeout=5)

    assert server.counters() == {
        "GET /v1/items/<item_id>": 1,
        "PATCH /v1/items/<item_id>": 2,
        "GET <unmatched>": 1,
        "total": 4,
    }
    assert requests.get(f"{base}/__emulator/counters", timeout=5).json()["total"] == 4
    assert requests.delete(f"{base}/__emulator/counters", timeout=5).ok
    assert server.counters() == {}


def test_errors_are_json(server: EmulatorServer) -> None:
    base = server.base_url
    unknown = requests.get(f"{base}/nope", timeout=5)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == 404
    missing = requests.get(f"{base}/v1/items/missing", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "no such item"
    crashed = requests.get(f"{base}/v1/items/boom", timeout=5)
    assert crashed.status_code == 500 and "error" in crashed.json()
    not_allowed = requests.delete(f"{base}/v1/items/1", timeout=5)
    assert not_allowed.status_code == 405


def test_fault_fires_times_then_stops(server: EmulatorServer) -> None:
    rule = server.faults.add(FaultRule(method="PATCH", path_pattern="/v1/items/*", status=503, times=2))
    statuses = [requests.patch(f"{server.base_url}/v1/items/{i}", timeout=5).status_code for i in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert requests.get(f"{server.base_url}/v1/items/1", timeout=5).ok  # other method untouched
    assert (rule.seen, rule.fired) == (4, 2)
    assert server.counters()["PATCH /v1/items/<item_id>"] == 4  # faulted requests are counted too


def test_fault_after_n_calls_with_retry_after_and_body(server: EmulatorServer) -> None:
    server.faults.add(
        FaultRule(path_pattern="/v1/items", status=429, times=None, after=2, retry_after=7, body={"custom": True})
    )
    replies = [requests.get(f"{server.base_url}/v1/items", timeout=5) for _ in range(4)]
    assert [r.status_code for r in replies] == [200, 200, 429, 429]
    assert replies[2].headers["Retry-After"] == "7"
    assert replies[3].json() == {"custom": True}
    server.faults.clear()
    assert requests.get(f"{server.base_url}/v1/items", timeout=5).ok


def test_delay_only_fault_lets_the_request_through_late(server: EmulatorServer) -> None:
    server.faults.add(FaultRule(path_pattern="/v1/items/1", status=None, delay_s=0.3))
    started = time.perf_counter()
    reply = requests.get(f"{server.base_url}/v1/items/1", timeout=5)
    assert reply.ok and time.perf_counter() - started >= 0.3
    with pytest.raises(requests.Timeout):
        server.faults.add(FaultRule(path_pattern="/v1/items/2", status=None, delay_s=2))
        requests.get(f"{server.base_url}/v1/items/2", timeout=0.2)


def test_stop_wakes_requests_sleeping_in_a_delay() -> None:
    emu = EmulatorServer(name="toy", url_map=Map([Rule("/x", endpoint=_items, methods=["GET"])]))
    emu.start()
    emu.faults.add(FaultRule(status=500, delay_s=30))
    done = threading.Event()

    def call() -> None:
        try:
            requests.get(f"{emu.base_url}/x", timeout=10)
        except requests.RequestException:
            pass
        done.set()

    threading.Thread(target=call, daemon=True).start()
    time.sleep(0.2)
    started = time.perf_counter()
    emu.stop()
    assert done.wait(5) and time.perf_counter() - started < 5


def test_latency_applies_to_api_routes_only(server: EmulatorServer) -> None:
    server.latency_ms = 150
    started = time.perf_counter()
    requests.get(f"{server.base_url}/v1/items", timeout=5)
    assert time.perf_counter() - started >= 0.15
    started = time.perf_counter()
    requests.get(f"{server.base_url}/__emulator/health", timeout=5)
    assert time.perf_counter() - started < 0.15
    assert requests.post(f"{server.base_url}/__emulator/latency", json={"ms": 0}, timeout=5).json() == {"ms": 0}
    assert server.latency_ms == 0
    with pytest.raises(ValueError):
        server.latency_ms = -1


def test_faults_over_http(server: EmulatorServer) -> None:
    base = server.base_url
    reply = requests.post(
        f"{base}/__emulator/faults", json=[{"method": "GET", "path_pattern": "/v1/items", "status": 502}], timeout=5
    )
    assert reply.json() == {"ok": True, "installed": 1}
    assert requests.get(f"{base}/v1/items", timeout=5).status_code == 502
    assert requests.get(f"{base}/__emulator/faults", timeout=5).json()[0]["fired"] == 1
    bad = requests.post(f"{base}/__emulator/faults", json=[{"stauts": 500}], timeout=5)
    assert bad.status_code == 400 and "stauts" in bad.json()["error"]["message"]
    assert requests.post(f"{base}/__emulator/faults", data="nope", timeout=5).status_code == 400
    assert requests.delete(f"{base}/__emulator/faults", timeout=5).ok
    assert requests.get(f"{base}/v1/items", timeout=5).ok


def test_fault_rule_validation() -> None:
    with pytest.raises(ValueError):
        FaultRule(status=42)
    with pytest.raises(ValueError):
        FaultRule(after=-1)
    assert FaultRule(method="patch").method == "PATCH"
    assert FaultRule(path_pattern="/a/*").matches("GET", "/a/b")
    assert not FaultRule(method="GET", path_pattern="/a/*").matches("PATCH", "/a/b")


def test_parse_and_apply_fields() -> None:
    assert parse_fields(None) is None and parse_fields(" ") is None
    tree = parse_fields("id, title,folder(id,name),elements(id,query(model))")
    assert tree == {
        "id": None,
        "title": None,
        "folder": {"id": None, "name": None},
        "elements": {"id": None, "query": {"model": None}},
    }
    data = {
        "id": "1",
        "title": "t",
        "extra": True,
        "folder": {"id": "2", "name": "f", "parent_id": None},
        "elements": [{"id": "3", "query": {"model": "m", "view": "v"}, "type": "vis"}],
    }
    assert apply_fields(data, tree) == {
        "id": "1",
        "title": "t",
        "folder": {"id": "2", "name": "f"},
        "elements": [{"id": "3", "query": {"model": "m"}}],
    }
    assert apply_fields([data], {"id": None}) == [{"id": "1"}]
    for broken in ("a(b", "a)b", "(a)"):
        with pytest.raises(ValueError):
            parse_fields(broken)

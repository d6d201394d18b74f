"""sandbox.runner: one shared emulator process, started on demand."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox.runner import emulator_health, ensure_running


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def started_pids() -> Iterator[list[int]]:
    """Pids of emulator processes a test started; each is sent SIGTERM afterwards."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def _wait_gone(port: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if emulator_health(port) is None:
            return True
        time.sleep(0.05)
    return False


def test_starts_once_then_reuses_and_keeps_state(tmp_path: Path, started_pids: list[int]) -> None:
    port = _free_port()
    state, log = tmp_path / "state.json", tmp_path / "looker.log"
    args = ["--generate", "15", "--state", str(state)]

    url = ensure_running("looker", module="sandbox.looker", port=port, args=args, log_path=log)
    health = emulator_health(port)
    assert url == f"http://127.0.0.1:{port}" and health is not None and health["name"] == "looker"
    started_pids.append(health["pid"])
    assert health["pid"] != os.getpid() and "starting looker" in log.read_text()

    # A second caller (another process in real life) reuses it: same pid, no new start line.
    assert ensure_running("looker", module="sandbox.looker", port=port, args=args, log_path=log) == url
    assert emulator_health(port)["pid"] == health["pid"]
    assert log.read_text().count("starting looker") == 1

    with pytest.raises(RuntimeError, match="taken by the 'looker' emulator"):
        ensure_running("sheets", module="sandbox.looker", port=port, args=[], log_path=log)

    token = requests.post(
        f"{url}/api/4.0/login", data={"client_id": "emulator", "client_secret": "emulator-secret"}, timeout=5
    ).json()["access_token"]
    requests.patch(
        f"{url}/api/4.0/dashboards/1", json={"deleted": True}, headers={"Authorization": f"Bearer {token}"}, timeout=5
    ).raise_for_status()

    os.kill(health["pid"], signal.SIGTERM)
    assert _wait_gone(port)
    # SIGTERM flushed the state: a restart serves the soft-deleted dashboard as deleted.
    ensure_running("looker", module="sandbox.looker", port=port, args=args, log_path=log)
    started_pids.append(emulator_health(port)["pid"])
    dashboard = requests.get(
        f"{url}/api/4.0/dashboards/1", headers={"Authorization": f"Bearer {_login(url)}"}, timeout=5
    ).json()
    assert dashboard["deleted"] is True


def _login(url: str) -> str:
    return requests.post(
        f"{url}/api/4.0/login", data={"client_id": "emulator", "client_secret": "emulator-secret"}, timeout=5
    ).json()["access_token"]


def test_a_process_that_dies_is_reported_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "broken.log"
    with pytest.raises(RuntimeError, match=str(log)):
        ensure_running("looker", module="sandbox.no_such_module", port=_free_port(), args=[], log_path=log, timeout=10)
    assert "No module named" in log.read_text()


def test_stop_running_stops_a_shared_emulator(tmp_path):
    import socket

    from sandbox.runner import emulator_health, ensure_running, stop_running

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert stop_running("looker", port=port) is False
    ensure_running("looker", module="sandbox.looker", port=port, args=["--generate", "5"], log_path=tmp_path / "l.log")
    assert emulator_health(port) is not None
    assert stop_running("looker", port=port) is True
    assert emulator_health(port) is None

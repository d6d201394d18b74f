"""`make demo` (scripts/demo.sh) without Airflow (DEMO_AIRFLOW=0): it seeds, runs the three jobs, serves the admin,
and Ctrl-C (SIGINT to its process group, as a terminal sends it) stops everything it started: the admin server and
the three emulators. Runs in a scratch DATAOPS_VAR_DIR on free ports, so a developer's own demo is left alone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sandbox.runner import emulator_health

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="needs the project's .venv"),
    # The demo runs on its embedded default (SQLite) whatever the suite's database: once, in the SQLite pass.
    pytest.mark.skipif(
        os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="runs once, in the SQLite pass (make test)"
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str, *, tries: int = 1) -> bool:
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 - loopback
                return reply.status == 200
        except OSError:
            if attempt + 1 < tries:
                time.sleep(1)
    return False


def _pids_of_group(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_ctrl_c_stops_the_server_and_the_three_emulators_the_demo_started(tmp_path):
    ports = {name: _free_port() for name in ("PORT", "LOOKER", "BIGQUERY", "SHEETS")}
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "AIRFLOW_API_URL")},
        "DATAOPS_VAR_DIR": str(tmp_path / "var"),
        "DEMO_AIRFLOW": "0",
        "DEMO_SALES_ROWS": "2000",
        "PORT": str(ports["PORT"]),
        "LOOKER_EMULATOR_PORT": str(ports["LOOKER"]),
        "BIGQUERY_EMULATOR_PORT": str(ports["BIGQUERY"]),
        "SHEETS_EMULATOR_PORT": str(ports["SHEETS"]),
    }
    log = (tmp_path / "demo.log").open("w")
    # As a terminal's foreground job: its own process group, SIGINT not ignored (a background job of a
    # non-interactive shell ignores SIGINT, and so would every process the demo starts).
    launch = (
        "import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "os.execvp('bash', ['bash', 'scripts/demo.sh'])"
    )
    demo = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, "-c", launch], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    emulators: dict[str, int] = {}
    try:
        # The admin answers once the database is migrated; the jobs run after the seed: wait for the last line.
        deadline = time.monotonic() + 600
        while "Ctrl-C stops the admin server" not in (tmp_path / "demo.log").read_text():
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "demo.log").read_text()[-3000:]
            time.sleep(1)
        assert _answers(f"http://127.0.0.1:{ports['PORT']}/admin/login/", tries=10), (tmp_path / "demo.log").read_text()
        for name in ("LOOKER", "BIGQUERY", "SHEETS"):
            health = emulator_health(ports[name])
            assert health is not None and isinstance(health.get("pid"), int), name
            emulators[name] = health["pid"]
        group = _pids_of_group(demo.pid)
        assert len(group) >= 2  # the script and the admin server

        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C
        assert demo.wait(timeout=120) == 130
    finally:
        if demo.poll() is None:  # a failed check above: let the demo clean up, then make sure
            os.killpg(demo.pid, signal.SIGINT)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
        for name in ("LOOKER", "BIGQUERY", "SHEETS"):
            health = emulator_health(ports[name])
            pid = health.get("pid") if health else emulators.get(name)
            if isinstance(pid, int) and _alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()

    output = (tmp_path / "demo.log").read_text()
    assert "looker_cleanup: JobRun #" in output and "sales_report: JobRun #" in output, output[-3000:]
    assert "sheets_sync: JobRun #" in output and "stopped the admin server" in output, output[-3000:]
    time.sleep(1)
    left = {name: pid for name, pid in emulators.items() if _alive(pid)}
    assert not left, f"emulators still running after Ctrl-C: {left}\n{output[-2000:]}"
    assert not [pid for pid in group if _alive(pid)], "processes of the demo still running after Ctrl-C"
    assert not _answers(f"http://127.0.0.1:{ports['PORT']}/admin/login/")

"""Start an emulator as a shared background process, or reuse the one already running.

In the embedded default several processes (the web server, a CLI job, a Celery worker) need the
same emulator. The first to ask starts it, detached, on a fixed port; the others find it through
its ``/__emulator/health`` endpoint. When two start it at the same moment, one of them cannot bind
the port and exits; both then see the survivor's health answer.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_POLL_INTERVAL_S = 0.1


def emulator_health(port: int, *, timeout: float = 0.5) -> dict | None:
    """The health document of whatever emulator listens on ``127.0.0.1:port``, or None."""
    url = f"http://127.0.0.1:{port}/__emulator/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - fixed loopback http URL
            data = json.loads(reply.read().decode("utf-8"))
    except (OSError, ValueError, http.client.HTTPException):  # e.g. IncompleteRead from a server shutting down
        return None
    return data if isinstance(data, dict) and data.get("ok") is True else None


def _check_name(name: str, port: int, health: dict) -> None:
    if health.get("name") != name:
        raise RuntimeError(
            f"port {port} is taken by the {health.get('name')!r} emulator, not {name!r}: choose another port for {name}"
        )


def ensure_running(
    name: str,
    *,
    module: str,
    port: int,
    args: list[str],
    log_path: Path,
    timeout: float = 15,
) -> str:
    """Return the base URL of the ``name`` emulator on ``port``, starting it if nothing answers.

    The process runs ``sys.executable -m module --port port *args`` in its own session (it
    outlives the caller), with output appended to ``log_path``. Raises ``RuntimeError`` naming
    the log file when it does not become healthy within ``timeout`` seconds, and when another
    emulator already holds the port.
    """
    base_url = f"http://127.0.0.1:{port}"
    health = emulator_health(port)
    if health is not None:
        _check_name(name, port, health)
        return base_url

    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}: -m {module} --port {port}\n".encode())
        log.flush()
        process = subprocess.Popen(
            [sys.executable, "-m", module, "--port", str(port), *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = emulator_health(port)
        if health is not None:
            _check_name(name, port, health)
            return base_url
        exit_code = process.poll()
        if exit_code is not None:
            # Lost a start-up race? Then another process's emulator is (about to be) healthy.
            health = _wait_for_health(port, until=min(deadline, time.monotonic() + 0.5))
            if health is not None:
                _check_name(name, port, health)
                return base_url
            raise RuntimeError(
                f"the {name} emulator exited with code {exit_code} before becoming healthy; see {log_path}"
            )
        time.sleep(_POLL_INTERVAL_S)
    process.terminate()  # ours, and useless if it cannot answer in time
    raise RuntimeError(f"the {name} emulator did not become healthy on port {port} within {timeout:g}s; see {log_path}")


def _wait_for_health(port: int, *, until: float) -> dict | None:
    while time.monotonic() < until:
        health = emulator_health(port)
        if health is not None:
            return health
        time.sleep(_POLL_INTERVAL_S)
    return None


def stop_running(name: str, *, port: int, timeout: float = 10) -> bool:
    """Stop the ``name`` emulator listening on ``port`` (SIGTERM to the pid its health reports).

    Returns False when none was running. Used when its fixture changes: a running emulator keeps
    serving the content it loaded at start.
    """
    health = emulator_health(port)
    if health is None:
        return False
    _check_name(name, port, health)
    pid = health.get("pid")
    if not isinstance(pid, int):
        raise RuntimeError(f"the {name} emulator on port {port} did not report its pid; stop it by hand")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if emulator_health(port, timeout=0.2) is None:
            return True
        time.sleep(_POLL_INTERVAL_S)
    raise RuntimeError(f"the {name} emulator (pid {pid}) on port {port} did not stop within {timeout:g}s")

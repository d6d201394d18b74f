"""A real Airflow 3.3 (from .venv-airflow) started by the test, with this project's DAGs, for the e2e tests."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_VENV = Path(os.environ.get("DATAOPS_AIRFLOW_VENV", ROOT / ".venv-airflow"))
SCRIPT = ROOT / "scripts" / "airflow.sh"


def airflow_installed() -> bool:
    return (AIRFLOW_VENV / "bin" / "airflow").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class LocalAirflow:
    base_url: str
    username: str
    password: str
    home: Path

    def logs(self, component: str = "scheduler", tail: int = 4000) -> str:
        path = self.home / "logs" / f"{component}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""


@pytest.fixture(scope="module")
def local_airflow(request, tmp_path_factory) -> Iterator[LocalAirflow]:
    """Start Airflow with ``scripts/airflow.sh`` and the env the DAG tasks need (``request.param``-free).

    The test module provides the task env through a fixture named ``airflow_task_env`` (a dict); the tasks
    inherit it, so ``manage.py run_job`` reaches the test database and the test's emulators.
    """
    require(airflow_installed(), f"needs Airflow 3.3 in {AIRFLOW_VENV} (scripts/airflow.sh install)")
    task_env: dict[str, str] = request.getfixturevalue("airflow_task_env")
    home = tmp_path_factory.mktemp("airflow-home")
    port = free_port()
    password = "test-airflow-pw"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CELERY_BROKER"))}
    env.update(task_env)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW_PORT": str(port),
            "AIRFLOW_PASSWORD": password,
            "AIRFLOW_VENV": str(AIRFLOW_VENV),
            # Scheduled DAGs would start their latest interval at once; the tests unpause what they trigger.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # No scheduled runs at all (sheets_sync's */5 would race the tests' own runs); triggered runs still run.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "DATAOPS_RETRIES": "2",
            "DATAOPS_RETRY_DELAY_S": "1",
            "DATAOPS_MAX_RETRY_DELAY_S": "5",
            "DATAOPS_PYTHON": str(ROOT / ".venv" / "bin" / "python"),
            "DATAOPS_PROJECT_DIR": str(ROOT),
        }
    )
    started = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=180)
    airflow = LocalAirflow(base_url=f"http://127.0.0.1:{port}", username="admin", password=password, home=home)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield airflow
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)

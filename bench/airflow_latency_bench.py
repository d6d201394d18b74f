"""Airflow trigger-to-success latency: a bare DAG (one trivial task) against a small job's DAG, in one run.

Issue 15: trigger to success of a small run was about 3x a bare Airflow task, every task paying ``run_job``'s
1.7-1.9 s start-up; the target is within 1.5x. The bench starts its own Airflow 3.3 with ``scripts/airflow.sh``
(own port, own ``AIRFLOW_HOME`` under /tmp, LocalExecutor, no scheduled runs) on a DAG folder holding:

- the project's ``dags/dataops_jobs.py`` (its ``audit_anchor`` DAG, triggered with ``{"dry_run": true}``: the
  small job, ``run_job audit_anchor --dry-run`` on a throwaway SQLite database);
- ``bench_bare``: one task that returns at once (what Airflow itself costs);
- ``bench_old_small_job``: the same small job run by the tree of an older commit (main's by default, exported
  with ``git archive``), so the start-up before and after is measured under the same load.

Each DAG is triggered ``--runs`` times in turn through the REST API; the figure is the DAG run's own
``end_date - start_date`` (Airflow's clock) and, beside it, trigger to success as the client sees it (the
POST until a poll every 0.1 s sees ``success``), then where the run's time went: its task's own start to end
(the task process: for the small job, the ``run_job`` process inside it) and the task's wait from queued to
started (the scheduler and the executor). Medians. Not a test: exits 0 whatever the figures; FAIL lines
(also on stderr) when the target is missed.

    .venv/bin/python bench/airflow_latency_bench.py            # 5 runs per DAG
    .venv/bin/python bench/airflow_latency_bench.py --runs 9 --old HEAD~3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

from _common import banner, load_now, medians, old_ref, tree_export, verdicts

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "airflow.sh"
AIRFLOW_VENV = Path(os.environ.get("DATAOPS_AIRFLOW_VENV", ROOT / ".venv-airflow"))
TARGET_RATIO = 1.5
ANCHOR_RATIO = 3.0

BENCH_DAGS = '''"""Benchmark DAGs (bench/airflow_latency_bench.py): a bare task, and the small job in an older tree."""

import os
import subprocess

from datetime import datetime

from airflow.sdk import DAG, task

with DAG(dag_id="bench_bare", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as bare:

    @task(task_id="noop")
    def noop() -> None:
        return None

    noop()

with DAG(dag_id="bench_old_small_job", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as old:

    @task(task_id="run_job")
    def run_job_old(**context) -> None:
        env = dict(os.environ, DATAOPS_VAR_DIR=os.environ["BENCH_OLD_VAR_DIR"])
        env["PYTHONPYCACHEPREFIX"] = os.environ["BENCH_OLD_PYCACHE"]
        dag_run = context["dag_run"]
        command = [os.environ["DATAOPS_PYTHON"], "manage.py", "run_job", "audit_anchor", "--trigger", "airflow",
                   "--airflow-dag-id", dag_run.dag_id, "--airflow-dag-run-id", dag_run.run_id, "--dry-run"]
        done = subprocess.run(command, cwd=os.environ["BENCH_OLD_TREE"], env=env, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"run_job failed: {done.returncode}")

    run_job_old()
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, base: str, password: str) -> None:
        self.base = base
        body = json.dumps({"username": "admin", "password": password}).encode()
        request = urllib.request.Request(  # noqa: S310 - a loopback http URL this bench built
            f"{base}/auth/token", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback URL we built
            self.token = json.load(response)["access_token"]

    def call(self, method: str, path: str, payload: dict | None = None) -> dict:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(  # noqa: S310 - a loopback http URL this bench built
            f"{self.base}/api/v2{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback URL we built
            return json.load(response)


def _wait_dags(api: Api, dag_ids: list[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        known = {d["dag_id"] for d in api.call("GET", "/dags?limit=100")["dags"]}
        if set(dag_ids) <= known:
            return
        time.sleep(1)
    raise RuntimeError(f"DAGs not parsed within {timeout} s: {sorted(set(dag_ids) - known)}")


def _run_once(api: Api, dag_id: str, conf: dict, timeout: float = 600) -> tuple[float, float, float, float]:
    """One DAG run: (Airflow's start-to-end seconds, the client's trigger-to-success seconds, the task's own
    start-to-end seconds, the task's queued-to-start seconds)."""
    started = time.perf_counter()
    run = api.call("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
    run_id = urllib.request.quote(run["dag_run_id"], safe="")
    while time.perf_counter() - started < timeout:
        state = api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        if state["state"] == "success":
            client = time.perf_counter() - started
            begin = datetime.fromisoformat(state["start_date"])
            end = datetime.fromisoformat(state["end_date"])
            task = api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"][0]
            task_begin = datetime.fromisoformat(task["start_date"])
            task_s = (datetime.fromisoformat(task["end_date"]) - task_begin).total_seconds()
            queued = task.get("queued_when")
            queued_s = (task_begin - datetime.fromisoformat(queued)).total_seconds() if queued else float("nan")
            return (end - begin).total_seconds(), client, task_s, queued_s
        if state["state"] == "failed":
            raise RuntimeError(f"{dag_id} run {run['dag_run_id']} failed")
        time.sleep(0.1)
    raise RuntimeError(f"{dag_id} run {run['dag_run_id']} did not finish in {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per DAG (median printed)")
    parser.add_argument("--old", default="", help="older commit for the before figure (default: /work/main's HEAD)")
    args = parser.parse_args()
    if not (AIRFLOW_VENV / "bin" / "airflow").exists():
        print(f"FAIL  needs Airflow in {AIRFLOW_VENV} (scripts/airflow.sh install)", file=sys.stderr)
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="airflow-bench-"))
    python = str(ROOT / ".venv" / "bin" / "python")
    port = _free_port()
    password = "bench-airflow-pw"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CELERY_BROKER"))}
    env.pop("DATABASE_URL", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        old_tree = scratch / "old-tree"
        sha = tree_export(ROOT, old_ref(args.old), old_tree)
        dags = scratch / "dags"
        dags.mkdir()
        shutil.copy(ROOT / "dags" / "dataops_jobs.py", dags / "dataops_jobs.py")
        (dags / "bench_dags.py").write_text(BENCH_DAGS, encoding="utf-8")
        env.update(
            AIRFLOW_HOME=str(scratch / "airflow"),
            AIRFLOW_PORT=str(port),
            AIRFLOW_PASSWORD=password,
            AIRFLOW_VENV=str(AIRFLOW_VENV),
            AIRFLOW__CORE__DAGS_FOLDER=str(dags),
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
            AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
            DATAOPS_PYTHON=python,
            DATAOPS_PROJECT_DIR=str(ROOT),
            DATAOPS_RETRIES="0",
            DJANGO_SECRET_KEY="airflow-bench",
            DATAOPS_VAR_DIR=str(scratch / "new-var"),
            PYTHONPYCACHEPREFIX=str(scratch / "new-pycache"),
            BENCH_OLD_TREE=str(old_tree),
            BENCH_OLD_VAR_DIR=str(scratch / "old-var"),
            BENCH_OLD_PYCACHE=str(scratch / "old-pycache"),
        )
        for tree, var, cache in ((ROOT, "new-var", "new-pycache"), (old_tree, "old-var", "old-pycache")):
            tree_env = dict(env, DATAOPS_VAR_DIR=str(scratch / var), PYTHONPYCACHEPREFIX=str(scratch / cache))
            (scratch / var).mkdir()
            subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=tree, env=tree_env, check=True)
            subprocess.run(
                [python, "manage.py", "run_job", "audit_anchor", "--dry-run"],
                cwd=tree,
                env=tree_env,
                check=True,
                capture_output=True,
            )  # warms the bytecode cache, as a deployed tree's is
        print(f"== starting Airflow on port {port} ({scratch / 'airflow'})", file=sys.stderr)
        started = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=600)
        if started.returncode != 0:
            raise RuntimeError(f"Airflow did not start:\n{started.stdout}\n{started.stderr}")
        api = Api(f"http://127.0.0.1:{port}", password)
        dag_confs = {"bench_bare": {}, "audit_anchor": {"dry_run": True}, "bench_old_small_job": {}}
        _wait_dags(api, list(dag_confs))
        for dag_id in dag_confs:
            api.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        for dag_id, conf in dag_confs.items():  # a first run each: DAG serialisation, the task runner's caches
            _run_once(api, dag_id, conf)
        load_before = load_now()
        figures: dict[str, list[tuple[float, float, float, float]]] = {d: [] for d in dag_confs}
        for _ in range(args.runs):
            for dag_id, conf in dag_confs.items():
                figures[dag_id].append(_run_once(api, dag_id, conf))
        load_after = load_now()
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=300)
        shutil.rmtree(scratch, ignore_errors=True)

    median = medians(figures)
    banner(
        "Airflow trigger-to-success latency (issue 15)",
        runs=f"{args.runs} per DAG after one warm-up each, in turn; medians; LocalExecutor; SQLite",
        load=(load_before, load_after),
    )
    labels = {
        "bench_bare": "bare DAG (one no-op task)",
        "audit_anchor": "small job (this tree)",
        "bench_old_small_job": f"small job (old tree {sha})",
    }
    print(
        f"{'DAG':36} {'run start->end s':>17} {'trigger->success s':>19} {'vs bare':>8} {'task s':>7} {'queued s':>9}"
    )
    bare = median["bench_bare"]
    for dag_id, (airflow_s, client_s, task_s, queued_s) in median.items():
        print(
            f"{labels[dag_id]:36} {airflow_s:17.2f} {client_s:19.2f} {airflow_s / bare[0]:7.2f}x {task_s:7.2f} "
            f"{queued_s:9.2f}"
        )
    ratio = median["audit_anchor"][0] / bare[0]
    ratio_client = median["audit_anchor"][1] / bare[1]
    old_ratio = median["bench_old_small_job"][0] / bare[0]
    print()
    print(
        f"small job / bare: {ratio:.2f}x (Airflow's clock), {ratio_client:.2f}x (trigger to success); "
        f"old tree {old_ratio:.2f}x; anchor about {ANCHOR_RATIO:.0f}x; target <= {TARGET_RATIO}x"
    )
    verdicts([(ratio <= TARGET_RATIO, f"small job within {TARGET_RATIO}x a bare task: {ratio:.2f}x")])
    return 0


if __name__ == "__main__":
    sys.exit(main())

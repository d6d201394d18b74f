"""The DAG files: they import in Airflow 3.3's own DagBag, and every DAG has an owner, tags and retries."""

from __future__ import annotations

import ast
import json
import os
import subprocess

import pytest

from tests.airflow.conftest import AIRFLOW_VENV, ROOT, airflow_installed
from tests.conftest import require

DAGS = ROOT / "dags"
EXPECTED = {
    "looker_cleanup",
    "sales_report",
    "sheets_sync",
    "audit_anchor",
    "monitoring_weekly_report",
    "approvals_sweep",
    "privacy_retention_purge",
}

DAGBAG_PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": {d.dag_id: {
        "owner": d.owner, "tags": sorted(d.tags), "catchup": d.catchup, "max_active_runs": d.max_active_runs,
        "schedule": str(d.schedule), "retries": [t.retries for t in d.tasks],
        "backoff": [float(t.retry_exponential_backoff) for t in d.tasks], "start": str(d.start_date),
    } for d in bag.dags.values()},
}))
"""


@pytest.mark.airflow
def test_dags_import_in_airflow_dagbag(tmp_path):
    require(airflow_installed(), f"needs Airflow 3.3 in {AIRFLOW_VENV} (scripts/airflow.sh install)")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run(
        [str(AIRFLOW_VENV / "bin" / "python"), "-c", DAGBAG_PROBE, str(DAGS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    bag = json.loads(out.stdout.strip().splitlines()[-1])
    assert bag["errors"] == {}
    assert set(bag["dags"]) == EXPECTED
    for dag_id, dag in bag["dags"].items():
        assert dag["owner"] == "data-platform" and "dataops" in dag["tags"], dag_id
        assert all(r >= 1 for r in dag["retries"]) and all(b > 1 for b in dag["backoff"]), dag_id
        assert dag["catchup"] is False and dag["max_active_runs"] == 1, dag_id
    assert bag["dags"]["sheets_sync"]["schedule"] == "*/5 * * * *"
    assert bag["dags"]["sales_report"]["schedule"] in ("None", "")


def test_dag_files_do_no_top_level_work():
    """Without Airflow at hand: the DAG files import no project or SDK module and call no client at module level."""
    for path in DAGS.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {
            (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        roots = {name.split(".")[0] for name in imported}
        allowed = {"__future__", "json", "os", "subprocess", "sys", "datetime", "typing", "airflow"}
        assert roots <= allowed, (path, roots)


def test_task_arguments_use_the_conf_job_run_or_the_dag_run(tmp_path):
    """--job-run-id from the conf, else the DAG run's own JobRun; conf values pass as plain arguments."""
    import importlib.util
    import sys
    import types

    fake = types.ModuleType("airflow.sdk")
    fake.DAG = object  # type: ignore[attr-defined]
    fake.task = None  # type: ignore[attr-defined]
    fake.Param = dict  # type: ignore[attr-defined]
    spec = importlib.util.spec_from_file_location("dataops_jobs_probe", DAGS / "dataops_jobs.py")
    module = importlib.util.module_from_spec(spec)
    source = (DAGS / "dataops_jobs.py").read_text().split("\nlooker_cleanup = ")[0]
    sys.modules.setdefault("airflow", types.ModuleType("airflow"))
    old = sys.modules.get("airflow.sdk")
    sys.modules["airflow.sdk"] = fake
    try:
        exec(compile(source, str(DAGS / "dataops_jobs.py"), "exec"), module.__dict__)  # noqa: S102
    finally:
        if old is None:
            del sys.modules["airflow.sdk"]
        else:
            sys.modules["airflow.sdk"] = old
    args = module.run_job_args("sales_report", dag_id="sales_report", run_id="dataops__7", conf={"job_run_id": 7})
    assert args == ["sales_report", "--job-run-id", "7"]
    hostile = "2026-01-01'; touch /tmp/pwned; : {{ var.value.secret }}"
    args = module.run_job_args(
        "sales_report", dag_id="sales_report", run_id="manual__{{ 7*7 }}", conf={"params": {"start": hostile}}
    )
    assert args[args.index("--airflow-dag-run-id") + 1] == "manual__{{ 7*7 }}"
    assert f"start={hostile}" in args  # one argument, as typed: no shell, no template rendering
    env_file = tmp_path / "dataops.env"
    env_file.write_text("# comment\nexport DATABASE_URL='postgres://x@h/db'\nDJANGO_SECRET_KEY=\"k=v\"\n")
    assert module.env_file_read(str(env_file)) == {"DATABASE_URL": "postgres://x@h/db", "DJANGO_SECRET_KEY": "k=v"}

"""Issue 15: a ``run_job`` process imports what its job needs when the job runs, not at Django set-up.

Each check runs in a fresh interpreter (this test process has imported everything already) and looks at
``sys.modules``; nothing here is timed (bench/startup_bench.py prints the figures).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataops_site.lazy import lazy_function

ROOT = Path(__file__).resolve().parents[2]

# The SDKs and engines a job may need; none of them is needed to start Django or to parse a job's arguments.
HEAVY = (
    "looker_sdk",
    "google.cloud.bigquery",
    "google.auth",
    "gspread",
    "polars",
    "pyarrow",
    "numpy",
    "duckdb",
    "sqlglot",
    "celery",
    "kombu",
    "airflow_client",
    "requests",
    "prometheus_client",
    "psutil",
)


def _modules_after(code: str, tmp_path: Path) -> dict:
    script = (
        "import json, os, sys\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'dataops_site.settings')\n"
        "import django\n"
        "django.setup()\n" + code + f"\nprint(json.dumps({{m: m in sys.modules for m in {list(HEAVY)!r}}}))\n"
    )
    env = {**os.environ, "DATAOPS_VAR_DIR": str(tmp_path), "DJANGO_SECRET_KEY": "t", "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_django_setup_and_the_job_registry_import_no_sdk(tmp_path):
    loaded = _modules_after(
        "from orchestration.registry import jobs_all\n"
        "assert {s.name for s in jobs_all()} >= {'looker_cleanup', 'sales_report', 'sheets_sync'}\n"
        "from django.contrib import admin\n"
        "assert not admin.site._registry, 'the admin is discovered by the URLconf, not at set-up'\n"
        "assert not [m for m in sys.modules if m.endswith('.admin') and not m.startswith('django.')]\n"
        "assert 'rest_framework.views' not in sys.modules and 'rest_framework.serializers' not in sys.modules\n"
        "from approvals.registry import approval_action_get\n"
        "assert approval_action_get('cleanup.run').name == 'cleanup.run'\n"
        "assert approval_action_get('sales.review_publish') is not None\n",
        tmp_path,
    )
    assert [m for m, present in loaded.items() if present] == []


def test_the_checks_and_the_urlconf_discover_the_admin_without_an_sdk(tmp_path):
    loaded = _modules_after(
        "from django.contrib import admin\n"
        "from accounts.apps import check_admin_app_discovered\n"
        "from django.core.checks import registry\n"
        "assert check_admin_app_discovered in registry.registry.registered_checks  # manage.py check runs it\n"
        "assert check_admin_app_discovered(None) == []\n"
        "assert len(admin.site._registry) > 20, 'the admin checks discovered the admin'\n"
        f"heavy = [m for m in {list(HEAVY)!r} if m in sys.modules]\n"
        "assert heavy == [], f'the admin modules imported {heavy}'\n"
        # The URLconf imports the API's views (and the SDKs with them): a web process, not a job's start-up.
        "from django.urls import reverse\n"
        "assert reverse('admin:audit_auditevent_changelist') == '/admin/audit/auditevent/'\n"
        "assert admin.site.site_header == 'DataOps control plane'\n",
        tmp_path,
    )
    assert loaded["looker_sdk"] is True  # the URLconf was loaded after the admin's discovery


def test_run_job_command_parses_its_arguments_without_an_sdk(tmp_path):
    loaded = _modules_after(
        "from django.core.management import load_command_class\n"
        "command = load_command_class('orchestration', 'run_job')\n"
        "parser = command.create_parser('manage.py', 'run_job')\n"
        "options = parser.parse_args(['looker_cleanup', '--dry-run', '--param', 'limit=5'])\n"
        "assert options.job == 'looker_cleanup' and options.dry_run\n"
        "assert command.requires_system_checks == []\n",
        tmp_path,
    )
    assert [m for m, present in loaded.items() if present] == []


def test_a_tasks_module_loads_the_projects_celery_app_and_its_hooks(tmp_path):
    loaded = _modules_after(
        "import orchestration.tasks\n"
        "from celery import current_app\n"
        "from celery.signals import task_postrun\n"
        "assert current_app.main == 'dataops_site', current_app.main\n"
        "from dataops_site import celery_app\n"
        "assert celery_app is current_app._get_current_object()\n"
        "schedule = celery_app.conf.beat_schedule\n"
        "assert type(schedule['monitoring-weekly-report']['schedule']).__name__ == 'crontab'\n"
        "assert any('monitoring_usage_flush' in str(r[0]) for r in task_postrun.receivers)\n",
        tmp_path,
    )
    assert loaded["celery"] is True


def test_lazy_function_imports_on_call_and_sees_a_patched_target(monkeypatch):
    import monitoring.constants as target_module

    sentinel = lazy_function("monitoring.constants.job_duration_label")
    monkeypatch.setattr(target_module, "job_duration_label", lambda value: f"label {value}", raising=False)
    assert sentinel(3) == "label 3"
    assert sentinel.__name__ == "job_duration_label"
    with pytest.raises(ValueError, match="package.module.name"):
        lazy_function("nodots")
    with pytest.raises(AttributeError):
        lazy_function("monitoring.constants.no_such_function")()


def test_a_job_runs_lineage_without_the_openlineage_client_and_its_transports(tmp_path):
    """Unconfigured (no OPENLINEAGE* variable, no openlineage.yml), a job's START/COMPLETE events need only the
    event classes: neither openlineage-python's client nor its transports (requests, httpx, asyncio) are imported.
    Once the client is asked for, it loads whole and works."""
    script = (
        "for name in [k for k in os.environ if k.startswith('OPENLINEAGE')]:\n"
        "    del os.environ[name]\n"
        "import lineage.services\n"
        "from lineage.extractors import job_lineage_declared\n"
        "light = [m for m in ('openlineage.client.client', 'openlineage.client.transport', 'requests', 'httpx')"
        " if m in sys.modules]\n"
        "assert light == [], light\n"
        "assert not lineage.services.lineage_library_configured()\n"
        "from openlineage.client import OpenLineageClient, set_producer\n"
        "assert OpenLineageClient.__module__ == 'openlineage.client.client' and callable(set_producer)\n"
        "assert 'openlineage.client.transport' in sys.modules\n"
    )
    _modules_after(script, tmp_path)

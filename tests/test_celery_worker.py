"""An admin-style trigger queues a JobRun on Redis; a real Celery worker process executes it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from orchestration.models import JobRun
from orchestration.services import job_run_request

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
# A Redis database of its own (override when several checkouts run the suite on one machine).
BROKER = os.environ.get("DATAOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _producer_use(app, *, broker_url: str, eager: bool) -> None:
    """Point this process's producer at another broker, dropping pooled connections (as Celery does after fork)."""
    app.conf.update(broker_url=broker_url, task_always_eager=eager)
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def celery_worker_process(require_postgres, require_redis, looker, settings, tmp_path):
    """A `celery worker` subprocess on the Redis broker, using the test database and this test's emulator."""
    from dataops_site.celery import app
    from sandbox.looker import EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET

    old_broker = app.conf.broker_url
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": BROKER,
        "LOOKERSDK_BASE_URL": looker.base_url,
        "LOOKERSDK_CLIENT_ID": EMULATOR_CLIENT_ID,
        "LOOKERSDK_CLIENT_SECRET": EMULATOR_CLIENT_SECRET,
        "BACKUP_STORAGE_URL": f"file://{tmp_path / 'worker-backups'}",
        "DJANGO_SECRET_KEY": "test",
        "EMAIL_URL": "dummymail://",
    }
    log_path = tmp_path / "worker.log"
    command = [sys.executable, "-m", "celery", "-A", "dataops_site", "worker", "--pool", "solo", "--loglevel", "INFO"]
    command += ["--without-heartbeat", "--without-gossip", "--without-mingle"]
    worker = None
    try:
        _producer_use(app, broker_url=BROKER, eager=False)
        settings.CELERY_TASK_ALWAYS_EAGER = False
        app.control.purge()  # messages left by an interrupted earlier run must not reach this worker
        with open(log_path, "w") as log:
            worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while "ready." not in log_path.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield worker, log_path
    finally:
        _producer_use(app, broker_url=old_broker, eager=True)
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()


def test_real_worker_runs_a_queued_cleanup(celery_worker_process, role_user):
    worker, log_path = celery_worker_process
    from cleanup.models import ProtectedFolder

    ProtectedFolder.objects.get_or_create(folder_id="6", defaults={"reason": "certified"})
    admin = role_user("Content Admin")
    run = job_run_request(job="looker_cleanup", params={}, dry_run=True, actor=admin)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_finished:
            break
        assert worker.poll() is None, f"worker died:\n{log_path.read_text()}"
        time.sleep(0.3)
    assert run.status == JobRun.Status.SUCCEEDED, f"{run.status} {run.error}\n{log_path.read_text()[-3000:]}"
    assert run.details["plan_ids"] and run.trigger == "admin" and run.actor == admin
    assert "orchestration.job_run_execute" in log_path.read_text()

"""Never lose a dashboard: faults at every step leave a consistent state, and a rerun finishes the work
without repeating a deletion, a backup or an email."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.storage import FileSystemStorage
from django.utils import timezone

from audit.selectors import audit_chain_verify
from cleanup import services
from cleanup.models import CleanupAction, DashboardBackup
from connectors.looker import LookerClient
from orchestration.models import JobRun
from sandbox.common import FaultRule
from tests.cleanup.conftest import backup_files, patch_count
from tests.cleanup.test_cleanup_job import run_job
from tests.looker_estate import EXPECTED_PLAN, OWNER_EMAIL

pytestmark = pytest.mark.django_db
OWNERS_DASHBOARDS = ("102", "106", "111", "112", "113")


class SimulatedCrash(BaseException):
    """Stands for the process dying (kill -9, OOM): nothing in the app may catch it."""


def assert_final_state(looker, settings, *, patches: int) -> None:
    """Every planned dashboard is deleted exactly once, with exactly one verified backup, owner told once."""
    for looker_id in EXPECTED_PLAN:
        assert looker.store.dashboard(looker_id)["deleted"] is True, looker_id
        assert DashboardBackup.objects.filter(dashboard__looker_id=looker_id).count() == 1
        assert CleanupAction.objects.filter(dashboard__looker_id=looker_id, status="deleted").count() == 1
    assert patch_count(looker) == patches
    assert len(backup_files(settings)) == len(EXPECTED_PLAN)
    owner_mail = [m.body for m in mail.outbox if m.to == [OWNER_EMAIL]]
    for looker_id in OWNERS_DASHBOARDS:  # each deletion announced exactly once, across all runs
        assert sum(f"id {looker_id}," in body for body in owner_mail) == 1, looker_id
    assert CleanupAction.objects.filter(status="deleted", owner_notified_at__isnull=True).count() == 0
    assert audit_chain_verify().ok


def no_deletion_without_backup() -> None:
    for action in CleanupAction.objects.filter(status="deleted"):
        assert action.backup is not None and action.backup.verified_at is not None


@pytest.mark.parametrize(
    ("rule", "step"),
    [
        (FaultRule(method="GET", path_pattern="/api/4.0/dashboards/102", status=500, times=None), "backup"),
        (
            FaultRule(method="GET", path_pattern="/api/4.0/dashboards/102", status=429, retry_after=0, times=None),
            "backup",
        ),
        (
            FaultRule(method="GET", path_pattern="/api/4.0/dashboards/102", status=None, delay_s=2.5, times=None),
            "backup",
        ),
        (FaultRule(method="GET", path_pattern="/api/4.0/dashboards/lookml/102", status=502, times=None), "backup"),
        (FaultRule(method="PATCH", path_pattern="/api/4.0/dashboards/102", status=500, times=None), "soft_delete"),
        (
            FaultRule(method="PATCH", path_pattern="/api/4.0/dashboards/102", status=429, retry_after=0, times=None),
            "soft_delete",
        ),
    ],
    ids=["export-500", "export-429", "export-timeout", "lookml-502", "delete-500", "delete-429"],
)
def test_persistent_fault_on_one_dashboard_spares_it_and_rerun_finishes(looker, settings, rule, step):
    looker.faults.add(rule)
    code, out = run_job("looker_cleanup")
    assert code == 1 and "1 of 7 dashboards failed" in out
    failed = CleanupAction.objects.get(dashboard__looker_id="102")
    assert failed.status == "failed" and failed.error.startswith(step)
    assert looker.store.dashboard("102")["deleted"] is False
    for looker_id in set(EXPECTED_PLAN) - {"102"}:
        assert looker.store.dashboard(looker_id)["deleted"] is True
    no_deletion_without_backup()

    looker.faults.clear()
    code, out = run_job("looker_cleanup")
    assert code == 0, out
    # A persistent 429 is requeued (10 times) behind a pool-wide pause before the dashboard is given up.
    tries = settings.LOOKER_MAX_ATTEMPTS * (11 if rule.status == 429 else 1)
    failed_patches = tries if step == "soft_delete" else 0
    assert_final_state(looker, settings, patches=len(EXPECTED_PLAN) + failed_patches)


def test_transient_faults_are_retried_within_the_run(looker, settings):
    looker.faults.add(
        FaultRule(method="PATCH", path_pattern="/api/4.0/dashboards/*", status=429, times=2, retry_after=0)
    )
    looker.faults.add(FaultRule(method="GET", path_pattern="/api/4.0/dashboards/1*", status=503, times=2))
    code, out = run_job("looker_cleanup")
    assert code == 0, out
    assert_final_state(looker, settings, patches=len(EXPECTED_PLAN) + 2)


def test_429_storm_longer_than_the_retries_pauses_the_pool_and_loses_nothing(looker, settings):
    """20 consecutive 429s: more than every call's own retries (3) can absorb; the pool backs off and requeues."""
    looker.faults.add(FaultRule(method="PATCH", path_pattern="/api/4.0/dashboards/*", status=429, times=20))
    looker.faults.add(FaultRule(method="GET", path_pattern="/api/4.0/dashboards/1*", status=429, times=8))
    code, out = run_job("looker_cleanup")
    assert code == 0, out
    run = JobRun.objects.get()
    assert run.counters["rate_limited_requeues"] >= 1 and run.counters["deleted"] == len(EXPECTED_PLAN)
    assert_final_state(looker, settings, patches=len(EXPECTED_PLAN) + 20)


def test_timeout_on_delete_that_looker_performed_is_reconciled(looker, settings):
    """The PATCH times out on our side but Looker did delete it: the rerun records it, never deletes twice."""
    looker.faults.add(
        FaultRule(method="PATCH", path_pattern="/api/4.0/dashboards/106", status=None, delay_s=2.5, times=None)
    )
    code, _ = run_job("looker_cleanup")
    assert code == 1
    assert CleanupAction.objects.get(dashboard__looker_id="106").status == "failed"
    looker.faults.clear()
    # The emulator finishes the last late PATCH a moment after the client gave up on it: wait for Looker to
    # have performed the delete, which is the situation this test is about.
    deadline = time.monotonic() + 5
    while not looker.store.dashboard("106")["deleted"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert looker.store.dashboard("106")["deleted"] is True
    patches = patch_count(looker)
    code, out = run_job("looker_cleanup")
    assert code == 0, out
    assert looker.store.dashboard("106")["deleted"] is True
    assert patch_count(looker) == patches  # nothing left to delete: 106 was reconciled, not deleted again
    assert JobRun.objects.order_by("-pk").first().counters["reconciled_deleted"] >= 1
    assert len([m for m in mail.outbox if m.to == [OWNER_EMAIL]]) == 2  # the first run's, then 106's


class BrokenStorage(FileSystemStorage):
    def _save(self, name, content):
        raise OSError("bucket unavailable")


class CorruptingStorage(FileSystemStorage):
    def open(self, name, mode="rb"):
        from django.core.files.base import ContentFile

        return ContentFile(b"{}")


@pytest.mark.parametrize("backend", [BrokenStorage, CorruptingStorage], ids=["store-down", "store-corrupts"])
def test_failing_backup_store_deletes_nothing(looker, settings, backend):
    location = settings.STORAGES["backups"]["OPTIONS"]["location"]
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {"BACKEND": f"{backend.__module__}.{backend.__qualname__}", "OPTIONS": {"location": location}},
    }
    code, out = run_job("looker_cleanup")
    assert code == 1 and "7 of 7 dashboards failed" in out
    assert patch_count(looker) == 0
    assert all(a.status == "failed" and a.backup is None for a in CleanupAction.objects.filter(kind="soft_delete"))
    assert not [m for m in mail.outbox if m.to == [OWNER_EMAIL]]

    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": location}},
    }
    code, out = run_job("looker_cleanup")
    assert code == 0, out
    assert_final_state(looker, settings, patches=len(EXPECTED_PLAN))


def _stale_running_runs() -> None:
    JobRun.objects.filter(status="running").update(heartbeat_at=timezone.now() - timedelta(hours=2))


def test_crash_between_backup_and_delete(looker, settings, monkeypatch):
    real = LookerClient.dashboard_soft_delete
    calls = itertools.count(1)

    def crash_on_third(self, *, dashboard_id):
        if next(calls) == 3:
            raise SimulatedCrash("process killed after the backup, before the delete")
        return real(self, dashboard_id=dashboard_id)

    monkeypatch.setattr(LookerClient, "dashboard_soft_delete", crash_on_third)
    with pytest.raises(SimulatedCrash):
        run_job("looker_cleanup")
    monkeypatch.setattr(LookerClient, "dashboard_soft_delete", real)
    crashed = JobRun.objects.get()
    assert crashed.status == "running"  # the process died: nothing recorded an end
    no_deletion_without_backup()
    assert CleanupAction.objects.filter(status="backed_up").exists()

    # Right after the crash the run still looks alive: a second run refuses to overlap it.
    code, out = run_job("looker_cleanup")
    assert code == 1 and "is in progress" in out
    _stale_running_runs()
    patches = patch_count(looker)
    deleted_before = sum(1 for i in EXPECTED_PLAN if looker.store.dashboard(i)["deleted"])
    code, out = run_job("looker_cleanup")
    assert code == 0, out
    assert JobRun.objects.get(pk=crashed.pk).status == "failed"
    assert patch_count(looker) == patches + (len(EXPECTED_PLAN) - deleted_before)
    assert_final_state(looker, settings, patches=patch_count(looker))


def test_crash_after_delete_before_it_was_recorded(looker, settings, monkeypatch):
    real = services._record_deleted
    calls = itertools.count(1)

    def crash_on_second(action, summary):
        if next(calls) == 2:
            raise SimulatedCrash("process killed after Looker deleted it, before the outcome was saved")
        return real(action, summary)

    monkeypatch.setattr(services, "_record_deleted", crash_on_second)
    with pytest.raises(SimulatedCrash):
        run_job("looker_cleanup")
    monkeypatch.setattr(services, "_record_deleted", real)
    _stale_running_runs()
    code, out = run_job("looker_cleanup")
    assert code == 0, out
    # Each dashboard was PATCHed exactly once across both runs; the lost outcome was reconciled.
    assert JobRun.objects.order_by("-pk").first().counters["reconciled_deleted"] >= 1
    assert_final_state(looker, settings, patches=len(EXPECTED_PLAN))


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(method="GET", path_pattern="/api/4.0/dashboards/search", status=500, times=None),
        FaultRule(method="GET", path_pattern="/api/4.0/dashboards/search", status=None, delay_s=2.5, times=None),
        FaultRule(method="GET", path_pattern="/api/4.0/users", status=429, retry_after=0, times=None),
        FaultRule(method="GET", path_pattern="/api/4.0/dashboards/search", status=200, body={"not": "a list"}),
        FaultRule(method="POST", path_pattern="/api/4.0/login", status=401, times=None),
    ],
    ids=["search-500", "search-timeout", "users-429", "search-odd-reply", "login-refused"],
)
def test_inventory_failure_changes_nothing_and_says_why(looker, settings, rule):
    looker.faults.add(rule)
    code, out = run_job("looker_cleanup")
    assert code == 1
    run = JobRun.objects.get()
    assert run.status == "failed" and run.error.startswith("could not read the Looker inventory: Looker")
    assert patch_count(looker) == 0 and not CleanupAction.objects.exists()
    looker.faults.clear()
    code, out = run_job("looker_cleanup")
    assert code == 0, out
    assert_final_state(looker, settings, patches=len(EXPECTED_PLAN))

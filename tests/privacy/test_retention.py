"""The retention purge: what is past its period goes (dry run first), what is not stays, audited with counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import audit_chain_verify
from orchestration.registry import job_get
from quality.models import CheckResult, QuarantinedRow
from sheetsync.models import SyncEvent
from tests.cleanup.test_cleanup_job import run_job
from tests.privacy import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def aged(settings):
    settings.RETENTION_QUARANTINE_DAYS = 90
    settings.RETENTION_SAMPLES_DAYS = 90
    settings.RETENTION_SYNC_EVENT_DETAILS_DAYS = 30
    now = timezone.now()
    old_run, new_run = factories.quality_run(at=now - timedelta(days=91)), factories.quality_run()
    factories.quarantined(old_run, n=2, at=now - timedelta(days=91))
    factories.quarantined(new_run, n=1, at=now - timedelta(days=89))
    factories.check_result(old_run), factories.check_result(new_run)
    factories.sync_event(details={"cell": factories.EMAIL}, at=now - timedelta(days=31))
    factories.sync_event(details={"cell": "kept"}, at=now - timedelta(days=29))
    return old_run, new_run


def test_dry_run_counts_and_changes_nothing(aged):
    code, out = run_job("privacy_retention_purge", "--dry-run")
    assert code == 0, out
    assert "DRY RUN: would purge: quarantined rows deleted: 2, samples emptied: 1, sync event details emptied: 1" in out
    assert QuarantinedRow.objects.count() == 3 and not AuditEvent.objects.filter(action="privacy.retention_purged")


def test_purge_removes_only_what_is_past_its_period_and_is_audited_with_counts(aged):
    old_run, new_run = aged
    code, out = run_job("privacy_retention_purge")
    assert code == 0, out
    assert list(QuarantinedRow.objects.values_list("quality_run", flat=True)) == [new_run.pk]
    assert CheckResult.objects.get(quality_run=old_run).sample_keys == []
    assert CheckResult.objects.get(quality_run=new_run).sample_keys == [["O1", 1], ["O2", 1]]
    assert CheckResult.objects.get(quality_run=old_run).failed_count == 2  # the count stays
    assert sorted(str(e.details) for e in SyncEvent.objects.all()) == ["{'cell': 'kept'}", "{}"]
    event = AuditEvent.objects.get(action="privacy.retention_purged")
    assert event.data["quarantined_rows_deleted"] == 2 and event.data["samples_emptied"] == 1
    assert event.data["periods_days"] == {"quarantine": 90, "samples": 90, "sync_event_details": 30,
                                          "access_records": 365}  # fmt: skip
    assert "example.com" not in str(event.data)
    assert audit_chain_verify().ok
    # A second run finds nothing more to do.
    code, out = run_job("privacy_retention_purge")
    assert "quarantined rows deleted: 0, samples emptied: 0, sync event details emptied: 0" in out


def test_a_period_below_one_day_is_refused(settings, aged):
    settings.RETENTION_QUARANTINE_DAYS = 0
    code, out = run_job("privacy_retention_purge")
    assert code != 0 and "must be at least 1 day" in out
    assert QuarantinedRow.objects.count() == 3


def test_the_job_is_registered_with_its_permission_and_dry_run():
    spec = job_get("privacy_retention_purge")
    assert spec.supports_dry_run and spec.permission == "privacy.run_retention_purge"

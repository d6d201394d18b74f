"""Anchors through django-storages' GCS backend (production's store), against the GCS emulator on loopback."""

from __future__ import annotations

import pytest
from django.core.files.storage import storages

from audit.anchor import anchors_read
from audit.selectors import audit_chain_verify
from audit.services import audit_log
from orchestration.models import JobRun
from orchestration.services import job_run_create, job_run_execute
from tests.cleanup.test_backup_gcs import gcs_backups  # noqa: F401 - the emulator fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def gcs_anchors(gcs_backups, settings):  # noqa: F811
    from dataops_site.settings import _backup_storage

    settings.STORAGES = {**settings.STORAGES, "audit_anchors": _backup_storage("gs://backups/audit")}
    return gcs_backups


def _anchor() -> JobRun:
    run = job_run_execute(job_run_id=job_run_create(job="audit_anchor").pk)
    assert run.status == JobRun.Status.SUCCEEDED, run.error
    return run


def test_anchors_round_trip_on_gcs_and_a_deleted_one_is_reported(gcs_anchors):
    audit_log(action="job.started", data={"attempt": 1})
    first, second = _anchor(), _anchor()
    found = anchors_read()
    assert {a.name for a in found.anchors} == {first.details["anchor"]["name"], second.details["anchor"]["name"]}
    assert all(a.signed for a in found.anchors) and not found.invalid
    verdict = audit_chain_verify()
    assert verdict.ok and verdict.anchors_checked == 2 and verdict.last_anchor_seq == second.details["anchor"]["seq"]
    storages["audit_anchors"].delete(first.details["anchor"]["name"])
    verdict = audit_chain_verify()
    assert not verdict.ok and verdict.kind == "anchor_missing"

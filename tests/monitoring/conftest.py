"""Monitoring tests: emulators with fault injection (Looker here; BigQuery and Sheets from the sales tests), people
on every rung of the escalation ladder, a local webhook receiver, and helpers to run jobs and read incident mail."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from tests.sales.conftest import bigquery, sales_dirs, sheet  # noqa: F401 - fixtures shared with the sales tests
from tests.sheetsync.conftest import files, make_target, sheets  # noqa: F401 - and with the sync tests

INCIDENT_PREFIX = "[DataOps incident"


@pytest.fixture(autouse=True)
def _quiet_slas(db):
    """The seeded example SLAs stay out of tests that do not ask for them (their breaches would add incidents)."""
    from monitoring.models import Sla

    Sla.objects.update(enabled=False)


@pytest.fixture
def ladder(role_user) -> dict[str, Any]:
    """One person per rung: the owner (who requests the runs), a Data Steward, a Platform Admin."""
    return {
        "owner": role_user("Content Admin", "owner"),
        "steward": role_user("Data Steward", "steward"),
        "admin": role_user("Platform Admin", "admin"),
    }


@pytest.fixture
def webhook(httpserver, settings):
    """A local HTTP receiver standing in for Slack: every incident notification posts its JSON here."""
    httpserver.no_handler_status_code = 404
    httpserver.expect_request("/hook", method="POST").respond_with_json({"ok": True})
    settings.MONITORING_WEBHOOK_URLS = [httpserver.url_for("/hook")]
    return httpserver


def execute(job: str, *, actor: Any = None, params: dict[str, Any] | None = None, dry_run: bool = False):
    """Create and execute a run in this process (as a Celery worker or ``run_job`` would)."""
    from orchestration.services import job_run_create, job_run_execute

    run = job_run_create(job=job, actor=actor, params=params or {}, dry_run=dry_run)
    return job_run_execute(job_run_id=run.pk)


def incident_mail() -> list[tuple[str, set[str]]]:
    """(subject, recipients) of every incident e-mail sent so far."""
    return [(m.subject, set(m.to)) for m in mail.outbox if m.subject.startswith(INCIDENT_PREFIX)]


def timeline(incident) -> list[str]:
    return list(incident.events.order_by("pk").values_list("kind", flat=True))


def webhook_posts(server) -> list[dict[str, Any]]:
    return [request.get_json() for request, _response in server.log if request.path == "/hook"]

"""The admin shows Auditors the chain's state: intact up to #N and last anchored at T, or the first broken link."""

from __future__ import annotations

import pytest

from audit.services import audit_log
from orchestration.services import job_run_create, job_run_execute
from tests.audit.tamper import rehash_from, tamper

pytestmark = pytest.mark.django_db

LIST = "/admin/audit/auditevent/"
VERIFY = "/admin/audit/auditevent/verify/"


def _events(n: int) -> None:
    for i in range(n):
        audit_log(action="job.started", object_type="thing", object_id=str(i), data={"attempt": i})


def test_auditor_sees_an_intact_anchored_chain(client, role_user):
    _events(3)
    run = job_run_execute(job_run_id=job_run_create(job="audit_anchor").pk)
    anchored = run.details["anchor"]["seq"]
    client.force_login(role_user("Auditor"))
    body = client.get(LIST).content.decode()
    assert "Audit chain intact up to #" in body and f"(#{anchored})" in body and "last anchored at" in body
    assert "Verify now" in body


def test_verify_now_names_the_first_broken_link_at_once(client, role_user):
    _events(4)
    client.force_login(role_user("Auditor"))
    assert "Audit chain intact up to #" in client.get(LIST).content.decode()
    tamper("UPDATE audit_auditevent SET object_id = %s WHERE seq = %s", ["edited", 2])
    rehash_from(2)  # the head's hash moves too, so the banner's cache key changes
    banner = client.get(LIST).content.decode()
    assert "Audit chain BROKEN at event #2" in banner
    page = client.get(VERIFY)
    body = page.content.decode()
    assert page.status_code == 200 and "BROKEN at event #2" in body and "forged" in body
    assert "re-hashed outside the application" in body


def test_verify_page_is_for_those_who_read_the_audit_trail(client, role_user):
    _events(1)
    client.force_login(role_user("Viewer"))
    assert client.get(VERIFY).status_code == 403
    assert client.get(LIST).status_code == 403
    client.force_login(role_user("Platform Admin"))
    assert client.get(VERIFY).status_code == 200
    client.logout()
    assert client.get(VERIFY).status_code == 302  # to the login page

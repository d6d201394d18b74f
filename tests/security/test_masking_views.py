"""Each role sees exactly the values its clearance allows: the admin quarantine page, the API, the CSV export and the
e-mail; reads are recorded; a reveal is audited and expires."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from security.models import RevealGrant

from .factories import quarantine_make

pytestmark = pytest.mark.django_db

EMAIL = "person1@example.com"
# Who reads quarantined rows, and whether they read restricted values (customer e-mail and id) in clear.
SEES_RESTRICTED = {"Analyst": False, "Data Steward": False, "Auditor": False, "Platform Admin": False,
                   "Data Protection": True}  # fmt: skip


@pytest.fixture
def reader(role_user, django_user_model):
    def make(role: str):
        if role == "Data Protection":  # the privacy half adds this role to accounts/roles.py; here: just enough
            group, _ = Group.objects.get_or_create(name=role)
            group.permissions.add(Permission.objects.get(codename="view_quarantinedrow"))
            user = django_user_model.objects.create_user("dpo", "dpo@example.com", "pw", is_staff=True)
            user.groups.add(group)
            return user
        return role_user(role)

    return make


@pytest.mark.parametrize("role", sorted(SEES_RESTRICTED))
def test_admin_api_export_by_clearance(reader, client, role):
    run, rows = quarantine_make()
    user = reader(role)
    client.force_login(user)
    page = client.get(reverse("admin:quality_quarantinedrow_change", args=[rows[0].pk])).content.decode()
    api = APIClient()
    api.force_authenticate(user)
    detail = api.get(reverse("api-quarantinedrow-detail", args=[rows[0].pk])).json()
    listing = api.get(reverse("api-quarantinedrow-list")).json()["results"]
    export = api.get(reverse("api-quarantinedrow-export") + f"?quality_run={run.pk}").content.decode()
    review_ok = EMAIL in page
    assert review_ok is SEES_RESTRICTED[role], page
    expected_email = EMAIL if SEES_RESTRICTED[role] else "[restricted]"
    assert detail["data"]["customer_email"] == expected_email
    assert detail["data"]["customer_id"] == ("C0000042" if SEES_RESTRICTED[role] else "[restricted]")
    assert detail["data"]["revenue"] == 12.5  # internal: every reader sees it
    assert {r["data"]["customer_email"] for r in listing} <= {expected_email, "person2@example.com", "[restricted]"}
    assert (EMAIL in export) is SEES_RESTRICTED[role] and "12.5" in export
    if not SEES_RESTRICTED[role]:
        assert "[restricted]" in page and "[restricted]" in export
    reads = AuditEvent.objects.filter(action="security.record_read", actor=user)
    assert sorted(e.data["via"] for e in reads) == ["admin", "api", "export"]
    assert all(EMAIL not in str(e.data) for e in AuditEvent.objects.all())  # no value read is stored


def test_viewer_cannot_reach_quarantine(role_user, client):
    _, rows = quarantine_make()
    viewer = role_user("Viewer")
    client.force_login(viewer)
    assert client.get(reverse("admin:quality_quarantinedrow_change", args=[rows[0].pk])).status_code == 403
    api = APIClient()
    api.force_authenticate(viewer)
    assert api.get(reverse("api-quarantinedrow-detail", args=[rows[0].pk])).status_code == 403
    assert APIClient().get(reverse("api-quarantinedrow-list")).status_code == 401


def test_samples_masked_for_internal_clearance(role_user, client):
    run, _ = quarantine_make()
    for role, sees in (("Viewer", False), ("Content Admin", False), ("Analyst", True)):
        client.force_login(role_user(role))
        page = client.get(reverse("admin:quality_qualityrun_change", args=[run.pk])).content.decode()
        assert ("O-1|1" in page) is sees, role
        assert ("[confidential]" in page) is not sees, role


def test_reveal_is_reasoned_audited_and_expires(role_user, client, settings):
    settings.SECURITY_REVEAL_MINUTES = 15
    _, rows = quarantine_make()
    steward, analyst = role_user("Data Steward"), role_user("Analyst")
    url = reverse("admin:quality_quarantinedrow_change", args=[rows[0].pk])
    reveal = reverse("admin:quality_quarantinedrow_reveal", args=[rows[0].pk])

    client.force_login(analyst)  # no reveal permission
    assert "reveal-not-allowed" in client.get(url).content.decode()
    client.post(reveal, {"reason": "checking the address"})
    assert not RevealGrant.objects.exists()

    client.force_login(steward)
    assert EMAIL not in client.get(url).content.decode()
    client.post(reveal, {"reason": ""})  # a reason is required
    assert not RevealGrant.objects.exists()
    client.post(reveal, {"reason": "customer asked to fix the address"})
    grant = RevealGrant.objects.get()
    assert grant.user == steward and grant.expires_at - grant.created_at <= timedelta(minutes=15, seconds=1)
    event = AuditEvent.objects.get(action="security.value_revealed")
    assert event.data["object"] == f"quality.quarantinedrow:{rows[0].pk}" and event.data["level"] == "restricted"
    assert event.data["reason"] == "customer asked to fix the address" and EMAIL not in str(event.data)
    assert EMAIL in client.get(url).content.decode()
    api = APIClient()
    api.force_authenticate(steward)
    assert api.get(reverse("api-quarantinedrow-detail", args=[rows[0].pk])).json()["data"]["customer_email"] == EMAIL
    # Only that row, only for them.
    assert (
        "person2@example.com"
        not in client.get(reverse("admin:quality_quarantinedrow_change", args=[rows[1].pk])).content.decode()
    )

    RevealGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert EMAIL not in client.get(url).content.decode()


def test_blocked_report_mail_masks_by_clearance(role_user, django_user_model):
    from orchestration.models import JobRun
    from sales.models import QueryRun, SalesQuery, SalesReport
    from sales.services import _alert_blocked

    run, _ = quarantine_make()
    steward = role_user("Data Steward")
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    query = SalesQuery.objects.create(name="q", sql="select 1")
    job_run = JobRun.objects.create(job="sales_report", actor=root)
    query_run = QueryRun.objects.create(query=query, job_run=job_run, actor=root)
    report = SalesReport.objects.create(query_run=query_run, quality_run=run)
    mail.outbox.clear()
    _alert_blocked(report, ["customer_email_format: 2 rows"])
    by_to = {tuple(m.to): m.body for m in mail.outbox}
    assert EMAIL not in by_to[(steward.email,)] and "customer_email=[restricted]" in by_to[(steward.email,)]
    assert "revenue=12.5" in by_to[(steward.email,)]
    assert f"customer_email={EMAIL}" in by_to[(root.email,)]


def test_admin_csv_export_action_masks_and_records(role_user, client):
    _, rows = quarantine_make()
    analyst = role_user("Analyst")
    client.force_login(analyst)
    response = client.post(
        reverse("admin:quality_quarantinedrow_changelist"),
        {"action": "export_csv", "_selected_action": [r.pk for r in rows]},
    )
    body = response.content.decode()
    assert response["Content-Type"] == "text/csv" and "[restricted]" in body and EMAIL not in body
    event = AuditEvent.objects.get(action="security.record_read", actor=analyst)
    assert event.data["via"] == "export" and event.data["object"].startswith("quality.quarantinedrow:rows:")

"""Compliance evidence: the exports hold the changes and reads made in the test, with the chain's state."""

from __future__ import annotations

import csv
import io

import pytest

from audit.models import AuditEvent
from privacy.evidence import evidence_access, evidence_gdpr, evidence_sox
from privacy.subjects import identifier_parse, subject_search
from sales.models import SalesQuery
from sales.services import sales_query_save

pytestmark = pytest.mark.django_db
EVIDENCE = "/admin/privacy/subjectrequest/evidence/"


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.fixture
def changes(role_user, django_user_model, django_capture_on_commit_callbacks):
    """A query edit, a role grant approved by a second Platform Admin, and a subject search (a read)."""
    from accounts.services import user_roles_request
    from approvals.services import approval_approve

    admin, second, dpo = role_user("Platform Admin"), role_user("Platform Admin", "admin2"), role_user(
        "Data Protection", "dpo"
    )
    query = SalesQuery.objects.create(name="evidence_q", title="q", sql="SELECT 1")
    query.sql = "SELECT 2"
    sales_query_save(query=query, actor=admin, created=False, changed_fields=["sql"])
    grantee = django_user_model.objects.create_user("grantee", is_staff=True)
    outcome = user_roles_request(user=grantee, roles=["Analyst"], actor=admin, reason="covers reports")
    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=outcome.approval.pk, actor=second)
    subject_search(identifier=identifier_parse("someone@example.com"), actor=dpo)
    return {"admin": admin, "second": second, "dpo": dpo, "approval": outcome.approval.pk}


def test_sox_evidence_lists_changes_with_requester_and_approver(changes):
    sox = evidence_sox()
    assert sox.chain.ok
    by_action = {row[3]: row for row in sox.rows}
    query_row = by_action["sales.query_changed"]
    assert query_row[2] == "query" and query_row[6] == "platform_admin"
    grant = by_action["accounts.user_roles_changed"]
    assert grant[2] == "role" and grant[7] == f"#{changes['approval']}" and grant[8] == "admin2"


def test_access_report_lists_the_reads_without_values(changes):
    access = evidence_access()
    [row] = [r for r in access.rows if r[3] == "privacy.subject_searched"]
    assert row[2] == "dpo" and row[6] == "subject search" and "someone@example.com" not in str(access.rows)


def test_record_reads_of_the_security_half_appear_in_the_access_report(role_user):
    access_mod = pytest.importorskip("security.access")  # issue 12's security half (merged from its branch)
    reader = role_user("Data Protection", "reader")
    access_mod.record_access(reader, dataset_or_model="quality.quarantinedrow", object_ref="42", purpose="review",
                             via=access_mod.VIA_ADMIN)  # fmt: skip
    [row] = [r for r in evidence_access().rows if r[3] == "security.record_read"]
    assert row[2] == "reader" and row[4] == "quality.quarantinedrow:42" and row[6] == "admin" and row[7] == "review"


def test_gdpr_record_says_what_where_why_how_long_and_who(settings):
    settings.RETENTION_QUARANTINE_DAYS = 45
    gdpr = evidence_gdpr()
    rows = {r[0]: r for r in gdpr.rows}
    quarantine = rows["quality.quarantinedrow"]
    assert "customer_email" in quarantine[1] and quarantine[5].startswith("45 days")
    assert "Data Protection" in quarantine[6] and "Viewer" not in quarantine[6]
    assert "never cut" in rows["audit.auditevent"][5]


def test_auditor_reads_the_page_and_csv_and_the_export_is_audited(changes, client, role_user):
    client.force_login(role_user("Auditor"))
    page = client.get(EVIDENCE + "?report=sox")
    assert page.status_code == 200
    text = page.content.decode()
    assert "sales.query_changed" in text and "accounts.user_roles_changed" in text and "intact" in text.lower()
    rows = _csv(client.get(EVIDENCE + "?report=access&format=csv"))
    assert rows[0][0] == "# Access report (restricted records read)" and rows[1][0].startswith("# audit chain: ")
    assert rows[2] == ["seq", "at", "reader", "action", "record", "level", "via", "purpose"]
    assert any(r[3] == "privacy.subject_searched" and r[2] == "dpo" for r in rows[3:])
    exported = AuditEvent.objects.filter(action="privacy.evidence_exported").order_by("seq")
    assert [(e.data["report"], e.data["format"], e.data["chain_ok"]) for e in exported] == [
        ("sox", "html", True),
        ("access", "csv", True),
    ]
    assert client.get(EVIDENCE + "?report=nope").status_code == 400


def test_a_viewer_cannot_read_the_evidence(client, role_user):
    client.force_login(role_user("Viewer"))
    assert client.get(EVIDENCE).status_code == 403

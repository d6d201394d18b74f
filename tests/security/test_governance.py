"""A sync target whose query sends confidential or restricted columns to a sheet needs masking or an approval."""

from __future__ import annotations

import pytest

from approvals.models import ApprovalRequest
from approvals.services import approval_approve
from security.governance import SHEET_EXPORT_ACTION, classified_columns_in_sql
from sheetsync.models import SyncTarget
from sheetsync.services import sync_target_save


def cols(sql: str) -> list[str]:
    return [c.column for c in classified_columns_in_sql(sql)]


def test_columns_traced_through_aliases_stars_subqueries_and_masking():
    assert cols("SELECT order_id, customer_email, revenue FROM sales.order_lines") == ["customer_email"]
    assert cols("SELECT l.customer_id FROM `proj.sales.order_lines` AS l") == ["customer_id"]
    assert cols("SELECT * FROM sales.order_lines") == ["customer_email", "customer_id"]
    assert cols("SELECT x.e FROM (SELECT customer_email AS e FROM sales.order_lines) x") == ["customer_email"]
    # masked or only counted or only filtered on: nothing sensitive leaves
    assert (
        cols("SELECT TO_HEX(SHA256(customer_email)) AS e, FARM_FINGERPRINT(customer_id) FROM sales.order_lines") == []
    )
    assert cols("SELECT region, COUNT(DISTINCT customer_id) FROM sales.order_lines GROUP BY region") == []
    assert cols("SELECT region FROM sales.order_lines WHERE customer_email LIKE '%@x.com'") == []
    assert cols("SELECT customer_email FROM other.table") == []
    # unparseable: fail closed
    assert cols("SELECT customer_email FROM FROM sales.order_lines ((") == ["customer_email", "customer_id"]
    # text that does not even tokenize (an unclosed quote): fail closed too, never an exception (schemathesis found
    # a 500 on a sales query's create)
    assert cols("SELECT `customer_email FROM sales.order_lines") == ["customer_email", "customer_id"]
    assert cols("SELECT `x FROM elsewhere") == []


def _target(sql: str, name: str = "customers") -> SyncTarget:
    return SyncTarget(
        name=name,
        spreadsheet_id="s1",
        range=f"{name}!A1",
        source_kind="bigquery",
        source_query=sql,
        key_columns="order_id",
    )


@pytest.mark.django_db
def test_target_sending_restricted_columns_waits_for_approval(role_user, django_capture_on_commit_callbacks):
    steward, admin = role_user("Data Steward"), role_user("Platform Admin")
    target = sync_target_save(
        target=_target("SELECT order_id, customer_email FROM sales.order_lines"), actor=steward, created=True
    )
    target.refresh_from_db()
    assert target.enabled is False
    request = ApprovalRequest.objects.get(action=SHEET_EXPORT_ACTION)
    assert request.status == "pending" and request.inputs["columns"] == ["sales.order_lines.customer_email"]
    assert request.approver_permission == "security.approve_classified_export"

    sync_target_save(target=target, actor=steward, created=False, changed_fields=["description"])
    assert ApprovalRequest.objects.filter(action=SHEET_EXPORT_ACTION).count() == 1  # the same request stands

    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=request.pk, actor=admin)
    request.refresh_from_db()
    target.refresh_from_db()
    assert request.execution == "done", request.execution_outcome
    assert target.enabled is True

    target.source_query = "SELECT order_id, customer_email, customer_id FROM sales.order_lines"  # a new query
    sync_target_save(target=target, actor=steward, created=False, changed_fields=["source_query"])
    target.refresh_from_db()
    assert target.enabled is False and ApprovalRequest.objects.filter(status="pending").count() == 1


@pytest.mark.django_db
def test_masked_query_needs_no_approval(role_user):
    sql = "SELECT order_id, TO_HEX(SHA256(customer_email)) AS customer, revenue FROM sales.order_lines"
    target = sync_target_save(target=_target(sql), actor=role_user("Data Steward"), created=True)
    target.refresh_from_db()
    assert target.enabled is True and not ApprovalRequest.objects.filter(action=SHEET_EXPORT_ACTION).exists()


def test_sales_query_cannot_publish_restricted_columns_unmasked():
    from django.core.exceptions import ValidationError

    from sales.models import SalesQuery

    bad = SalesQuery(
        name="leak", title="t", sql="SELECT DATE_TRUNC(order_ts, {grain}) d, customer_email FROM sales.order_lines"
    )
    with pytest.raises(ValidationError, match=r"sales.order_lines.customer_email \(restricted\) unmasked"):
        bad.clean()
    SalesQuery(name="ok", title="t", sql="SELECT region, COUNT(DISTINCT customer_id) FROM sales.order_lines").clean()

"""One writer per sheet: the sales dashboard's Report sheet belongs to the sales job; a sync target owns its sheet.
A second writer is refused with the first one's name, in the admin and again in the cycle."""

from __future__ import annotations

import pytest

from approvals.models import DestinationWriter
from audit.models import AuditEvent
from sheetsync.models import SyncEvent, SyncTarget
from tests.sheetsync.conftest import run_cycle

pytestmark = pytest.mark.django_db
TARGETS = "/admin/sheetsync/synctarget/"


def _form(steward, files, **kw):
    (files / "plan.csv").write_text("id,quarter\n1,Q1\n")
    return {
        "name": "plan",
        "spreadsheet_id": "s9",
        "range": "Plan!A1",
        "row_order": "sheet",
        "source_kind": "file",
        "source_file": str(files / "plan.csv"),
        "key_columns": "id",
        "owner": steward.pk,
        **kw,
    }


def test_a_steward_cannot_point_a_target_at_the_sales_dashboard(client, role_user, files, settings):
    settings.SALES_SHEET_ID = "sales-dash"
    steward = role_user("Data Steward", "steward")
    client.force_login(steward)
    response = client.post(TARGETS + "add/", _form(steward, files, spreadsheet_id="sales-dash", range="Report!A30"))
    body = response.content.decode()
    assert response.status_code == 200 and "is written by sales_report" in body
    assert not SyncTarget.objects.exists()
    # Another sheet of the same spreadsheet is free.
    response = client.post(TARGETS + "add/", _form(steward, files, spreadsheet_id="sales-dash", range="Notes!A1"))
    assert response.status_code == 302
    assert DestinationWriter.objects.get().writer == "sync target plan"


def test_a_second_target_on_a_sheet_is_refused_with_the_first_ones_name(client, role_user, files):
    steward = role_user("Data Steward", "steward")
    client.force_login(steward)
    assert client.post(TARGETS + "add/", _form(steward, files)).status_code == 302
    response = client.post(TARGETS + "add/", _form(steward, files, name="plan2", range="Plan!H1"))
    assert response.status_code == 200 and "is written by sync target plan" in response.content.decode()
    # Moving the first target to another sheet frees its old one (audited both ways).
    first = SyncTarget.objects.get(name="plan")
    change = _form(steward, files, range="Other!A1")
    assert client.post(TARGETS + f"{first.pk}/change/", change).status_code == 302
    assert client.post(TARGETS + "add/", _form(steward, files, name="plan2", range="Plan!H1")).status_code == 302
    assert {(w.sheet, w.writer) for w in DestinationWriter.objects.all()} == {
        ("Other", "sync target plan"),
        ("Plan", "sync target plan2"),
    }
    actions = set(AuditEvent.objects.filter(object_type="approvals.destinationwriter").values_list("action", flat=True))
    assert actions == {"destination.registered", "destination.released"}


def test_the_cycle_refuses_a_target_that_bypassed_the_admin(make_target, sheets, settings):
    settings.SALES_SHEET_ID = "s1"
    sheets.store.create_spreadsheet("s1", {"Report": [["approved", "report"]]}, spreadsheet_id="s1")
    rogue = SyncTarget.objects.create(
        name="rogue",
        spreadsheet_id="s1",
        range="Report!A1",
        source_kind="file",
        source_file=make_target("decoy", [[1, "EMEA", 1.0]], spreadsheet_id="s2").source_file,
        key_columns="id",
    )
    code, out = run_cycle("--param", "targets=rogue")
    assert code == 1 and "written by sales_report" in out
    assert SyncEvent.objects.get(target=rogue).outcome == "failed"
    assert sheets.store.values("s1", "Report") == [["approved", "report"]]

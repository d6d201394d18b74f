"""The sync target form (issue 11): a pasted URL becomes the id, help text keeps <ALIAS>, the account to share with is
named, adding shows no status fields, an empty list explains itself, and "Test" shows the diff without writing."""

from __future__ import annotations

import pytest

from sheetsync.models import SyncTarget
from sheetsync.target_admin import spreadsheet_id_parse
from tests.sheetsync.conftest import HEADER, write_parquet

pytestmark = pytest.mark.django_db
TARGETS = "/admin/sheetsync/synctarget/"


def test_a_sheets_url_or_an_id_gives_the_id():
    url = "https://docs.google.com/spreadsheets/d/1AbC-d_9xYz/edit#gid=0"
    assert spreadsheet_id_parse(url) == "1AbC-d_9xYz"
    assert spreadsheet_id_parse(" 1AbC-d_9xYz ") == "1AbC-d_9xYz"
    for bad in ("https://example.com/sheet", "a b", "id/with/slash"):
        with pytest.raises(ValueError):
            spreadsheet_id_parse(bad)


def test_adding_a_target_from_a_pasted_url(client, role_user, files, sheets, settings):
    settings.SHEETS_SERVICE_ACCOUNT_EMAIL = "sync@dataops-prod.iam.gserviceaccount.com"
    client.force_login(role_user("Data Steward"))
    empty = client.get(TARGETS).content.decode()
    assert 'id="empty-hint"' in empty and "No sync target yet" in empty
    page = client.get(TARGETS + "add/").content.decode()
    assert "SHEETS_SYNC_DB_&lt;ALIAS&gt;" in page  # escaped, not swallowed as a tag
    assert "sync@dataops-prod.iam.gserviceaccount.com" in page and "Share the spreadsheet" in page
    assert "consecutive_failures" not in page and "source_fingerprint" not in page  # no status when adding
    assert "sheetsync/target_form.js" in page and 'data-source-field="source_file"' in page
    sheets.store.create_spreadsheet("Budget", {"Sheet1": []}, spreadsheet_id="1AbC-d_9xYz")
    path = write_parquet(files / "budget.parquet", [[1, "EMEA", 10.0], [2, "APAC", 20.0]])
    response = client.post(
        TARGETS + "add/",
        {
            "name": "budget",
            "spreadsheet_id": "https://docs.google.com/spreadsheets/d/1AbC-d_9xYz/edit#gid=0",
            "range": "Sheet1!A1",
            "row_order": "sheet",
            "source_kind": "file",
            "source_file": str(path),
            "key_columns": "id",
        },
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    target = SyncTarget.objects.get(name="budget")
    assert target.spreadsheet_id == "1AbC-d_9xYz"
    change = client.get(TARGETS + f"{target.pk}/change/").content.decode()
    assert "consecutive_failures" in change.replace("Consecutive failures", "consecutive_failures")
    assert 'id="test-target"' in change


def test_the_test_page_shows_rows_and_the_diff_and_writes_nothing(client, role_user, make_target, sheets):
    target = make_target("t1", [[1, "EMEA", 10.0], [2, "APAC", 20.0]])
    before = sheets.store.values("s1", "Sheet1")
    client.force_login(role_user("Data Steward"))
    assert 'id="run-test"' in client.get(TARGETS + f"{target.pk}/test/").content.decode()
    page = client.post(TARGETS + f"{target.pk}/test/").content.decode()
    assert 'id="test-source"' in page and "EMEA" in page and "APAC" in page
    assert "A sync would write 9 cells: 2 rows added, 0 removed, 0 kept" in page, page[-2500:]
    assert 'id="test-writes"' in page and "<td>A1</td>" in page
    assert sheets.store.values("s1", "Sheet1") == before
    assert [h for h in HEADER if h in page] == HEADER
    client.force_login(role_user("Viewer"))
    assert client.post(TARGETS + f"{target.pk}/test/").status_code == 403

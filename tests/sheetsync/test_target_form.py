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


def _new_target_form(path, **overrides) -> dict[str, str]:
    return {
        "name": "budget",
        "spreadsheet_id": "https://docs.google.com/spreadsheets/d/1AbC-d_9xYz/edit#gid=0",
        "range": "Sheet1!A1",
        "row_order": "sheet",
        "source_kind": "file",
        "source_file": str(path),
        "key_columns": "id",
        **overrides,
    }


def test_the_add_form_tests_before_saving(client, role_user, files, sheets, settings):
    """Issue 11: "test" works for a new target: reads the source and the sheet (a pasted URL), shows the first rows,
    the diff it would write and the account to share with; nothing is saved, nothing is written."""
    settings.SHEETS_SERVICE_ACCOUNT_EMAIL = "sync@dataops-prod.iam.gserviceaccount.com"
    sheets.store.create_spreadsheet("Budget", {"Sheet1": [["id", "region", "amount"], [1, "EMEA", 7.0]]},
                                    spreadsheet_id="1AbC-d_9xYz")  # fmt: skip
    path = write_parquet(files / "budget.parquet", [[1, "EMEA", 10.0], [2, "APAC", 20.0]], ["id", "region", "amount"])
    before = sheets.store.values("1AbC-d_9xYz", "Sheet1")
    client.force_login(role_user("Data Steward"))
    add = client.get(TARGETS + "add/").content.decode()
    assert 'id="test-unsaved"' in add and f'formaction="{TARGETS}test/"' in add and 'formtarget="_blank"' in add
    assert 'name="quality_suite"' in add and 'name="key_columns"' in add  # every field of the form is still there

    page = client.post(TARGETS + "test/", _new_target_form(path)).content.decode()
    assert 'id="unsaved-note"' in page and 'id="test-form-errors"' not in page
    assert 'id="test-source"' in page and "EMEA" in page and "APAC" in page and "2 rows" in page
    assert 'id="test-sheet"' in page and "<td>EMEA</td><td>7</td>" in page  # the sheet now
    assert "A sync would write 4 cells: 1 rows added, 0 removed, 1 kept" in page, page[-2500:]
    assert "<td>C2</td><td>7</td><td>10.0</td>" in page.replace("\n", "")
    assert '<strong id="share-with">sync@dataops-prod.iam.gserviceaccount.com</strong>' in page
    assert not SyncTarget.objects.exists() and sheets.store.values("1AbC-d_9xYz", "Sheet1") == before

    wrong = client.post(TARGETS + "test/", _new_target_form(path, spreadsheet_id="https://example.com/x"))
    assert 'id="test-form-errors"' in wrong.content.decode() and "/spreadsheets/d/" in wrong.content.decode()
    missing = client.post(TARGETS + "test/", _new_target_form(files / "nope.parquet")).content.decode()
    assert 'id="test-error"' in missing and "the source could not be read" in missing
    assert not SyncTarget.objects.exists()
    client.force_login(role_user("Viewer"))
    assert client.post(TARGETS + "test/", _new_target_form(path)).status_code == 403


def test_the_change_form_tests_the_edits_before_saving(client, role_user, make_target, sheets):
    target = make_target("t1", [[1, "EMEA", 10.0], [2, "APAC", 20.0]])
    client.force_login(role_user("Data Steward"))
    change = client.get(TARGETS + f"{target.pk}/change/").content.decode()
    assert f'formaction="{TARGETS}test/?target={target.pk}"' in change and 'id="test-target"' in change
    edited = {
        "name": target.name, "spreadsheet_id": target.spreadsheet_id, "range": "Sheet1!B3", "row_order": "sheet",
        "source_kind": target.source_kind, "source_file": target.source_file, "key_columns": target.key_columns,
    }  # fmt: skip
    page = client.post(TARGETS + f"test/?target={target.pk}", edited).content.decode()
    assert 'id="test-form-errors"' not in page and "<td>B3</td>" in page, page[-2500:]
    target.refresh_from_db()
    assert target.range != "Sheet1!B3"  # tested, not saved

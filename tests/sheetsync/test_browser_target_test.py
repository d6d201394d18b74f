"""A Data Steward tests a new sync target before saving it, in a real browser (Debian's chromium via Playwright):
the form's Test button opens the rows, the diff and the account to share with in a new tab; the form keeps what was
typed, nothing is saved and the sheet is untouched."""

from __future__ import annotations

import pytest

from sheetsync.models import SyncTarget
from tests.browser import admin_login
from tests.sheetsync.conftest import write_parquet

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_steward_tests_a_new_target_before_saving(chromium, live_server, files, sheets, role_user, settings):
    settings.SHEETS_SERVICE_ACCOUNT_EMAIL = "sync@dataops-prod.iam.gserviceaccount.com"
    sheets.store.create_spreadsheet("Budget", {"Sheet1": [["id", "region", "amount"], [1, "EMEA", 7.0]]},
                                    spreadsheet_id="1AbC-d_9xYz")  # fmt: skip
    before = sheets.store.values("1AbC-d_9xYz", "Sheet1")
    path = write_parquet(files / "budget.parquet", [[1, "EMEA", 10.0], [2, "APAC", 20.0]], ["id", "region", "amount"])
    role_user("Data Steward", username="stella")

    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    admin_login(page, live_server.url, "stella", then="/admin/sheetsync/synctarget/add/")
    page.fill("#id_name", "budget")
    page.fill("#id_spreadsheet_id", "https://docs.google.com/spreadsheets/d/1AbC-d_9xYz/edit#gid=0")
    page.fill("#id_range", "Sheet1!A1")
    page.select_option("#id_source_kind", "file")
    page.fill("#id_source_file", str(path))
    page.fill("#id_key_columns", "id")
    with context.expect_page() as opened:
        page.click("#test-unsaved")
    result = opened.value
    result.wait_for_selector("#test-diff")
    diff = result.inner_text("#test-diff")
    source = result.inner_text("#test-source")
    share = result.inner_text("#share-with")
    note = result.inner_text("#unsaved-note")

    assert "A sync would write 4 cells: 1 rows added, 0 removed, 1 kept" in diff
    assert "APAC" in source and "EMEA" in source
    assert share == "sync@dataops-prod.iam.gserviceaccount.com" and "nothing was saved" in note
    assert page.input_value("#id_name") == "budget"  # the form keeps what was typed
    assert not SyncTarget.objects.exists() and sheets.store.values("1AbC-d_9xYz", "Sheet1") == before

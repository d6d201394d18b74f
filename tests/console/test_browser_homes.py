"""Each role's main task from its home, in a real browser (Debian's chromium via Playwright): a Data Steward finds the
waiting review on the home, opens it from there, decides it and sees the publish outcome; an Auditor exports the
audit trail from the home (the CSV download is received and parsed). Screenshots of each role's home at 1366 px and
375 px (``DATAOPS_SCREENSHOTS_DIR=docs/screenshots`` writes them for the README, see scripts/home_screenshots.sh)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from quality.models import ReviewItem
from sales.models import SalesReport
from tests.browser import admin_login
from tests.cleanup.test_cleanup_job import run_job
from tests.sales.conftest import report_values

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROLES = ("Viewer", "Analyst", "Data Steward", "Content Admin", "Auditor", "Platform Admin")


def _sales_run_waiting_for_review(role_user) -> ReviewItem:
    role_user("Analyst", username="ann")
    assert run_job("sales_report", "--param", "start=2026-10-01", "--param", "end=2026-10-31",
                   "--principal", "cli:ann")[0] == 0  # fmt: skip
    return ReviewItem.objects.get()


def test_a_steward_finds_the_review_on_the_home_decides_it_and_sees_it_published(
    chromium, live_server, dirty_bigquery, sheet, role_user, tmp_path
):
    item = _sales_run_waiting_for_review(role_user)
    role_user("Data Steward", username="stella")
    page = chromium.new_page(viewport={"width": 1366, "height": 900}, timezone_id="Europe/Paris")
    admin_login(page, live_server.url, "stella", then="/admin/")
    summary = page.inner_text(".console-summary")
    reviews = page.locator("#home-reviews")
    link = reviews.locator(f"a[href$='/quality/reviewitem/{item.pk}/change/']")
    assert link.count() == 1
    link.click()
    page.wait_for_selector("#decision")
    page.click("#approve")
    page.wait_for_selector(".messagelist")
    message = page.inner_text(".messagelist")
    page.goto(f"{live_server.url}/admin/")  # back home: the review no longer waits, the run says published
    page.wait_for_selector("#home-last_runs")
    reviews_after = page.inner_text("#home-reviews")
    last_runs = page.inner_text("#home-last_runs")
    page.screenshot(path=str(tmp_path / "steward-after.png"), full_page=True)

    assert "1 item waits for you" in summary
    assert "approved and done: published" in message, message
    assert "no review waits for you" in reviews_after.lower()
    assert "Published" in last_runs and "Awaiting review" not in last_runs
    assert SalesReport.objects.get().status == "published"
    assert report_values(sheet)[0][:4] == ["day", "region", "orders", "revenue"]


def test_an_auditor_exports_the_audit_trail_from_the_home(chromium, live_server, role_user, tmp_path):
    from audit.models import AuditEvent

    role_user("Auditor", username="audrey")
    expected = AuditEvent.objects.count()
    page = chromium.new_page(accept_downloads=True)
    admin_login(page, live_server.url, "audrey", then="/admin/")
    with page.expect_download() as info:
        page.click("#home-shortcuts a:text('Export the audit trail (CSV)')")
    download = info.value
    target = tmp_path / download.suggested_filename
    download.save_as(str(target))

    assert target.name.startswith("audit-trail-") and target.suffix == ".csv"
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    # Every event up to the download, in chain order (logging in and the zone sent by the browser add events).
    assert len(rows) >= expected and [int(r["seq"]) for r in rows] == list(range(1, len(rows) + 1))
    by_seq = {e.seq: e for e in AuditEvent.objects.filter(seq__lte=len(rows))}
    assert all(r["hash"] == by_seq[int(r["seq"])].hash and r["action"] == by_seq[int(r["seq"])].action for r in rows)
    assert any(r["action"] == "accounts.role_user_created" for r in rows)


def _seed_trouble() -> None:
    """What the homes show besides the review: a failed cleanup and a sync target whose sheet went away."""
    from django.utils import timezone

    from orchestration.models import JobRun
    from sheetsync.models import SyncTarget

    now = timezone.now()
    JobRun.objects.create(job="looker_cleanup", trigger="schedule", status="failed", started_at=now, finished_at=now,
                          error="could not read the Looker inventory: 503 Service Unavailable")  # fmt: skip
    SyncTarget.objects.create(
        name="regional-sales", spreadsheet_id="1AbCdEf", source_kind="file", source_file="store:regions.csv",
        key_columns="region", broken=True, broken_at=now,
        broken_reason="the spreadsheet was deleted or is no longer shared with the service account",
    )  # fmt: skip


def test_each_role_home_at_desktop_and_phone_widths(chromium, live_server, dirty_bigquery, sheet, role_user, tmp_path):
    """Screenshots of every role's home at 1366 px and 375 px; nothing overflows sideways at 375 px."""
    _sales_run_waiting_for_review(role_user)
    _seed_trouble()
    out = Path(os.environ.get("DATAOPS_SCREENSHOTS_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    users = {role: role.lower().replace(" ", "_") for role in ROLES} | {"Analyst": "ann"}
    for role, username in users.items():
        role_user(role, username=username)
    overflow = {}
    for role, username in users.items():
        for width, height in ((1366, 900), (375, 812)):
            context = chromium.new_context(viewport={"width": width, "height": height}, timezone_id="UTC")
            page = context.new_page()
            admin_login(page, live_server.url, username, then="/admin/")
            page.wait_for_load_state("load")
            page.screenshot(path=str(out / f"home-{username}-{width}.png"), full_page=True)
            if width == 375:
                overflow[role] = page.evaluate(
                    "document.getElementById('console-home').scrollWidth"
                    " - document.getElementById('console-home').clientWidth"
                )
            context.close()
    assert sorted(p.name for p in out.glob("home-*.png")) == sorted(
        f"home-{u}-{w}.png" for u in users.values() for w in (1366, 375)
    )
    assert all(v <= 0 for v in overflow.values()), overflow

"""The sheets_sync job end to end: run_job -> gspread -> the Sheets/Drive emulator, request counts from its counters."""

from __future__ import annotations

import pytest
from django.core import mail

from audit.models import AuditEvent
from connectors.sheets import SheetsClient
from orchestration.models import JobRun
from sandbox.common import FaultRule
from sheetsync.models import SyncEvent, SyncTarget, SyncTargetCopy
from tests.sheetsync.conftest import HEADER, ROWS, Counted, run_cycle, set_source

pytestmark = pytest.mark.django_db

FEED = "GET /drive/v3/changes"
READ = "GET /v4/spreadsheets/<spreadsheet_id>/values:batchGet"
VERSION = "GET /drive/v3/files/<file_id>"
WRITE = "POST /v4/spreadsheets/<spreadsheet_id>/values:batchUpdate"


def values(sheets, spreadsheet_id="s1", sheet="Sheet1"):
    return sheets.store.values(spreadsheet_id, sheet)


def events(target, outcome=None):
    queryset = SyncEvent.objects.filter(target=target)
    return list(queryset.filter(outcome=outcome) if outcome else queryset)


def test_first_cycle_writes_the_tables_and_a_quiet_cycle_costs_one_request(make_target, sheets):
    one = make_target("one", ROWS, spreadsheet_id="s1")
    two = make_target("two", [[7, "NA", 1]], spreadsheet_id="s2")
    code, out = run_cycle()
    assert code == 0, out
    assert values(sheets) == [HEADER, [1, "EMEA", 10.5], [2, "NA", 20], [3, "APAC", 30.25]]
    assert values(sheets, "s2") == [HEADER, [7, "NA", 1]]
    first = events(one)[0]
    assert (first.outcome, first.cells_written, first.rows_added) == ("changed", 12, 3)
    assert first.drive_version_after == sheets.store.version("s1")

    for _ in range(2):
        with Counted(sheets) as counted:
            code, out = run_cycle()
        assert code == 0, out
        assert counted.delta == {FEED: 1, "total": 1}  # no sheet read, no source change: the feed call only
    assert "2 no changes" in out
    quiet = events(two, "no_changes")
    assert len(quiet) == 1 and quiet[0].count == 2 and quiet[0].api_requests == 0


def test_changed_sources_write_only_the_changed_cells_in_one_batch_per_spreadsheet(make_target, sheets):
    sheets.store.create_spreadsheet("s1", {"Sheet1": [], "Sheet2": []}, spreadsheet_id="s1")
    left = make_target("left", ROWS, spreadsheet_id="s1", sheet="Sheet1")
    right = make_target("right", ROWS, spreadsheet_id="s1", sheet="Sheet2", anchor="C3")
    other = make_target("other", ROWS, spreadsheet_id="s2")
    run_cycle()

    set_source(left, [[1, "EMEA", 10.5], [2, "NA", 99.0], [3, "APAC", 30.25]])
    set_source(right, [[1, "EMEA", 10.5], [2, "NA", 20.0], [3, "LATAM", 30.25]])
    with Counted(sheets) as counted:
        code, out = run_cycle()
    assert code == 0, out
    # The feed, then for s1 only ONE write: its sheets did not change since our last write, so both targets are
    # diffed against the copy kept of them (no read, no version check: the feed just said so).
    assert counted.delta == {FEED: 1, WRITE: 1, "total": 2}
    assert values(sheets)[2] == [2, "NA", 99]
    assert values(sheets, sheet="Sheet2")[5] == ["", "", 3, "LATAM", 30.25]
    for target in (left, right):
        changed = events(target, "changed")[0]
        assert changed.cells_written == 1 and changed.api_requests == 1 and changed.source_changed
    assert events(other, "no_changes")[0].count == 1
    assert AuditEvent.objects.filter(action="sheetsync.sheet_written").count() == 5  # 3 first syncs + 2

    with Counted(sheets) as counted:  # our own write shows in the feed, but at the version we left: not read
        run_cycle()
    assert counted.total == 1


def test_rows_added_and_removed_at_the_source(make_target, sheets):
    target = make_target("t", ROWS)
    run_cycle()
    set_source(target, [[1, "EMEA", 10.5], [3, "APAC", 30.25], [4, "LATAM", 40.0], [5, "NA", 50.0]])
    code, out = run_cycle()
    assert code == 0, out
    assert values(sheets) == [HEADER, [1, "EMEA", 10.5], [3, "APAC", 30.25], [4, "LATAM", 40], [5, "NA", 50]]
    changed = events(target, "changed")[0]
    assert (changed.rows_added, changed.rows_removed) == (2, 1)

    set_source(target, [[5, "NA", 50.0]])
    run_cycle()
    assert values(sheets) == [HEADER, [5, "NA", 50]]  # rows below moved up, the cells past the end blanked


def test_a_human_edit_in_a_protected_column_survives(make_target, sheets):
    target = make_target("t", ROWS, protected="note")
    run_cycle()
    assert values(sheets)[0] == [*HEADER, "note"]
    sheets.store.set_values("s1", "Sheet1!D3", [["call the NA team"]])  # row of id 2

    with Counted(sheets) as counted:  # the sheet changed, the source did not: read, nothing to write
        run_cycle()
    assert counted.delta == {FEED: 1, READ: 1, "total": 2}

    set_source(target, [[2, "NA", 21.0], [3, "APAC", 30.25]])  # id 1 removed: id 2 moves up with its note
    code, out = run_cycle()
    assert code == 0, out
    assert values(sheets) == [[*HEADER, "note"], [2, "NA", 21, "call the NA team"], [3, "APAC", 30.25]]


def test_an_edit_between_the_read_and_the_write_is_kept(make_target, sheets, monkeypatch):
    target = make_target("t", ROWS, protected="note")
    run_cycle()
    set_source(target, [[2, "NA", 20.0], [3, "APAC", 30.25]])  # id 1 removed: ids 2 and 3 move up
    SyncTargetCopy.objects.all().delete()  # no kept copy: the sheet is read
    original = SheetsClient.values_batch_get
    reads = []

    def read_then_someone_types(self, **kwargs):
        found = original(self, **kwargs)
        reads.append(kwargs["ranges"])
        if len(reads) == 1:  # right after our first read, a person writes a note on id 3's row
            sheets.store.set_values("s1", "Sheet1!D4", [["urgent"]])
        return found

    monkeypatch.setattr(SheetsClient, "values_batch_get", read_then_someone_types)
    with Counted(sheets) as counted:
        code, out = run_cycle()
    assert code == 0, out
    assert len(reads) == 2 and counted.of(WRITE) == 1
    assert values(sheets) == [[*HEADER, "note"], [2, "NA", 20], [3, "APAC", 30.25, "urgent"]]
    changed = events(target, "changed")[0]
    assert changed.rereads == 1 and changed.drive_version_after == sheets.store.version("s1")


def test_a_429_storm_is_ridden_out_without_losing_the_cycle(make_target, sheets, settings):
    one = make_target("one", ROWS, spreadsheet_id="s1")
    two = make_target("two", ROWS, spreadsheet_id="s2")
    run_cycle()
    set_source(one, [[1, "EMEA", 1.0]])
    set_source(two, [[2, "NA", 2.0]])
    attempts = settings.SHEETS_MAX_ATTEMPTS
    storm = sheets.faults.add(FaultRule(status=429, times=attempts * 2 + 1))  # longer than the client's retries
    code, out = run_cycle()
    assert code == 0, out
    assert storm.fired == attempts * 2 + 1 and "paused" in out
    assert values(sheets) == [HEADER, [1, "EMEA", 1]] and values(sheets, "s2") == [HEADER, [2, "NA", 2]]
    assert JobRun.objects.order_by("-pk")[0].counters["rate_limit_pauses"] >= 2


def test_an_edit_during_a_quota_pause_before_the_write_is_never_overwritten(make_target, sheets, settings,
                                                                            monkeypatch):
    """The write waits out a 429; meanwhile a person types a note in a row the write would move: write nothing."""
    from sheetsync import cycle

    target = make_target("t", ROWS, protected="note")
    run_cycle()
    set_source(target, [[2, "NA", 20.0], [3, "APAC", 30.25]])  # id 1 removed: ids 2 and 3 move up
    sheets.faults.add(FaultRule(method="POST", path_pattern="*values:batchUpdate", status=429,
                                times=settings.SHEETS_MAX_ATTEMPTS))
    real_sleep = cycle.time.sleep

    def someone_types_during_the_pause(seconds: float) -> None:
        sheets.store.set_values("s1", "Sheet1!D4", [["urgent"]])
        real_sleep(min(seconds, 0.01))

    monkeypatch.setattr(cycle.time, "sleep", someone_types_during_the_pause)
    code, out = run_cycle()
    assert code == 0, out
    skipped = events(target, "skipped")
    assert skipped and "changed" in skipped[0].error and "nothing was written" in skipped[0].error
    assert values(sheets)[3][3] == "urgent"  # the person's note, untouched
    monkeypatch.setattr(cycle.time, "sleep", real_sleep)
    code, out = run_cycle()  # the next cycle re-reads and moves the note with its row
    assert code == 0, out
    assert values(sheets) == [[*HEADER, "note"], [2, "NA", 20], [3, "APAC", 30.25, "urgent"]]


def test_a_failing_source_fails_its_target_only(make_target, sheets, files):
    broken = make_target("broken", ROWS, spreadsheet_id="s1")
    fine = make_target("fine", ROWS, spreadsheet_id="s2")
    run_cycle()
    (files / "broken.parquet").unlink()
    set_source(fine, [[9, "NA", 9.0]])
    code, out = run_cycle()
    assert code == 0, out
    failed = events(broken, "failed")[0]
    assert "does not exist" in failed.error and "FAILED broken: source file" in out
    assert values(sheets, "s2") == [HEADER, [9, "NA", 9]]
    assert values(sheets) == [HEADER, [1, "EMEA", 10.5], [2, "NA", 20], [3, "APAC", 30.25]]  # last good values
    broken.refresh_from_db()
    assert broken.last_outcome == "failed" and broken.consecutive_failures == 1


def test_a_deleted_spreadsheet_marks_its_target_broken_and_nothing_else(
    make_target, sheets, role_user, django_capture_on_commit_callbacks
):
    owner = role_user("Analyst", "owner")
    role_user("Data Steward", "steward")
    gone = make_target("gone", ROWS, spreadsheet_id="s1", owner=owner)
    fine = make_target("fine", ROWS, spreadsheet_id="s2")
    run_cycle()
    sheets.store.delete_spreadsheet("s1")
    set_source(fine, [[1, "EMEA", 2.0]])
    with django_capture_on_commit_callbacks(execute=True):
        with Counted(sheets) as counted:
            code, out = run_cycle()
    assert code == 0, out
    gone.refresh_from_db()
    assert gone.broken and "spreadsheet s1 was deleted" in gone.broken_reason
    assert counted.delta.get("total") == 2  # the feed said so: no request for s1, then s2's write (no read)
    assert values(sheets, "s2") == [HEADER, [1, "EMEA", 2]]
    assert len(mail.outbox) == 1 and "broken" in mail.outbox[0].subject
    # The incident's ladder tells the owner first; the Data Stewards follow if nobody acknowledges (tests/monitoring).
    assert set(mail.outbox[0].to) == {"owner@example.com"}
    assert AuditEvent.objects.filter(action="sheetsync.target_broken").count() == 1

    code, out = run_cycle()
    assert code == 0 and "1 skipped" in out and len(mail.outbox) == 1
    assert events(gone, "skipped")[0].error.startswith("broken: spreadsheet s1 was deleted")


def test_a_spreadsheet_that_never_existed_is_a_clear_broken_target(make_target, sheets):
    target = make_target("nowhere", ROWS, spreadsheet_id="s1")
    target.spreadsheet_id = "no-such-sheet"
    target.save()
    code, out = run_cycle()
    assert code == 1  # every target failed
    target.refresh_from_db()
    assert target.broken and "no-such-sheet was not found" in target.broken_reason


def test_escalation_after_n_consecutive_failures_sends_one_email(
    make_target, sheets, files, role_user, django_capture_on_commit_callbacks, settings
):
    owner = role_user("Analyst", "owner")
    role_user("Data Steward", "steward")
    target = make_target("flaky", ROWS, spreadsheet_id="s1", owner=owner)
    make_target("steady", ROWS, spreadsheet_id="s2")
    run_cycle()
    (files / "flaky.parquet").unlink()
    for _ in range(settings.SHEETS_SYNC_FAILURE_ESCALATION + 2):
        with django_capture_on_commit_callbacks(execute=True):
            run_cycle()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert "failed 3 cycles in a row" in message.subject and "does not exist" in message.body
    assert set(message.to) == {"owner@example.com"}  # level 1 of the incident's ladder: the target's owner
    assert AuditEvent.objects.filter(action="sheetsync.target_escalated").count() == 1

    set_source(target, ROWS)  # fixed: the streak ends, a later streak escalates again
    run_cycle()
    target.refresh_from_db()
    assert target.consecutive_failures == 0 and target.escalated_at is None and target.last_outcome == "no_changes"


def test_quiet_cycles_are_compacted_into_one_row_per_target_and_day(make_target, sheets):
    targets = [make_target(f"t{i}", ROWS, spreadsheet_id=f"s{i}") for i in range(3)]
    run_cycle()
    for _ in range(5):
        run_cycle()
    assert SyncEvent.objects.filter(outcome="no_changes").count() == 3
    for target in targets:
        quiet = events(target, "no_changes")[0]
        assert quiet.count == 5 and quiet.first_seen_at < quiet.last_seen_at
        assert len(events(target, "changed")) == 1  # changed cycles keep their own rows


def test_a_write_that_does_not_verify_is_put_back(make_target, sheets, monkeypatch):
    target = make_target("t", ROWS)
    run_cycle()
    set_source(target, [[1, "EMEA", 99.0], [2, "NA", 20.0], [3, "APAC", 30.25]])
    monkeypatch.setattr("sheetsync.cycle.grids_match", lambda *a, **k: False)
    with Counted(sheets) as counted:
        code, out = run_cycle()
    assert code == 1 and "(verification failed); the previous values were put back" in out
    assert counted.of(WRITE) == 2  # the write, then the restore
    assert values(sheets)[1] == [1, "EMEA", 10.5]
    monkeypatch.undo()
    run_cycle()  # the next cycle tries again
    assert values(sheets)[1] == [1, "EMEA", 99]


def test_a_write_that_keeps_failing_leaves_the_sheet_as_it_was(make_target, sheets):
    target = make_target("t", ROWS)
    run_cycle()
    set_source(target, [[1, "EMEA", 99.0]])
    sheets.faults.add(FaultRule(method="POST", path_pattern="*values:batchUpdate", status=503, times=None))
    code, out = run_cycle()
    assert code == 1 and "PUTTING THE PREVIOUS VALUES BACK ALSO FAILED" in out
    assert values(sheets) == [HEADER, [1, "EMEA", 10.5], [2, "NA", 20], [3, "APAC", 30.25]]


def test_bad_input_gets_clear_errors_and_a_quarantine(make_target, sheets, files):
    unknown_key = make_target("unknown-key", ROWS, spreadsheet_id="s1")
    SyncTarget.objects.filter(pk=unknown_key.pk).update(key_columns="customer")
    csv = files / "rows.csv"
    csv.write_text("id,region,amount\n1,EMEA,1\n2,NA,2,extra\n,APAC,3\n1,dup,4\n5,LATAM,5\n")
    quarantined = make_target("csv", ROWS, spreadsheet_id="s2")
    SyncTarget.objects.filter(pk=quarantined.pk).update(source_file=str(csv))
    code, out = run_cycle()
    assert code == 0, out
    assert "key column 'customer' is not a column of the source" in events(unknown_key, "failed")[0].error
    changed = events(quarantined, "changed")[0]
    assert changed.rows_quarantined == 3 and "3 source row(s) quarantined" in changed.error
    reasons = [q["reason"] for q in changed.details["quarantined"]]
    assert reasons == ["has 4 values for 3 columns", "empty key", "duplicate key (first at source row 1)"]
    assert values(sheets, "s2") == [HEADER, [1, "EMEA", 1], [5, "LATAM", 5]]


def test_a_sheet_whose_header_lost_its_key_column_is_not_touched(make_target, sheets):
    make_target("t", ROWS)
    run_cycle()
    sheets.store.set_values("s1", "Sheet1!A1", [["renamed"]])
    code, out = run_cycle()
    assert code == 1 and "header row has no column 'id'" in out
    assert values(sheets)[1] == [1, "EMEA", 10.5]


def test_a_missing_tab_fails_only_its_target_on_a_shared_spreadsheet(make_target, sheets):
    make_target("good", ROWS, spreadsheet_id="s1", sheet="Sheet1")
    bad = make_target("bad", ROWS, spreadsheet_id="s1", sheet="Sheet1", anchor="F1")
    SyncTarget.objects.filter(pk=bad.pk).update(range="Missing!A1")
    code, out = run_cycle()
    assert code == 0, out
    assert "is there a sheet named 'Missing'" in events(bad, "failed")[0].error
    assert values(sheets)[1] == [1, "EMEA", 10.5]


def test_a_table_longer_than_the_grid_grows_it(make_target, sheets):
    sheets.store.create_spreadsheet("s1", {"Sheet1": []}, spreadsheet_id="s1", rows=3, cols=3)
    target = make_target("t", ROWS)
    code, out = run_cycle()
    assert code == 0, out
    set_source(target, [[i, "R", float(i)] for i in range(1, 8)])
    code, out = run_cycle()
    assert code == 0, out
    assert len(values(sheets)) == 8 and sheets.store.sheet_size("s1", "Sheet1")[0] >= 8


def test_dry_run_plans_without_writing(make_target, sheets):
    make_target("t", ROWS)
    code, out = run_cycle("--dry-run")
    assert code == 0, out
    assert "DRY RUN" in out and "t: would write 12 cells (+3/-0 rows)" in out
    assert values(sheets) == [] and not SyncEvent.objects.exists()


def test_force_and_targets_params_limit_and_reread(make_target, sheets):
    make_target("a", ROWS, spreadsheet_id="s1")
    make_target("b", ROWS, spreadsheet_id="s2")
    run_cycle()
    with Counted(sheets) as counted:
        code, out = run_cycle("--param", "targets=a", "--param", "force=true")
    assert code == 0 and "1 targets" in out
    assert counted.delta == {FEED: 1, READ: 1, "total": 2}


def test_a_refused_changes_token_starts_over(make_target, sheets):
    from sheetsync.models import SyncCursor

    make_target("t", ROWS)
    run_cycle()
    SyncCursor.objects.update(token="999999")
    code, out = run_cycle()
    assert code == 0, out
    assert JobRun.objects.order_by("-pk")[0].counters.get("feed_resets") == 1
    with Counted(sheets) as counted:
        run_cycle()
    assert counted.total == 1


def test_a_rewritten_file_with_the_same_rows_costs_no_sheet_read(make_target, sheets):
    import polars as pl

    target = make_target("t", ROWS)
    run_cycle()
    stamp = SyncTarget.objects.get(pk=target.pk).source_stamp
    pl.DataFrame(ROWS, schema=HEADER, orient="row").write_parquet(target.source_file, compression="uncompressed")
    with Counted(sheets) as counted:
        run_cycle()
    assert counted.total == 1  # same rows, different bytes: the data fingerprint says "unchanged"
    target.refresh_from_db()
    assert target.source_stamp != stamp and target.last_outcome == "no_changes"


def test_a_sheet_that_keeps_changing_is_left_for_the_next_cycle(make_target, sheets, monkeypatch, settings):
    target = make_target("t", ROWS, protected="note")
    run_cycle()
    set_source(target, [[1, "EMEA", 1.0], [2, "NA", 20.0], [3, "APAC", 30.25]])
    SyncTargetCopy.objects.all().delete()  # no kept copy: the sheet is read
    original = SheetsClient.values_batch_get
    typed = []

    def busy_sheet(self, **kwargs):
        found = original(self, **kwargs)
        typed.append(1)
        sheets.store.set_values("s1", "Sheet1!D2", [[f"typing {len(typed)}"]])
        return found

    monkeypatch.setattr(SheetsClient, "values_batch_get", busy_sheet)
    code, out = run_cycle()
    assert code == 0 and "1 skipped" in out
    assert len(typed) == settings.SHEETS_SYNC_MAX_REREADS + 1 and values(sheets)[1][2] == 10.5  # nothing written
    assert "kept changing" in events(target, "skipped")[0].error
    monkeypatch.undo()
    run_cycle()
    assert values(sheets)[1] == [1, "EMEA", 1, f"typing {len(typed)}"]  # synced, the last edit kept

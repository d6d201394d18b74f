"""The sync at scale (issue 15), counted by the emulator: no read for a sheet that did not change since our last
write, one write per spreadsheet, principals taking fair turns under the quotas, a quiet cycle near one request."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.exceptions import ValidationError

from connectors.sheets import SheetsClient, SheetsRateLimiter, sheets_client
from sheetsync.models import SyncTarget, SyncTargetCopy
from tests.sheetsync.conftest import HEADER, ROWS, Counted, run_cycle, set_source

pytestmark = pytest.mark.django_db

FEED = "GET /drive/v3/changes"
READ = "GET /v4/spreadsheets/<spreadsheet_id>/values:batchGet"
VERSION = "GET /drive/v3/files/<file_id>"
WRITE = "POST /v4/spreadsheets/<spreadsheet_id>/values:batchUpdate"


def values(sheets, spreadsheet_id="s1", sheet="Sheet1"):
    return sheets.store.values(spreadsheet_id, sheet)


def last_run_counters():
    from orchestration.models import JobRun

    return JobRun.objects.order_by("-pk")[0].counters


def test_the_copy_gives_the_same_sheet_as_a_read_for_one_write(make_target, sheets):
    """Two identical targets, each with a note a person typed: one diffed against its kept copy, the other read."""
    kept = make_target("kept", ROWS, spreadsheet_id="s1", protected="note")
    read = make_target("read", ROWS, spreadsheet_id="s2", protected="note")
    run_cycle()
    for sid in ("s1", "s2"):
        sheets.store.set_values(sid, "Sheet1!D3", [["call the NA team"]])  # row of id 2
    with Counted(sheets) as counted:
        run_cycle()  # the sheets changed: both read (and nothing written); the copies now hold the notes
    assert counted.of(READ) == 2 and counted.of(WRITE) == 0

    new_rows = [[2, "NA", 21.0], [3, "APAC", 30.25], [4, "LATAM", 40.0]]  # id 1 gone: id 2 moves up with its note
    set_source(kept, new_rows)
    set_source(read, new_rows)
    SyncTargetCopy.objects.filter(target=read).delete()
    with Counted(sheets) as counted:
        code, out = run_cycle()
    assert code == 0, out
    # s1: one write, from the copy. s2 (no copy): read, version check, write.
    assert counted.delta == {FEED: 1, READ: 1, VERSION: 1, WRITE: 2, "total": 5}
    expected = [[*HEADER, "note"], [2, "NA", 21, "call the NA team"], [3, "APAC", 30.25], [4, "LATAM", 40]]
    assert values(sheets, "s1") == values(sheets, "s2") == expected
    assert last_run_counters()["targets_diffed_without_reading"] == 1

    # Both keep a copy of what they hold now: the next change costs each spreadsheet one write, and no read.
    set_source(kept, [[2, "NA", 22.0], [3, "APAC", 30.25], [4, "LATAM", 40.0]])
    set_source(read, [[2, "NA", 22.0], [3, "APAC", 30.25], [4, "LATAM", 40.0]])
    with Counted(sheets) as counted:
        run_cycle()
    assert counted.delta == {FEED: 1, WRITE: 2, "total": 3}
    assert values(sheets, "s1")[1] == values(sheets, "s2")[1] == [2, "NA", 22, "call the NA team"]


def test_a_changed_sheet_is_still_read(make_target, sheets):
    target = make_target("t", ROWS, protected="note")
    run_cycle()
    sheets.store.set_values("s1", "Sheet1!D2", [["keep me"]])  # a person types a note: the version moves
    set_source(target, [[2, "NA", 20.0], [3, "APAC", 30.25], [1, "EMEA", 10.5]])
    target.refresh_from_db()
    with Counted(sheets) as counted:
        code, out = run_cycle()
    assert code == 0, out
    assert counted.of(READ) == 1 and counted.of(WRITE) == 0  # read (the sheet moved), same rows: nothing to write
    set_source(target, [[2, "NA", 20.0], [3, "APAC", 30.25]])  # id 1 removed: its note is recorded, not kept
    with Counted(sheets) as counted:
        run_cycle()
    assert counted.delta == {FEED: 1, WRITE: 1, "total": 2}  # the copy taken at the read stands for the sheet
    assert values(sheets) == [[*HEADER, "note"], [2, "NA", 20], [3, "APAC", 30.25]]


def test_an_edit_after_the_feed_is_caught_by_the_check_before_the_write(make_target, sheets, settings, monkeypatch):
    """The write planned from the copy checks the changes feed first (here: always); a person's note typed after
    the cycle's feed call sends the target back to a read, and the note moves with its row."""
    settings.SHEETS_SYNC_RECHECK_AFTER_S = 0
    target = make_target("t", ROWS, protected="note")
    run_cycle()
    set_source(target, [[2, "NA", 20.0], [3, "APAC", 30.25]])  # id 1 removed: ids 2 and 3 move up
    original = SheetsClient.prepay
    typed = []

    def someone_types_first(self, kind):
        if not typed:
            typed.append(1)
            sheets.store.set_values("s1", "Sheet1!D4", [["urgent"]])  # id 3's row
        return original(self, kind)

    monkeypatch.setattr(SheetsClient, "prepay", someone_types_first)
    with Counted(sheets) as counted:
        code, out = run_cycle()
    assert code == 0, out
    assert counted.of(FEED) == 2 and counted.of(READ) == 1 and counted.of(WRITE) == 1
    assert values(sheets) == [[*HEADER, "note"], [2, "NA", 20], [3, "APAC", 30.25, "urgent"]]
    monkeypatch.undo()
    with Counted(sheets) as counted:
        run_cycle()
    assert counted.total == 1  # the mid-cycle poll's token was kept: our own write is not news


def test_one_write_per_spreadsheet_and_none_read_when_every_source_changes(make_target, sheets):
    """A 1%-spread cycle in small: every source changes, no sheet did: one batchUpdate per spreadsheet."""
    for sid, tabs in (("s1", ["A", "B", "C"]), ("s2", ["A", "B"])):
        sheets.store.create_spreadsheet(sid, {tab: [] for tab in tabs}, spreadsheet_id=sid)
    targets = [
        make_target(f"{sid}{tab}", ROWS, spreadsheet_id=sid, sheet=tab)
        for sid, tabs in (("s1", "ABC"), ("s2", "AB"))
        for tab in tabs
    ]
    run_cycle()
    for index, target in enumerate(targets):
        set_source(target, [[1, "EMEA", 11.5 + index], [2, "NA", 20.0], [3, "APAC", 30.25]])
    with Counted(sheets) as counted:
        code, out = run_cycle()
    assert code == 0, out
    assert counted.delta == {FEED: 1, WRITE: 2, "total": 3}
    assert values(sheets, "s2", "B")[1] == [1, "EMEA", 15.5]
    assert last_run_counters()["targets_diffed_without_reading"] == 5


def test_a_quiet_cycle_costs_one_feed_call_per_principal_or_one_for_all(make_target, sheets, settings):
    settings.SHEETS_PRINCIPALS = {"": "", "finance": "", "ops": ""}
    for index in range(24):
        make_target(f"t{index}", ROWS, spreadsheet_id=f"s{index // 2}", principal="finance" if index < 12 else "ops")
    sheets.reset_counters()
    code, out = run_cycle()
    assert code == 0, out
    users = sheets.user_counters()
    assert set(users) == {"emulator-finance", "emulator-ops"}  # each principal is its own emulator user
    assert users["emulator-finance"]["write"] == users["emulator-ops"]["write"] == 6
    with Counted(sheets) as counted:
        code, out = run_cycle()
    assert code == 0 and "24 no changes" in out
    assert counted.delta == {FEED: 2, "total": 2}  # one changes feed per principal, none per target

    settings.SHEETS_SYNC_FEED_PRINCIPAL = ""  # the default credentials see every spreadsheet: one feed for all
    run_cycle()  # its first cycle starts its own feed
    sheets.store.set_values("s8", "Sheet1!D9", [["typed"]])  # an ops spreadsheet: the shared feed sees it too
    with Counted(sheets) as counted:
        code, out = run_cycle()
    assert code == 0 and "24 no changes" in out
    assert counted.delta == {FEED: 1, READ: 1, "total": 2}  # s8 (two targets) re-read, in one batchGet
    with Counted(sheets) as counted:
        run_cycle()
    assert counted.delta == {FEED: 1, "total": 1}


def test_principals_take_fair_turns(make_target, sheets, settings, monkeypatch):
    """One worker, two principals: their spreadsheets are written alternately, not one principal's all first."""
    settings.SHEETS_PRINCIPALS = {"": "", "a": "", "b": ""}
    settings.SHEETS_SYNC_CONCURRENCY = 1
    targets = [make_target(f"a{i}", ROWS, spreadsheet_id=f"sa{i}", principal="a") for i in range(4)]
    targets += [make_target(f"b{i}", ROWS, spreadsheet_id=f"sb{i}", principal="b") for i in range(4)]
    run_cycle()
    order: list[str] = []
    original = SheetsClient.values_batch_update

    def note_who(self, **kwargs):
        order.append(self._http.session.headers["Authorization"].rsplit("-", 1)[1])
        return original(self, **kwargs)

    monkeypatch.setattr(SheetsClient, "values_batch_update", note_who)
    for index, target in enumerate(targets):
        set_source(target, [[1, "EMEA", float(index)]])
    code, out = run_cycle()
    assert code == 0, out
    assert order == ["a", "b"] * 4


def test_the_shared_budget_serves_waiting_principals_in_turn():
    """Three principals' threads hammer a shared budget of one request per window: each gets every third slot."""
    shared = SheetsRateLimiter(per_minute=1, window_s=0.1)
    shared.acquire("write")  # the window is full: all three are queued by the time the next slot frees
    got: list[str] = []

    def principal(name: str) -> None:
        for _ in range(4):
            shared.acquire("write")
            got.append(name)

    threads = [threading.Thread(target=principal, args=(n,)) for n in "abc"]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(got) == 12 and time.monotonic() - started >= 11 * 0.1
    for start in range(0, 12, 3):  # first come, first served: nobody takes a second slot before the others had one
        assert sorted(got[start : start + 3]) == ["a", "b", "c"], got


def test_principals_are_configured_and_one_spreadsheet_keeps_one(make_target, sheets, settings):
    settings.SHEETS_PRINCIPALS = {"": "", "finance": "/secrets/finance.json"}
    make_target("one", ROWS, spreadsheet_id="s1", principal="finance")
    unknown = SyncTarget(name="x", spreadsheet_id="s9", range="Sheet1!A1", source_kind="file", source_file="x.csv",
                         key_columns="id", principal="nobody")  # fmt: skip
    with pytest.raises(ValidationError, match="no principal 'nobody' in SHEETS_PRINCIPALS"):
        unknown.clean()
    with pytest.raises(ValueError, match="no principal 'nobody'"):
        sheets_client(principal="nobody")
    mixed = SyncTarget(name="y", spreadsheet_id="s1", range="Sheet2!A1", source_kind="file", source_file="x.csv",
                       key_columns="id")  # fmt: skip
    with pytest.raises(ValidationError, match="every target on one spreadsheet must use the same principal"):
        mixed.clean()
    # Made anyway (a direct database edit): the second target fails with the reason, the first still syncs.
    SyncTarget.objects.filter(name="one").update(principal="")
    late = make_target("two", ROWS, spreadsheet_id="s1", sheet="Sheet1", anchor="F1")
    SyncTarget.objects.filter(pk=late.pk).update(principal="finance")
    code, out = run_cycle()
    assert code == 0 and "every target on one spreadsheet must use the same principal" in out

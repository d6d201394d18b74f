"""The Sheets + Drive emulator: the real gspread against it, then routes, A1 forms, errors, Drive, quotas."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gspread
import pytest
import requests

from sandbox.common import FaultRule
from sandbox.sheets.a1 import A1Ref, column_letters, column_number, parse_a1, quote_sheet
from sandbox.sheets.server import SheetsEmulator, SheetsQuota
from sandbox.sheets.store import SheetsStore
from sandbox.sheets.testing import running_sheets_emulator

PROJECT_ROOT = Path(__file__).resolve().parents[2]
V4 = "/v4/spreadsheets"
META = "GET /v4/spreadsheets/<spreadsheet_id>"
VALUES_GET = "GET /v4/spreadsheets/<spreadsheet_id>/values/<path:range_name>"
VALUES_PUT = "PUT /v4/spreadsheets/<spreadsheet_id>/values/<path:range_name>"
VALUES_CLEAR = "POST /v4/spreadsheets/<spreadsheet_id>/values/<path:range_name>:clear"
BATCH_GET = "GET /v4/spreadsheets/<spreadsheet_id>/values:batchGet"
VALUES_BATCH_UPDATE = "POST /v4/spreadsheets/<spreadsheet_id>/values:batchUpdate"
BATCH_UPDATE = "POST /v4/spreadsheets/<spreadsheet_id>:batchUpdate"
DRIVE_GET = "GET /drive/v3/files/<file_id>"

SALES = [["region", "q1", "q2"], ["north", 10, 12.5], ["south", 7, True]]


class _Rewrite(requests.Session):
    """Sends gspread's Google URLs to the emulator (what connectors.sheets does)."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url
        self.headers["Authorization"] = "Bearer test"

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        for host in ("https://sheets.googleapis.com", "https://www.googleapis.com"):
            if str(url).startswith(host):
                url = self.base_url + str(url)[len(host) :]
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def emulator() -> Iterator[SheetsEmulator]:
    with running_sheets_emulator() as emu:
        yield emu


@pytest.fixture
def http(emulator: SheetsEmulator) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = "Bearer test"
    return session


@pytest.fixture
def sales(emulator: SheetsEmulator) -> str:
    return emulator.store.create_spreadsheet("Sales", {"Sheet1": SALES, "My 'Data'": [["x", "y"]]})


def _url(emulator: SheetsEmulator, path: str) -> str:
    return f"{emulator.base_url}{path}"


def _error(reply: requests.Response) -> dict[str, Any]:
    body = reply.json()
    assert set(body) == {"error"} and {"code", "message", "status"} <= set(body["error"])
    assert body["error"]["code"] == reply.status_code
    return body["error"]


# --- the real gspread -----------------------------------------------------------------------------------------


def test_gspread_round_trip_hits_the_documented_routes(emulator: SheetsEmulator, sales: str) -> None:
    gc = gspread.Client(auth=None, session=_Rewrite(emulator.base_url))  # type: ignore[arg-type]
    sh = gc.open_by_key(sales)
    assert sh.title == "Sales" and [w.title for w in sh.worksheets()] == ["Sheet1", "My 'Data'"]
    ws = sh.sheet1
    assert ws.get_all_values() == [["region", "q1", "q2"], ["north", "10", "12.5"], ["south", "7", "TRUE"]]
    assert sh.worksheet("My 'Data'").get("A1:B1") == [["x", "y"]]

    ws.update([["west", 3]], "A4")
    ws.batch_update([{"range": "E1", "values": [["note"]]}, {"range": "B5:C5", "values": [[1, 2]]}])
    assert emulator.store.values(sales, "Sheet1")[3:] == [["west", 3], ["", 1, 2]]
    assert emulator.store.values(sales, "Sheet1")[0] == ["region", "q1", "q2", "", "note"]

    ws.resize(rows=6, cols=5)
    assert emulator.store.sheet_size(sales, "Sheet1") == (6, 5)
    with pytest.raises(gspread.exceptions.APIError) as caught:
        ws.update([[1]], "F1")
    assert caught.value.code == 400 and "exceeds grid limits" in str(caught.value)
    ws.clear()
    assert emulator.store.values(sales, "Sheet1") == []
    assert sh.get_lastUpdateTime() == emulator.store.drive_file(sales)["modifiedTime"]

    created = gc.create("Fresh")
    assert created.sheet1.title == "Sheet1" and created.id in emulator.store.spreadsheet_ids()
    gc.del_spreadsheet(created.id)
    with pytest.raises(gspread.SpreadsheetNotFound):
        gc.open_by_key(created.id)

    counters = emulator.counters()
    for key in (META, VALUES_GET, VALUES_PUT, VALUES_BATCH_UPDATE, VALUES_CLEAR, BATCH_UPDATE, DRIVE_GET):
        assert counters.get(key), key
    assert "GET <unmatched>" not in counters and "POST <unmatched>" not in counters


# --- values: reads ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a1", "expected_range", "expected_values"),
    [
        ("'Sheet1'!A1:C10", "Sheet1!A1:C10", SALES),
        ("Sheet1", "Sheet1!A1:Z1000", SALES),
        ("A1:B2", "Sheet1!A1:B2", [["region", "q1"], ["north", 10]]),
        ("A:B", "Sheet1!A1:B1000", [["region", "q1"], ["north", 10], ["south", 7]]),
        ("A2:Z", "Sheet1!A2:Z1000", [["north", 10, 12.5], ["south", 7, True]]),
        ("2:3", "Sheet1!A2:Z3", [["north", 10, 12.5], ["south", 7, True]]),
        ("sheet1!$b$2", None, None),  # sheet names are case-sensitive
        ("B2", "Sheet1!B2", [[10]]),
        ("C3:A1", "Sheet1!A1:C3", SALES),
        ("'My ''Data'''!B1", "'My ''Data'''!B1", [["y"]]),
        ("D1:E5", "Sheet1!D1:E5", None),
    ],
)
def test_values_get_reads_a1_forms(
    emulator: SheetsEmulator,
    http: requests.Session,
    sales: str,
    a1: str,
    expected_range: str | None,
    expected_values: list[list[Any]] | None,
) -> None:
    quoted = requests.utils.quote(a1, safe="")  # what gspread sends: %27Sheet1%27%21A1%3AC10
    reply = http.get(_url(emulator, f"{V4}/{sales}/values/{quoted}"), params={"valueRenderOption": "UNFORMATTED_VALUE"})
    if expected_range is None:
        assert reply.status_code == 400 and _error(reply)["status"] == "INVALID_ARGUMENT"
        return
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["range"] == expected_range and body["majorDimension"] == "ROWS"
    assert body.get("values") == expected_values


def test_values_render_options_trimming_and_columns(emulator: SheetsEmulator, http: requests.Session) -> None:
    sid = emulator.store.create_spreadsheet("T", {"S": [["a", "", 1.0, 0.1 + 0.2], [], ["", "", "", ""], ["", "b"]]})
    base = _url(emulator, f"{V4}/{sid}/values/S")
    formatted = http.get(base).json()["values"]
    assert formatted == [["a", "", "1", "0.3"], [], [], ["", "b"]]  # strings; empty rows kept in the middle
    unformatted = http.get(base, params={"valueRenderOption": "UNFORMATTED_VALUE"}).json()["values"]
    assert unformatted == [["a", "", 1, 0.30000000000000004], [], [], ["", "b"]]
    columns = http.get(base, params={"majorDimension": "COLUMNS"}).json()["values"]
    assert columns == [["a"], ["", "", "", "b"], ["1"], ["0.3"]]
    empty = http.get(_url(emulator, f"{V4}/{sid}/values/S!K1:K2")).json()
    assert "values" not in empty and empty["range"] == "S!K1:K2"
    assert http.get(base, params={"valueRenderOption": "PRETTY"}).status_code == 400


def test_batch_get_returns_every_range_in_one_request(
    emulator: SheetsEmulator, http: requests.Session, sales: str
) -> None:
    emulator.reset_counters()
    reply = http.get(
        _url(emulator, f"{V4}/{sales}/values:batchGet"),
        params={"ranges": ["Sheet1!A1:A2", "'My ''Data'''", "C3"]},
    )
    assert reply.status_code == 200
    ranges = reply.json()["valueRanges"]
    assert [r["range"] for r in ranges] == ["Sheet1!A1:A2", "'My ''Data'''!A1:Z1000", "Sheet1!C3"]
    assert [r["values"] for r in ranges] == [[["region"], ["north"]], [["x", "y"]], [["TRUE"]]]
    assert emulator.counters() == {BATCH_GET: 1, "total": 1}
    bad = http.get(_url(emulator, f"{V4}/{sales}/values:batchGet"), params={"ranges": ["Sheet1!A1", "Nope!A1"]})
    assert bad.status_code == 400 and "Unable to parse range: Nope!A1" in _error(bad)["message"]


# --- values: writes ---------------------------------------------------------------------------------------------


def test_update_raw_vs_user_entered_nulls_and_blanks(emulator: SheetsEmulator, http: requests.Session) -> None:
    sid = emulator.store.create_spreadsheet("W", {"S": [["keep", "old"]]})
    url = _url(emulator, f"{V4}/{sid}/values/S!A1")
    raw = http.put(url, params={"valueInputOption": "RAW"}, json={"values": [[None, "", "12", "TRUE", 3]]})
    assert raw.status_code == 200
    assert raw.json() == {
        "spreadsheetId": sid,
        "updatedRange": "S!A1:E1",
        "updatedRows": 1,
        "updatedColumns": 4,
        "updatedCells": 4,
    }
    assert emulator.store.values(sid, "S") == [["keep", "", "12", "TRUE", 3]]  # null skipped, "" cleared
    typed = http.put(
        url,
        params={"valueInputOption": "USER_ENTERED", "includeValuesInResponse": "true"},
        json={"values": [["12", "true", "'007", "-1.5e2"]]},
    ).json()
    assert emulator.store.values(sid, "S")[0][:4] == [12, True, "007", -150]
    assert typed["updatedData"] == {
        "range": "S!A1:D1",
        "majorDimension": "ROWS",
        "values": [["12", "TRUE", "007", "-150"]],
    }

    missing = http.put(url, json={"values": [[1]]})
    assert missing.status_code == 400 and "valueInputOption" in _error(missing)["message"]
    mismatch = http.put(url, params={"valueInputOption": "RAW"}, json={"range": "S!B1", "values": [[1]]})
    assert mismatch.status_code == 400
    not_scalar = http.put(url, params={"valueInputOption": "RAW"}, json={"values": [[{"a": 1}]]})
    assert not_scalar.status_code == 400


def test_writes_must_fit_the_range_and_the_grid(emulator: SheetsEmulator, http: requests.Session) -> None:
    sid = emulator.store.create_spreadsheet("G", {"S": []}, rows=5, cols=3)
    put = _url(emulator, f"{V4}/{sid}/values/")
    too_long = http.put(put + "S!A1:B2", params={"valueInputOption": "RAW"}, json={"values": [[1], [2], [3]]})
    assert too_long.status_code == 400
    assert _error(too_long)["message"] == "Requested writing within range [S!A1:B2], but tried writing to row [3]"
    beyond = http.put(put + "S!C5", params={"valueInputOption": "RAW"}, json={"values": [[1, 2]]})
    error = _error(beyond)
    assert beyond.status_code == 400 and error["status"] == "INVALID_ARGUMENT"
    assert error["message"] == "Range ('S'!C5:D5) exceeds grid limits. Max rows: 5, max columns: 3"
    assert http.get(put + "S!A1:D1").status_code == 400  # reads beyond the grid fail the same way
    assert emulator.store.version(sid) == 1  # nothing was written


def test_batch_update_is_one_request_and_all_or_nothing(emulator: SheetsEmulator, http: requests.Session) -> None:
    sid = emulator.store.create_spreadsheet("B", {"S": [["a"]], "T": []}, rows=10, cols=5)
    url = _url(emulator, f"{V4}/{sid}/values:batchUpdate")
    data = [
        {"range": "S!B2", "values": [[1]]},
        {"range": "T!E10", "values": [["x"]]},
        {"range": "S!A1", "values": [[""]]},
    ]
    emulator.reset_counters()
    reply = http.post(url, json={"valueInputOption": "RAW", "data": data, "includeValuesInResponse": True}).json()
    assert emulator.counters() == {VALUES_BATCH_UPDATE: 1, "total": 1}
    assert (reply["totalUpdatedCells"], reply["totalUpdatedSheets"]) == (3, 2)
    assert [r["updatedRange"] for r in reply["responses"]] == ["S!B2", "T!E10", "S!A1"]
    assert reply["responses"][0]["updatedData"]["values"] == [["1"]]
    assert emulator.store.values(sid, "S") == [[], ["", 1]]
    assert emulator.store.version(sid) == 2  # one version per request

    partly_bad = data[:1] + [{"range": "S!F1", "values": [[9]]}]
    failed = http.post(url, json={"valueInputOption": "RAW", "data": [{"range": "S!C3", "values": [[5]]}, *partly_bad]})
    assert failed.status_code == 400 and "exceeds grid limits" in _error(failed)["message"]
    assert emulator.store.values(sid, "S") == [[], ["", 1]] and emulator.store.version(sid) == 2


def test_clear_and_batch_clear(emulator: SheetsEmulator, http: requests.Session, sales: str) -> None:
    cleared = http.post(_url(emulator, f"{V4}/{sales}/values/%27Sheet1%27%21B2%3AC3:clear")).json()
    assert cleared == {"spreadsheetId": sales, "clearedRange": "Sheet1!B2:C3"}
    assert emulator.store.values(sales, "Sheet1") == [["region", "q1", "q2"], ["north"], ["south"]]
    batch = http.post(_url(emulator, f"{V4}/{sales}/values:batchClear"), json={"ranges": ["A:A", "'My ''Data'''"]})
    assert batch.json()["clearedRanges"] == ["Sheet1!A1:A1000", "'My ''Data'''!A1:Z1000"]
    assert emulator.store.values(sales, "Sheet1") == [["", "q1", "q2"]]
    assert emulator.store.values(sales, "My 'Data'") == []


def test_structure_batch_update_grows_and_shrinks_sheets(emulator: SheetsEmulator, http: requests.Session) -> None:
    sid = emulator.store.create_spreadsheet("S", {"Main": [["a", "b", "c"], ["d", "e", "f"]]}, rows=3, cols=3)
    url = _url(emulator, f"{V4}/{sid}:batchUpdate")
    reply = http.post(
        url,
        json={
            "requests": [
                {"addSheet": {"properties": {"title": "Extra", "gridProperties": {"rowCount": 2, "columnCount": 2}}}},
                {
                    "updateSheetProperties": {
                        "properties": {"sheetId": 0, "gridProperties": {"rowCount": 1, "columnCount": 2}},
                        "fields": "gridProperties/rowCount,gridProperties.columnCount",
                    }
                },
                {"appendDimension": {"sheetId": 0, "dimension": "ROWS", "length": 4}},
            ]
        },
    ).json()
    added = reply["replies"][0]["addSheet"]["properties"]
    assert added["title"] == "Extra" and added["gridProperties"] == {"rowCount": 2, "columnCount": 2}
    assert reply["replies"][1:] == [{}, {}]
    assert emulator.store.sheet_size(sid, "Main") == (5, 2)
    assert emulator.store.values(sid, "Main") == [["a", "b"]]  # shrinking dropped the rest
    meta = http.get(_url(emulator, f"{V4}/{sid}"), params={"fields": "sheets.properties.title"}).json()
    assert meta == {"sheets": [{"properties": {"title": "Main"}}, {"properties": {"title": "Extra"}}]}

    duplicate = http.post(url, json={"requests": [{"addSheet": {"properties": {"title": "Extra"}}}]})
    assert duplicate.status_code == 400 and "already exists" in _error(duplicate)["message"]
    unknown = http.post(url, json={"requests": [{"deleteSheet": {"sheetId": 0}}, {"mergeCells": {}}]})
    assert unknown.status_code == 400 and emulator.store.sheet_size(sid, "Main") == (5, 2)  # all or nothing
    http.post(url, json={"requests": [{"deleteSheet": {"sheetId": added["sheetId"]}}]}).raise_for_status()
    last = http.post(url, json={"requests": [{"deleteSheet": {"sheetId": 0}}]})
    assert last.status_code == 400 and "remove all the sheets" in _error(last)["message"]


def test_metadata_create_and_auth(emulator: SheetsEmulator, http: requests.Session, sales: str) -> None:
    meta = http.get(_url(emulator, f"{V4}/{sales}"), params={"includeGridData": "false"}).json()
    assert meta["spreadsheetId"] == sales and meta["properties"]["title"] == "Sales"
    first = meta["sheets"][0]["properties"]
    assert first == {
        "sheetId": 0,
        "title": "Sheet1",
        "index": 0,
        "sheetType": "GRID",
        "gridProperties": {"rowCount": 1000, "columnCount": 26},
    }
    created = http.post(
        _url(emulator, V4),
        json={
            "properties": {"title": "New"},
            "sheets": [{"properties": {"title": "A", "gridProperties": {"rowCount": 5}}}],
        },
    ).json()
    assert created["properties"]["title"] == "New" and created["sheets"][0]["properties"]["gridProperties"] == {
        "rowCount": 5,
        "columnCount": 26,
    }
    anonymous = requests.get(_url(emulator, f"{V4}/{sales}"), timeout=5)
    assert anonymous.status_code == 401 and _error(anonymous)["status"] == "UNAUTHENTICATED"
    assert requests.get(_url(emulator, f"{V4}/{sales}"), params={"key": "k"}, timeout=5).status_code == 200


# --- Drive --------------------------------------------------------------------------------------------------------


def test_drive_metadata_version_and_deletion(emulator: SheetsEmulator, http: requests.Session, sales: str) -> None:
    url = _url(emulator, f"/drive/v3/files/{sales}")
    assert set(http.get(url).json()) == {"kind", "id", "name", "mimeType"}  # Drive's default fields
    first = http.get(url, params={"fields": "id,name,version,modifiedTime,createdTime"}).json()
    assert set(first) == {"id", "name", "version", "modifiedTime", "createdTime"} and first["version"] == "1"

    http.put(
        _url(emulator, f"{V4}/{sales}/values/A1"), params={"valueInputOption": "RAW"}, json={"values": [["x"]]}
    ).raise_for_status()
    second = http.get(url, params={"fields": "version,modifiedTime"}).json()
    assert second["version"] == "2" and second["modifiedTime"] >= first["modifiedTime"]
    emulator.store.set_values(sales, "Sheet1!B2", [["11"]])  # a person typing: USER_ENTERED
    assert http.get(url, params={"fields": "version"}).json() == {"version": "3"}
    assert emulator.store.values(sales, "Sheet1")[1][1] == 11
    http.get(_url(emulator, f"{V4}/{sales}/values/A1")).raise_for_status()
    assert emulator.store.version(sales) == 3  # reads do not bump

    emulator.store.trash_spreadsheet(sales)
    assert http.get(url, params={"fields": "trashed,version"}).json() == {"trashed": True, "version": "4"}
    emulator.store.delete_spreadsheet(sales)
    gone = http.get(url)
    assert gone.status_code == 404
    assert _error(gone)["errors"][0]["reason"] == "notFound"
    sheets_gone = http.get(_url(emulator, f"{V4}/{sales}/values/A1"))
    assert sheets_gone.status_code == 404 and _error(sheets_gone)["status"] == "NOT_FOUND"


def test_changes_feed_lists_each_changed_file_once(emulator: SheetsEmulator, http: requests.Session) -> None:
    store = emulator.store
    a, b, c = (store.create_spreadsheet(name) for name in "abc")
    start = http.get(_url(emulator, "/drive/v3/changes/startPageToken")).json()["startPageToken"]
    changes_url = _url(emulator, "/drive/v3/changes")
    assert http.get(changes_url, params={"pageToken": start}).json() == {
        "kind": "drive#changeList",
        "changes": [],
        "newStartPageToken": start,
    }

    store.set_values(a, "Sheet1!A1", [["1"]])
    store.set_values(c, "Sheet1!A1", [["1"]])
    store.set_values(a, "Sheet1!A2", [["2"]])
    store.delete_spreadsheet(b)
    emulator.reset_counters()
    fields = "newStartPageToken,nextPageToken,changes(fileId,removed)"
    feed = http.get(changes_url, params={"pageToken": start, "fields": fields}).json()
    assert feed["changes"] == [
        {"fileId": c, "removed": False},
        {"fileId": a, "removed": False},
        {"fileId": b, "removed": True},
    ]
    assert emulator.counters()["total"] == 1
    again = http.get(changes_url, params={"pageToken": feed["newStartPageToken"]}).json()
    assert again["changes"] == []

    page = http.get(changes_url, params={"pageToken": start, "pageSize": 2, "fields": fields}).json()
    assert [ch["fileId"] for ch in page["changes"]] == [c, a] and "newStartPageToken" not in page
    rest = http.get(changes_url, params={"pageToken": page["nextPageToken"], "fields": fields}).json()
    assert [ch["fileId"] for ch in rest["changes"]] == [b] and rest["newStartPageToken"] == feed["newStartPageToken"]
    for bad in ("junk", "0", "999"):
        assert http.get(changes_url, params={"pageToken": bad}).status_code == 400


def test_concurrent_writes_each_bump_the_version_once(emulator: SheetsEmulator) -> None:
    sid = emulator.store.create_spreadsheet("Busy", {"S": []})
    url = _url(emulator, f"{V4}/{sid}/values:batchUpdate")

    def writer(column: int) -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = "Bearer t"
            for row in range(1, 6):
                body = {"valueInputOption": "RAW", "data": [{"range": f"S!{chr(64 + column)}{row}", "values": [[row]]}]}
                session.post(url, json=body, timeout=5).raise_for_status()

    threads = [threading.Thread(target=writer, args=(column,)) for column in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert emulator.store.version(sid) == 1 + 40
    assert emulator.store.values(sid, "S") == [[row] * 8 for row in range(1, 6)]


# --- faults, quotas, control endpoints -------------------------------------------------------------------------


def test_fault_injection_and_google_error_shape(emulator: SheetsEmulator, http: requests.Session, sales: str) -> None:
    emulator.faults.add(FaultRule(path_pattern="*/values/*", status=429, after=1, times=1, retry_after=2))
    url = _url(emulator, f"{V4}/{sales}/values/A1")
    assert http.get(url).status_code == 200
    throttled = http.get(url)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    assert _error(throttled)["status"] == "RESOURCE_EXHAUSTED"
    assert http.get(url).status_code == 200
    assert emulator.counters()[VALUES_GET] == 3


def test_quota_simulation_counts_reads_and_writes_per_minute(
    emulator: SheetsEmulator, http: requests.Session, sales: str
) -> None:
    now = [1000.0]
    emulator.quota = SheetsQuota(read_per_minute=2, write_per_minute=1, clock=lambda: now[0])
    read = _url(emulator, f"{V4}/{sales}/values/A1")
    write = _url(emulator, f"{V4}/{sales}/values:batchUpdate")
    body = {"valueInputOption": "RAW", "data": [{"range": "A1", "values": [["x"]]}]}
    assert [http.get(read).status_code for _ in range(3)] == [200, 200, 429]
    assert [http.post(write, json=body).status_code for _ in range(2)] == [200, 429]
    assert http.get(_url(emulator, f"/drive/v3/files/{sales}")).status_code == 200  # Drive is not capped
    over = http.get(read)
    assert "Read requests per minute per user" in _error(over)["message"] and "Retry-After" not in over.headers
    now[0] += 60.5
    assert http.get(read).status_code == 200

    reply = http.post(_url(emulator, "/__emulator/quota"), json={"read_per_minute": None, "write_per_minute": 5})
    assert reply.json() == {"read_per_minute": None, "write_per_minute": 5}


def test_control_endpoints_drive_the_store_over_http(emulator: SheetsEmulator) -> None:
    control = _url(emulator, "/__emulator/spreadsheets")
    new_id = requests.post(control, json={"title": "Ctl", "sheets": {"S": [["a"]]}}, timeout=5).json()["id"]
    edit = requests.post(f"{control}/{new_id}/edit", json={"range": "S!B1", "values": [["5"]]}, timeout=5).json()
    assert edit == {"ok": True, "version": 2}
    state = requests.get(f"{control}/{new_id}", timeout=5).json()
    assert state["values"] == {"S": [["a", 5]]} and state["drive"]["version"] == "2"
    requests.post(f"{control}/{new_id}/trash", json={"trashed": True}, timeout=5).raise_for_status()
    assert emulator.store.drive_file(new_id)["trashed"] is True
    assert requests.delete(f"{control}/{new_id}", timeout=5).json() == {"ok": True}
    assert new_id not in requests.get(control, timeout=5).json()
    assert emulator.counters() == {}  # control calls are never counted


# --- fixtures and persistence ------------------------------------------------------------------------------------


def test_fixture_forms_and_state_survive_a_restart(tmp_path: Path) -> None:
    fixture = [
        {
            "id": "sales-1",
            "title": "Sales",
            "sheets": [{"title": "Data", "sheet_id": 7, "rows": 10, "cols": 4, "values": [["a", 1]]}],
        },
        {"id": "plain", "title": "Plain", "modified_time": "2026-01-02T03:04:05Z", "sheets": {"Sheet1": [["x"]]}},
    ]
    state = tmp_path / "state.json"
    with running_sheets_emulator(fixture=fixture, state_path=state) as emu:
        assert emu.store.sheet_size("sales-1", "Data") == (10, 4)
        assert emu.store.drive_file("plain")["modifiedTime"] == "2026-01-02T03:04:05.000Z"
        emu.store.set_values("sales-1", "Data!B2", [["2"]])
        emu.store.delete_spreadsheet("plain")
        token = emu.store.start_page_token()
    saved = json.loads(state.read_text())
    assert {s["id"] for s in saved["spreadsheets"]} == {"sales-1"} and saved["deleted"] == ["plain"]
    assert not list(tmp_path.glob(".state.json.*"))  # temp files renamed away

    with running_sheets_emulator(state_path=state) as emu:
        assert emu.store.values("sales-1", "Data") == [["a", 1], ["", 2]]
        assert emu.store.version("sales-1") == 2 and emu.store.start_page_token() == token
        with pytest.raises(ValueError, match="taken"):
            emu.store.create_spreadsheet("Again", spreadsheet_id="plain")

    with pytest.raises(ValueError, match="do not fit"):
        SheetsStore([{"title": "Bad", "sheets": [{"title": "S", "rows": 1, "cols": 1, "values": [["a", "b"]]}]}])


def test_command_line_serves_and_persists(tmp_path: Path) -> None:
    fixture = tmp_path / "fixture.json"
    fixture.write_text(json.dumps({"version": 1, "spreadsheets": [{"id": "f1", "title": "F", "sheets": {"S": []}}]}))
    state = tmp_path / "state.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.sheets", "--port", "0", "--fixture", str(fixture), "--state", str(state)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        assert requests.get(f"{base}/__emulator/health", timeout=5).json()["name"] == "sheets"
        reply = requests.put(
            f"{base}{V4}/f1/values/S!A1",
            params={"valueInputOption": "RAW"},
            json={"values": [["persisted"]]},
            headers={"Authorization": "Bearer t"},
            timeout=5,
        )
        assert reply.status_code == 200
        assert json.loads(state.read_text())["spreadsheets"][0]["sheets"][0]["values"] == [["persisted"]]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


# --- the emulator's own A1 reading ------------------------------------------------------------------------------


def test_emulator_a1_parser() -> None:
    assert parse_a1("Sheet1") == A1Ref("Sheet1")
    assert parse_a1("A1") == A1Ref(None, 1, 1, 1, 1, single_cell=True)
    assert parse_a1("'A1'") == A1Ref("A1")
    assert parse_a1("'It''s'!$A$2:b") == A1Ref("It's", 2, 1, None, 2)
    assert parse_a1("Data!3:4") == A1Ref("Data", 3, None, 4, None)
    for bad in ("", "'open", "Sheet1!", "Sheet1!A0", "S!A2:5", "'S'x"):
        with pytest.raises(ValueError):
            parse_a1(bad)
    assert [column_letters(n) for n in (1, 26, 27, 702, 703, 18278)] == ["A", "Z", "AA", "ZZ", "AAA", "ZZZ"]
    assert column_number("zzz") == 18278
    assert [quote_sheet(n) for n in ("Sheet1", "My sheet", "A1", "R1C1", "it's")] == [
        "Sheet1",
        "'My sheet'",
        "'A1'",
        "'R1C1'",
        "'it''s'",
    ]


def test_each_token_is_a_user_with_its_own_quota_under_the_project_cap(
    emulator: SheetsEmulator, http: requests.Session, sales: str
) -> None:
    now = [1000.0]
    emulator.quota = SheetsQuota(read_per_minute=2, write_per_minute=2, project_read_per_minute=3, clock=lambda: now[0])
    read = _url(emulator, f"{V4}/{sales}/values/A1")

    def as_user(token: str) -> int:
        return http.get(read, headers={"Authorization": f"Bearer {token}"}).status_code

    assert [as_user("emulator-a"), as_user("emulator-a"), as_user("emulator-a")] == [200, 200, 429]  # a's own cap
    assert as_user("emulator-b") == 200  # b has its own: the project's 3rd read
    over = http.get(read, headers={"Authorization": "Bearer emulator-c"})  # c's first, but the project is full
    assert over.status_code == 429 and "Read requests per minute'" in _error(over)["message"]
    assert emulator.user_counters() == {
        "emulator-a": {"read": 3, "read refused": 1},
        "emulator-b": {"read": 1},
        "emulator-c": {"read": 1, "read refused": 1},
    }
    now[0] += 61
    assert as_user("emulator-c") == 200
    assert emulator.quota.limits() == {"read_per_minute": 2, "write_per_minute": 2, "project_read_per_minute": 3}

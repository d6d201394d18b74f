"""connectors.sheets through the real gspread against the Sheets + Drive emulator on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from google.auth.transport.requests import AuthorizedSession

import connectors.sheets as sheets_module
from connectors.errors import (
    ConnectorAuthError,
    ConnectorBadResponse,
    ConnectorNotFound,
    ConnectorRateLimited,
    ConnectorRequestError,
    ConnectorTransientError,
)
from connectors.sheets import (
    DriveChanges,
    GridRange,
    SheetMeta,
    SheetsClient,
    SheetsRateLimiter,
    ValueRange,
    a1_to_grid,
    column_letters,
    column_number,
    grid_to_a1,
    quote_sheet_name,
    sheets_client,
)
from sandbox.common import FaultRule
from sandbox.sheets.server import SheetsEmulator, SheetsQuota
from sandbox.sheets.testing import running_sheets_emulator

VALUES_GET = "GET /v4/spreadsheets/<spreadsheet_id>/values/<path:range_name>"
VALUES_BATCH_UPDATE = "POST /v4/spreadsheets/<spreadsheet_id>/values:batchUpdate"
BATCH_GET = "GET /v4/spreadsheets/<spreadsheet_id>/values:batchGet"
CHANGES = "GET /drive/v3/changes"

SALES = [["region", "q1", "q2"], ["north", 10, 12.5], ["south", 7, True]]

MakeClient = Callable[..., SheetsClient]


class FakeClock:
    """A monotonic clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(scope="module")
def emulator() -> Iterator[SheetsEmulator]:
    """One emulator for the module; tests create their own spreadsheets and reset faults."""
    with running_sheets_emulator() as emu:
        yield emu


@pytest.fixture(autouse=True)
def _clean_emulator(emulator: SheetsEmulator) -> Iterator[None]:
    emulator.faults.clear()
    emulator.reset_counters()
    emulator.quota = SheetsQuota()
    yield
    emulator.faults.clear()


@pytest.fixture
def make_client(emulator: SheetsEmulator) -> Iterator[MakeClient]:
    """Clients aimed at the emulator, with recorded (not slept) backoff; closed afterwards."""
    clients: list[SheetsClient] = []

    def make(**overrides: Any) -> SheetsClient:
        options: dict[str, Any] = {
            "endpoint": emulator.base_url,
            "credentials_file": None,
            "timeout": 5,
            "max_attempts": 3,
            "backoff_base": 0.01,
            "backoff_max": 5,
            "rate_limit_per_minute": None,
        }
        options.update(overrides)
        client = SheetsClient(**options)
        client.slept = []  # type: ignore[attr-defined]
        client._sleep = client.slept.append  # type: ignore[attr-defined]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: MakeClient) -> SheetsClient:
    return make_client()


@pytest.fixture
def sales(emulator: SheetsEmulator) -> str:
    return emulator.store.create_spreadsheet("Sales", {"Sheet1": SALES, "Q1 '24": [["x"]]}, rows=20, cols=6)


# --- reads ----------------------------------------------------------------------------------------------------


def test_spreadsheet_meta(client: SheetsClient, sales: str, emulator: SheetsEmulator) -> None:
    meta = client.spreadsheet_meta(spreadsheet_id=sales)
    assert meta.id == sales and meta.title == "Sales"
    assert meta.sheets[0] == SheetMeta(title="Sheet1", sheet_id=0, rows=20, cols=6)
    assert [s.title for s in meta.sheets] == ["Sheet1", "Q1 '24"]
    assert meta.sheet("Q1 '24") is meta.sheets[1] and meta.sheet("nope") is None
    assert emulator.counters()["total"] == 1 and client.request_count == 1


@pytest.mark.parametrize(
    ("a1", "expected"),
    [
        (
            "Sheet1!A1:C3",
            ValueRange("Sheet1!A1:C3", [["region", "q1", "q2"], ["north", "10", "12.5"], ["south", "7", "TRUE"]]),
        ),
        ("'Sheet1'!B2", ValueRange("Sheet1!B2", [["10"]])),
        ("A2:B", ValueRange("Sheet1!A2:B20", [["north", "10"], ["south", "7"]])),
        ("B:B", ValueRange("Sheet1!B1:B20", [["q1"], ["10"], ["7"]])),
        ("'Q1 ''24'", ValueRange("'Q1 ''24'!A1:F20", [["x"]])),
        ("Sheet1!E1:F2", ValueRange("Sheet1!E1:F2", [])),
    ],
)
def test_values_get_a1_forms(client: SheetsClient, sales: str, a1: str, expected: ValueRange) -> None:
    assert client.values_get(spreadsheet_id=sales, range=a1) == expected


def test_values_get_unformatted_and_batch_get(client: SheetsClient, sales: str, emulator: SheetsEmulator) -> None:
    raw = client.values_get(spreadsheet_id=sales, range="Sheet1!B2:C3", value_render_option="UNFORMATTED_VALUE")
    assert raw.values == [[10, 12.5], [7, True]]
    emulator.reset_counters()
    ranges = client.values_batch_get(spreadsheet_id=sales, ranges=["Sheet1!A1", "'Q1 ''24'!A1", "Sheet1!C2:C3"])
    assert [r.values for r in ranges] == [[["region"]], [["x"]], [["12.5"], ["TRUE"]]]
    assert emulator.counters() == {BATCH_GET: 1, "total": 1}
    assert client.values_batch_get(spreadsheet_id=sales, ranges=[]) == []
    with pytest.raises(ValueError):
        client.values_get(spreadsheet_id=sales, range="A1", value_render_option="PRETTY")


def test_bad_range_is_a_request_error(client: SheetsClient, sales: str) -> None:
    with pytest.raises(ConnectorRequestError) as caught:
        client.values_get(spreadsheet_id=sales, range="Nope!A1")
    message = str(caught.value)
    assert message.startswith(f"Sheets: reading Nope!A1 of spreadsheet {sales} failed: HTTP 400 INVALID_ARGUMENT")
    assert "Unable to parse range" in message and caught.value.status == 400 and caught.value.system == "sheets"


# --- writes ---------------------------------------------------------------------------------------------------


def test_batch_update_writes_scattered_cells_in_one_request(
    client: SheetsClient, sales: str, emulator: SheetsEmulator
) -> None:
    data = [
        ("Sheet1!B2", [[11]]),
        ("Sheet1!D7", [["new"]]),
        ("'Q1 ''24'!C1", [["q", None, "r"]]),  # None leaves D1 alone
        ("Sheet1!A3", [[""]]),  # "" empties a cell
        ("Sheet1!F20", [["status: ok"]]),
    ]
    result = client.values_batch_update(spreadsheet_id=sales, data=data)
    assert emulator.counters() == {VALUES_BATCH_UPDATE: 1, "total": 1}
    assert result.updated_cells == 6 and result.values is None
    assert result.updated_ranges == ("Sheet1!B2", "Sheet1!D7", "'Q1 ''24'!C1:E1", "Sheet1!A3", "Sheet1!F20")
    stored = emulator.store.values(sales, "Sheet1")
    assert stored[1][1] == 11 and stored[2][0] == "" and stored[6][3] == "new" and stored[19][5] == "status: ok"
    assert emulator.store.values(sales, "Q1 '24") == [["x", "", "q", "", "r"]]


def test_batch_update_user_entered_and_read_back_in_the_same_request(
    client: SheetsClient, sales: str, emulator: SheetsEmulator
) -> None:
    result = client.values_batch_update(
        spreadsheet_id=sales,
        data=[("Sheet1!B2:C2", [["42", "=B2*2"]])],
        value_input_option="USER_ENTERED",
        include_values_in_response=True,
        response_value_render_option="UNFORMATTED_VALUE",
    )
    assert result.values == (ValueRange("Sheet1!B2:C2", [[42, "=B2*2"]]),)
    assert emulator.counters()["total"] == 1
    empty = client.values_batch_update(spreadsheet_id=sales, data=[])
    assert (empty.updated_cells, emulator.counters()["total"]) == (0, 1)  # nothing to write: no request
    with pytest.raises(ValueError):
        client.values_batch_update(spreadsheet_id=sales, data=[("A1", [[1]])], value_input_option="PARSED")


def test_write_beyond_the_grid_fails_then_resize_and_write(
    client: SheetsClient, sales: str, emulator: SheetsEmulator
) -> None:
    rows = [[f"r{i}", i] for i in range(25)]
    with pytest.raises(ConnectorRequestError) as caught:
        client.values_batch_update(spreadsheet_id=sales, data=[("Sheet1!A1", rows), ("Sheet1!G1", [["x"]])])
    assert f"writing 2 ranges to spreadsheet {sales} failed" in str(caught.value)
    assert "exceeds grid limits" in str(caught.value)
    assert emulator.store.values(sales, "Sheet1") == SALES  # all or nothing
    sheet = client.spreadsheet_meta(spreadsheet_id=sales).sheets[0]
    client.sheet_resize(spreadsheet_id=sales, sheet_id=sheet.sheet_id, rows=30, cols=7)
    assert client.spreadsheet_meta(spreadsheet_id=sales).sheets[0] == SheetMeta("Sheet1", 0, 30, 7)
    client.values_batch_update(spreadsheet_id=sales, data=[("Sheet1!A1", rows), ("Sheet1!G1", [["x"]])])
    assert emulator.store.values(sales, "Sheet1")[24][:2] == ["r24", 24]


def test_values_clear(client: SheetsClient, sales: str, emulator: SheetsEmulator) -> None:
    assert client.values_clear(spreadsheet_id=sales, range="Sheet1!B:C") == "Sheet1!B1:C20"
    assert emulator.store.values(sales, "Sheet1") == [["region"], ["north"], ["south"]]


# --- Drive ------------------------------------------------------------------------------------------------------


def test_drive_version_moves_on_writes_and_human_edits(
    client: SheetsClient, sales: str, emulator: SheetsEmulator
) -> None:
    first = client.drive_version(spreadsheet_id=sales)
    assert first.id == sales and isinstance(first.modified_time, datetime) and first.modified_time.tzinfo
    assert first.trashed is False
    client.values_batch_update(spreadsheet_id=sales, data=[("Sheet1!A1", [["x"]])])
    second = client.drive_version(spreadsheet_id=sales)
    assert second.version == first.version + 1 and second.modified_time >= first.modified_time
    emulator.store.set_values(sales, "Sheet1!B1", [["typed"]])
    assert client.drive_version(spreadsheet_id=sales).version == second.version + 1
    client.values_get(spreadsheet_id=sales, range="A1")
    assert client.drive_version(spreadsheet_id=sales).version == second.version + 1
    emulator.store.trash_spreadsheet(sales)
    assert client.drive_version(spreadsheet_id=sales).trashed is True


def test_changes_feed_lists_exactly_the_changed_spreadsheets_in_one_request(
    client: SheetsClient, emulator: SheetsEmulator
) -> None:
    ids = [emulator.store.create_spreadsheet(f"S{i}") for i in range(5)]
    token = client.drive_changes_start_token()
    assert client.drive_changes(token=token) == DriveChanges(frozenset(), token)
    emulator.store.set_values(ids[1], "Sheet1!A1", [["a"]])
    client.values_batch_update(spreadsheet_id=ids[3], data=[("Sheet1!A1", [["b"]])])
    emulator.store.set_values(ids[1], "Sheet1!A2", [["c"]])
    emulator.store.delete_spreadsheet(ids[4])
    emulator.reset_counters()
    changes = client.drive_changes(token=token)
    assert changes.changed_ids == {ids[1], ids[3], ids[4]} and changes.removed_ids == {ids[4]}
    assert emulator.counters() == {CHANGES: 1, "total": 1}
    assert client.drive_changes(token=changes.new_token).changed_ids == frozenset()
    with pytest.raises(ConnectorRequestError):
        client.drive_changes(token="not-a-token")


def test_changes_feed_follows_next_page_tokens(
    client: SheetsClient, emulator: SheetsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = client.drive_changes_start_token()
    ids = {emulator.store.create_spreadsheet(f"P{i}") for i in range(5)}
    monkeypatch.setattr(sheets_module, "CHANGES_PAGE_SIZE", 2)
    emulator.reset_counters()
    assert client.drive_changes(token=token).changed_ids == ids
    assert emulator.counters()[CHANGES] == 3


def test_deleted_spreadsheet_is_not_found(client: SheetsClient, sales: str, emulator: SheetsEmulator) -> None:
    emulator.store.delete_spreadsheet(sales)
    calls: list[Callable[[], Any]] = [
        lambda: client.spreadsheet_meta(spreadsheet_id=sales),
        lambda: client.values_get(spreadsheet_id=sales, range="A1"),
        lambda: client.values_batch_update(spreadsheet_id=sales, data=[("A1", [[1]])]),
        lambda: client.drive_version(spreadsheet_id=sales),
    ]
    for call in calls:
        with pytest.raises(ConnectorNotFound) as caught:
            call()
        assert caught.value.status == 404 and sales in str(caught.value)
    assert client.request_count == 4  # a 404 is not retried


# --- retries, errors, rate limiting ---------------------------------------------------------------------------


def test_429_then_success_honours_retry_after(make_client: MakeClient, sales: str, emulator: SheetsEmulator) -> None:
    client = make_client(backoff_base=0.01)
    emulator.faults.add(FaultRule(path_pattern="*/values/*", status=429, retry_after=2, times=1))
    assert client.values_get(spreadsheet_id=sales, range="A1").values == [["region"]]
    assert client.slept == [2.0]  # type: ignore[attr-defined]
    assert emulator.counters()[VALUES_GET] == 2 and client.request_count == 2


def test_500_is_retried_with_exponential_backoff(make_client: MakeClient, sales: str, emulator: SheetsEmulator) -> None:
    client = make_client(max_attempts=4, backoff_base=1, backoff_max=30)
    emulator.faults.add(FaultRule(path_pattern="*:batchUpdate", status=500, times=2))
    client.values_batch_update(spreadsheet_id=sales, data=[("A1", [["ok"]])])
    slept = client.slept  # type: ignore[attr-defined]
    assert len(slept) == 2 and 0.5 <= slept[0] <= 1 and 1 <= slept[1] <= 2  # jittered 1 s, 2 s
    assert emulator.store.values(sales, "Sheet1")[0][0] == "ok"


def test_persistent_429_gives_up_after_max_attempts(
    make_client: MakeClient, sales: str, emulator: SheetsEmulator
) -> None:
    client = make_client(max_attempts=3)
    emulator.faults.add(FaultRule(path_pattern="*/values/*", status=429, times=None))
    with pytest.raises(ConnectorRateLimited) as caught:
        client.values_get(spreadsheet_id=sales, range="A1")
    assert "(after 3 attempts)" in str(caught.value) and "RESOURCE_EXHAUSTED" in str(caught.value)
    assert emulator.counters()[VALUES_GET] == 3 and len(client.slept) == 2  # type: ignore[attr-defined]


def test_retry_after_longer_than_backoff_max_is_left_to_the_caller(
    make_client: MakeClient, sales: str, emulator: SheetsEmulator
) -> None:
    client = make_client(backoff_max=5)
    emulator.faults.add(FaultRule(status=429, retry_after=60, times=None))
    with pytest.raises(ConnectorRateLimited) as caught:
        client.drive_version(spreadsheet_id=sales)
    assert caught.value.retry_after == 60 and client.request_count == 1


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, None, ConnectorAuthError),
        (403, None, ConnectorAuthError),
        (409, None, ConnectorRequestError),
        (503, {"oops": "not Google's shape"}, ConnectorTransientError),
        (502, ["a", "list"], ConnectorTransientError),
    ],
)
def test_error_mapping(
    make_client: MakeClient, sales: str, emulator: SheetsEmulator, status: int, body: Any, expected: type
) -> None:
    client = make_client(max_attempts=2)
    emulator.faults.add(FaultRule(status=status, body=body, times=None))
    with pytest.raises(expected) as caught:
        client.values_get(spreadsheet_id=sales, range="A1")
    assert caught.value.status == status
    assert str(caught.value).startswith(f"Sheets: reading A1 of spreadsheet {sales} failed: HTTP {status}")
    transient = issubclass(expected, ConnectorTransientError)
    assert client.request_count == (2 if transient else 1)


def test_odd_replies_are_bad_responses(make_client: MakeClient, sales: str, emulator: SheetsEmulator) -> None:
    client = make_client()
    emulator.faults.add(FaultRule(path_pattern="/drive/*", status=200, body={"id": sales, "version": "v2"}))
    with pytest.raises(ConnectorBadResponse, match="unexpected file metadata"):
        client.drive_version(spreadsheet_id=sales)
    emulator.faults.add(FaultRule(path_pattern="*/values/*", status=200, body=["not", "a", "range"]))
    with pytest.raises(ConnectorBadResponse):
        client.values_get(spreadsheet_id=sales, range="A1")
    emulator.faults.add(FaultRule(path_pattern="/drive/v3/changes", status=200, body={"changes": []}))
    with pytest.raises(ConnectorBadResponse, match="nextPageToken"):
        client.drive_changes(token="1")


def test_timeouts_are_transient_and_retried(make_client: MakeClient, sales: str, emulator: SheetsEmulator) -> None:
    client = make_client(timeout=0.2, max_attempts=2)
    emulator.faults.add(FaultRule(path_pattern="*/values/*", status=None, delay_s=0.6, times=1))
    assert client.values_get(spreadsheet_id=sales, range="A1").values == [["region"]]
    assert client.request_count == 2
    emulator.faults.add(FaultRule(path_pattern="*/values/*", status=None, delay_s=0.6, times=2))
    with pytest.raises(ConnectorTransientError, match=r"timed out after 0.2s \(after 2 attempts\)"):
        client.values_get(spreadsheet_id=sales, range="A1")


def test_limiter_keeps_requests_within_the_budget(
    make_client: MakeClient, sales: str, emulator: SheetsEmulator
) -> None:
    clock = FakeClock()
    # The emulator enforces the same quota on the same clock: a client that overshot would get 429s.
    emulator.quota = SheetsQuota(read_per_minute=3, write_per_minute=3, clock=clock)
    limiter = SheetsRateLimiter(per_minute=3, clock=clock, sleep=clock.sleep)
    client = make_client(limiter=limiter, max_attempts=1)
    sent: list[float] = []
    for i in range(8):
        client.values_get(spreadsheet_id=sales, range="A1")
        sent.append(clock.now)
        if i < 3:
            client.values_batch_update(spreadsheet_id=sales, data=[("A1", [["region"]])])  # own budget
    client.drive_version(spreadsheet_id=sales)  # Drive has its own, much larger quota: not limited
    assert all(later - earlier >= 60 for earlier, later in zip(sent, sent[3:], strict=False))
    assert sent[-1] - sent[0] == pytest.approx(120)  # 8 reads at 3/min: two full waits
    assert len(clock.sleeps) == 2 and client.request_count == 12  # max_attempts=1: a single 429 would have raised


def test_prepay_spends_the_wait_before_a_check_not_between_the_check_and_the_request(
    make_client: MakeClient, sales: str, emulator: SheetsEmulator
) -> None:
    clock = FakeClock()
    client = make_client(limiter=SheetsRateLimiter(per_minute=1, clock=clock, sleep=clock.sleep))
    assert client.prepay("write") == 0.0
    assert client.prepay("write") == 0.0  # one request's worth at most: nothing more is taken
    client.drive_version(spreadsheet_id=sales)  # the check (Drive: not a Sheets quota)
    clock.now += 5  # the check took a while
    client.values_batch_update(spreadsheet_id=sales, data=[("A1", [["region"]])])  # leaves at once: prepaid
    assert clock.sleeps == []
    # The next one waits for the window, before its check: a full minute from when the first one LEFT.
    assert client.prepay("write") == pytest.approx(60.0)
    client.values_batch_update(spreadsheet_id=sales, data=[("A1", [["region"]])])
    assert clock.sleeps == [pytest.approx(60.0)] and client.request_count == 3


def test_limiter_is_thread_safe_with_a_real_clock() -> None:
    limiter = SheetsRateLimiter(per_minute=2, window_s=0.2)
    started = time.monotonic()
    threads = [threading.Thread(target=lambda: [limiter.acquire("read") for _ in range(2)]) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert time.monotonic() - started >= 0.4  # 6 requests at 2 per 0.2 s: two waits
    assert limiter.acquire("write") == 0.0  # writes have their own window
    with pytest.raises(ValueError):
        SheetsRateLimiter(per_minute=0)


def test_request_count_counts_every_http_request(make_client: MakeClient, sales: str, emulator: SheetsEmulator) -> None:
    client = make_client()
    client.spreadsheet_meta(spreadsheet_id=sales)
    client.values_batch_get(spreadsheet_id=sales, ranges=["A1", "B1"])
    client.drive_changes(token=client.drive_changes_start_token())
    emulator.faults.add(FaultRule(status=503, times=1))
    client.values_clear(spreadsheet_id=sales, range="F1")
    assert client.request_count == 6 == emulator.counters()["total"]


# --- construction and settings ----------------------------------------------------------------------------------


def test_factory_reads_django_settings(emulator: SheetsEmulator, sales: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import django.conf

    fake = SimpleNamespace(
        SHEETS_API_ENDPOINT=emulator.base_url + "/",
        GOOGLE_APPLICATION_CREDENTIALS="",
        SHEETS_RATE_LIMIT_PER_MINUTE=45,
        SHEETS_TIMEOUT=4.0,
        SHEETS_MAX_ATTEMPTS=2,
    )
    monkeypatch.setattr(django.conf, "settings", fake)
    client = sheets_client()
    try:
        assert (client.endpoint, client.timeout, client.max_attempts, client.backoff_max) == (
            emulator.base_url,
            4.0,
            2,
            30.0,
        )
        assert client.limiter is not None and client.limiter.per_minute == 45
        assert client.spreadsheet_meta(spreadsheet_id=sales).title == "Sales"
    finally:
        client.close()
    fake.SHEETS_RATE_LIMIT_PER_MINUTE = 0
    unlimited = sheets_client()
    assert unlimited.limiter is None
    unlimited.close()


def test_google_mode_uses_a_service_account_without_touching_the_network(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "k",
        "private_key": pem,
        "client_email": "sa@p.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info))
    client = SheetsClient(endpoint=None, credentials_file=str(path))
    session = client._http.session
    assert isinstance(session, AuthorizedSession)
    assert set(session.credentials.scopes) == set(sheets_module.SCOPES)
    client.close()
    with pytest.raises(ConnectorAuthError, match="loading Google credentials"):
        SheetsClient(endpoint=None, credentials_file=str(tmp_path / "missing.json"))
    with pytest.raises(ValueError):
        SheetsClient(endpoint="ftp://x", credentials_file=None)


# --- A1 helpers -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a1", "grid"),
    [
        ("Sheet1!B2:D10", GridRange("Sheet1", 2, 2, 10, 4)),
        ("B2", GridRange(None, 2, 2, 2, 2)),
        ("$b$2:$d$10", GridRange(None, 2, 2, 10, 4)),
        ("D10:B2", GridRange(None, 2, 2, 10, 4)),
        ("A:C", GridRange(None, None, 1, None, 3)),
        ("Data!A2:Z", GridRange("Data", 2, 1, None, 26)),
        ("2:5", GridRange(None, 2, None, 5, None)),
        ("Sheet1", GridRange("Sheet1", None, None, None, None)),
        ("'My Sheet'!AA1:AAA3", GridRange("My Sheet", 1, 27, 3, 703)),
        ("'It''s'!A1", GridRange("It's", 1, 1, 1, 1)),
        ("'A1'", GridRange("A1", None, None, None, None)),
        ("'x!y'!C3", GridRange("x!y", 3, 3, 3, 3)),
    ],
)
def test_a1_to_grid(a1: str, grid: GridRange) -> None:
    assert a1_to_grid(a1) == grid
    assert a1_to_grid(grid.a1) == grid  # formatting round-trips


@pytest.mark.parametrize("bad", ["", "   ", "'open", "''!A1", "Sheet1!", "Sheet1!A0", "S!A2:5", "S!2:B5", "!A1", "S!A"])
def test_a1_to_grid_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        a1_to_grid(bad)


def test_grid_to_a1_and_columns() -> None:
    assert grid_to_a1("Sheet1", 2, 2, 10, 4) == "Sheet1!B2:D10"
    assert grid_to_a1("Sheet1", 2, 2) == "Sheet1!B2"
    assert grid_to_a1("My Sheet", None, 1, None, 3) == "'My Sheet'!A:C"
    assert grid_to_a1("S", 2, 1, None, 26) == "S!A2:Z"
    assert grid_to_a1("S", 2, None, 5, None) == "S!2:5"
    assert grid_to_a1("O'Brien", None, None) == "'O''Brien'"
    assert grid_to_a1(None, 1, 28, 1, 28) == "AB1:AB1"
    assert grid_to_a1("S", 1, 1, None, 2) == "S!A1:B"
    for bad_args in [
        (None, None, None),
        ("S", 0, 1),
        ("S", 1, None, None, 2),
        ("S", None, None, 2, None),
        ("S", True, 1),
    ]:
        with pytest.raises(ValueError):
            grid_to_a1(*bad_args)  # type: ignore[arg-type]
    pairs = [(1, "A"), (26, "Z"), (27, "AA"), (52, "AZ"), (53, "BA"), (702, "ZZ"), (703, "AAA"), (18278, "ZZZ")]
    assert [column_letters(n) for n, _ in pairs] == [s for _, s in pairs]
    assert [column_number(s.lower()) for _, s in pairs] == [n for n, _ in pairs]
    for bad in ("", "A1", "É"):
        with pytest.raises(ValueError):
            column_number(bad)
    with pytest.raises(ValueError):
        column_letters(0)
    names = ["Sheet1", "_x", "My Sheet", "A1", "r1c1", "AB12", "Q1 '24", "Ventes été", "1st"]
    assert [quote_sheet_name(n) for n in names] == [
        "Sheet1",
        "_x",
        "'My Sheet'",
        "'A1'",
        "'r1c1'",
        "'AB12'",
        "'Q1 ''24'",
        "'Ventes été'",
        "'1st'",
    ]


def test_non_ascii_sheet_names_reach_the_emulator(client: SheetsClient, emulator: SheetsEmulator) -> None:
    sid = emulator.store.create_spreadsheet("Intl", {"Ventes été": [["ça", 1]], "a/b": [["slash"]]})
    assert client.values_get(spreadsheet_id=sid, range=grid_to_a1("Ventes été", 1, 1, 1, 2)).values == [["ça", "1"]]
    client.values_batch_update(spreadsheet_id=sid, data=[(grid_to_a1("a/b", 1, 2), [["ok"]])])
    assert emulator.store.values(sid, "a/b") == [["slash", "ok"]]

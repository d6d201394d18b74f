"""Google Sheets / Drive connector: the only module of the project that imports ``gspread``.

Everything leaves here as frozen dataclasses or plain values, and every failure as one of the
:mod:`connectors.errors` exceptions, with a message that says what was being done.

How gspread (6.2.1) is wired:

* Only gspread's low-level ``HTTPClient`` methods are used (``values_get``, ``values_batch_update``,
  ``fetch_sheet_metadata``...): one method call is exactly one HTTP request. The high-level
  ``Spreadsheet``/``Worksheet`` objects re-fetch metadata behind the caller's back (``open_by_key``
  and every ``sh.worksheet(title)`` cost a request each), which would break the request budgets.
* The ``HTTPClient`` is subclassed (:class:`_HTTPClient`) so every request, retries included,
  passes the client-side rate limiter and is counted, and so an error reply whose body is not
  Google's ``{"error": {...}}`` still becomes an ``APIError`` (gspread's own constructor raises
  ``TypeError``/``KeyError`` on such bodies).
* gspread's URLs are constants (patching ``gspread.urls`` has no effect); to reach an emulator, an
  :class:`_EndpointSession` rewrites ``https://sheets.googleapis.com`` and
  ``https://www.googleapis.com`` to the configured endpoint and sends a dummy bearer token.
  Without an endpoint, gspread's ``AuthorizedSession`` talks to Google with a service account.
* Drive ``version`` and the changes feed have no gspread method: they go through
  ``HTTPClient.request`` with Drive v3 URLs.
* gspread does not retry; :meth:`SheetsClient._call` does, with bounded exponential backoff and
  jitter on 429, 408, 5xx and network errors, honouring Retry-After.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import google.auth
import google.auth.exceptions
import gspread
import requests
from google.oauth2 import service_account
from gspread.exceptions import APIError, GSpreadException, SpreadsheetNotFound
from gspread.http_client import HTTPClient

from connectors.errors import (
    ConnectorAuthError,
    ConnectorBadResponse,
    ConnectorError,
    ConnectorNotFound,
    ConnectorRateLimited,
    ConnectorRequestError,
    ConnectorTransientError,
)
from connectors.http import backoff_delay, request_hook_install, retry_after_seconds

__all__ = [
    "BatchUpdateResult",
    "DriveChanges",
    "DriveFileVersion",
    "GridRange",
    "SheetMeta",
    "SheetsClient",
    "SheetsRateLimiter",
    "SpreadsheetMeta",
    "ValueRange",
    "a1_to_grid",
    "column_letters",
    "column_number",
    "grid_to_a1",
    "quote_sheet_name",
    "sheets_client",
]

logger = logging.getLogger(__name__)

SYSTEM = "sheets"
T = TypeVar("T")

SHEETS_HOST = "https://sheets.googleapis.com"
GOOGLEAPIS_HOST = "https://www.googleapis.com"
DRIVE_FILES_URL = f"{GOOGLEAPIS_HOST}/drive/v3/files"
DRIVE_CHANGES_URL = f"{GOOGLEAPIS_HOST}/drive/v3/changes"
# Least privilege: Sheets read/write, Drive metadata read (files.get version/modifiedTime, changes.list).
SCOPES = (
    "https://www.googleapis.com/auth/spreadsheets",
    "https://www.googleapis.com/auth/drive.metadata.readonly",
)
EMULATOR_TOKEN = "emulator"  # noqa: S105 - a dummy bearer token for the local emulator only
VALUE_INPUT_OPTIONS = ("RAW", "USER_ENTERED")
VALUE_RENDER_OPTIONS = ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA")
CHANGES_PAGE_SIZE = 1000  # Drive's maximum: one call covers every file in practice
# The window of the clients' own limiters: a minute plus a margin. Google counts a request when it arrives, a
# little after the client counted it, so a client counting exact minutes can land one over at a window's edge.
QUOTA_WINDOW_S = 61.0
_MAX_CHANGE_PAGES = 100
_ERROR_BODY_LIMIT = 300

# --------------------------------------------------------------------------------------------
# A1 notation (pure helpers, no network)
# --------------------------------------------------------------------------------------------

MAX_COLUMNS = 18278  # ZZZ
_ENDPOINT = re.compile(r"^\$?([A-Za-z]{0,3})\$?(\d*)$")
_PLAIN_SHEET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CELL_LIKE_NAME = re.compile(r"^([A-Za-z]{1,3}\d+|[Rr]\d*[Cc]\d*)$")


@dataclass(frozen=True)
class GridRange:
    """A range in grid terms: 1-based, inclusive; ``None`` bounds are open.

    ``Sheet1!B2:D10`` -> ``GridRange("Sheet1", 2, 2, 10, 4)``; ``A:C`` -> ``GridRange(None, None, 1, None, 3)``;
    ``Sheet1`` -> ``GridRange("Sheet1", None, None, None, None)`` (the whole sheet). ``sheet`` is
    None when the range names no sheet (Sheets then uses the first one).
    """

    sheet: str | None
    row: int | None
    col: int | None
    row2: int | None
    col2: int | None

    @property
    def a1(self) -> str:
        """The range back in A1 notation."""
        return grid_to_a1(self.sheet, self.row, self.col, self.row2, self.col2)


def column_number(letters: str) -> int:
    """Column letters to a 1-based number: ``A`` -> 1, ``Z`` -> 26, ``AA`` -> 27, ``AAA`` -> 703."""
    if not letters or not letters.isascii() or not letters.isalpha():
        raise ValueError(f"not column letters: {letters!r}")
    number = 0
    for ch in letters.upper():
        number = number * 26 + (ord(ch) - ord("A") + 1)
    return number


def column_letters(number: int) -> str:
    """A 1-based column number to letters: 1 -> ``A``, 27 -> ``AA``, 703 -> ``AAA``."""
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(f"column numbers start at 1, got {number!r}")
    letters = ""
    while number:
        number, rem = divmod(number - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def quote_sheet_name(name: str) -> str:
    """A sheet name ready for a range: bare when plain (``Sheet1``), else quoted (``'Q1 ''24'``).

    Names that read as a cell (``A1``, ``R1C1``) are quoted too, or Sheets would take them as ranges.
    """
    if not name:
        raise ValueError("a sheet name cannot be empty")
    if _PLAIN_SHEET_NAME.match(name) and not _CELL_LIKE_NAME.match(name):
        return name
    return "'" + name.replace("'", "''") + "'"


def _a1_endpoint(text: str, whole: str) -> tuple[int | None, int | None]:
    match = _ENDPOINT.match(text)
    if not match or not (match.group(1) or match.group(2)):
        raise ValueError(f"not an A1 range: {whole!r}")
    letters, digits = match.group(1), match.group(2)
    row = int(digits) if digits else None
    if row == 0:
        raise ValueError(f"rows start at 1: {whole!r}")
    return row, column_number(letters) if letters else None


def _a1_cells(text: str, whole: str) -> tuple[int | None, int | None, int | None, int | None]:
    if ":" not in text:
        row, col = _a1_endpoint(text, whole)
        if row is None or col is None:
            raise ValueError(f"a single column or row needs a pair (A:A, 2:2): {whole!r}")
        return row, col, row, col
    left, _, right = text.partition(":")
    (r1, c1), (r2, c2) = _a1_endpoint(left, whole), _a1_endpoint(right, whole)
    if (c1 is None) != (c2 is None) or (c1 is None and (r1 is None or r2 is None)):
        raise ValueError(f"not an A1 range: {whole!r}")
    if r1 is not None and r2 is not None and r1 > r2:
        r1, r2 = r2, r1
    if c1 is not None and c2 is not None and c1 > c2:
        c1, c2 = c2, c1
    return r1, c1, r2, c2


def _looks_like_cells(text: str) -> bool:
    try:
        _a1_cells(text, text)
    except ValueError:
        return False
    return True


def a1_to_grid(a1: str) -> GridRange:
    """Parse A1 notation (``Sheet1!B2:D10``, ``'My sheet'!A:C``, ``A2:Z``, ``2:5``, ``B2``, ``Sheet1``).

    ``$`` is ignored and letters may be lower case. A bare word that reads as a range (``A1``,
    ``B:C``) is a range, as in Sheets; quote it to mean a sheet. ``ValueError`` when unparseable.
    """
    text = a1.strip() if isinstance(a1, str) else ""
    if not text:
        raise ValueError("an empty range")
    if text.startswith("'"):
        chars: list[str] = []
        pos = 1
        while True:
            if pos >= len(text):
                raise ValueError(f"unterminated quoted sheet name: {a1!r}")
            if text[pos] == "'":
                if text[pos + 1 : pos + 2] == "'":
                    chars.append("'")
                    pos += 2
                    continue
                pos += 1
                break
            chars.append(text[pos])
            pos += 1
        sheet, rest = "".join(chars), text[pos:]
        if not sheet:
            raise ValueError(f"an empty sheet name: {a1!r}")
        if not rest:
            return GridRange(sheet, None, None, None, None)
        if not rest.startswith("!") or len(rest) == 1:
            raise ValueError(f"expected '!' and cells after the sheet name: {a1!r}")
        return GridRange(sheet, *_a1_cells(rest[1:], a1))
    if "!" in text:
        sheet, _, cells = text.partition("!")
        if not sheet or not cells:
            raise ValueError(f"not an A1 range: {a1!r}")
        return GridRange(sheet, *_a1_cells(cells, a1))
    if _looks_like_cells(text):
        return GridRange(None, *_a1_cells(text, a1))
    return GridRange(text, None, None, None, None)


def grid_to_a1(
    sheet: str | None,
    row: int | None,
    col: int | None,
    row2: int | None = None,
    col2: int | None = None,
) -> str:
    """Format a grid range: ``grid_to_a1("Sheet1", 2, 2, 10, 4)`` -> ``Sheet1!B2:D10``.

    ``row2``/``col2`` default to a single cell when both are None and ``row``/``col`` are set.
    Open forms: ``(s, None, 1, None, 3)`` -> ``s!A:C``; ``(s, 2, 1, None, 26)`` -> ``s!A2:Z``;
    ``(s, 2, None, 5, None)`` -> ``s!2:5``; all None -> the whole sheet (``s``).
    """
    for value in (row, col, row2, col2):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"rows and columns start at 1, got {value!r}")
    prefix = f"{quote_sheet_name(sheet)}!" if sheet is not None else ""
    if row is None and col is None and row2 is None and col2 is None:
        if sheet is None:
            raise ValueError("a range needs a sheet or cells")
        return quote_sheet_name(sheet)
    if row2 is None and col2 is None and row is not None and col is not None:
        return f"{prefix}{column_letters(col)}{row}"
    if (col is None) != (col2 is None):
        raise ValueError("give both columns or neither")
    if col is None and (row is None or row2 is None):
        raise ValueError("a rows-only range needs both rows")
    start = (column_letters(col) if col is not None else "") + (str(row) if row is not None else "")
    end = (column_letters(col2) if col2 is not None else "") + (str(row2) if row2 is not None else "")
    return f"{prefix}{start}:{end}"


# --------------------------------------------------------------------------------------------
# What callers get back
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SheetMeta:
    """One tab of a spreadsheet and its grid size."""

    title: str
    sheet_id: int
    rows: int
    cols: int


@dataclass(frozen=True)
class SpreadsheetMeta:
    """A spreadsheet's title and tabs, in tab order."""

    id: str
    title: str
    sheets: tuple[SheetMeta, ...]

    def sheet(self, title: str) -> SheetMeta | None:
        """The tab with this title, or None."""
        return next((s for s in self.sheets if s.title == title), None)


@dataclass(frozen=True)
class DriveFileVersion:
    """Drive's change marker for a file: ``version`` increases on every change to it."""

    id: str
    version: int
    modified_time: datetime
    trashed: bool = False


@dataclass(frozen=True)
class DriveChanges:
    """Files changed since a changes-feed token, and the token to use next time.

    ``removed_ids`` (a subset of ``changed_ids``) are files deleted for good or no longer visible.
    ``versions`` maps a changed file to its Drive ``version`` as of the call (when the feed carried its
    metadata), and ``trashed_ids`` are the changed files now in the trash: with both, one feed call tells
    whether a file moved past a version the caller already knows, without a ``files.get`` per file.
    """

    changed_ids: frozenset[str]
    new_token: str
    removed_ids: frozenset[str] = frozenset()
    versions: Mapping[str, int] = field(default_factory=dict, hash=False)
    trashed_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ValueRange:
    """Cell values of one range, row-major. ``range`` is the range as Sheets resolved it
    (``Sheet1!A1:C1000`` for ``A:C``); trailing empty rows and cells are not included."""

    range: str
    values: list[list[Any]]


@dataclass(frozen=True)
class BatchUpdateResult:
    """What one values batchUpdate wrote; ``values`` holds the written ranges read back by the same
    request when ``include_values_in_response`` was asked for, else None."""

    spreadsheet_id: str
    updated_cells: int
    updated_ranges: tuple[str, ...]
    values: tuple[ValueRange, ...] | None = None


# --------------------------------------------------------------------------------------------
# Rate limiting
# --------------------------------------------------------------------------------------------


class SheetsRateLimiter:
    """Client-side budget for the Sheets API's per-minute quotas, one sliding window per kind.

    Sheets counts read requests and write requests separately (60 each per user per minute, 300
    per project); :meth:`acquire` blocks until one more request of that kind fits in the last
    ``window_s`` seconds. Thread-safe and fair: threads waiting for the same kind are served in the
    order they asked (first come, first served), so several principals sharing the project's budget
    take turns instead of one of them winning every freed slot. Share one instance between clients
    that share a quota. ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        *,
        per_minute: int,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        if window_s <= 0:
            raise ValueError("window_s must be > 0")
        self.per_minute = per_minute
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._turns = threading.Condition(self._lock)
        self._sent: dict[str, deque[float]] = {}
        self._queues: dict[str, deque[object]] = {}
        self._taken = threading.local()  # this thread's last slot per kind, for touch()

    def _room(self, kind: str, now: float) -> float:
        """0 when a request of ``kind`` fits now, else the seconds until one does (lock held)."""
        sent = self._sent.setdefault(kind, deque())
        while sent and sent[0] <= now - self.window_s:
            sent.popleft()
        return 0.0 if len(sent) < self.per_minute else sent[0] + self.window_s - now

    def wait_for_room(self, kind: str = "read") -> float:
        """Wait until a request of ``kind`` would fit, without taking the slot; returns the seconds waited.

        For a budget only one thread uses (a principal's own): check it first, take the shared one, then take
        this one at once, so neither budget's clock starts before the request actually leaves.
        """
        waited = 0.0
        while True:
            with self._lock:
                wait = self._room(kind, self._clock())
            if wait <= 0:
                return waited
            self._sleep(wait)
            waited += wait

    def touch(self, kind: str = "read") -> None:
        """Move the slot this thread last took for ``kind`` to now: the request it was taken for leaves only now
        (after a check), and the server counts it from now; a window counted from the earlier time would let the
        next minute's requests through too early."""
        with self._lock:
            taken = self._taken.__dict__.get("slots", {}).pop(kind, None)
            sent = self._sent.setdefault(kind, deque())
            if taken is None:
                return
            try:
                sent.remove(taken)
            except ValueError:  # already out of the window
                pass
            sent.append(self._clock())  # every stamp in the window was taken before now: still in order

    def acquire(self, kind: str = "read") -> float:
        """Take one slot of ``kind`` ("read" or "write"), waiting as needed; returns the seconds waited."""
        waited = 0.0
        ticket = object()
        with self._turns:
            queue = self._queues.setdefault(kind, deque())
            queue.append(ticket)
            try:
                while True:
                    if queue[0] is not ticket:  # someone asked first: wait for our turn
                        before = self._clock()
                        self._turns.wait()
                        waited += max(0.0, self._clock() - before)
                        continue
                    now = self._clock()
                    wait = self._room(kind, now)
                    if wait <= 0:
                        self._sent[kind].append(now)
                        self._taken.__dict__.setdefault("slots", {})[kind] = now
                        return waited
                    logger.debug(
                        "Sheets rate limiter: %s budget of %d/min used up, waiting %.2fs", kind, self.per_minute, wait
                    )
                    self._lock.release()  # sleep without holding the others up (they queue behind us)
                    try:
                        self._sleep(wait)
                    finally:
                        self._lock.acquire()
                    waited += wait
            finally:
                queue.remove(ticket)
                self._turns.notify_all()


# --------------------------------------------------------------------------------------------
# gspread plumbing
# --------------------------------------------------------------------------------------------


class _EndpointSession(requests.Session):
    """A session that sends Google API URLs to another host (an emulator), with a dummy token (the emulator takes
    each distinct token for a distinct user, with its own per-user quota)."""

    def __init__(self, endpoint: str, token: str = EMULATOR_TOKEN) -> None:
        super().__init__()
        self.endpoint = endpoint.rstrip("/")
        self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Rewrite ``https://sheets.googleapis.com`` and ``https://www.googleapis.com``, then send."""
        text = url.decode() if isinstance(url, bytes) else str(url)
        for host in (SHEETS_HOST, GOOGLEAPIS_HOST):
            if text.startswith(host + "/") or text == host:
                text = self.endpoint + text[len(host) :]
                break
        return super().request(method, text, *args, **kwargs)


class _LooseAPIError(APIError):
    """An ``APIError`` for an error reply whose body is not Google's JSON error shape."""

    def __init__(self, response: requests.Response) -> None:
        text = " ".join((response.text or "").split())[:_ERROR_BODY_LIMIT]
        error = {"code": response.status_code, "message": text or (response.reason or ""), "status": ""}
        GSpreadException.__init__(self, error)
        self.response = response
        self.error = error
        self.code = response.status_code


def _api_error(response: requests.Response) -> APIError:
    try:
        error = APIError(response)
    except (KeyError, TypeError, ValueError, AttributeError):
        return _LooseAPIError(response)
    if not isinstance(error.code, int) or not 100 <= error.code <= 599:
        return _LooseAPIError(response)
    return error


class _HTTPClient(HTTPClient):
    """gspread's HTTP client, with a hook before each request and robust error replies."""

    def __init__(self, auth: Any, session: requests.Session | None, *, before_request: Callable[[str, str], None]):
        super().__init__(auth, session)
        self._before_request = before_request

    def request(  # type: ignore[override]
        self,
        method: str,
        endpoint: str,
        params: Any = None,
        data: bytes | None = None,
        json: Mapping[str, Any] | None = None,
        files: Any = None,
        headers: Any = None,
    ) -> requests.Response:
        """Send one request (after the limiter); raise ``APIError`` on a non-2xx reply."""
        self._before_request(method, endpoint)
        response = self.session.request(
            method=method,
            url=endpoint,
            json=json,
            params=params,
            data=data,
            files=files,
            headers=headers,
            timeout=self.timeout,
        )
        if response.ok:
            return response
        raise _api_error(response)


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected an RFC 3339 timestamp, got {value!r}")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _bad(action: str, detail: str) -> ConnectorBadResponse:
    return ConnectorBadResponse(f"Sheets: {action} failed: {detail}", system=SYSTEM)


def _value_range(data: Any, action: str) -> ValueRange:
    if not isinstance(data, dict) or not isinstance(data.get("range"), str):
        raise _bad(action, f"a value range without a range: {str(data)[:_ERROR_BODY_LIMIT]}")
    values = data.get("values", [])
    if not isinstance(values, list) or not all(isinstance(row, list) for row in values):
        raise _bad(action, f"the values of {data['range']} are not a list of rows")
    return ValueRange(range=data["range"], values=values)


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


class SheetsClient:
    """Talks to Google Sheets v4 and Drive v3 through ``gspread``.

    ``endpoint`` set (``http://127.0.0.1:9102``): every Google URL goes there, with a dummy token
    (the local emulator). ``endpoint`` empty: real Google, with the service account in
    ``credentials_file``, or Application Default Credentials when that is empty too.

    ``timeout`` applies to each HTTP request. Transient failures (429, 408, 5xx, timeouts,
    connection errors) are tried up to ``max_attempts`` times in all, waiting
    ``backoff_base * 2**n`` seconds (with jitter, capped at ``backoff_max``, at least Retry-After).
    A Retry-After longer than ``backoff_max`` is not waited for: ``ConnectorRateLimited`` carries it
    to the caller. ``rate_limit_per_minute`` caps Sheets reads and writes per minute on the client
    side (None: no cap); pass ``limiter`` to share one budget between clients. All calls here are
    idempotent, so every attempt may be retried. Thread-safe.
    """

    def __init__(
        self,
        *,
        endpoint: str | None,
        credentials_file: str | None,
        timeout: float = 30,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30,
        rate_limit_per_minute: int | None = 60,
        limiter: SheetsRateLimiter | None = None,
        endpoint_token: str = EMULATOR_TOKEN,
    ) -> None:
        if timeout <= 0 or max_attempts < 1 or backoff_base < 0 or backoff_max < 0:
            raise ValueError("timeout must be > 0, max_attempts >= 1 and backoffs >= 0")
        self.timeout = float(timeout)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        if limiter is None and rate_limit_per_minute:
            limiter = SheetsRateLimiter(per_minute=rate_limit_per_minute, window_s=QUOTA_WINDOW_S)
        self.limiter = limiter
        self._count_lock = threading.Lock()
        self._request_count = 0
        self._local = threading.local()
        self._rng = random.Random()
        self._sleep: Callable[[float], None] = time.sleep

        def make_http(auth: Any, session: requests.Session | None) -> _HTTPClient:
            return _HTTPClient(auth, session, before_request=self._before_request)

        self.endpoint = (endpoint or "").strip().rstrip("/") or None
        if self.endpoint is not None:
            parts = urlsplit(self.endpoint)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
                raise ValueError(f"Sheets endpoint must be http(s)://host[:port][/prefix], got {endpoint!r}")
            session = _EndpointSession(self.endpoint, endpoint_token)
            gc = gspread.Client(auth=None, session=session, http_client=make_http)  # type: ignore[arg-type]
        else:
            gc = gspread.Client(auth=self._google_credentials(credentials_file), http_client=make_http)  # type: ignore[arg-type]
        gc.set_timeout(self.timeout)
        request_hook_install(gc.http_client.session, system=SYSTEM)  # counts and times every request for monitoring
        self._http: _HTTPClient = gc.http_client  # type: ignore[assignment]

    @staticmethod
    def _google_credentials(credentials_file: str | None) -> Any:
        try:
            if credentials_file:
                return service_account.Credentials.from_service_account_file(credentials_file, scopes=list(SCOPES))
            credentials, _project = google.auth.default(scopes=list(SCOPES))
            return credentials
        except (OSError, ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            where = credentials_file or "Application Default Credentials"
            raise ConnectorAuthError(
                f"Sheets: loading Google credentials from {where} failed: {exc}", system=SYSTEM
            ) from exc

    # ---- bookkeeping --------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        """HTTP requests this client has sent (Sheets and Drive, retries included)."""
        with self._count_lock:
            return self._request_count

    def _before_request(self, method: str, url: str) -> None:
        if self.limiter is not None and url.startswith(SHEETS_HOST):
            kind = "read" if method.upper() == "GET" else "write"
            prepaid = getattr(self._local, "prepaid", None)
            if prepaid and prepaid.get(kind):
                prepaid[kind] -= 1
                self.limiter.touch(kind)  # counted from now, when it leaves
            else:
                self.limiter.acquire(kind)
        with self._count_lock:
            self._request_count += 1

    def prepay(self, kind: str) -> float:
        """Wait for one Sheets request's worth of quota (``"read"`` or ``"write"``) now, so this thread's next request
        of that kind leaves without waiting; returns the seconds waited.

        For a request that must go out right after a check (a Drive version): pay first, check, then send, so no
        quota wait falls between the check and the request. At most one request per kind is prepaid.
        """
        if self.limiter is None:
            return 0.0
        prepaid = self._local.__dict__.setdefault("prepaid", {})
        if prepaid.get(kind):
            return 0.0
        waited = self.limiter.acquire(kind)
        prepaid[kind] = 1
        return waited

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._http.session.close()

    def __enter__(self) -> SheetsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- the call wrapper -----------------------------------------------------------------------

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        """Run one gspread request with error mapping and bounded retries."""
        attempt = 0
        while True:
            attempt += 1
            cause: BaseException
            try:
                return fn()
            except APIError as exc:
                error = self._map_api_error(action, exc)
                cause = exc
            except SpreadsheetNotFound as exc:
                raise ConnectorNotFound(f"Sheets: {action} failed: not found", status=404, system=SYSTEM) from exc
            except requests.exceptions.JSONDecodeError as exc:  # before RequestException: it is one
                raise _bad(action, f"the reply is not JSON ({exc})") from exc
            except requests.RequestException as exc:
                timed_out = isinstance(exc, requests.exceptions.Timeout)
                detail = f"timed out after {self.timeout:g}s" if timed_out else f"connection failed: {exc}"
                error = ConnectorTransientError(f"Sheets: {action} failed: {detail}", system=SYSTEM)
                cause = exc
            except google.auth.exceptions.RefreshError as exc:
                raise ConnectorAuthError(
                    f"Sheets: {action} failed: Google refused the credentials: {exc}", system=SYSTEM
                ) from exc
            except google.auth.exceptions.TransportError as exc:
                error = ConnectorTransientError(
                    f"Sheets: {action} failed: fetching an access token failed: {exc}", system=SYSTEM
                )
                cause = exc

            retryable = isinstance(error, ConnectorTransientError)
            delay = (
                backoff_delay(attempt=attempt, error=error, base=self.backoff_base, cap=self.backoff_max, rng=self._rng)
                if retryable and attempt < self.max_attempts
                else None
            )
            if delay is None:
                if attempt > 1:
                    error = error.with_suffix(f" (after {attempt} attempts)")
                raise error from cause
            logger.warning("%s; retrying in %.2fs (attempt %d of %d)", error, delay, attempt + 1, self.max_attempts)
            self._sleep(delay)

    @staticmethod
    def _map_api_error(action: str, exc: APIError) -> ConnectorError:
        response = getattr(exc, "response", None)
        http_status = getattr(response, "status_code", None)
        status = exc.code if isinstance(exc.code, int) and 100 <= exc.code <= 599 else http_status or 0
        error = exc.error if isinstance(exc.error, Mapping) else {}
        label = error.get("status") or ""
        message = " ".join(str(error.get("message") or "").split())[:_ERROR_BODY_LIMIT]
        detail = f"HTTP {status}{' ' + label if label else ''}: {message}".rstrip(": ")
        text = f"Sheets: {action} failed: {detail}"
        if status in (401, 403):
            return ConnectorAuthError(text, status=status, system=SYSTEM)
        if status == 404:
            return ConnectorNotFound(text, status=status, system=SYSTEM)
        if status == 429:
            retry_after = retry_after_seconds(response.headers.get("Retry-After")) if response is not None else None
            return ConnectorRateLimited(text, retry_after=retry_after, status=status, system=SYSTEM)
        if status >= 500 or status == 408:
            return ConnectorTransientError(text, status=status, system=SYSTEM)
        return ConnectorRequestError(text, status=status, system=SYSTEM)

    def _json(self, action: str, response: requests.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise _bad(action, f"the reply is not JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise _bad(action, f"expected a JSON object, got {type(data).__name__}")
        return data

    # ---- Sheets: reads ----------------------------------------------------------------------------

    def spreadsheet_meta(self, *, spreadsheet_id: str) -> SpreadsheetMeta:
        """A spreadsheet's title and tabs with their grid sizes (one request, no cell data)."""
        spreadsheet_id = _require_id(spreadsheet_id)
        action = f"reading the metadata of spreadsheet {spreadsheet_id}"
        params = {"includeGridData": "false", "fields": "spreadsheetId,properties.title,sheets.properties"}
        data = self._call(action, lambda: self._http.fetch_sheet_metadata(spreadsheet_id, params=params))
        try:
            sheets = tuple(
                SheetMeta(
                    title=str(props["title"]),
                    sheet_id=int(props["sheetId"]),
                    rows=int(props["gridProperties"]["rowCount"]),
                    cols=int(props["gridProperties"]["columnCount"]),
                )
                for props in (sheet["properties"] for sheet in data.get("sheets") or [])
            )
            return SpreadsheetMeta(
                id=str(data.get("spreadsheetId") or spreadsheet_id),
                title=str(data["properties"]["title"]),
                sheets=sheets,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _bad(action, f"unexpected metadata ({type(exc).__name__}: {exc})") from exc

    def values_get(
        self, *, spreadsheet_id: str, range: str, value_render_option: str = "FORMATTED_VALUE"
    ) -> ValueRange:
        """The values of one A1 range (``FORMATTED_VALUE``: strings, as displayed; ``UNFORMATTED_VALUE``:
        numbers and booleans as such)."""
        spreadsheet_id = _require_id(spreadsheet_id)
        _check_option(value_render_option, VALUE_RENDER_OPTIONS, "value_render_option")
        action = f"reading {range} of spreadsheet {spreadsheet_id}"
        params = {"valueRenderOption": value_render_option}
        data = self._call(action, lambda: self._http.values_get(spreadsheet_id, range, params=params))
        return _value_range(data, action)

    def values_batch_get(
        self, *, spreadsheet_id: str, ranges: Sequence[str], value_render_option: str = "FORMATTED_VALUE"
    ) -> list[ValueRange]:
        """The values of several ranges in one request, in the order asked."""
        spreadsheet_id = _require_id(spreadsheet_id)
        _check_option(value_render_option, VALUE_RENDER_OPTIONS, "value_render_option")
        wanted = [str(r) for r in ranges]
        if not wanted:
            return []
        action = f"reading {len(wanted)} ranges of spreadsheet {spreadsheet_id}"
        params: dict[str, Any] = {"valueRenderOption": value_render_option}
        data = self._call(action, lambda: self._http.values_batch_get(spreadsheet_id, wanted, params=dict(params)))
        found = data.get("valueRanges") if isinstance(data, dict) else None
        if not isinstance(found, list) or len(found) != len(wanted):
            raise _bad(action, f"asked for {len(wanted)} ranges, got {len(found) if isinstance(found, list) else 0}")
        return [_value_range(item, action) for item in found]

    # ---- Sheets: writes ---------------------------------------------------------------------------

    def values_batch_update(
        self,
        *,
        spreadsheet_id: str,
        data: Sequence[tuple[str, list[list[Any]]]],
        value_input_option: str = "RAW",
        include_values_in_response: bool = False,
        response_value_render_option: str = "FORMATTED_VALUE",
    ) -> BatchUpdateResult:
        """Write several ranges in ONE request; Sheets applies all of them or none.

        ``RAW`` stores values as given; ``USER_ENTERED`` parses strings as if typed (``"12"`` -> 12).
        ``None`` leaves a cell alone and ``""`` empties it. A range outside the sheet's grid is a
        ``ConnectorRequestError`` (grow the sheet with :meth:`sheet_resize` first). With
        ``include_values_in_response`` the same request returns the written ranges as stored.
        """
        spreadsheet_id = _require_id(spreadsheet_id)
        _check_option(value_input_option, VALUE_INPUT_OPTIONS, "value_input_option")
        _check_option(response_value_render_option, VALUE_RENDER_OPTIONS, "response_value_render_option")
        items = [{"range": str(r), "majorDimension": "ROWS", "values": v} for r, v in data]
        if not items:
            return BatchUpdateResult(spreadsheet_id, 0, (), () if include_values_in_response else None)
        body: dict[str, Any] = {"valueInputOption": value_input_option, "data": items}
        if include_values_in_response:
            body["includeValuesInResponse"] = True
            body["responseValueRenderOption"] = response_value_render_option
        action = f"writing {len(items)} ranges to spreadsheet {spreadsheet_id}"
        reply = self._call(action, lambda: self._http.values_batch_update(spreadsheet_id, body))
        if not isinstance(reply, dict):
            raise _bad(action, f"expected a JSON object, got {type(reply).__name__}")
        responses = reply.get("responses") or []
        if not isinstance(responses, list):
            raise _bad(action, "responses is not a list")
        updated = tuple(str(r.get("updatedRange")) for r in responses if isinstance(r, dict) and r.get("updatedRange"))
        values: tuple[ValueRange, ...] | None = None
        if include_values_in_response:
            values = tuple(
                _value_range(r["updatedData"], action)
                for r in responses
                if isinstance(r, dict) and isinstance(r.get("updatedData"), dict)
            )
        try:
            cells = int(reply.get("totalUpdatedCells") or 0)
        except (TypeError, ValueError) as exc:
            raise _bad(action, f"totalUpdatedCells is {reply.get('totalUpdatedCells')!r}") from exc
        return BatchUpdateResult(
            spreadsheet_id=spreadsheet_id, updated_cells=cells, updated_ranges=updated, values=values
        )

    def values_clear(self, *, spreadsheet_id: str, range: str) -> str:
        """Empty every cell of a range (formats stay); returns the range Sheets cleared."""
        spreadsheet_id = _require_id(spreadsheet_id)
        action = f"clearing {range} of spreadsheet {spreadsheet_id}"
        reply = self._call(action, lambda: self._http.values_clear(spreadsheet_id, range))
        cleared = reply.get("clearedRange") if isinstance(reply, dict) else None
        if not isinstance(cleared, str):
            raise _bad(action, "no clearedRange in the reply")
        return cleared

    def sheet_resize(self, *, spreadsheet_id: str, sheet_id: int, rows: int, cols: int) -> None:
        """Set a tab's grid to ``rows`` x ``cols`` (shrinking drops the cells outside)."""
        spreadsheet_id = _require_id(spreadsheet_id)
        if rows < 1 or cols < 1:
            raise ValueError("rows and cols must be >= 1")
        body = {
            "requests": [
                {
                    "updateSheetProperties": {
                        "properties": {
                            "sheetId": int(sheet_id),
                            "gridProperties": {"rowCount": rows, "columnCount": cols},
                        },
                        "fields": "gridProperties.rowCount,gridProperties.columnCount",
                    }
                }
            ]
        }
        action = f"resizing sheet {sheet_id} of spreadsheet {spreadsheet_id} to {rows}x{cols}"
        self._call(action, lambda: self._http.batch_update(spreadsheet_id, body))

    # ---- Drive ----------------------------------------------------------------------------------

    def drive_version(self, *, spreadsheet_id: str) -> DriveFileVersion:
        """Drive's version counter and modifiedTime of a spreadsheet (both move on every edit)."""
        spreadsheet_id = _require_id(spreadsheet_id)
        action = f"reading the Drive version of spreadsheet {spreadsheet_id}"
        url = f"{DRIVE_FILES_URL}/{quote(spreadsheet_id, safe='')}"
        params = {"fields": "id,version,modifiedTime,trashed", "supportsAllDrives": "true"}
        data = self._json(action, self._call(action, lambda: self._http.request("get", url, params=params)))
        try:
            return DriveFileVersion(
                id=str(data.get("id") or spreadsheet_id),
                version=int(data["version"]),
                modified_time=_timestamp(data["modifiedTime"]),
                trashed=bool(data.get("trashed", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(action, f"unexpected file metadata ({type(exc).__name__}: {exc})") from exc

    def drive_changes_start_token(self) -> str:
        """A changes-feed token meaning "from now on"; keep it for the next :meth:`drive_changes`."""
        action = "reading the Drive changes start token"
        params = {"supportsAllDrives": "true"}
        data = self._json(
            action,
            self._call(action, lambda: self._http.request("get", f"{DRIVE_CHANGES_URL}/startPageToken", params=params)),
        )
        token = data.get("startPageToken")
        if not isinstance(token, str) or not token:
            raise _bad(action, "no startPageToken in the reply")
        return token

    def drive_changes(self, *, token: str) -> DriveChanges:
        """Every file that changed since ``token``, with its Drive version and trash flag (usually one request;
        follows ``nextPageToken``)."""
        if not token:
            raise ValueError("token is required")
        changed: set[str] = set()
        removed: set[str] = set()
        trashed: set[str] = set()
        versions: dict[str, int] = {}
        page_token = token
        for _page in range(_MAX_CHANGE_PAGES):
            action = f"reading the Drive changes since token {page_token}"
            params = {
                "pageToken": page_token,
                "pageSize": str(CHANGES_PAGE_SIZE),
                "includeRemoved": "true",
                "supportsAllDrives": "true",
                "includeItemsFromAllDrives": "true",
                "fields": "nextPageToken,newStartPageToken,changes(fileId,removed,file(version,trashed))",
            }
            data = self._json(
                action, self._call(action, lambda p=params: self._http.request("get", DRIVE_CHANGES_URL, params=p))
            )
            entries = data.get("changes") or []
            if not isinstance(entries, list):
                raise _bad(action, "changes is not a list")
            for entry in entries:
                if isinstance(entry, dict) and isinstance(entry.get("fileId"), str):
                    file_id = entry["fileId"]
                    changed.add(file_id)
                    if entry.get("removed"):
                        removed.add(file_id)
                        versions.pop(file_id, None)
                        continue
                    meta = entry.get("file")
                    if isinstance(meta, dict):
                        try:
                            versions[file_id] = int(meta["version"])
                        except (KeyError, TypeError, ValueError):
                            versions.pop(file_id, None)  # no usable version: the caller must ask files.get
                        if meta.get("trashed"):
                            trashed.add(file_id)
                        else:
                            trashed.discard(file_id)
            new_start, next_page = data.get("newStartPageToken"), data.get("nextPageToken")
            if isinstance(new_start, str) and new_start:
                return DriveChanges(
                    changed_ids=frozenset(changed),
                    new_token=new_start,
                    removed_ids=frozenset(removed),
                    versions=versions,
                    trashed_ids=frozenset(trashed),
                )
            if not isinstance(next_page, str) or not next_page or next_page == page_token:
                raise _bad(action, "the reply has neither a usable nextPageToken nor a newStartPageToken")
            page_token = next_page
        raise _bad(f"reading the Drive changes since token {token}", f"more than {_MAX_CHANGE_PAGES} pages")


def _require_id(spreadsheet_id: str) -> str:
    value = str(spreadsheet_id).strip() if spreadsheet_id is not None else ""
    if not value:
        raise ValueError("spreadsheet_id is required")
    return value


def _check_option(value: str, allowed: Sequence[str], name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


# --------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------


def sheets_client(*, principal: str = "") -> SheetsClient:
    """A :class:`SheetsClient` configured from Django settings (read when called).

    ``SHEETS_API_ENDPOINT`` (an emulator URL; empty for Google), ``GOOGLE_APPLICATION_CREDENTIALS``
    (service-account JSON; empty for Application Default Credentials), ``SHEETS_RATE_LIMIT_PER_MINUTE``
    (default 60; 0 disables the limiter), ``SHEETS_TIMEOUT``, ``SHEETS_MAX_ATTEMPTS``,
    ``SHEETS_BACKOFF_BASE`` and ``SHEETS_BACKOFF_MAX``.

    ``principal`` names one of ``SHEETS_PRINCIPALS`` (a team's service account): its key file instead of
    ``GOOGLE_APPLICATION_CREDENTIALS`` (none: Application Default Credentials) and, with an endpoint, its own
    emulator user. ``ValueError`` for a principal that is not configured.
    """
    from django.conf import settings

    rate = getattr(settings, "SHEETS_RATE_LIMIT_PER_MINUTE", 60)
    principals = getattr(settings, "SHEETS_PRINCIPALS", {"": ""})
    if principal and principal not in principals:
        raise ValueError(f"no principal {principal!r} in SHEETS_PRINCIPALS")
    default = getattr(settings, "GOOGLE_APPLICATION_CREDENTIALS", "")
    credentials = principals.get(principal, "") if principal else default
    return SheetsClient(
        endpoint=getattr(settings, "SHEETS_API_ENDPOINT", "") or None,
        endpoint_token=f"{EMULATOR_TOKEN}-{principal}" if principal else EMULATOR_TOKEN,
        credentials_file=credentials or None,
        timeout=float(getattr(settings, "SHEETS_TIMEOUT", 30.0)),
        max_attempts=int(getattr(settings, "SHEETS_MAX_ATTEMPTS", 5)),
        backoff_base=float(getattr(settings, "SHEETS_BACKOFF_BASE", 0.5)),
        backoff_max=float(getattr(settings, "SHEETS_BACKOFF_MAX", 30.0)),
        rate_limit_per_minute=int(rate) if rate else None,
    )

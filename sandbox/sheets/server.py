"""The Sheets v4 + Drive v3 emulator: routes, auth, quotas and Google-style errors.

Paths are the ones ``gspread`` 6.2.1 sends once its hosts (``https://sheets.googleapis.com``,
``https://www.googleapis.com``) are rewritten to this server. Ranges arrive percent-encoded
(``%27Sheet1%27%21A1%3AB2``) and reach the handlers decoded. Any ``Authorization: Bearer <token>``
(or a ``key`` parameter) is accepted; a request with neither gets 401, as from Google.

Quota simulation (off by default): :meth:`SheetsEmulator.set_quota` caps Sheets API reads (GET)
and writes (POST/PUT) per sliding minute for each user (each distinct bearer token is a user, as each
service account is for Google) and optionally for the project (all users), answering 429
RESOURCE_EXHAUSTED past a cap, the way the real quotas do (no Retry-After header). Drive calls are not
capped. :meth:`SheetsEmulator.user_counters` counts Sheets requests per user.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.common import CONTROL_PREFIX, EmulatorHTTPError, EmulatorServer, json_response, request_json
from sandbox.sheets.store import SheetsStore, bad_request

SHEETS = "/v4/spreadsheets"
DRIVE = "/drive/v3"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_DRIVE_REASONS = {
    400: "badRequest",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    429: "rateLimitExceeded",
    500: "internalError",
    503: "backendError",
}


class SheetsQuota:
    """Per-minute read and write caps over sliding windows, as Google counts them: ``read_per_minute`` and
    ``write_per_minute`` for each user (each distinct bearer token is a user: a principal of the sync), and
    optionally ``project_read_per_minute`` / ``project_write_per_minute`` for all users together. ``None`` means
    uncapped."""

    def __init__(
        self,
        *,
        read_per_minute: int | None = None,
        write_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        window_s: float = 60.0,
        project_read_per_minute: int | None = None,
        project_write_per_minute: int | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.window_s = window_s
        self._limits: dict[str, int | None] = {}
        self._seen: dict[tuple[str, str], collections.deque[float]] = {}
        self.configure(
            read_per_minute=read_per_minute,
            write_per_minute=write_per_minute,
            project_read_per_minute=project_read_per_minute,
            project_write_per_minute=project_write_per_minute,
        )

    def configure(
        self,
        *,
        read_per_minute: int | None,
        write_per_minute: int | None,
        project_read_per_minute: int | None = None,
        project_write_per_minute: int | None = None,
    ) -> None:
        """Set the caps (None = uncapped) and forget the requests seen so far."""
        limits = {
            "read": read_per_minute,
            "write": write_per_minute,
            "project read": project_read_per_minute,
            "project write": project_write_per_minute,
        }
        for value in limits.values():
            if value is not None and value < 0:
                raise ValueError("quota limits must be >= 0 or None")
        with self._lock:
            self._limits = limits
            self._seen.clear()

    def limits(self) -> dict[str, int | None]:
        """The per-user caps as ``{"read_per_minute", "write_per_minute"}``, plus the project's when set."""
        with self._lock:
            out = {"read_per_minute": self._limits["read"], "write_per_minute": self._limits["write"]}
            for kind in ("read", "write"):
                if self._limits[f"project {kind}"] is not None:
                    out[f"project_{kind}_per_minute"] = self._limits[f"project {kind}"]
            return out

    def _full(self, key: tuple[str, str], limit: int | None, now: float) -> bool:
        if limit is None:
            return False
        seen = self._seen.setdefault(key, collections.deque())
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        return len(seen) >= limit

    def refusal(self, kind: str, user: str = "") -> str:
        """Record one request of ``kind`` ("read"/"write") by ``user``: "" when admitted, else the cap it is over
        ("user" or "project"; a refused request is not counted)."""
        with self._lock:
            now = self._clock()
            if self._full((kind, f"user:{user}"), self._limits[kind], now):
                return "user"
            if self._full((kind, "project"), self._limits[f"project {kind}"], now):
                return "project"
            for key in ((kind, f"user:{user}"), (kind, "project")):
                self._seen.setdefault(key, collections.deque()).append(now)
            return ""

    def admit(self, kind: str, user: str = "") -> bool:
        """Record one request of ``kind``; False when it is over a cap."""
        return not self.refusal(kind, user)


def _bool_arg(request: Request, name: str) -> bool:
    return (request.args.get(name) or "").lower() in ("true", "1")


class SheetsEmulator(EmulatorServer):
    """A local Sheets v4 + Drive v3 API serving a :class:`SheetsStore`."""

    def __init__(
        self,
        store: SheetsStore,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        quota: SheetsQuota | None = None,
    ) -> None:
        self.store = store
        self.quota = quota or SheetsQuota()
        self._users_lock = threading.Lock()
        self._user_requests: collections.Counter[tuple[str, str]] = collections.Counter()
        super().__init__(name="sheets", url_map=self._build_map(), host=host, port=port, latency_ms=latency_ms)
        for rule in self._extra_control_rules():
            self._control_map.add(rule)

    @classmethod
    def from_fixture(
        cls,
        *,
        fixture: Mapping[str, Any] | list[Any] | None = None,
        fixture_path: str | Path | None = None,
        state_path: str | Path | None = None,
        **kwargs: Any,
    ) -> SheetsEmulator:
        """Build an emulator from a fixture dict, a fixture file, a state file, or empty."""
        store = SheetsStore.open(fixture=fixture, fixture_path=fixture_path, state_path=state_path)
        return cls(store, **kwargs)

    def stop(self) -> None:
        """Stop serving and flush the store's state file."""
        super().stop()
        self.store.close()

    def set_quota(
        self,
        *,
        read_per_minute: int | None = None,
        write_per_minute: int | None = None,
        project_read_per_minute: int | None = None,
        project_write_per_minute: int | None = None,
    ) -> None:
        """Cap Sheets reads and writes per minute per user, and optionally for the project (None = uncapped);
        429 RESOURCE_EXHAUSTED past a cap."""
        self.quota.configure(
            read_per_minute=read_per_minute,
            write_per_minute=write_per_minute,
            project_read_per_minute=project_read_per_minute,
            project_write_per_minute=project_write_per_minute,
        )

    def user_counters(self) -> dict[str, dict[str, int]]:
        """Sheets requests per user (bearer token) and kind, and those answered 429 by a quota:
        ``{"emulator-ops": {"read": 2, "write": 5, "write refused": 1}}``."""
        out: dict[str, dict[str, int]] = {}
        with self._users_lock:
            for (user, kind), count in self._user_requests.items():
                out.setdefault(user, {})[kind] = count
        return out

    def reset_counters(self) -> None:
        """Zero every counter, the per-user ones included."""
        super().reset_counters()
        with self._users_lock:
            self._user_requests.clear()

    # ---- routing ----------------------------------------------------------------------------

    def _build_map(self) -> Map:
        def rule(path: str, endpoint: Any, *methods: str) -> Rule:
            return Rule(path, endpoint=endpoint, methods=list(methods))

        values = f"{SHEETS}/<spreadsheet_id>/values"
        return Map(
            [
                rule(SHEETS, self.create_spreadsheet, "POST"),
                rule(f"{SHEETS}/<spreadsheet_id>", self.get_spreadsheet, "GET"),
                rule(f"{SHEETS}/<spreadsheet_id>:batchUpdate", self.batch_update, "POST"),
                rule(f"{values}:batchGet", self.values_batch_get, "GET"),
                rule(f"{values}:batchUpdate", self.values_batch_update, "POST"),
                rule(f"{values}:batchClear", self.values_batch_clear, "POST"),
                rule(f"{values}/<path:range_name>", self.values_get, "GET"),
                rule(f"{values}/<path:range_name>", self.values_update, "PUT"),
                rule(f"{values}/<path:range_name>:clear", self.values_clear, "POST"),
                rule(f"{DRIVE}/files", self.drive_list, "GET"),
                rule(f"{DRIVE}/files", self.drive_create, "POST"),
                rule(f"{DRIVE}/files/<file_id>", self.drive_get, "GET"),
                rule(f"{DRIVE}/files/<file_id>", self.drive_update, "PATCH"),
                rule(f"{DRIVE}/files/<file_id>", self.drive_delete, "DELETE"),
                rule(f"{DRIVE}/changes/startPageToken", self.drive_start_page_token, "GET"),
                rule(f"{DRIVE}/changes", self.drive_changes, "GET"),
            ],
            merge_slashes=False,
        )

    # ---- hooks --------------------------------------------------------------------------------

    def error_body(self, status: int, message: str, request: Request) -> dict[str, Any]:
        """Google's shape: ``{"error": {"code", "message", "status"}}`` (Drive adds ``errors``)."""
        error: dict[str, Any] = {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}
        if request.path.startswith(f"{DRIVE}/"):
            reason = _DRIVE_REASONS.get(status, "badRequest" if status < 500 else "backendError")
            error["errors"] = [{"domain": "global", "reason": reason, "message": message}]
        return {"error": error}

    def before_dispatch(self, request: Request, rule: Rule) -> None:
        """Any bearer token or API key is enough; Sheets calls then pass the quota check."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if not (scheme.lower() == "bearer" and token.strip()) and not request.args.get("key"):
            raise EmulatorHTTPError(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
            )
        if rule.rule.startswith(SHEETS):
            kind = "read" if request.method == "GET" else "write"
            user = token.strip() or f"key:{request.args.get('key')}"
            with self._users_lock:
                self._user_requests[(user, kind)] += 1
            refused = self.quota.refusal(kind, user)
            if refused:
                with self._users_lock:
                    self._user_requests[(user, f"{kind} refused")] += 1
                label = "Read" if kind == "read" else "Write"
                per = " per user" if refused == "user" else ""
                raise EmulatorHTTPError(
                    429,
                    f"Quota exceeded for quota metric '{label} requests' and limit '{label} requests per minute{per}' "
                    "of service 'sheets.googleapis.com' for consumer 'project_number:000000000000'.",
                )

    # ---- Sheets routes --------------------------------------------------------------------------

    def create_spreadsheet(self, request: Request) -> Response:
        """``POST /v4/spreadsheets``."""
        return json_response(self.store.api_create_spreadsheet(request_json(request)))

    def get_spreadsheet(self, request: Request, spreadsheet_id: str) -> Response:
        """``GET /v4/spreadsheets/{id}`` (metadata; grid data is never included)."""
        return json_response(self.store.api_get_spreadsheet(spreadsheet_id, request.args.get("fields")))

    def batch_update(self, request: Request, spreadsheet_id: str) -> Response:
        """``POST /v4/spreadsheets/{id}:batchUpdate``."""
        return json_response(self.store.api_batch_update(spreadsheet_id, request_json(request)))

    def values_get(self, request: Request, spreadsheet_id: str, range_name: str) -> Response:
        """``GET /v4/spreadsheets/{id}/values/{range}``."""
        return json_response(
            self.store.api_values_get(
                spreadsheet_id,
                range_name,
                render=self.store.render_option(request.args.get("valueRenderOption")),
                major=self.store.major_option(request.args.get("majorDimension")),
            )
        )

    def values_batch_get(self, request: Request, spreadsheet_id: str) -> Response:
        """``GET /v4/spreadsheets/{id}/values:batchGet?ranges=...&ranges=...``."""
        ranges = request.args.getlist("ranges")
        return json_response(
            self.store.api_values_batch_get(
                spreadsheet_id,
                ranges,
                render=self.store.render_option(request.args.get("valueRenderOption")),
                major=self.store.major_option(request.args.get("majorDimension")),
            )
        )

    def values_update(self, request: Request, spreadsheet_id: str, range_name: str) -> Response:
        """``PUT /v4/spreadsheets/{id}/values/{range}?valueInputOption=...``."""
        return json_response(
            self.store.api_values_update(
                spreadsheet_id,
                range_name,
                request_json(request),
                input_option=request.args.get("valueInputOption"),
                include_values=_bool_arg(request, "includeValuesInResponse"),
                response_render=self.store.render_option(request.args.get("responseValueRenderOption")),
            )
        )

    def values_batch_update(self, request: Request, spreadsheet_id: str) -> Response:
        """``POST /v4/spreadsheets/{id}/values:batchUpdate``."""
        return json_response(self.store.api_values_batch_update(spreadsheet_id, request_json(request)))

    def values_clear(self, request: Request, spreadsheet_id: str, range_name: str) -> Response:
        """``POST /v4/spreadsheets/{id}/values/{range}:clear``."""
        return json_response(self.store.api_values_clear(spreadsheet_id, range_name))

    def values_batch_clear(self, request: Request, spreadsheet_id: str) -> Response:
        """``POST /v4/spreadsheets/{id}/values:batchClear``."""
        body = request_json(request)
        ranges = body.get("ranges") if isinstance(body, dict) else None
        return json_response(self.store.api_values_batch_clear(spreadsheet_id, ranges))

    # ---- Drive routes ---------------------------------------------------------------------------

    def drive_get(self, request: Request, file_id: str) -> Response:
        """``GET /drive/v3/files/{id}?fields=...``."""
        return json_response(self.store.api_drive_get(file_id, request.args.get("fields")))

    def drive_list(self, request: Request) -> Response:
        """``GET /drive/v3/files?q=...``."""
        return json_response(self.store.api_drive_list(request.args.get("q"), request.args.get("fields")))

    def drive_create(self, request: Request) -> Response:
        """``POST /drive/v3/files`` (a new, empty spreadsheet)."""
        return json_response(self.store.api_drive_create(request_json(request)))

    def drive_update(self, request: Request, file_id: str) -> Response:
        """``PATCH /drive/v3/files/{id}`` (name, trashed)."""
        return json_response(self.store.api_drive_update(file_id, request_json(request)))

    def drive_delete(self, request: Request, file_id: str) -> Response:
        """``DELETE /drive/v3/files/{id}``."""
        self.store.api_drive_delete(file_id)
        return Response(status=204)

    def drive_start_page_token(self, request: Request) -> Response:
        """``GET /drive/v3/changes/startPageToken``."""
        return json_response({"kind": "drive#startPageToken", "startPageToken": self.store.start_page_token()})

    def drive_changes(self, request: Request) -> Response:
        """``GET /drive/v3/changes?pageToken=...&pageSize=...``."""
        raw_size = request.args.get("pageSize") or str(DEFAULT_PAGE_SIZE)
        try:
            page_size = int(raw_size)
        except ValueError as exc:
            raise bad_request(f"Invalid Value: pageSize {raw_size!r}") from exc
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise bad_request(f"Invalid Value: pageSize must be between 1 and {MAX_PAGE_SIZE}")
        token = request.args.get("pageToken")
        if not token:
            raise bad_request("The query parameter 'pageToken' is required.")
        return json_response(self.store.api_changes(token, page_size, request.args.get("fields")))

    # ---- control endpoints ----------------------------------------------------------------------

    def _extra_control_rules(self) -> list[Rule]:
        prefix = f"{CONTROL_PREFIX}spreadsheets"
        return [
            Rule(f"{CONTROL_PREFIX}quota", endpoint=self._control_quota, methods=["GET", "POST"]),
            Rule(prefix, endpoint=self._control_spreadsheets, methods=["GET", "POST"]),
            Rule(f"{prefix}/<spreadsheet_id>", endpoint=self._control_spreadsheet, methods=["GET", "DELETE"]),
            Rule(f"{prefix}/<spreadsheet_id>/edit", endpoint=self._control_edit, methods=["POST"]),
            Rule(f"{prefix}/<spreadsheet_id>/trash", endpoint=self._control_trash, methods=["POST"]),
        ]

    def _control_quota(self, request: Request) -> Response:
        if request.method == "POST":
            payload = request_json(request)
            if not isinstance(payload, dict):
                raise EmulatorHTTPError(400, 'Expected {"read_per_minute": n|null, "write_per_minute": n|null}')
            try:
                self.set_quota(
                    read_per_minute=payload.get("read_per_minute"),
                    write_per_minute=payload.get("write_per_minute"),
                    project_read_per_minute=payload.get("project_read_per_minute"),
                    project_write_per_minute=payload.get("project_write_per_minute"),
                )
            except (TypeError, ValueError) as exc:
                raise EmulatorHTTPError(400, str(exc)) from exc
        return json_response(self.quota.limits())

    def _control_spreadsheets(self, request: Request) -> Response:
        if request.method == "GET":
            return json_response(self.store.spreadsheet_ids())
        payload = request_json(request)
        if not isinstance(payload, dict) or not payload.get("title"):
            raise EmulatorHTTPError(400, 'Expected {"title": ..., "sheets": {"Sheet1": [[...]]}}')
        try:
            new_id = self.store.create_spreadsheet(
                str(payload["title"]), payload.get("sheets"), spreadsheet_id=payload.get("id")
            )
        except (TypeError, ValueError, KeyError) as exc:
            raise EmulatorHTTPError(400, f"Invalid spreadsheet: {exc}") from exc
        return json_response({"id": new_id})

    def _control_spreadsheet(self, request: Request, spreadsheet_id: str) -> Response:
        if request.method == "DELETE":
            self.store.delete_spreadsheet(spreadsheet_id)
            return json_response({"ok": True})
        drive = self.store.drive_file(spreadsheet_id)
        sheets = self.store.api_get_spreadsheet(spreadsheet_id, "sheets.properties.title")["sheets"]
        values = {s["properties"]["title"]: self.store.values(spreadsheet_id, s["properties"]["title"]) for s in sheets}
        return json_response({"drive": drive, "values": values})

    def _control_edit(self, request: Request, spreadsheet_id: str) -> Response:
        payload = request_json(request)
        if not isinstance(payload, dict) or not isinstance(payload.get("range"), str):
            raise EmulatorHTTPError(400, 'Expected {"range": "Sheet1!A1", "values": [[...]]}')
        self.store.set_values(spreadsheet_id, payload["range"], payload.get("values") or [])
        return json_response({"ok": True, "version": self.store.version(spreadsheet_id)})

    def _control_trash(self, request: Request, spreadsheet_id: str) -> Response:
        payload = request_json(request)
        trashed = bool(payload.get("trashed", True)) if isinstance(payload, dict) else True
        self.store.trash_spreadsheet(spreadsheet_id, trashed=trashed)
        return json_response({"ok": True})

"""Looker connector: the only module of the project that imports ``looker_sdk``.

Everything leaves here as frozen dataclasses or plain strings, and every failure as one of the
:mod:`connectors.errors` exceptions, with a message that says what was being done.

How the SDK is wired (looker-sdk 26.22):

* Settings come from an ``ApiSettings`` subclass that returns a dict: no ``looker.ini``, no
  ``LOOKERSDK_*`` environment variables read behind the caller's back.
* The SDK's transport is replaced by :class:`_Transport`, which raises on every non-2xx reply and on
  network errors *before* the SDK sees them. The stock transport turns both into an ``SDKError``
  without the HTTP status (and a timeout into a plain string), and on an error whose
  ``documentation_url`` is a Looker error-doc link the SDK fetches Looker's CDN with no timeout
  to decorate the exception. Raising first keeps the status, the Retry-After header and the
  exception type, and keeps error handling off the network.
* The SDK neither retries nor re-logs-in after a 401. :meth:`LookerClient._call` does both: one
  fresh login after a 401 (expired token), and bounded exponential backoff with jitter for 429,
  5xx and network errors, honouring Retry-After.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attr
import cattrs
import looker_sdk
import requests
import urllib3
from looker_sdk.error import SDKError
from looker_sdk.rtl import api_settings, auth_token, requests_transport, serialize, transport
from looker_sdk.sdk import constants as sdk_constants
from looker_sdk.sdk.api40 import models as mdls

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
    "LookerClient",
    "LookerDashboardExport",
    "LookerDashboardSummary",
    "LookerFolder",
    "LookerScheduledPlan",
    "LookerUser",
    "dashboard_json_normalized",
    "looker_client",
]

logger = logging.getLogger(__name__)

SYSTEM = "looker"
T = TypeVar("T")

_SUMMARY_FIELDS = (
    "id,title,folder(id,name),folder_id,user_id,created_at,updated_at,last_viewed_at,"
    "last_accessed_at,view_count,favorite_count,deleted,deleted_at,lookml_link_id"
)
_USER_FIELDS = "id,display_name,first_name,last_name,email"
_FOLDER_FIELDS = "id,name,parent_id"
_PLAN_FIELDS = "id,dashboard_id,enabled,user_id"
_ERROR_BODY_LIMIT = 300


# --------------------------------------------------------------------------------------------
# What callers get back
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LookerDashboardSummary:
    """One dashboard's inventory facts. Datetimes are timezone-aware (UTC).

    ``is_lookml`` marks a LookML dashboard (id ``model::name``): Looker refuses to soft-delete
    those. A user-defined dashboard merely *linked* to LookML (``lookml_link_id`` set) is an
    ordinary dashboard and is not ``is_lookml``.
    """

    id: str
    title: str | None
    folder_id: str | None
    folder_name: str | None
    user_id: str | None
    created_at: datetime | None
    updated_at: datetime | None
    last_viewed_at: datetime | None
    last_accessed_at: datetime | None
    view_count: int | None
    favorite_count: int | None
    deleted: bool
    deleted_at: datetime | None
    lookml_link_id: str | None
    is_lookml: bool


@dataclass(frozen=True)
class LookerUser:
    """A Looker user; ``email`` is None for users without email credentials."""

    id: str
    display_name: str | None
    email: str | None


@dataclass(frozen=True)
class LookerFolder:
    """A Looker folder; ``parent_id`` is None at the root."""

    id: str
    name: str
    parent_id: str | None


@dataclass(frozen=True)
class LookerScheduledPlan:
    """A scheduled delivery; ``dashboard_id`` is None for plans on looks or queries."""

    id: str
    dashboard_id: str | None
    enabled: bool
    user_id: str | None


@dataclass(frozen=True)
class LookerDashboardExport:
    """A backup of one dashboard: the full Dashboard JSON and, when Looker provides it, its LookML."""

    dashboard_id: str
    dashboard_json: str
    lookml: str | None


# --------------------------------------------------------------------------------------------
# SDK plumbing
# --------------------------------------------------------------------------------------------


class _HttpFailure(Exception):
    """A non-2xx reply, raised by the transport with everything the mapping needs."""

    def __init__(
        self, *, method: str, url: str, status: int, message: str, retry_after: float | None, is_login: bool
    ) -> None:
        super().__init__(f"HTTP {status} {message}".strip())
        self.method = method
        self.url = url
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.is_login = is_login


class _NetworkFailure(Exception):
    """No reply: timeout or connection error. ``sent`` is False when the request surely never left."""

    def __init__(self, *, method: str, url: str, detail: str, sent: bool, timed_out: bool) -> None:
        super().__init__(detail)
        self.method = method
        self.url = url
        self.detail = detail
        self.sent = sent
        self.timed_out = timed_out


def _error_message(resp: requests.Response) -> str:
    """Looker's ``message`` from a JSON error body, else the start of the body."""
    text = resp.text or ""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        message = body["message"]
        errors = body.get("errors")
        if isinstance(errors, list):
            details = [
                f"{e.get('field')}: {e.get('message')}"
                for e in errors
                if isinstance(e, dict) and (e.get("field") or e.get("message"))
            ]
            if details:
                message = f"{message} ({'; '.join(details)})"
        return message[:_ERROR_BODY_LIMIT]
    return " ".join(text.split())[:_ERROR_BODY_LIMIT] or (resp.reason or "")


def _request_was_sent(exc: requests.RequestException) -> bool:
    """False only when the request certainly never reached the server (connect failed)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError wraps the cause
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            return False
    return True


class _Settings(api_settings.ApiSettings):
    """SDK settings from explicit values: no looker.ini, no environment variables."""

    def __init__(self, *, base_url: str, client_id: str, client_secret: str, verify_ssl: bool, timeout: float) -> None:
        self._config: api_settings.SettingsConfig = {
            "base_url": base_url,
            "client_id": client_id,
            "client_secret": client_secret,
            "verify_ssl": "true" if verify_ssl else "false",
            "timeout": str(max(int(timeout), 1)),
        }
        # filename="" skips the ini file; env_prefix=None skips LOOKERSDK_* variables.
        super().__init__(filename="", env_prefix=None, sdk_version=sdk_constants.sdk_version)

    def read_config(self) -> api_settings.SettingsConfig:
        """The configuration, as the SDK asks for it (including at every login)."""
        return dict(self._config)  # type: ignore[return-value]


class _Transport(requests_transport.RequestsTransport):
    """The SDK's requests transport, but raising typed failures and counting requests."""

    def __init__(
        self,
        settings: transport.PTransportSettings,
        session: requests.Session,
        *,
        timeout: float,
        on_request: Callable[[], None],
        on_reply: Callable[[], None],
    ) -> None:
        super().__init__(settings, session)
        self._timeout = timeout
        self._on_request = on_request
        self._on_reply = on_reply

    def request(
        self,
        method: transport.HttpMethod,
        path: str,
        query_params: Any = None,
        body: bytes | None = None,
        authenticator: transport.TAuthenticator = None,
        transport_options: transport.TransportOptions | None = None,
    ) -> transport.Response:
        """Send one HTTP request; raise :class:`_HttpFailure` / :class:`_NetworkFailure` on failure."""
        headers: dict[str, str] = {}
        if authenticator:
            headers.update(authenticator(transport_options or {}))  # may log in first
        if transport_options and transport_options.get("headers"):
            headers.update(transport_options["headers"])
        timeout = (transport_options or {}).get("timeout") or self._timeout
        self._on_request()
        try:
            resp = self.session.request(
                method.name,
                path,
                auth=requests_transport.NullAuth(),
                params=query_params,
                data=body,
                headers=headers,
                timeout=timeout,
            )
        except requests.RequestException as exc:
            timed_out = isinstance(exc, requests.exceptions.Timeout)
            detail = f"timed out after {timeout:g}s" if timed_out else f"connection failed: {exc}"
            raise _NetworkFailure(
                method=method.name, url=path, detail=detail, sent=_request_was_sent(exc), timed_out=timed_out
            ) from exc
        if not resp.ok:
            raise _HttpFailure(
                method=method.name,
                url=path,
                status=resp.status_code,
                message=_error_message(resp),
                retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
                is_login=urlsplit(path).path.rstrip("/").endswith("/login"),
            )
        self._on_reply()
        ret = transport.Response(True, resp.content, transport.response_mode(resp.headers.get("content-type")))
        encoding = requests.utils.get_encoding_from_headers(resp.headers)
        if encoding:
            ret.encoding = encoding
        return ret


# Exceptions the SDK raises when a 2xx body does not fit the expected model.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    serialize.DeserializeError,
    cattrs.BaseValidationError,
    TypeError,
    ValueError,
    AttributeError,
    KeyError,
)


def _timestamp(value: Any) -> datetime | None:
    """An ISO 8601 timestamp from a raw reply (Looker writes ``...Z``) as an aware datetime."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected a timestamp string, got {type(value).__name__}")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _summary_from_dict(data: dict[str, Any], action: str) -> LookerDashboardSummary:
    """A summary from a raw dashboard reply (the same fields the search asks for)."""
    if not data.get("id"):
        raise ConnectorBadResponse(f"Looker: {action} failed: a dashboard without an id", system=SYSTEM)
    try:
        folder = data.get("folder") or {}
        dashboard_id = str(data["id"])
        return LookerDashboardSummary(
            id=dashboard_id,
            title=data.get("title"),
            folder_id=_str_or_none(data.get("folder_id") or folder.get("id")),
            folder_name=folder.get("name"),
            user_id=_str_or_none(data.get("user_id")),
            created_at=_timestamp(data.get("created_at")),
            updated_at=_timestamp(data.get("updated_at")),
            last_viewed_at=_timestamp(data.get("last_viewed_at")),
            last_accessed_at=_timestamp(data.get("last_accessed_at")),
            view_count=_int_or_none(data.get("view_count"), "view_count"),
            favorite_count=_int_or_none(data.get("favorite_count"), "favorite_count"),
            deleted=bool(data.get("deleted")),
            deleted_at=_timestamp(data.get("deleted_at")),
            lookml_link_id=_str_or_none(data.get("lookml_link_id")),
            is_lookml="::" in dashboard_id,
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConnectorBadResponse(f"Looker: {action} failed: {exc}", system=SYSTEM) from exc


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _int_or_none(value: Any, name: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise TypeError(f"{name} is {value!r}, not a number")


_WRITE_QUERY_FIELDS = frozenset(f.name for f in attr.fields(mdls.WriteQuery))


def _write_model(model_cls: type[T], data: Mapping[str, Any], *, drop: Iterable[str] = ()) -> T:
    """Build an SDK write model from a dict, keeping only the fields the model has."""
    names = {f.name for f in attr.fields(model_cls)}  # type: ignore[arg-type]
    dropped = set(drop)
    payload = {k: v for k, v in data.items() if k in names and k not in dropped and v is not None}
    return serialize.deserialize40(data=json.dumps(payload), structure=model_cls)  # type: ignore[arg-type,return-value]


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


class LookerClient:
    """Talks to one Looker instance (API 4.0) through ``looker_sdk``.

    ``base_url`` is the API host root (``https://company.looker.com`` or ``...:19999``), without a
    path. ``timeout`` applies to each HTTP request (connect and read). Transient failures (429,
    5xx, timeouts, connection errors) are tried up to ``max_attempts`` times in all, waiting
    ``backoff_base * 2**n`` seconds (with jitter, capped at ``backoff_max``, at least Retry-After).
    A Retry-After longer than ``backoff_max`` is not waited for: ``ConnectorRateLimited`` carries it
    to the caller. Thread-safe for concurrent calls (the cleanup soft-deletes from a thread pool).
    """

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        timeout: float = 30,
        verify_ssl: bool = True,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30,
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"Looker base URL must be http(s)://host[:port], got {base_url!r}")
        if parts.path not in ("", "/") or parts.query:
            # looker_sdk keeps a path prefix for login but drops it for API calls.
            raise ValueError(f"Looker base URL must be a host root without a path, got {base_url!r}")
        if not client_id or not client_secret:
            raise ValueError("Looker client_id and client_secret are required")
        if timeout <= 0 or max_attempts < 1 or backoff_base < 0 or backoff_max < 0:
            raise ValueError("timeout must be > 0, max_attempts >= 1 and backoffs >= 0")
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        self.timeout = float(timeout)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._count_lock = threading.Lock()
        self._request_count = 0
        self._local = threading.local()
        self._rng = random.Random()
        self._sleep: Callable[[float], None] = time.sleep

        settings = _Settings(
            base_url=self.base_url,
            client_id=client_id,
            client_secret=client_secret,
            verify_ssl=verify_ssl,
            timeout=timeout,
        )
        sdk = looker_sdk.init40(config_settings=settings)
        stock = sdk.transport
        if not isinstance(stock, requests_transport.RequestsTransport):  # pragma: no cover - SDK changed
            raise RuntimeError("looker_sdk no longer uses RequestsTransport; review connectors/looker.py")
        request_hook_install(stock.session, system=SYSTEM)  # counts and times every request for monitoring
        self._transport = _Transport(
            settings, stock.session, timeout=self.timeout, on_request=self._count_request, on_reply=self._saw_reply
        )
        # The SDK holds the transport in two places: the API methods and the auth session (login).
        sdk.transport = self._transport
        sdk.auth.transport = self._transport
        self._sdk = sdk

    # ---- bookkeeping --------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        """HTTP requests this client has sent, logins and retries included."""
        with self._count_lock:
            return self._request_count

    def _count_request(self) -> None:
        self._local.got_reply = False
        with self._count_lock:
            self._request_count += 1

    def _saw_reply(self) -> None:
        self._local.got_reply = True

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._transport.session.close()

    def __enter__(self) -> LookerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- the call wrapper -----------------------------------------------------------------------

    def _call(self, action: str, fn: Callable[[], T], *, idempotent: bool = True) -> T:
        """Run one SDK call with error mapping, one re-login after a 401, and bounded retries.

        Non-idempotent calls (creates) are retried only when the server surely did not act on the
        request: connect failures, 429 and 503.
        """
        attempt = 0
        relogged = False
        while True:
            attempt += 1
            self._local.got_reply = False
            try:
                return fn()
            except _HttpFailure as failure:
                if failure.status == 401 and not failure.is_login and not relogged:
                    # Token expired or revoked server-side: log in again once, at no attempt cost.
                    relogged = True
                    attempt -= 1
                    self._sdk.auth.token = auth_token.AuthToken()
                    continue
                error = self._map_http(action, failure)
                retryable = isinstance(error, ConnectorTransientError) and (idempotent or failure.status in (429, 503))
                cause: BaseException = failure
            except _NetworkFailure as failure:
                error = ConnectorTransientError(f"Looker: {action} failed: {failure.detail}", system=SYSTEM)
                retryable = idempotent or not failure.sent
                cause = failure
            except _DECODE_ERRORS as exc:
                if not getattr(self._local, "got_reply", False):
                    raise  # not a reply problem: a bug on our side, let it surface as is
                raise ConnectorBadResponse(
                    f"Looker: {action} failed: the reply could not be decoded ({type(exc).__name__}: {exc})",
                    system=SYSTEM,
                ) from exc
            except SDKError as exc:  # e.g. "Required auth credentials not found."
                raise ConnectorAuthError(f"Looker: {action} failed: {exc.message}", system=SYSTEM) from exc

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
    def _map_http(action: str, failure: _HttpFailure) -> ConnectorError:
        status = failure.status
        detail = f"HTTP {status} {failure.message}".rstrip()
        if failure.is_login and status in (400, 401, 403, 404):
            # Looker answers 404 to a login with unknown credentials.
            return ConnectorAuthError(
                f"Looker: {action} failed: login refused ({detail}); check the client id and secret",
                status=status,
                system=SYSTEM,
            )
        message = f"Looker: {action} failed: {detail}"
        if status in (401, 403):
            return ConnectorAuthError(message, status=status, system=SYSTEM)
        if status == 404:
            return ConnectorNotFound(message, status=status, system=SYSTEM)
        if status == 429:
            return ConnectorRateLimited(message, retry_after=failure.retry_after, status=status, system=SYSTEM)
        if status >= 500 or status == 408:
            return ConnectorTransientError(message, status=status, system=SYSTEM)
        return ConnectorRequestError(message, status=status, system=SYSTEM)

    @staticmethod
    def _expect_list(value: Any, action: str) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            raise ConnectorBadResponse(
                f"Looker: {action} failed: expected a list, got {type(value).__name__}", system=SYSTEM
            )
        return list(value)

    @staticmethod
    def _expect_model(value: Any, model_cls: type[T], action: str) -> T:
        if not isinstance(value, model_cls) or not getattr(value, "id", None):
            raise ConnectorBadResponse(
                f"Looker: {action} failed: the reply is not a {model_cls.__name__} with an id", system=SYSTEM
            )
        return value

    def _get_list(self, action: str, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """One GET whose reply is a JSON list of objects, decoded without building SDK models.

        A search page decoded into ``mdls.Dashboard`` objects costs more CPU than the request's own network time
        (looker-sdk rebuilds a cattrs hook on every deserialisation); the fields asked for are plain JSON anyway.
        """
        text = self._call(action, lambda: self._sdk.get(path=path, structure=str, query_params=params))
        try:
            data = json.loads(text) if isinstance(text, str | bytes) else None
        except ValueError:
            data = None
        if not isinstance(data, list):
            raise ConnectorBadResponse(f"Looker: {action} failed: the reply is not a JSON list", system=SYSTEM)
        if not all(isinstance(item, dict) for item in data):
            raise ConnectorBadResponse(f"Looker: {action} failed: the list holds something else than objects",
                                       system=SYSTEM)  # fmt: skip
        return data

    def _paged(
        self, action: str, path: str, params: dict[str, Any], *, page_size: int, stop: Callable[[], bool] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages (limit/offset) of a list endpoint until a short page; guard against servers that ignore offset.

        Rows are ordered by id; when content changes while paging, a row may show up twice at a page boundary
        (kept once) or be missed (the next inventory sees it). ``stop()`` (asked after each full page) ends the
        paging early, when the caller has all it needs.
        """
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        seen: set[str] = set()
        offset = 0
        while True:
            page_action = f"{action} (offset {offset})"
            page = self._get_list(page_action, path, {**params, "limit": str(page_size), "offset": str(offset)})
            if len(page) > page_size:
                raise ConnectorBadResponse(
                    f"Looker: {page_action} failed: asked for {page_size} rows, got {len(page)}", system=SYSTEM
                )
            fresh = [item for item in page if item.get("id") is None or str(item["id"]) not in seen]
            if page and not fresh:
                # The whole page was seen before: the server ignores offset; paging would never end.
                raise ConnectorBadResponse(
                    f"Looker: {page_action} failed: the page repeats earlier rows (offset ignored?)", system=SYSTEM
                )
            # A row repeated at a page boundary (content shifted while paging) is kept once.
            seen.update(str(item["id"]) for item in fresh if item.get("id") is not None)
            yield fresh
            if len(page) < page_size or (stop is not None and stop()):
                return
            offset += page_size

    # ---- reads ------------------------------------------------------------------------------------

    def dashboards_search(
        self, *, deleted: bool = False, page_size: int = 500, include_lookml: bool = True
    ) -> list[LookerDashboardSummary]:
        """Every dashboard in Looker's trash (``deleted=True``) or out of it, in id order.

        One request per page of ``page_size``, asking only for the summary fields. Looker's
        dashboard search never returns LookML dashboards, so an active listing also pages through
        the LookML dashboard search (usually one more request) unless ``include_lookml=False``.
        """
        kind = "deleted" if deleted else "active"
        action = f"searching {kind} dashboards"
        params = {"fields": _SUMMARY_FIELDS, "deleted": "true" if deleted else "false", "sorts": "id"}
        summaries = [
            _summary_from_dict(item, action)
            for page in self._paged(action, "/dashboards/search", params, page_size=page_size)
            for item in page
        ]
        if not deleted and include_lookml:
            action = "searching LookML dashboards"
            params = {"fields": _SUMMARY_FIELDS, "sorts": "id"}
            summaries.extend(
                _summary_from_dict(item, action)
                for page in self._paged(action, "/dashboards/lookml/search", params, page_size=page_size)
                for item in page
            )
        return summaries

    @staticmethod
    def _user(item: dict[str, Any], action: str) -> LookerUser:
        if not item.get("id"):
            raise ConnectorBadResponse(f"Looker: {action} failed: a user without an id", system=SYSTEM)
        parts = [item.get(p) for p in ("first_name", "last_name")]
        name = item.get("display_name") or " ".join(str(p) for p in parts if p) or None
        return LookerUser(id=str(item["id"]), display_name=_str_or_none(name), email=item.get("email") or None)

    def users_all(self, *, page_size: int = 500) -> list[LookerUser]:
        """Every Looker user (id, display name, email), in id order, one request per page."""
        action = "listing users"
        params = {"fields": _USER_FIELDS, "sorts": "id"}
        return [
            self._user(item, action)
            for page in self._paged(action, "/users", params, page_size=page_size)
            for item in page
        ]

    def users_by_id(
        self, *, ids: Iterable[str], ids_per_request: int = 200, page_size: int = 5000
    ) -> dict[str, LookerUser]:
        """The users with these ids (those Looker knows), whichever way costs fewer requests.

        Up to two requests' worth of ids are asked for by id (``GET /users?ids=...``, ``ids_per_request`` ids
        each, which keeps the URL short). More owners than that, and listing every user is cheaper: pages of
        ``page_size`` (a user row is about 120 bytes), stopping as soon as every id asked for was found.
        """
        wanted = {str(i) for i in ids if i}
        if ids_per_request < 1:
            raise ValueError("ids_per_request must be >= 1")
        found: dict[str, LookerUser] = {}
        if not wanted:
            return found
        ordered = sorted(wanted, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))
        if len(ordered) <= 2 * ids_per_request:
            for start in range(0, len(ordered), ids_per_request):
                chunk = ordered[start : start + ids_per_request]
                action = f"reading {len(chunk)} users by id"
                params = {"fields": _USER_FIELDS, "ids": ",".join(chunk)}
                for item in self._get_list(action, "/users", params):
                    user = self._user(item, action)
                    if user.id in wanted:
                        found[user.id] = user
            return found
        action = "listing users"
        params = {"fields": _USER_FIELDS, "sorts": "id"}
        for page in self._paged(action, "/users", params, page_size=page_size, stop=lambda: wanted <= found.keys()):
            for item in page:
                user = self._user(item, action)
                if user.id in wanted:
                    found[user.id] = user
        return found

    def folders_all(self) -> list[LookerFolder]:
        """Every folder (one request: Looker does not page this endpoint)."""
        action = "listing folders"
        result = []
        for folder in self._get_list(action, "/folders", {"fields": _FOLDER_FIELDS}):
            if not folder.get("id"):
                raise ConnectorBadResponse(f"Looker: {action} failed: a folder without an id", system=SYSTEM)
            if not isinstance(folder.get("name"), str):
                raise ConnectorBadResponse(f"Looker: {action} failed: folder {folder['id']} has no name", system=SYSTEM)
            result.append(
                LookerFolder(id=str(folder["id"]), name=folder["name"], parent_id=_str_or_none(folder.get("parent_id")))
            )
        return result

    def scheduled_plans_all(self) -> list[LookerScheduledPlan]:
        """Every scheduled plan of every user (one request; needs the see_schedules permission). Read as raw JSON:
        a large estate has tens of thousands, and SDK models would cost a second of CPU for four fields each."""
        action = "listing scheduled plans"
        result = []
        for plan in self._get_list(action, "/scheduled_plans", {"all_users": "true", "fields": _PLAN_FIELDS}):
            if not plan.get("id"):
                raise ConnectorBadResponse(f"Looker: {action} failed: a plan without an id", system=SYSTEM)
            result.append(
                LookerScheduledPlan(
                    id=str(plan["id"]),
                    dashboard_id=_str_or_none(plan.get("dashboard_id")),
                    enabled=bool(plan.get("enabled")),
                    user_id=_str_or_none(plan.get("user_id")),
                )
            )
        return result

    def _json_object(self, text: Any, action: str) -> dict[str, Any]:
        try:
            data = json.loads(text) if isinstance(text, str | bytes) else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ConnectorBadResponse(f"Looker: {action} failed: the reply is not a JSON object", system=SYSTEM)
        return data

    def _dashboard_json(self, dashboard_id: str, action: str) -> str:
        """The dashboard exactly as Looker serves it, as text.

        Asked for as raw text rather than an SDK model: looker-sdk 26.22 re-registers a cattrs hook
        factory on every deserialisation, which throws away cattrs' cache and costs ~50 ms of CPU for
        one full dashboard. The raw reply is also the most faithful backup (fields the SDK's model
        does not know are kept).
        """
        path = f"/dashboards/{self._sdk.encode_path_param(dashboard_id)}"
        text = self._call(action, lambda: self._sdk.get(path=path, structure=str))
        data = self._json_object(text, action)
        if str(data.get("id")) != dashboard_id:
            raise ConnectorBadResponse(
                f"Looker: {action} failed: asked for dashboard {dashboard_id}, got {data.get('id')}", system=SYSTEM
            )
        return text if isinstance(text, str) else text.decode("utf-8")

    def dashboard_get_json(self, *, dashboard_id: str) -> str:
        """The full dashboard (elements, filters, layouts) as Looker's JSON, soft-deleted ones too."""
        dashboard_id = _require_id(dashboard_id)
        return self._dashboard_json(dashboard_id, f"fetching dashboard {dashboard_id}")

    def dashboard_export(self, *, dashboard_id: str) -> LookerDashboardExport:
        """What a backup needs: the full dashboard JSON plus its LookML (None when Looker refuses it)."""
        dashboard_id = _require_id(dashboard_id)
        dashboard_json = self._dashboard_json(dashboard_id, f"exporting dashboard {dashboard_id}")
        action = f"exporting the LookML of dashboard {dashboard_id}"
        lookml: str | None
        try:
            found = self._call(action, lambda: self._sdk.dashboard_lookml(dashboard_id))
        except (ConnectorRequestError, ConnectorNotFound) as exc:
            # LookML dashboards, and some UDDs Looker cannot express as LookML: keep the JSON backup.
            logger.info("%s; exporting without LookML", exc)
            lookml = None
        else:
            if not isinstance(found, mdls.DashboardLookml):
                raise ConnectorBadResponse(f"Looker: {action} failed: unexpected reply", system=SYSTEM)
            lookml = found.lookml or None
        return LookerDashboardExport(dashboard_id=dashboard_id, dashboard_json=dashboard_json, lookml=lookml)

    # ---- writes -----------------------------------------------------------------------------------

    def _set_deleted(self, dashboard_id: str, deleted: bool, action: str) -> LookerDashboardSummary:
        path = f"/dashboards/{self._sdk.encode_path_param(dashboard_id)}"
        body = mdls.WriteDashboard(deleted=deleted)
        text = self._call(action, lambda: self._sdk.patch(path=path, structure=str, body=body))
        summary = _summary_from_dict(self._json_object(text, action), action)
        if summary.id != dashboard_id:
            raise ConnectorBadResponse(
                f"Looker: {action} failed: asked for dashboard {dashboard_id}, got {summary.id}", system=SYSTEM
            )
        if summary.deleted is not deleted:
            raise ConnectorBadResponse(
                f"Looker: {action} failed: Looker answered with deleted={summary.deleted}", system=SYSTEM
            )
        return summary

    def dashboard_soft_delete(self, *, dashboard_id: str) -> LookerDashboardSummary:
        """Move a dashboard to Looker's trash (reversible). Looker refuses LookML dashboards (422)."""
        dashboard_id = _require_id(dashboard_id)
        return self._set_deleted(dashboard_id, True, f"soft-deleting dashboard {dashboard_id}")

    def dashboard_undelete(self, *, dashboard_id: str) -> LookerDashboardSummary:
        """Take a dashboard back out of Looker's trash."""
        dashboard_id = _require_id(dashboard_id)
        return self._set_deleted(dashboard_id, False, f"restoring dashboard {dashboard_id} from the trash")

    def dashboard_hard_delete(self, *, dashboard_id: str) -> None:
        """Delete a dashboard permanently (no undo in Looker: keep a backup first).

        A 404 on a retry counts as success: the earlier attempt did the deletion.
        """
        dashboard_id = _require_id(dashboard_id)
        tries = 0

        def delete() -> None:
            nonlocal tries
            tries += 1
            try:
                self._sdk.delete_dashboard(dashboard_id)
            except _HttpFailure as failure:
                if failure.status == 404 and tries > 1:
                    return
                raise

        self._call(f"permanently deleting dashboard {dashboard_id}", delete)

    def dashboard_recreate(self, *, dashboard_json: str, on_created: Callable[[str], None] | None = None) -> str:
        """Re-create a permanently deleted dashboard from a :meth:`dashboard_get_json` backup.

        ``on_created(new_id)`` is called as soon as Looker has created the (still empty) dashboard, so
        the caller can record the id before anything else can fail: a retry then finds that copy
        instead of creating a second one.

        Creates the dashboard (same folder, owner, title, slug when free...), then each filter
        and element, then moves the tiles to their backed-up positions. Returns the new id. If a
        step fails, the partial copy is deleted before the error is raised.
        """
        try:
            backup = json.loads(dashboard_json)
        except ValueError as exc:
            raise ValueError(f"dashboard_json is not valid JSON: {exc}") from exc
        if not isinstance(backup, dict) or not backup.get("title"):
            raise ValueError("dashboard_json is not a dashboard backup (no title)")
        old_id = str(backup.get("id") or "?")
        folder_id = backup.get("folder_id") or (backup.get("folder") or {}).get("id")
        if not folder_id:
            raise ValueError(f"dashboard backup {old_id} has no folder id")
        body = _write_model(mdls.WriteDashboard, {**backup, "folder_id": str(folder_id)}, drop=("folder", "deleted"))
        action = f"re-creating dashboard {old_id}"
        created = self._expect_model(
            self._call(action, lambda: self._sdk.create_dashboard(body), idempotent=False), mdls.Dashboard, action
        )
        new_id = str(created.id)
        if on_created is not None:
            on_created(new_id)
        try:
            self._recreate_contents(backup, old_id=old_id, new_id=new_id)
        except ConnectorError as exc:
            try:
                self.dashboard_hard_delete(dashboard_id=new_id)
                note = f"; the partial copy {new_id} was deleted"
            except ConnectorError as cleanup_exc:
                note = f"; the partial copy {new_id} could not be deleted: {cleanup_exc}"
            raise exc.with_suffix(note) from exc
        return new_id

    def _recreate_contents(self, backup: dict[str, Any], *, old_id: str, new_id: str) -> None:
        for dashboard_filter in backup.get("dashboard_filters") or []:
            name = dashboard_filter.get("name")
            filter_body = _write_model(
                mdls.WriteCreateDashboardFilter, {**dashboard_filter, "dashboard_id": new_id}, drop=("id",)
            )
            action = f"re-creating filter {name!r} of dashboard {old_id} as {new_id}"
            self._call(action, partial(self._sdk.create_dashboard_filter, filter_body), idempotent=False)

        element_ids: dict[str, str] = {}
        for element in backup.get("dashboard_elements") or []:
            spec = dict(element)
            query = spec.get("query")
            if isinstance(query, dict):
                spec["query"] = {k: v for k, v in query.items() if k in _WRITE_QUERY_FIELDS}
                spec.pop("query_id", None)  # a fresh query is created from the definition
            spec["dashboard_id"] = new_id
            element_body = _write_model(
                mdls.WriteDashboardElement, spec, drop=("id", "dashboard_layout_id", "look", "result_maker")
            )
            action = f"re-creating element {element.get('id')} of dashboard {old_id} as {new_id}"
            made = self._expect_model(
                self._call(action, partial(self._sdk.create_dashboard_element, element_body), idempotent=False),
                mdls.DashboardElement,
                action,
            )
            if element.get("id") is not None:
                element_ids[str(element["id"])] = str(made.id)

        self._restore_layout(backup, new_id=new_id, element_ids=element_ids)

    def _restore_layout(self, backup: dict[str, Any], *, new_id: str, element_ids: dict[str, str]) -> None:
        """Move re-created tiles to their backed-up positions (only the ones that differ)."""
        wanted = next((lay for lay in backup.get("dashboard_layouts") or [] if lay.get("active")), None)
        if not wanted or not wanted.get("dashboard_layout_components"):
            return
        action = f"reading the layout of re-created dashboard {new_id}"
        layouts = self._expect_list(self._call(action, lambda: self._sdk.dashboard_dashboard_layouts(new_id)), action)
        active = next((lay for lay in layouts if getattr(lay, "active", False)), None)
        if active is None:
            raise ConnectorBadResponse(f"Looker: {action} failed: no active layout", system=SYSTEM)
        current = {str(c.dashboard_element_id): c for c in active.dashboard_layout_components or []}
        for component in wanted["dashboard_layout_components"]:
            new_element = element_ids.get(str(component.get("dashboard_element_id")))
            target = current.get(new_element or "")
            if target is None:
                continue
            position = {key: component.get(key) for key in ("row", "column", "width", "height")}
            if all(getattr(target, key) == value for key, value in position.items()):
                continue
            body = mdls.WriteDashboardLayoutComponent(**position)
            action = f"placing tile {new_element} of re-created dashboard {new_id}"
            self._call(action, partial(self._sdk.update_dashboard_layout_component, str(target.id), body))


def _require_id(dashboard_id: str) -> str:
    value = str(dashboard_id).strip() if dashboard_id is not None else ""
    if not value:
        raise ValueError("dashboard_id is required")
    return value


# --------------------------------------------------------------------------------------------
# Comparing a restored dashboard with its backup
# --------------------------------------------------------------------------------------------

# Set by Looker, not by the dashboard's author: differ between a backup and any restore.
_VOLATILE_KEYS = frozenset(
    {
        "can",
        "url",
        "edit_uri",
        "created_at",
        "updated_at",
        "deleted_at",
        "deleter_id",
        "view_count",
        "favorite_count",
        "last_viewed_at",
        "last_accessed_at",
        "usage_count",
        "content_metadata_id",
        "content_favorite_id",
        "last_updater_id",
        "last_updater_name",
        "user_name",
        "is_owner_disabled",
        "alert_count",
        "child_count",
        "refresh_interval_to_i",
        "body_text_as_html",
        "note_text_as_html",
        "subtitle_text_as_html",
        "title_text_as_html",
    }
)
_QUERY_VOLATILE_KEYS = frozenset({"id", "slug", "client_id", "share_url", "expanded_share_url"})
_IDENTITY_KEYS = frozenset({"id", "dashboard_id", "dashboard_layout_id", "dashboard_element_id", "query_id"})


def _drop_volatile(value: Any, *, identity: bool) -> Any:
    if isinstance(value, list):
        return [_drop_volatile(v, identity=identity) for v in value]
    if not isinstance(value, dict):
        return value
    result = {}
    for key, item in value.items():
        if item is None or key in _VOLATILE_KEYS or (identity and key in _IDENTITY_KEYS):
            continue
        if key == "query" and isinstance(item, dict):
            item = {k: v for k, v in item.items() if k not in _QUERY_VOLATILE_KEYS}
        result[key] = _drop_volatile(item, identity=identity)
    return result


def dashboard_json_normalized(dashboard_json: str, *, ignore_identity: bool) -> dict[str, Any]:
    """A dashboard's JSON reduced to what its author controls, for comparing a restore with its backup.

    Drops what Looker sets on its own (timestamps, counters, permissions, URLs, trash state) and,
    with ``ignore_identity`` (a re-created dashboard), every id and id reference, plus the slug. Tiles
    then refer to their element by position, so the layout still compares meaningfully.
    """
    data = json.loads(dashboard_json)
    if not isinstance(data, dict):
        raise ValueError("dashboard_json is not a JSON object")
    element_index: dict[str, int] = {}
    for index, element in enumerate(data.get("dashboard_elements") or []):
        if isinstance(element, dict) and element.get("id") is not None:
            element_index[str(element["id"])] = index
    if ignore_identity:
        for layout in data.get("dashboard_layouts") or []:
            components = [c for c in layout.get("dashboard_layout_components") or [] if isinstance(c, dict)]
            for component in components:
                component["element_index"] = element_index.get(str(component.get("dashboard_element_id")))
            layout["dashboard_layout_components"] = sorted(
                components, key=lambda c: (c.get("row") or 0, c.get("column") or 0, c.get("element_index") or 0)
            )
    folder = data.pop("folder", None)  # its id is where the dashboard lives, not the dashboard's identity
    normalized = _drop_volatile(data, identity=ignore_identity)
    normalized.pop("deleted", None)
    if ignore_identity:
        normalized.pop("slug", None)
    if isinstance(folder, dict):
        normalized["folder"] = {k: folder[k] for k in ("id", "name") if folder.get(k) is not None}
    return normalized


# --------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------


def looker_client() -> LookerClient:
    """A :class:`LookerClient` configured from Django settings.

    With ``LOOKER_BASE_URL`` empty (the embedded default), starts, or reuses, the shared local
    emulator process on ``LOOKER_EMULATOR_PORT`` and uses the emulator's credentials.
    """
    from django.conf import settings

    base_url = getattr(settings, "LOOKER_BASE_URL", "") or ""
    client_id = getattr(settings, "LOOKER_CLIENT_ID", "") or ""
    client_secret = getattr(settings, "LOOKER_CLIENT_SECRET", "") or ""
    if not base_url:
        base_url, client_id, client_secret = _embedded_emulator(settings)
    return LookerClient(
        base_url=base_url,
        client_id=client_id,
        client_secret=client_secret,
        timeout=float(getattr(settings, "LOOKER_TIMEOUT", 30.0)),
        verify_ssl=bool(getattr(settings, "LOOKER_VERIFY_SSL", True)),
        max_attempts=int(getattr(settings, "LOOKER_MAX_ATTEMPTS", 5)),
        backoff_base=float(getattr(settings, "LOOKER_BACKOFF_BASE", 0.5)),
        backoff_max=float(getattr(settings, "LOOKER_BACKOFF_MAX", 30.0)),
    )


def _embedded_emulator(settings: Any) -> tuple[str, str, str]:
    from sandbox.looker import EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET
    from sandbox.runner import ensure_running

    base_dir = Path(getattr(settings, "BASE_DIR", Path(__file__).resolve().parent.parent))
    var_dir = Path(getattr(settings, "VAR_DIR", base_dir / "var"))
    port = int(getattr(settings, "LOOKER_EMULATOR_PORT", 9101))
    fixture = getattr(settings, "LOOKER_EMULATOR_FIXTURE", "") or ""
    state = getattr(settings, "LOOKER_EMULATOR_STATE", "") or str(var_dir / "looker_state.json")
    args: list[str] = []
    if fixture and Path(fixture).exists():
        args += ["--fixture", str(fixture)]
    else:
        args += ["--generate", str(int(getattr(settings, "LOOKER_EMULATOR_DASHBOARDS", 300)))]
    args += ["--state", str(state)]
    url = ensure_running(
        "looker", module="sandbox.looker", port=port, args=args, log_path=var_dir / "looker_emulator.log"
    )
    return url, EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET

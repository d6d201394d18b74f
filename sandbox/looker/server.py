"""The Looker API 4.0 emulator: routes, authentication and Looker-style errors.

Paths, parameters and bodies follow what ``looker_sdk`` 26.22 sends (see ``methods40``):
IDs in paths are percent-encoded by the SDK (``thelook%3A%3Asales`` arrives decoded), booleans
arrive as ``true``/``false``, lists as comma-separated text, and the SDK authenticates with
``Authorization: Bearer <token>`` (Looker also accepts ``token <token>``; so do we).
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.common import (
    EmulatorHTTPError,
    EmulatorServer,
    FieldTree,
    json_response,
    parse_fields,
    request_json,
)
from sandbox.looker.fixtures import generate_fixture
from sandbox.looker.store import DOCUMENTATION_URL, LookerStore

EMULATOR_CLIENT_ID = "emulator"
# Well-known credentials of the local emulator only; never valid against a real Looker.
EMULATOR_CLIENT_SECRET = "emulator-secret"  # noqa: S105
API = "/api/4.0"


def _fields(request: Request) -> FieldTree | None:
    try:
        return parse_fields(request.args.get("fields"))
    except ValueError as exc:
        raise EmulatorHTTPError(400, f"Invalid fields parameter: {exc}") from exc


def _int_arg(request: Request, name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise EmulatorHTTPError(400, f"{name} must be an integer") from exc
    if value < 0:
        raise EmulatorHTTPError(400, f"{name} must be >= 0")
    return value


def _bool_arg(request: Request, name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise EmulatorHTTPError(400, f"{name} must be true or false")


def _paging(request: Request) -> tuple[int | None, int]:
    """``limit``/``offset``, falling back to the deprecated ``page``/``per_page``."""
    limit = _int_arg(request, "limit")
    offset = _int_arg(request, "offset") or 0
    if limit is None:
        per_page = _int_arg(request, "per_page")
        if per_page is not None:
            page = _int_arg(request, "page") or 1
            return per_page, max(page - 1, 0) * per_page
    return limit, offset


class LookerEmulator(EmulatorServer):
    """A local Looker API 4.0 serving a :class:`LookerStore`.

    ``token_ttl_s`` is the ``expires_in`` handed out at login; :meth:`revoke_tokens` simulates
    expiry on the server side (the next call gets a 401, the way an expired session does).
    """

    def __init__(
        self,
        store: LookerStore,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        client_id: str = EMULATOR_CLIENT_ID,
        client_secret: str = EMULATOR_CLIENT_SECRET,
        token_ttl_s: int = 3600,
    ) -> None:
        self.store = store
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl_s = token_ttl_s
        self._tokens: dict[str, float] = {}
        self._token_lock = threading.Lock()
        super().__init__(name="looker", url_map=self._build_map(), host=host, port=port, latency_ms=latency_ms)

    @classmethod
    def from_fixture(
        cls,
        *,
        fixture: dict[str, Any] | None = None,
        fixture_path: str | Path | None = None,
        n_dashboards: int = 50,
        seed: int = 7,
        state_path: str | Path | None = None,
        **kwargs: Any,
    ) -> LookerEmulator:
        """Build an emulator from a fixture dict, a fixture file, or a generated fixture."""
        generated = False
        if fixture is None and fixture_path is None and not (state_path is not None and Path(state_path).exists()):
            fixture, generated = generate_fixture(n_dashboards, seed=seed), True
        store = LookerStore.open(
            fixture=fixture, fixture_path=fixture_path, state_path=state_path, fixture_owned=generated
        )
        return cls(store, **kwargs)

    def stop(self) -> None:
        """Stop serving and flush the store's state file."""
        super().stop()
        self.store.close()

    # ---- routing ----------------------------------------------------------------------------

    def _build_map(self) -> Map:
        def rule(path: str, endpoint: Any, *methods: str) -> Rule:
            return Rule(path, endpoint=endpoint, methods=list(methods))

        return Map(
            [
                rule(f"{API}/login", self.login, "POST"),
                rule("/api/logout", self.logout, "DELETE"),
                rule(f"{API}/logout", self.logout, "DELETE"),
                rule(f"{API}/dashboards/search", self.search_dashboards, "GET"),
                rule(f"{API}/dashboards", self.create_dashboard, "POST"),
                rule(f"{API}/dashboards/lookml", self.import_lookml, "POST"),
                rule(f"{API}/dashboards/lookml/search", self.search_lookml_dashboards, "GET"),
                rule(f"{API}/dashboards/lookml/<dashboard_id>", self.dashboard_lookml, "GET"),
                rule(f"{API}/dashboards/<dashboard_id>", self.get_dashboard, "GET"),
                rule(f"{API}/dashboards/<dashboard_id>", self.update_dashboard, "PATCH"),
                rule(f"{API}/dashboards/<dashboard_id>", self.delete_dashboard, "DELETE"),
                rule(
                    f"{API}/dashboards/<dashboard_id>/dashboard_elements",
                    self.dashboard_elements,
                    "GET",
                ),
                rule(
                    f"{API}/dashboards/<dashboard_id>/dashboard_filters",
                    self.dashboard_filters,
                    "GET",
                ),
                rule(
                    f"{API}/dashboards/<dashboard_id>/dashboard_layouts",
                    self.dashboard_layouts,
                    "GET",
                ),
                rule(f"{API}/dashboard_elements", self.create_element, "POST"),
                rule(f"{API}/dashboard_filters", self.create_filter, "POST"),
                rule(
                    f"{API}/dashboard_layout_components/<component_id>",
                    self.update_layout_component,
                    "PATCH",
                ),
                rule(f"{API}/users", self.all_users, "GET"),
                rule(f"{API}/users/<user_id>", self.user, "GET"),
                rule(f"{API}/folders", self.all_folders, "GET"),
                rule(f"{API}/folders/<folder_id>", self.folder, "GET"),
                rule(f"{API}/scheduled_plans", self.all_scheduled_plans, "GET"),
                rule(
                    f"{API}/scheduled_plans/dashboard/<dashboard_id>",
                    self.scheduled_plans_for_dashboard,
                    "GET",
                ),
            ]
        )

    # ---- hooks --------------------------------------------------------------------------------

    def error_body(self, status: int, message: str, request: Request) -> dict[str, Any]:
        """Looker's error shape."""
        return {"message": message, "documentation_url": DOCUMENTATION_URL}

    def before_dispatch(self, request: Request, rule: Rule) -> None:
        """Every route except login needs a live token (``Bearer`` or ``token`` scheme)."""
        if rule.endpoint == self.login:
            return
        if self._token_from(request) is None:
            raise EmulatorHTTPError(401, "Requires authentication.")

    def _token_from(self, request: Request) -> str | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "token") or not token:
            return None
        token = token.strip()
        with self._token_lock:
            expires = self._tokens.get(token)
            if expires is None:
                return None
            if expires < time.monotonic():
                del self._tokens[token]
                return None
        return token

    def revoke_tokens(self) -> None:
        """Invalidate every issued access token (simulates server-side session expiry)."""
        with self._token_lock:
            self._tokens.clear()

    # ---- auth routes --------------------------------------------------------------------------

    def login(self, request: Request) -> Response:
        """``POST /login``: wrong credentials get 404, exactly like Looker."""
        client_id = request.form.get("client_id") or request.args.get("client_id")
        client_secret = request.form.get("client_secret") or request.args.get("client_secret")
        if client_id != self.client_id or client_secret != self.client_secret:
            raise EmulatorHTTPError(404, "Not found")
        token = secrets.token_urlsafe(24)
        with self._token_lock:
            self._tokens[token] = time.monotonic() + self.token_ttl_s
        return json_response({"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl_s})

    def logout(self, request: Request) -> Response:
        """``DELETE /api/logout``: revoke the calling token."""
        token = self._token_from(request)
        if token is not None:
            with self._token_lock:
                self._tokens.pop(token, None)
        return Response(status=204)

    # ---- dashboards -----------------------------------------------------------------------------

    def search_dashboards(self, request: Request) -> Response:
        """``GET /dashboards/search``."""
        limit, offset = _paging(request)
        return json_response(
            self.store.search_dashboards(
                deleted=bool(_bool_arg(request, "deleted")),
                tree=_fields(request),
                limit=limit,
                offset=offset,
                sorts=request.args.get("sorts"),
                id=request.args.get("id"),
                title=request.args.get("title"),
                slug=request.args.get("slug"),
                folder_id=request.args.get("folder_id"),
                user_id=request.args.get("user_id"),
            )
        )

    def search_lookml_dashboards(self, request: Request) -> Response:
        """``GET /dashboards/lookml/search``."""
        limit, offset = _paging(request)
        return json_response(
            self.store.search_lookml_dashboards(
                tree=_fields(request),
                limit=limit,
                offset=offset,
                sorts=request.args.get("sorts"),
                title=request.args.get("title"),
                folder_id=request.args.get("folder_id"),
            )
        )

    def get_dashboard(self, request: Request, dashboard_id: str) -> Response:
        """``GET /dashboards/{id}``."""
        return json_response(self.store.get_dashboard(dashboard_id, _fields(request)))

    def update_dashboard(self, request: Request, dashboard_id: str) -> Response:
        """``PATCH /dashboards/{id}``."""
        return json_response(
            self.store.update_dashboard(dashboard_id, request_json(request), actor_id=self.store.api_user_id)
        )

    def delete_dashboard(self, request: Request, dashboard_id: str) -> Response:
        """``DELETE /dashboards/{id}``."""
        self.store.delete_dashboard(dashboard_id)
        return Response(status=204)

    def create_dashboard(self, request: Request) -> Response:
        """``POST /dashboards``."""
        return json_response(self.store.create_dashboard(request_json(request), actor_id=self.store.api_user_id))

    def dashboard_elements(self, request: Request, dashboard_id: str) -> Response:
        """``GET /dashboards/{id}/dashboard_elements``."""
        return json_response(self.store.dashboard_elements(dashboard_id, _fields(request)))

    def dashboard_filters(self, request: Request, dashboard_id: str) -> Response:
        """``GET /dashboards/{id}/dashboard_filters``."""
        return json_response(self.store.dashboard_filters(dashboard_id, _fields(request)))

    def dashboard_layouts(self, request: Request, dashboard_id: str) -> Response:
        """``GET /dashboards/{id}/dashboard_layouts``."""
        return json_response(self.store.dashboard_layouts(dashboard_id, _fields(request)))

    def create_element(self, request: Request) -> Response:
        """``POST /dashboard_elements``."""
        return json_response(self.store.create_element(request_json(request), _fields(request)))

    def create_filter(self, request: Request) -> Response:
        """``POST /dashboard_filters``."""
        return json_response(self.store.create_filter(request_json(request), _fields(request)))

    def update_layout_component(self, request: Request, component_id: str) -> Response:
        """``PATCH /dashboard_layout_components/{id}``."""
        return json_response(self.store.update_layout_component(component_id, request_json(request), _fields(request)))

    def dashboard_lookml(self, request: Request, dashboard_id: str) -> Response:
        """``GET /dashboards/lookml/{id}``."""
        return json_response(self.store.dashboard_lookml(dashboard_id))

    def import_lookml(self, request: Request) -> Response:
        """``POST /dashboards/lookml``."""
        return json_response(self.store.import_lookml(request_json(request), actor_id=self.store.api_user_id))

    # ---- users, folders, scheduled plans ----------------------------------------------------

    def all_users(self, request: Request) -> Response:
        """``GET /users``."""
        limit, offset = _paging(request)
        return json_response(
            self.store.users(
                tree=_fields(request),
                ids=request.args.get("ids"),
                sorts=request.args.get("sorts"),
                limit=limit,
                offset=offset,
            )
        )

    def user(self, request: Request, user_id: str) -> Response:
        """``GET /users/{id}``."""
        return json_response(self.store.user(user_id, _fields(request)))

    def all_folders(self, request: Request) -> Response:
        """``GET /folders``."""
        return json_response(self.store.folders(_fields(request)))

    def folder(self, request: Request, folder_id: str) -> Response:
        """``GET /folders/{id}``."""
        return json_response(self.store.folder(folder_id, _fields(request)))

    def all_scheduled_plans(self, request: Request) -> Response:
        """``GET /scheduled_plans``."""
        return json_response(
            self.store.scheduled_plans(
                tree=_fields(request),
                user_id=request.args.get("user_id"),
                all_users=bool(_bool_arg(request, "all_users")),
            )
        )

    def scheduled_plans_for_dashboard(self, request: Request, dashboard_id: str) -> Response:
        """``GET /scheduled_plans/dashboard/{id}``."""
        return json_response(
            self.store.scheduled_plans(
                tree=_fields(request),
                user_id=request.args.get("user_id"),
                all_users=bool(_bool_arg(request, "all_users")),
                dashboard_id=dashboard_id,
            )
        )

"""The Looker emulator's in-memory store: content, mutations, API rendering, persistence.

Records are kept in the fixture format (see :mod:`sandbox.looker.fixtures`); the ``render_*``
methods turn them into Looker API 4.0 JSON shapes. Every public method takes the store lock and
returns fresh objects, so callers may keep or mutate what they get.

With a ``state_path``, each mutation schedules a write of the whole state (compact JSON, temp
file + ``os.replace``). Writes are coalesced by a background thread so a burst of mutations
against a large store costs one write, not one per request; :meth:`LookerStore.flush` forces a
write and :meth:`LookerStore.close` flushes before returning.
"""

from __future__ import annotations

import bisect
import copy
import json
import logging
import re
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.common import EmulatorHTTPError, FieldTree, apply_fields
from sandbox.looker.fixtures import (
    API_USER_ID,
    FIXTURE_VERSION,
    iso,
    load_fixture,
    write_text_atomic,
)
from sandbox.looker.lookml import LookmlError, parse_dashboard_lookml, render_dashboard_lookml

logger = logging.getLogger(__name__)

DOCUMENTATION_URL = "https://cloud.google.com/looker/docs/reference/looker-api/latest"
# Note: Looker's real error bodies point at https://cloud.google.com/looker/docs/r/err/...;
# looker_sdk fetches such URLs (without a timeout) to enrich SDKError. We use a URL that does
# not match that pattern so the emulator never makes an SDK call out to the internet.

_DASHBOARD_SCALARS = (
    "id",
    "title",
    "description",
    "slug",
    "folder_id",
    "user_id",
    "hidden",
    "created_at",
    "updated_at",
    "last_viewed_at",
    "last_accessed_at",
    "view_count",
    "favorite_count",
    "deleted",
    "deleted_at",
    "deleter_id",
    "lookml_link_id",
    "query_timezone",
    "refresh_interval",
    "preferred_viewer",
    "load_configuration",
    "show_title",
    "show_filters_bar",
    "crossfilter_enabled",
)
_DASHBOARD_WRITABLE = frozenset(
    {
        "description",
        "hidden",
        "query_timezone",
        "refresh_interval",
        "folder",
        "title",
        "user_id",
        "slug",
        "preferred_viewer",
        "crossfilter_enabled",
        "deleted",
        "load_configuration",
        "lookml_link_id",
        "show_filters_bar",
        "show_title",
        "folder_id",
    }
)
_DASHBOARD_COMPUTED = (
    "folder",
    "dashboard_elements",
    "dashboard_filters",
    "dashboard_layouts",
    "user_name",
    "readonly",
    "model",
    "content_metadata_id",
    "usage_count",
    "is_owner_disabled",
    "url",
    "edit_uri",
    "can",
)
_DASHBOARD_KEYS = _DASHBOARD_SCALARS + _DASHBOARD_COMPUTED
_DASHBOARD_KEY_SET = frozenset(_DASHBOARD_KEYS)
_PLAIN_SCALARS = frozenset(_DASHBOARD_SCALARS) - {"deleted"}
_ELEMENT_TEXT_KEYS = ("title", "title_text", "subtitle_text", "body_text", "note_text")
_QUERY_KEYS = (
    "model",
    "view",
    "fields",
    "pivots",
    "fill_fields",
    "filters",
    "filter_expression",
    "sorts",
    "limit",
    "column_limit",
    "total",
    "row_total",
    "subtotals",
    "vis_config",
    "filter_config",
    "dynamic_fields",
    "query_timezone",
)
_FILTER_KEYS = (
    "name",
    "title",
    "type",
    "default_value",
    "model",
    "explore",
    "dimension",
    "row",
    "listens_to_filters",
    "allow_multiple_values",
    "required",
    "ui_config",
)
_NEW_TILE_WIDTH = 8
_NEW_TILE_HEIGHT = 6
_SLUG_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _now_iso() -> str:
    value = iso(datetime.now(UTC))
    assert value is not None
    return value


def validation_error(field: str, message: str, code: str = "invalid") -> EmulatorHTTPError:
    """Looker's 422 shape: ``{"message": "Validation Failed", "errors": [...]}``."""
    return EmulatorHTTPError(
        422,
        "Validation Failed",
        extra={
            "errors": [
                {
                    "field": field,
                    "code": code,
                    "message": message,
                    "documentation_url": DOCUMENTATION_URL,
                }
            ]
        },
    )


def not_found() -> EmulatorHTTPError:
    """Looker's 404 reply."""
    return EmulatorHTTPError(404, "Not found")


def _numeric_key(value: Any) -> tuple[int, int, str]:
    text = "" if value is None else str(value)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def _like(pattern: str) -> re.Pattern[str]:
    """Looker string search: case-insensitive SQL LIKE (``%`` and ``_`` wildcards)."""
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL)


def _id_set(value: str) -> set[str]:
    return {part.strip() for part in value.split(",") if part.strip()}


def _sort_records(records: list[dict[str, Any]], sorts: str | None) -> list[dict[str, Any]]:
    """Sort API records by a Looker ``sorts`` string like ``"title desc, id"``."""
    specs: list[tuple[str, bool]] = []
    for part in (sorts or "id").split(","):
        words = part.strip().split()
        if not words:
            continue
        descending = len(words) > 1 and words[1].lower() == "desc"
        specs.append((words[0], descending))
    ordered = list(records)
    for field, descending in reversed(specs):
        if field == "id" or field.endswith("_id"):

            def key(record: dict[str, Any], f: str = field) -> Any:
                return (record.get(f) is None, _numeric_key(record.get(f)))
        else:

            def key(record: dict[str, Any], f: str = field) -> Any:
                value = record.get(f)
                if isinstance(value, str):
                    value = value.lower()
                return (value is None, value if value is not None else 0)

        try:
            ordered.sort(key=key, reverse=descending)
        except TypeError as exc:
            raise EmulatorHTTPError(400, f"Cannot sort by {field}") from exc
    return ordered


def _as_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise validation_error(field, "must be an integer")
    try:
        return int(value)
    except ValueError as exc:
        raise validation_error(field, "must be an integer") from exc


class LookerStore:
    """Thread-safe in-memory Looker content with optional persistence to ``state_path``."""

    def __init__(
        self,
        data: dict[str, Any],
        *,
        state_path: str | Path | None = None,
        persist_interval_s: float = 0.05,
        copy_data: bool = True,
    ) -> None:
        """Serve ``data`` (fixture format). ``copy_data=False`` hands the dict over without a copy."""
        self._lock = threading.RLock()
        self._persist_lock = threading.Lock()
        self.state_path = Path(state_path) if state_path is not None else None
        self._persist_interval_s = persist_interval_s
        self._dirty = threading.Event()
        self._closed = threading.Event()
        self._writer: threading.Thread | None = None
        self._unsaved = False
        # A JSON round trip copies a large fixture several times faster than copy.deepcopy.
        self._load(json.loads(json.dumps(data)) if copy_data else data)

    @classmethod
    def open(
        cls,
        *,
        fixture: dict[str, Any] | None = None,
        fixture_path: str | Path | None = None,
        state_path: str | Path | None = None,
        persist_interval_s: float = 0.05,
        fixture_owned: bool = False,
    ) -> LookerStore:
        """Load from ``state_path`` when that file exists, else from the fixture.

        When ``state_path`` is given but missing, the fixture is written there right away (create-only,
        so a second process starting at the same moment cannot overwrite newer state), and a restart
        before any mutation still finds the same content. ``fixture_owned=True`` lets the store keep
        the ``fixture`` dict itself instead of copying it (for a freshly generated one).
        """
        state = Path(state_path) if state_path is not None else None
        if state is not None and state.exists():
            data = load_fixture(state)
            return cls(data, state_path=state, persist_interval_s=persist_interval_s, copy_data=False)
        owned = fixture_owned
        if fixture is None:
            if fixture_path is None:
                raise ValueError("need a fixture, a fixture_path or an existing state_path")
            fixture, owned = load_fixture(fixture_path), True
        store = cls(fixture, state_path=state, persist_interval_s=persist_interval_s, copy_data=not owned)
        if state is not None:
            try:
                store.flush(create_only=True)
            except FileExistsError:  # another process got there first: its state wins
                return cls(
                    load_fixture(state), state_path=state, persist_interval_s=persist_interval_s, copy_data=False
                )
        return store

    # ---- loading and persistence ------------------------------------------------------------

    def _load(self, data: dict[str, Any]) -> None:
        if data.get("version", FIXTURE_VERSION) != FIXTURE_VERSION:
            raise ValueError(f"unsupported fixture version {data.get('version')!r}")
        self.api_user_id: str = str(data.get("api_user_id") or API_USER_ID)
        self._generated = data.get("generated") or {}
        self._users = {str(u["id"]): u for u in data.get("users", [])}
        self._folders = {str(f["id"]): f for f in data.get("folders", [])}
        # Folders never change through the API here: count children once, not on every dashboard rendered.
        self._folder_children: dict[str, int] = {}
        for folder in self._folders.values():
            if folder.get("parent_id") is not None:
                parent = str(folder["parent_id"])
                self._folder_children[parent] = self._folder_children.get(parent, 0) + 1
        self._dashboards = {str(d["id"]): d for d in data.get("dashboards", [])}
        self._plans = {str(p["id"]): p for p in data.get("scheduled_plans", [])}
        # The dashboard search's index: user-defined dashboards in id order, one list for the trash and one for
        # the rest, kept up to date by every mutation. Paging the usual ``sorts=id`` search then costs the page,
        # not a filter and a sort of every record (which made a full scan quadratic).
        self._search_index: dict[bool, list[tuple[tuple[int, int, str], str]]] = {False: [], True: []}
        for dashboard in self._dashboards.values():
            if "::" not in dashboard["id"]:
                self._search_index[bool(dashboard.get("deleted"))].append(
                    (_numeric_key(dashboard["id"]), dashboard["id"])
                )
        for entries in self._search_index.values():
            entries.sort()
        self._component_index: dict[str, str] = {}
        self._queries: dict[str, dict[str, Any]] = {}
        max_ids: dict[str, int] = {}

        def seen(kind: str, value: Any) -> None:
            text = str(value) if value is not None else ""
            if text.isdigit():
                max_ids[kind] = max(max_ids.get(kind, 0), int(text))

        for dashboard in self._dashboards.values():
            seen("dashboard", dashboard["id"])
            for element in dashboard.get("dashboard_elements") or []:
                seen("element", element["id"])
                query = element.get("query")
                if query:
                    seen("query", query.get("id"))
                    self._queries[str(query["id"])] = query
            for dashboard_filter in dashboard.get("dashboard_filters") or []:
                seen("filter", dashboard_filter["id"])
            for layout in dashboard.get("dashboard_layouts") or []:
                seen("layout", layout["id"])
                for component in layout.get("components") or []:
                    seen("layout_component", component["id"])
                    self._component_index[str(component["id"])] = str(dashboard["id"])
        for plan in self._plans.values():
            seen("scheduled_plan", plan["id"])
        stored_next = data.get("next_ids") or {}
        kinds = (
            set(max_ids)
            | set(stored_next)
            | {
                "dashboard",
                "element",
                "filter",
                "query",
                "layout",
                "layout_component",
                "scheduled_plan",
            }
        )
        # Ids are never reused, even for hard-deleted objects: keep the persisted high-water mark.
        self._next_ids = {kind: max(int(stored_next.get(kind, 1)), max_ids.get(kind, 0) + 1) for kind in kinds}

    def _new_id(self, kind: str) -> str:
        value = self._next_ids.get(kind, 1)
        self._next_ids[kind] = value + 1
        return str(value)

    def _index_add(self, dashboard: dict[str, Any]) -> None:
        if "::" not in dashboard["id"]:
            bisect.insort(
                self._search_index[bool(dashboard.get("deleted"))], (_numeric_key(dashboard["id"]), dashboard["id"])
            )

    def _index_remove(self, dashboard_id: str, *, deleted: bool) -> None:
        entries = self._search_index[deleted]
        entry = (_numeric_key(dashboard_id), dashboard_id)
        at = bisect.bisect_left(entries, entry)
        if at < len(entries) and entries[at] == entry:
            del entries[at]

    def _snapshot_unlocked(self) -> dict[str, Any]:
        return {
            "version": FIXTURE_VERSION,
            "generated": self._generated,
            "api_user_id": self.api_user_id,
            "next_ids": dict(self._next_ids),
            "users": list(self._users.values()),
            "folders": list(self._folders.values()),
            "dashboards": list(self._dashboards.values()),
            "scheduled_plans": list(self._plans.values()),
        }

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the whole state in fixture format."""
        with self._lock:
            return copy.deepcopy(self._snapshot_unlocked())

    def flush(self, *, create_only: bool = False) -> None:
        """Write the state to ``state_path`` now (no-op without one)."""
        if self.state_path is None:
            return
        with self._persist_lock:
            self._dirty.clear()
            with self._lock:
                # Serialize under the store lock: the JSON text is the consistent snapshot.
                payload = json.dumps(self._snapshot_unlocked(), separators=(",", ":"))
                self._unsaved = False
            write_text_atomic(self.state_path, payload, overwrite=not create_only)

    def close(self) -> None:
        """Stop the background writer and write pending changes (only if there are any).

        A store that never changed leaves the file alone, so a process that loaded the state and
        then failed to start cannot overwrite what the running emulator saved since.
        """
        self._closed.set()
        self._dirty.set()
        if self._writer is not None:
            self._writer.join(timeout=10)
            self._writer = None
        if self.state_path is not None and self._unsaved:
            self.flush()

    def _mutated(self) -> None:
        if self.state_path is None:
            return
        with self._lock:
            self._unsaved = True
        if self._persist_interval_s <= 0 or self._closed.is_set():
            self.flush()
            return
        self._dirty.set()
        if self._writer is None:
            self._writer = threading.Thread(target=self._writer_loop, name="looker-state-writer", daemon=True)
            self._writer.start()

    def _writer_loop(self) -> None:
        while not self._closed.is_set():
            self._dirty.wait()
            if self._closed.is_set():
                return
            self._closed.wait(self._persist_interval_s)  # coalesce a burst of mutations
            try:
                self.flush()
            except OSError:
                logger.exception("Looker emulator: writing state to %s failed", self.state_path)

    # ---- rendering ----------------------------------------------------------------------------

    def _render_folder(self, folder_id: str | None) -> dict[str, Any] | None:
        folder = self._folders.get(str(folder_id)) if folder_id is not None else None
        if folder is None:
            return None
        child_count = self._folder_children.get(str(folder["id"]), 0)
        return {
            "id": folder["id"],
            "name": folder["name"],
            "parent_id": folder.get("parent_id"),
            "content_metadata_id": folder["id"],
            "created_at": folder.get("created_at"),
            "creator_id": folder.get("creator_id"),
            "child_count": child_count,
            "external_id": None,
            "is_embed": False,
            "is_embed_shared_root": False,
            "is_embed_users_root": False,
            "is_personal": bool(folder.get("is_personal")),
            "is_personal_descendant": False,
            "is_shared_root": bool(folder.get("is_shared_root")),
            "is_users_root": bool(folder.get("is_users_root")),
            "can": {"index": True, "show": True, "create": True, "update": True},
        }

    @staticmethod
    def _render_query(query: dict[str, Any] | None) -> dict[str, Any] | None:
        if query is None:
            return None
        rendered = {key: copy.deepcopy(query.get(key)) for key in _QUERY_KEYS}
        rendered["id"] = query["id"]
        rendered["slug"] = f"q{query['id']}"
        rendered["client_id"] = f"c{query['id']}"
        rendered["share_url"] = f"/x/q{query['id']}"
        rendered["url"] = f"/explore/{query['model']}/{query['view']}?qid=q{query['id']}"
        rendered["can"] = {"run": True, "see_results": True, "explore": True}
        return rendered

    def _render_element(self, element: dict[str, Any]) -> dict[str, Any]:
        rendered = {
            "id": element["id"],
            "dashboard_id": element["dashboard_id"],
            "type": element.get("type") or "vis",
            "title": element.get("title"),
            "title_text": element.get("title_text"),
            "subtitle_text": element.get("subtitle_text"),
            "body_text": element.get("body_text"),
            "note_text": element.get("note_text"),
            "note_display": element.get("note_display"),
            "note_state": element.get("note_state"),
            "title_hidden": bool(element.get("title_hidden")),
            "query_id": element.get("query_id"),
            "query": self._render_query(element.get("query")),
            "look_id": element.get("look_id"),
            "look": None,
            "merge_result_id": element.get("merge_result_id"),
            "result_maker_id": None,
            "result_maker": None,
            "refresh_interval": element.get("refresh_interval"),
            "rich_content_json": element.get("rich_content_json"),
            "lookml_link_id": None,
            "alert_count": 0,
            "can": {"show": True, "update": True, "destroy": True},
        }
        for key in ("body_text", "note_text", "subtitle_text", "title_text"):
            value = rendered[key]
            rendered[f"{key}_as_html"] = f"<p>{value}</p>" if value else None
        return rendered

    @staticmethod
    def _render_filter(dashboard_filter: dict[str, Any]) -> dict[str, Any]:
        rendered = {key: copy.deepcopy(dashboard_filter.get(key)) for key in _FILTER_KEYS}
        rendered["id"] = dashboard_filter["id"]
        rendered["dashboard_id"] = dashboard_filter["dashboard_id"]
        rendered["can"] = {"show": True, "update": True, "destroy": True}
        return rendered

    def _render_component(
        self, component: dict[str, Any], layout_id: str, elements: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        element = elements.get(str(component["dashboard_element_id"])) or {}
        query = element.get("query") or {}
        return {
            "id": component["id"],
            "dashboard_layout_id": layout_id,
            "dashboard_element_id": component["dashboard_element_id"],
            "row": component["row"],
            "column": component["column"],
            "width": component["width"],
            "height": component["height"],
            "deleted": False,
            "element_title": element.get("title") or element.get("title_text"),
            "element_title_hidden": bool(element.get("title_hidden")),
            "vis_type": (query.get("vis_config") or {}).get("type") if element.get("type") != "text" else "text",
            "can": {"show": True, "update": True},
        }

    def _render_layouts(self, dashboard: dict[str, Any]) -> list[dict[str, Any]]:
        elements = {str(e["id"]): e for e in dashboard.get("dashboard_elements") or []}
        layouts = []
        for layout in dashboard.get("dashboard_layouts") or []:
            layouts.append(
                {
                    "id": layout["id"],
                    "dashboard_id": dashboard["id"],
                    "type": layout.get("type", "newspaper"),
                    "active": bool(layout.get("active")),
                    "column_width": layout.get("column_width"),
                    "width": layout.get("width"),
                    "deleted": False,
                    "dashboard_title": dashboard.get("title"),
                    "dashboard_layout_components": [
                        self._render_component(c, layout["id"], elements) for c in layout.get("components") or []
                    ],
                    "can": {"show": True, "update": True},
                }
            )
        return layouts

    def _render_dashboard(self, dashboard: dict[str, Any], tree: FieldTree | None) -> dict[str, Any]:
        """The API shape of a dashboard; with ``tree`` only the fields asked for are built (a search page asks
        for a dozen of the ~40, so building the rest, elements included, would be most of its cost)."""
        rendered: dict[str, Any] = {}
        for key in _DASHBOARD_KEYS if tree is None else tree:
            if key in _PLAIN_SCALARS:
                value = dashboard.get(key)  # str, int, bool or None: nothing to copy
            elif key in _DASHBOARD_KEY_SET:
                value = self._dashboard_field(dashboard, key)
            else:
                continue
            sub = tree.get(key) if tree is not None else None
            rendered[key] = value if sub is None else apply_fields(value, sub)
        return rendered

    def _dashboard_field(self, dashboard: dict[str, Any], key: str) -> Any:
        """One computed field of :meth:`_render_dashboard`."""
        is_lookml = "::" in str(dashboard["id"])
        if key == "deleted":
            return bool(dashboard.get("deleted"))
        if key == "folder":
            return self._render_folder(dashboard.get("folder_id"))
        if key == "dashboard_elements":
            return [self._render_element(e) for e in dashboard.get("dashboard_elements") or []]
        if key == "dashboard_filters":
            return [self._render_filter(f) for f in dashboard.get("dashboard_filters") or []]
        if key == "dashboard_layouts":
            return self._render_layouts(dashboard)
        if key in ("user_name", "is_owner_disabled"):
            owner = self._users.get(str(dashboard.get("user_id")))
            if key == "user_name":
                return owner.get("display_name") if owner else None
            return bool(owner.get("is_disabled")) if owner else False
        if key == "readonly":
            return is_lookml
        if key == "model":
            return {"id": dashboard["id"].split("::", 1)[0], "label": None} if is_lookml else None
        if key == "content_metadata_id":
            return dashboard["id"] if not is_lookml else None
        if key == "usage_count":
            return dashboard.get("view_count")
        if key == "url":
            return f"/dashboards/{dashboard['id']}"
        if key == "edit_uri":
            return None
        if key == "can":
            return {
                "index": True,
                "show": True,
                "create": not is_lookml,
                "update": not is_lookml,
                "destroy": not is_lookml,
                "recover": not is_lookml,
            }
        return copy.deepcopy(dashboard.get(key))

    # ---- lookup helpers ----------------------------------------------------------------------

    def _dashboard_or_404(self, dashboard_id: str) -> dict[str, Any]:
        dashboard = self._dashboards.get(str(dashboard_id))
        if dashboard is None:
            raise not_found()
        return dashboard

    @staticmethod
    def _refuse_lookml(dashboard_id: str, what: str) -> None:
        if "::" in dashboard_id:
            raise EmulatorHTTPError(
                422,
                f"LookML dashboards {what}",
                extra=validation_error("id", f"LookML dashboards {what}").extra,
            )

    def _new_slug(self, wanted: Any = None) -> str:
        taken = {d.get("slug") for d in self._dashboards.values()}
        if isinstance(wanted, str) and wanted and wanted not in taken:
            return wanted
        while True:
            slug = "".join(secrets.choice(_SLUG_ALPHABET) for _ in range(22))
            if slug not in taken:
                return slug

    # ---- dashboards: reads ----------------------------------------------------------------------

    def dashboard(self, dashboard_id: str) -> dict[str, Any]:
        """The full API rendering of a dashboard (soft-deleted too); KeyError when absent."""
        with self._lock:
            dashboard = self._dashboards.get(str(dashboard_id))
            if dashboard is None:
                raise KeyError(dashboard_id)
            return self._render_dashboard(dashboard, None)

    def dashboard_ids(self, *, deleted: bool | None = None, lookml: bool | None = None) -> list[str]:
        """Ids in numeric order, optionally only (non-)deleted or (non-)LookML ones."""
        with self._lock:
            ids = [
                d["id"]
                for d in self._dashboards.values()
                if (deleted is None or bool(d.get("deleted")) == deleted)
                and (lookml is None or ("::" in d["id"]) == lookml)
            ]
        return sorted(ids, key=_numeric_key)

    def get_dashboard(self, dashboard_id: str, tree: FieldTree | None) -> dict[str, Any]:
        """``GET /dashboards/{id}``."""
        with self._lock:
            return self._render_dashboard(self._dashboard_or_404(dashboard_id), tree)

    def search_dashboards(
        self,
        *,
        deleted: bool,
        tree: FieldTree | None,
        limit: int | None = None,
        offset: int = 0,
        sorts: str | None = None,
        id: str | None = None,
        title: str | None = None,
        slug: str | None = None,
        folder_id: str | None = None,
        user_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """``GET /dashboards/search``: user-defined dashboards only, like Looker."""
        ids = _id_set(id) if id else None
        folder_ids = _id_set(folder_id) if folder_id else None
        user_ids = _id_set(user_id) if user_id else None
        title_re = _like(title) if title else None
        slug_re = _like(slug) if slug else None
        end = None if limit is None else offset + limit
        unfiltered = ids is None and folder_ids is None and user_ids is None and title_re is None and slug_re is None
        if unfiltered and " ".join((sorts or "id").lower().split()) in ("id", "id asc"):
            # The usual paging (every dashboard, in id order): straight from the index, at the cost of the page.
            with self._lock:
                page = [self._dashboards[i] for _, i in self._search_index[bool(deleted)][offset:end]]
                return [self._render_dashboard(d, tree) for d in page]
        with self._lock:
            matches = [
                d
                for d in self._dashboards.values()
                if "::" not in d["id"]
                and bool(d.get("deleted")) == deleted
                and (ids is None or d["id"] in ids)
                and (folder_ids is None or str(d.get("folder_id")) in folder_ids)
                and (user_ids is None or str(d.get("user_id")) in user_ids)
                and (title_re is None or title_re.match(d.get("title") or ""))
                and (slug_re is None or slug_re.match(d.get("slug") or ""))
            ]
            ordered = _sort_records(matches, sorts)
            return [self._render_dashboard(d, tree) for d in ordered[offset:end]]

    def search_lookml_dashboards(
        self,
        *,
        tree: FieldTree | None,
        limit: int | None = None,
        offset: int = 0,
        sorts: str | None = None,
        title: str | None = None,
        folder_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """``GET /dashboards/lookml/search``: LookML dashboards only.

        As in Looker, ``title`` matches the LookML dashboard name (the part after ``::``).
        """
        folder_ids = _id_set(folder_id) if folder_id else None
        title_re = _like(title) if title else None
        with self._lock:
            matches = [
                d
                for d in self._dashboards.values()
                if "::" in d["id"]
                and (folder_ids is None or str(d.get("folder_id")) in folder_ids)
                and (title_re is None or title_re.match(d["id"].split("::", 1)[1]))
            ]
            ordered = _sort_records(matches, sorts)
            end = None if limit is None else offset + limit
            return [self._render_dashboard(d, tree) for d in ordered[offset:end]]

    def dashboard_elements(self, dashboard_id: str, tree: FieldTree | None) -> list[dict[str, Any]]:
        """``GET /dashboards/{id}/dashboard_elements``."""
        with self._lock:
            dashboard = self._dashboard_or_404(dashboard_id)
            rendered = [self._render_element(e) for e in dashboard.get("dashboard_elements") or []]
        return apply_fields(rendered, tree)

    def dashboard_filters(self, dashboard_id: str, tree: FieldTree | None) -> list[dict[str, Any]]:
        """``GET /dashboards/{id}/dashboard_filters``."""
        with self._lock:
            dashboard = self._dashboard_or_404(dashboard_id)
            rendered = [self._render_filter(f) for f in dashboard.get("dashboard_filters") or []]
        return apply_fields(rendered, tree)

    def dashboard_layouts(self, dashboard_id: str, tree: FieldTree | None) -> list[dict[str, Any]]:
        """``GET /dashboards/{id}/dashboard_layouts``."""
        with self._lock:
            rendered = self._render_layouts(self._dashboard_or_404(dashboard_id))
        return apply_fields(rendered, tree)

    def dashboard_lookml(self, dashboard_id: str) -> dict[str, Any]:
        """``GET /dashboards/lookml/{id}``: refused (422) for LookML dashboards."""
        with self._lock:
            dashboard = self._dashboard_or_404(dashboard_id)
            if "::" in dashboard_id:
                raise EmulatorHTTPError(422, "Dashboard LookML is only available for user-defined dashboards")
            return {
                "dashboard_id": dashboard["id"],
                "folder_id": dashboard.get("folder_id"),
                "lookml": render_dashboard_lookml(dashboard),
            }

    # ---- dashboards: writes ------------------------------------------------------------------

    def update_dashboard(self, dashboard_id: str, body: Any, *, actor_id: str) -> dict[str, Any]:
        """``PATCH /dashboards/{id}``: partial update; ``deleted`` soft-deletes / restores."""
        if not isinstance(body, dict):
            raise EmulatorHTTPError(400, "Request body must be a JSON object")
        with self._lock:
            dashboard = self._dashboard_or_404(dashboard_id)
            if "::" in dashboard_id:
                if body.get("deleted") is True:
                    self._refuse_lookml(dashboard_id, "cannot be soft-deleted")
                self._refuse_lookml(dashboard_id, "cannot be modified through the API")
            changes = {k: v for k, v in body.items() if k in _DASHBOARD_WRITABLE}
            if "folder" in changes:
                folder = changes.pop("folder")
                if isinstance(folder, dict) and folder.get("id") and "folder_id" not in changes:
                    changes["folder_id"] = folder["id"]
            self._validate_dashboard_changes(changes, dashboard_id=dashboard_id)
            now = _now_iso()
            content_changed = False
            for key, value in changes.items():
                if key == "deleted":
                    if value and not dashboard.get("deleted"):
                        self._index_remove(dashboard["id"], deleted=False)
                        dashboard["deleted"] = True
                        dashboard["deleted_at"] = now
                        dashboard["deleter_id"] = actor_id
                        self._index_add(dashboard)
                    elif not value and dashboard.get("deleted"):
                        self._index_remove(dashboard["id"], deleted=True)
                        dashboard["deleted"] = False
                        dashboard["deleted_at"] = None
                        dashboard["deleter_id"] = None
                        self._index_add(dashboard)
                    continue
                if key == "folder_id":
                    value = str(value)
                if dashboard.get(key) != value:
                    dashboard[key] = value
                    content_changed = True
            if content_changed:
                dashboard["updated_at"] = now
            rendered = self._render_dashboard(dashboard, None)
        self._mutated()
        return rendered

    def _validate_dashboard_changes(self, changes: dict[str, Any], *, dashboard_id: str | None) -> None:
        if "deleted" in changes and not isinstance(changes["deleted"], bool):
            raise validation_error("deleted", "must be true or false")
        if "title" in changes and (not isinstance(changes["title"], str) or not changes["title"].strip()):
            raise validation_error("title", "can't be blank", "missing_field")
        if "folder_id" in changes and str(changes["folder_id"]) not in self._folders:
            raise validation_error("folder_id", "Folder not found", "not_found")
        if "slug" in changes and changes["slug"] is not None:
            clash = [
                d["id"]
                for d in self._dashboards.values()
                if d.get("slug") == changes["slug"] and d["id"] != dashboard_id
            ]
            if clash:
                raise validation_error("slug", "has already been taken", "already_exists")
        for flag in ("hidden", "show_title", "show_filters_bar", "crossfilter_enabled"):
            if flag in changes and not isinstance(changes[flag], bool):
                raise validation_error(flag, "must be true or false")

    def record_activity(
        self, dashboard_id: str, *, viewed_at: datetime | None = None, favorite_count: int | None = None
    ) -> None:
        """What users do in Looker's UI and the API cannot write: view a dashboard, favourite it."""
        with self._lock:
            dashboard = self._dashboard_or_404(dashboard_id)
            if viewed_at is not None:
                stamp = (
                    viewed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{viewed_at.microsecond // 1000:03d}Z"
                )
                dashboard["last_viewed_at"] = dashboard["last_accessed_at"] = stamp
                dashboard["view_count"] = int(dashboard.get("view_count") or 0) + 1
            if favorite_count is not None:
                dashboard["favorite_count"] = favorite_count
        self._mutated()

    def delete_dashboard(self, dashboard_id: str) -> None:
        """``DELETE /dashboards/{id}``: permanent; also drops its scheduled plans."""
        with self._lock:
            dashboard = self._dashboard_or_404(dashboard_id)
            self._refuse_lookml(dashboard_id, "cannot be deleted through the API")
            del self._dashboards[dashboard["id"]]
            self._index_remove(dashboard["id"], deleted=bool(dashboard.get("deleted")))
            for element in dashboard.get("dashboard_elements") or []:
                if element.get("query"):
                    self._queries.pop(str(element["query"]["id"]), None)
            for layout in dashboard.get("dashboard_layouts") or []:
                for component in layout.get("components") or []:
                    self._component_index.pop(str(component["id"]), None)
            for plan_id in [p["id"] for p in self._plans.values() if p.get("dashboard_id") == dashboard["id"]]:
                del self._plans[plan_id]
        self._mutated()

    def create_dashboard(self, body: Any, *, actor_id: str) -> dict[str, Any]:
        """``POST /dashboards``: needs ``title`` and a folder (``folder_id`` or ``folder.id``)."""
        if not isinstance(body, dict):
            raise EmulatorHTTPError(400, "Request body must be a JSON object")
        with self._lock:
            changes = {k: v for k, v in body.items() if k in _DASHBOARD_WRITABLE}
            folder = changes.pop("folder", None)
            if "folder_id" not in changes and isinstance(folder, dict) and folder.get("id"):
                changes["folder_id"] = folder["id"]
            if "title" not in changes:
                raise validation_error("title", "This field is required.", "missing_field")
            if changes.get("folder_id") is None:
                raise validation_error("folder_id", "This field is required.", "missing_field")
            wanted_slug = changes.pop("slug", None)
            self._validate_dashboard_changes(changes, dashboard_id=None)
            dashboard_id = self._new_id("dashboard")
            dashboard = self._new_dashboard_record(
                dashboard_id, changes, actor_id=actor_id, slug=self._new_slug(wanted_slug)
            )
            if changes.get("deleted"):
                dashboard["deleted_at"] = dashboard["created_at"]
                dashboard["deleter_id"] = actor_id
            self._dashboards[dashboard_id] = dashboard
            self._index_add(dashboard)
            rendered = self._render_dashboard(dashboard, None)
        self._mutated()
        return rendered

    def _new_dashboard_record(
        self, dashboard_id: str, changes: dict[str, Any], *, actor_id: str, slug: str
    ) -> dict[str, Any]:
        now = _now_iso()
        return {
            "id": dashboard_id,
            "title": changes.get("title"),
            "description": changes.get("description"),
            "slug": slug,
            "folder_id": str(changes["folder_id"]),
            "user_id": str(changes["user_id"]) if changes.get("user_id") is not None else actor_id,
            "hidden": bool(changes.get("hidden", False)),
            "created_at": now,
            "updated_at": now,
            "last_viewed_at": None,
            "last_accessed_at": None,
            "view_count": 0,
            "favorite_count": 0,
            "deleted": bool(changes.get("deleted", False)),
            "deleted_at": None,
            "deleter_id": None,
            "lookml_link_id": changes.get("lookml_link_id"),
            "query_timezone": changes.get("query_timezone"),
            "refresh_interval": changes.get("refresh_interval"),
            "preferred_viewer": changes.get("preferred_viewer") or "dashboards-next",
            "load_configuration": changes.get("load_configuration") or "wait",
            "show_title": changes.get("show_title", True),
            "show_filters_bar": changes.get("show_filters_bar", True),
            "crossfilter_enabled": bool(changes.get("crossfilter_enabled", False)),
            "dashboard_elements": [],
            "dashboard_filters": [],
            "dashboard_layouts": [
                {
                    "id": self._new_id("layout"),
                    "type": "newspaper",
                    "active": True,
                    "column_width": None,
                    "width": None,
                    "components": [],
                }
            ],
        }

    def _add_element(
        self, dashboard: dict[str, Any], spec: dict[str, Any], position: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """Append an element (and its layout component) to a dashboard record."""
        element_id = self._new_id("element")
        query: dict[str, Any] | None = None
        if spec.get("query") is not None:
            source = spec["query"]
            if not isinstance(source, dict) or not source.get("model") or not source.get("view"):
                raise validation_error("query", "model and view are required", "missing_field")
            query = {key: copy.deepcopy(source.get(key)) for key in _QUERY_KEYS}
            query["id"] = self._new_id("query")
        elif spec.get("query_id") is not None:
            existing = self._queries.get(str(spec["query_id"]))
            if existing is None:
                raise validation_error("query_id", "Query not found", "not_found")
            query = copy.deepcopy(existing)
        element_type = spec.get("type") or ("vis" if query else "text")
        element = {
            "id": element_id,
            "dashboard_id": dashboard["id"],
            "type": element_type,
            "title": spec.get("title"),
            "title_text": spec.get("title_text"),
            "subtitle_text": spec.get("subtitle_text"),
            "body_text": spec.get("body_text"),
            "note_text": spec.get("note_text"),
            "note_display": spec.get("note_display"),
            "note_state": spec.get("note_state"),
            "title_hidden": bool(spec.get("title_hidden", False)),
            "query_id": query["id"] if query else None,
            "query": query,
            "look_id": spec.get("look_id"),
            "merge_result_id": spec.get("merge_result_id"),
            "refresh_interval": spec.get("refresh_interval"),
            "rich_content_json": spec.get("rich_content_json"),
        }
        dashboard.setdefault("dashboard_elements", []).append(element)
        if query:
            self._queries[query["id"]] = query
        layouts = dashboard.setdefault("dashboard_layouts", [])
        active = next((layout for layout in layouts if layout.get("active")), None)
        if active is None:
            active = {
                "id": self._new_id("layout"),
                "type": "newspaper",
                "active": True,
                "column_width": None,
                "width": None,
                "components": [],
            }
            layouts.append(active)
        components = active.setdefault("components", [])
        if position is None:
            # Like Looker: a new tile goes below everything else, at the left edge.
            bottom = max((c["row"] + c["height"] for c in components), default=0)
            position = {"row": bottom, "column": 0, "width": _NEW_TILE_WIDTH, "height": _NEW_TILE_HEIGHT}
        component_id = self._new_id("layout_component")
        components.append({"id": component_id, "dashboard_element_id": element_id, **position})
        self._component_index[component_id] = dashboard["id"]
        return element

    def create_element(self, body: Any, tree: FieldTree | None) -> dict[str, Any]:
        """``POST /dashboard_elements``."""
        if not isinstance(body, dict):
            raise EmulatorHTTPError(400, "Request body must be a JSON object")
        if not body.get("dashboard_id"):
            raise validation_error("dashboard_id", "This field is required.", "missing_field")
        with self._lock:
            dashboard_id = str(body["dashboard_id"])
            dashboard = self._dashboards.get(dashboard_id)
            if dashboard is None:
                raise validation_error("dashboard_id", "Dashboard not found", "not_found")
            self._refuse_lookml(dashboard_id, "cannot be modified through the API")
            element = self._add_element(dashboard, body)
            dashboard["updated_at"] = _now_iso()
            rendered = self._render_element(element)
        self._mutated()
        return apply_fields(rendered, tree)

    def create_filter(self, body: Any, tree: FieldTree | None) -> dict[str, Any]:
        """``POST /dashboard_filters``: needs dashboard_id, name, title and type."""
        if not isinstance(body, dict):
            raise EmulatorHTTPError(400, "Request body must be a JSON object")
        for field in ("dashboard_id", "name", "title", "type"):
            if not body.get(field):
                raise validation_error(field, "This field is required.", "missing_field")
        with self._lock:
            dashboard_id = str(body["dashboard_id"])
            dashboard = self._dashboards.get(dashboard_id)
            if dashboard is None:
                raise validation_error("dashboard_id", "Dashboard not found", "not_found")
            self._refuse_lookml(dashboard_id, "cannot be modified through the API")
            filters = dashboard.setdefault("dashboard_filters", [])
            if any(f.get("name") == body["name"] for f in filters):
                raise validation_error("name", "has already been taken", "already_exists")
            dashboard_filter = self._filter_record(dashboard_id, body, default_row=len(filters))
            filters.append(dashboard_filter)
            dashboard["updated_at"] = _now_iso()
            rendered = self._render_filter(dashboard_filter)
        self._mutated()
        return apply_fields(rendered, tree)

    def _filter_record(self, dashboard_id: str, spec: dict[str, Any], *, default_row: int) -> dict[str, Any]:
        record = {key: copy.deepcopy(spec.get(key)) for key in _FILTER_KEYS}
        record["id"] = self._new_id("filter")
        record["dashboard_id"] = dashboard_id
        if record["row"] is None:
            record["row"] = default_row
        if record["listens_to_filters"] is None:
            record["listens_to_filters"] = []
        record["allow_multiple_values"] = bool(record["allow_multiple_values"])
        record["required"] = bool(record["required"])
        return record

    def update_layout_component(self, component_id: str, body: Any, tree: FieldTree | None) -> dict[str, Any]:
        """``PATCH /dashboard_layout_components/{id}``: move or resize a tile."""
        if not isinstance(body, dict):
            raise EmulatorHTTPError(400, "Request body must be a JSON object")
        with self._lock:
            dashboard_id = self._component_index.get(str(component_id))
            if dashboard_id is None:
                raise not_found()
            dashboard = self._dashboards[dashboard_id]
            self._refuse_lookml(dashboard_id, "cannot be modified through the API")
            found = next(
                (
                    (layout, component)
                    for layout in dashboard.get("dashboard_layouts") or []
                    for component in layout.get("components") or []
                    if component["id"] == str(component_id)
                ),
                None,
            )
            if found is None:  # the index and the records disagree: treat as gone
                raise not_found()
            layout, component = found
            updates: dict[str, int] = {}
            for key in ("row", "column", "width", "height"):
                if body.get(key) is not None:
                    value = _as_int(body[key], key)
                    if value < 0 or (key in ("width", "height") and value == 0):
                        raise validation_error(key, "out of range")
                    updates[key] = value
            component.update(updates)
            elements = {str(e["id"]): e for e in dashboard.get("dashboard_elements") or []}
            rendered = self._render_component(component, layout["id"], elements)
            dashboard["updated_at"] = _now_iso()
        self._mutated()
        return apply_fields(rendered, tree)

    def import_lookml(self, body: Any, *, actor_id: str) -> dict[str, Any]:
        """``POST /dashboards/lookml``: create (or overwrite, by preferred_slug) from LookML."""
        if not isinstance(body, dict) or not isinstance(body.get("lookml"), str):
            raise validation_error("lookml", "This field is required.", "missing_field")
        try:
            spec = parse_dashboard_lookml(body["lookml"])
        except LookmlError as exc:
            raise validation_error("lookml", f"Invalid LookML: {exc}") from exc
        with self._lock:
            folder_id = str(body.get("folder_id") or "")
            if folder_id and folder_id not in self._folders:
                raise validation_error("folder_id", "Folder not found", "not_found")
            slug = spec.get("preferred_slug")
            existing = next(
                (d for d in self._dashboards.values() if slug and d.get("slug") == slug and "::" not in d["id"]),
                None,
            )
            title = spec.get("title") or str(spec.get("dashboard"))
            attributes = {
                "title": str(title),
                "description": spec.get("description") or "",
                "preferred_viewer": spec.get("preferred_viewer") or "dashboards-next",
                "crossfilter_enabled": bool(spec.get("crossfilter_enabled", False)),
            }
            if existing is not None:
                # Overwrite in place: same id, new content; moved when a folder was given.
                dashboard = existing
                for element in dashboard.get("dashboard_elements") or []:
                    if element.get("query"):
                        self._queries.pop(str(element["query"]["id"]), None)
                for layout in dashboard.get("dashboard_layouts") or []:
                    for component in layout.get("components") or []:
                        self._component_index.pop(str(component["id"]), None)
                dashboard.update(attributes)
                dashboard["dashboard_elements"] = []
                dashboard["dashboard_filters"] = []
                dashboard["dashboard_layouts"] = [
                    {
                        "id": self._new_id("layout"),
                        "type": "newspaper",
                        "active": True,
                        "column_width": None,
                        "width": None,
                        "components": [],
                    }
                ]
                if folder_id:
                    dashboard["folder_id"] = folder_id
                dashboard["updated_at"] = _now_iso()
            else:
                dashboard_id = self._new_id("dashboard")
                dashboard = self._new_dashboard_record(
                    dashboard_id,
                    {**attributes, "folder_id": folder_id or "1"},
                    actor_id=actor_id,
                    slug=self._new_slug(slug),
                )
                self._dashboards[dashboard_id] = dashboard
                self._index_add(dashboard)
            for element_spec in spec.get("elements") or []:
                self._add_element(dashboard, *self._element_from_lookml(element_spec))
            for index, filter_spec in enumerate(spec.get("filters") or []):
                if not isinstance(filter_spec, dict) or not filter_spec.get("name"):
                    raise validation_error("lookml", "every filter needs a name")
                record_spec = dict(filter_spec)
                record_spec["dimension"] = filter_spec.get("field")
                record_spec.setdefault("title", filter_spec["name"])
                record_spec.setdefault("type", "field_filter")
                dashboard["dashboard_filters"].append(
                    self._filter_record(dashboard["id"], record_spec, default_row=index)
                )
            rendered = self._render_dashboard(dashboard, None)
        self._mutated()
        return rendered

    @staticmethod
    def _element_from_lookml(spec: Any) -> tuple[dict[str, Any], dict[str, int] | None]:
        if not isinstance(spec, dict):
            raise validation_error("lookml", "every element must be a mapping")
        position = None
        if all(spec.get(key) is not None for key in ("row", "col", "width", "height")):
            position = {
                "row": _as_int(spec["row"], "row"),
                "column": _as_int(spec["col"], "col"),
                "width": _as_int(spec["width"], "width"),
                "height": _as_int(spec["height"], "height"),
            }
        if spec.get("type") == "text" or not spec.get("model"):
            return (
                {
                    "type": "text",
                    "title_text": spec.get("title_text"),
                    "subtitle_text": spec.get("subtitle_text"),
                    "body_text": spec.get("body_text"),
                },
                position,
            )
        if not spec.get("explore"):
            raise validation_error("lookml", "a query element needs model and explore")
        limit = spec.get("limit")
        return (
            {
                "type": "vis",
                "title": spec.get("title"),
                "note_text": spec.get("note_text"),
                "query": {
                    "model": spec["model"],
                    "view": spec["explore"],
                    "fields": list(spec.get("fields") or []),
                    "filters": spec.get("filters"),
                    "sorts": list(spec.get("sorts") or []) or None,
                    "limit": str(limit) if limit is not None else None,
                    "vis_config": {"type": spec.get("type") or "looker_grid"},
                },
            },
            position,
        )

    # ---- users, folders, scheduled plans -----------------------------------------------------

    def _render_user(self, user: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": user["id"],
            "first_name": user.get("first_name"),
            "last_name": user.get("last_name"),
            "display_name": user.get("display_name"),
            "email": user.get("email"),
            "is_disabled": bool(user.get("is_disabled")),
            "locale": user.get("locale") or "en",
            "home_folder_id": "1",
            "personal_folder_id": None,
            "role_ids": ["2"] if user["id"] == self.api_user_id else [],
            "group_ids": [],
            "is_service_account": False,
            "is_embed_user": False,
            "url": f"/api/4.0/users/{user['id']}",
            "can": {"show": True, "index": True, "update": True},
        }

    def users(
        self,
        *,
        tree: FieldTree | None,
        ids: str | None = None,
        sorts: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """``GET /users``."""
        wanted = _id_set(ids.strip("[]").replace('"', "")) if ids else None
        with self._lock:
            records = [u for u in self._users.values() if wanted is None or u["id"] in wanted]
            ordered = _sort_records(records, sorts)
            end = None if limit is None else offset + limit
            rendered = [self._render_user(u) for u in ordered[offset:end]]
        return apply_fields(rendered, tree)

    def user(self, user_id: str, tree: FieldTree | None) -> dict[str, Any]:
        """``GET /users/{id}``."""
        with self._lock:
            user = self._users.get(str(user_id))
            if user is None:
                raise not_found()
            return apply_fields(self._render_user(user), tree)

    def folders(self, tree: FieldTree | None) -> list[dict[str, Any]]:
        """``GET /folders``."""
        with self._lock:
            rendered = [self._render_folder(f) for f in sorted(self._folders, key=_numeric_key)]
        return apply_fields(rendered, tree)

    def folder(self, folder_id: str, tree: FieldTree | None) -> dict[str, Any]:
        """``GET /folders/{id}``."""
        with self._lock:
            rendered = self._render_folder(folder_id)
        if rendered is None:
            raise not_found()
        return apply_fields(rendered, tree)

    def _render_plan(self, plan: dict[str, Any]) -> dict[str, Any]:
        rendered = copy.deepcopy(plan)
        dashboard = self._dashboards.get(str(plan.get("dashboard_id")))
        owner = self._users.get(str(plan.get("user_id")))
        rendered.update(
            {
                "look_id": None,
                "lookml_dashboard_id": None,
                "title": dashboard.get("title") if dashboard else None,
                "content_title": dashboard.get("title") if dashboard else None,
                "user": (
                    {
                        "id": owner["id"],
                        "first_name": owner.get("first_name"),
                        "last_name": owner.get("last_name"),
                        "display_name": owner.get("display_name"),
                    }
                    if owner
                    else None
                ),
                "next_run_at": None,
                "last_run_at": None,
                "can": {"show": True, "update": True, "destroy": True},
            }
        )
        return rendered

    def scheduled_plans(
        self,
        *,
        tree: FieldTree | None,
        user_id: str | None = None,
        all_users: bool = False,
        dashboard_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """``GET /scheduled_plans`` and ``GET /scheduled_plans/dashboard/{id}``.

        Without ``all_users`` only the plans of ``user_id`` (default: the API user) are listed.
        """
        owner = str(user_id) if user_id else self.api_user_id
        with self._lock:
            if dashboard_id is not None:
                self._dashboard_or_404(dashboard_id)
            plans = [
                p
                for p in self._plans.values()
                if (all_users or str(p.get("user_id")) == owner)
                and (dashboard_id is None or str(p.get("dashboard_id")) == str(dashboard_id))
            ]
            rendered = [self._render_plan(p) for p in _sort_records(plans, "id")]
        return apply_fields(rendered, tree)

    # ---- small inspection helpers for tests ----------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Numbers of users, folders, dashboards (live / soft-deleted / LookML) and plans."""
        with self._lock:
            dashboards = list(self._dashboards.values())
            return {
                "users": len(self._users),
                "folders": len(self._folders),
                "dashboards": len(dashboards),
                "dashboards_deleted": sum(1 for d in dashboards if d.get("deleted")),
                "dashboards_lookml": sum(1 for d in dashboards if "::" in d["id"]),
                "scheduled_plans": len(self._plans),
            }

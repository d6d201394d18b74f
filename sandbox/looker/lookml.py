"""Dashboard LookML for the emulator: render a stored dashboard, parse it back.

The text follows the shape of Looker's ``dashboard_lookml`` output (a YAML list holding one
``- dashboard:`` mapping with ``elements`` and ``filters``). Strings are written JSON-quoted, so
the small block-YAML reader below can read everything the renderer writes; it also accepts
plain unquoted scalars, as hand-written LookML uses.
"""

from __future__ import annotations

import json
import re
from typing import Any

_KEY_LINE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*:(\s|$)")


class LookmlError(ValueError):
    """The text is not LookML this emulator understands."""


def _scalar(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "))


def _dashboard_name(dashboard: dict[str, Any]) -> str:
    dashboard_id = str(dashboard["id"])
    if "::" in dashboard_id:
        return dashboard_id.split("::", 1)[1]
    name = re.sub(r"[^a-z0-9]+", "_", str(dashboard.get("title") or "").lower()).strip("_")
    return name or f"dashboard_{dashboard_id}"


def render_dashboard_lookml(dashboard: dict[str, Any]) -> str:
    """LookML text for a dashboard in the emulator's store format."""
    positions: dict[str, dict[str, Any]] = {}
    for layout in dashboard.get("dashboard_layouts") or []:
        if layout.get("active"):
            for component in layout.get("components") or []:
                positions[str(component["dashboard_element_id"])] = component
    lines = [
        f"- dashboard: {_dashboard_name(dashboard)}",
        f"  title: {_scalar(dashboard.get('title'))}",
        "  layout: newspaper",
        f"  preferred_viewer: {_scalar(dashboard.get('preferred_viewer') or 'dashboards-next')}",
        f"  description: {_scalar(dashboard.get('description') or '')}",
        f"  crossfilter_enabled: {_scalar(bool(dashboard.get('crossfilter_enabled')))}",
    ]
    if dashboard.get("slug"):
        lines.append(f"  preferred_slug: {_scalar(dashboard['slug'])}")
    elements = dashboard.get("dashboard_elements") or []
    if elements:
        lines.append("  elements:")
    used_names: set[str] = set()
    for index, element in enumerate(elements):
        base_name = element.get("title") or element.get("title_text") or f"element_{index + 1}"
        name, suffix = base_name, 2
        while name in used_names:
            name, suffix = f"{base_name} {suffix}", suffix + 1
        used_names.add(name)
        lines.append(f"  - name: {_scalar(name)}")
        query = element.get("query")
        if element.get("type") == "text" or not query:
            lines.append('    type: "text"')
            for key in ("title_text", "subtitle_text", "body_text"):
                if element.get(key) is not None:
                    lines.append(f"    {key}: {_scalar(element[key])}")
        else:
            vis_type = (query.get("vis_config") or {}).get("type") or "looker_grid"
            lines.append(f"    title: {_scalar(element.get('title'))}")
            lines.append(f"    model: {_scalar(query['model'])}")
            lines.append(f"    explore: {_scalar(query['view'])}")
            lines.append(f"    type: {_scalar(vis_type)}")
            lines.append(f"    fields: {_scalar(list(query.get('fields') or []))}")
            if query.get("filters"):
                lines.append(f"    filters: {_scalar(query['filters'])}")
            if query.get("sorts"):
                lines.append(f"    sorts: {_scalar(list(query['sorts']))}")
            if query.get("limit") is not None:
                lines.append(f"    limit: {_scalar(int(query['limit']))}")
            if element.get("note_text"):
                lines.append(f"    note_text: {_scalar(element['note_text'])}")
        position = positions.get(str(element["id"]))
        if position is not None:
            lines.append(f"    row: {position['row']}")
            lines.append(f"    col: {position['column']}")
            lines.append(f"    width: {position['width']}")
            lines.append(f"    height: {position['height']}")
    filters = dashboard.get("dashboard_filters") or []
    if filters:
        lines.append("  filters:")
    for dashboard_filter in filters:
        lines.append(f"  - name: {_scalar(dashboard_filter.get('name'))}")
        lines.append(f"    title: {_scalar(dashboard_filter.get('title'))}")
        lines.append(f"    type: {_scalar(dashboard_filter.get('type'))}")
        lines.append(f"    default_value: {_scalar(dashboard_filter.get('default_value') or '')}")
        lines.append(f"    allow_multiple_values: {_scalar(bool(dashboard_filter.get('allow_multiple_values')))}")
        lines.append(f"    required: {_scalar(bool(dashboard_filter.get('required')))}")
        if dashboard_filter.get("ui_config") is not None:
            lines.append(f"    ui_config: {_scalar(dashboard_filter['ui_config'])}")
        if dashboard_filter.get("model"):
            lines.append(f"    model: {_scalar(dashboard_filter['model'])}")
            lines.append(f"    explore: {_scalar(dashboard_filter.get('explore'))}")
        lines.append(f"    listens_to_filters: {_scalar(list(dashboard_filter.get('listens_to_filters') or []))}")
        if dashboard_filter.get("dimension"):
            lines.append(f"    field: {_scalar(dashboard_filter['dimension'])}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------
# A small block-YAML reader (sequences, mappings, flow scalars as JSON or plain text).
# ------------------------------------------------------------------------------------------


def _parse_scalar(text: str) -> Any:
    text = text.strip()
    if text in ("", "~", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        if text.startswith("[") and text.endswith("]"):
            # A flow list of plain scalars, as hand-written LookML has: [a.b, c.d]
            inner = text[1:-1].strip()
            return [_parse_scalar(item) for item in inner.split(",")] if inner else []
        if len(text) >= 2 and text[0] == text[-1] == "'":
            return text[1:-1].replace("''", "'")
        return text


class _Reader:
    def __init__(self, text: str) -> None:
        self.lines: list[list[Any]] = []
        for raw in text.splitlines():
            stripped = raw.strip()
            if not stripped or stripped.startswith("#") or stripped == "---":
                continue
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise LookmlError("tabs are not allowed for indentation")
            self.lines.append([len(raw) - len(raw.lstrip(" ")), stripped])
        self.pos = 0

    def block(self, indent: int) -> Any:
        line_indent, content = self.lines[self.pos]
        if line_indent != indent:
            raise LookmlError(f"unexpected indentation at {content!r}")
        if content == "-" or content.startswith("- "):
            return self.sequence(indent)
        return self.mapping(indent)

    def sequence(self, indent: int) -> list[Any]:
        items: list[Any] = []
        while self.pos < len(self.lines):
            line_indent, content = self.lines[self.pos]
            if line_indent != indent or not (content == "-" or content.startswith("- ")):
                if line_indent > indent:
                    raise LookmlError(f"unexpected indentation at {content!r}")
                break
            rest = content[1:].strip()
            if not rest:
                self.pos += 1
                items.append(self._nested_or_none(indent))
            elif _KEY_LINE.match(rest):
                # "- key: value" opens a mapping whose keys sit two columns further in.
                self.lines[self.pos] = [indent + 2, rest]
                items.append(self.mapping(indent + 2))
            else:
                self.pos += 1
                items.append(_parse_scalar(rest))
        return items

    def mapping(self, indent: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while self.pos < len(self.lines):
            line_indent, content = self.lines[self.pos]
            if line_indent < indent or (line_indent == indent and (content == "-" or content.startswith("- "))):
                break
            if line_indent > indent:
                raise LookmlError(f"unexpected indentation at {content!r}")
            if not _KEY_LINE.match(content):
                raise LookmlError(f"expected 'key: value', got {content!r}")
            key, _, rest = content.partition(":")
            self.pos += 1
            if rest.strip():
                result[key.strip()] = _parse_scalar(rest)
            else:
                result[key.strip()] = self._nested_or_none(indent, allow_same_indent_list=True)
        return result

    def _nested_or_none(self, indent: int, *, allow_same_indent_list: bool = False) -> Any:
        if self.pos >= len(self.lines):
            return None
        next_indent, next_content = self.lines[self.pos]
        if next_indent > indent:
            return self.block(next_indent)
        if allow_same_indent_list and next_indent == indent and (next_content == "-" or next_content.startswith("- ")):
            return self.sequence(indent)
        return None


def parse_dashboard_lookml(text: str) -> dict[str, Any]:
    """Parse dashboard LookML into the mapping under ``- dashboard:``.

    Raises :class:`LookmlError` when the text is not a single dashboard definition.
    """
    if not isinstance(text, str) or not text.strip():
        raise LookmlError("lookml is empty")
    reader = _Reader(text)
    if not reader.lines:
        raise LookmlError("lookml is empty")
    document = reader.block(reader.lines[0][0])
    if reader.pos != len(reader.lines):
        raise LookmlError(f"unexpected content at {reader.lines[reader.pos][1]!r}")
    if isinstance(document, list):
        if len(document) != 1:
            raise LookmlError("expected exactly one dashboard definition")
        document = document[0]
    if not isinstance(document, dict) or "dashboard" not in document:
        raise LookmlError("expected a '- dashboard: name' definition")
    return document

"""The lineage graph drawn as SVG on the server: columns by distance from the dataset, each node a link.

No script, no external resource: the page's Content-Security-Policy can stay strict.
"""

from __future__ import annotations

from collections import defaultdict

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .selectors import Graph, Node

COL_W, NODE_W, NODE_H, ROW_H, PAD = 280, 240, 46, 64, 20
COLOURS = {"dataset": ("#e8f1fb", "#2a6ebb"), "run": ("#fdf3e1", "#b7791f"), "person": ("#eef7ee", "#2f855a")}


def _short(text: str, limit: int = 34) -> str:
    """Long names keep their start and their end (a path's file, a table's name): the middle goes."""
    if len(text) <= limit:
        return text
    head = limit // 3
    return text[:head] + "\u2026" + text[-(limit - head - 1) :]


def lineage_svg(graph: Graph) -> SafeString:
    columns: dict[int, list[Node]] = defaultdict(list)
    for node in graph.nodes.values():
        column = node.level if node.kind != "person" else node.level
        columns[column].append(node)
    levels = sorted(columns)
    for level in levels:  # runs first, people under them; stable by label
        columns[level].sort(key=lambda n: ({"dataset": 0, "run": 0, "person": 1}[n.kind], n.label))
    position: dict[str, tuple[int, int]] = {}
    for col, level in enumerate(levels):
        for row, node in enumerate(columns[level]):
            position[node.id] = (PAD + col * COL_W, PAD + row * ROW_H)
    width = PAD * 2 + max(1, len(levels)) * COL_W
    height = PAD * 2 + max((len(c) for c in columns.values()), default=1) * ROW_H
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage-graph" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="lineage of {escape(graph.center.name)}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#666"/></marker></defs>',
    ]
    for edge in graph.edges:
        if edge.source not in position or edge.target not in position:
            continue
        (x1, y1), (x2, y2) = position[edge.source], position[edge.target]
        if x1 == x2:  # a person beside their run: a short link down the column
            a, b = (x1 + NODE_W // 2, y1 + NODE_H), (x2 + NODE_W // 2, y2)
            if y1 > y2:
                a, b = (x1 + NODE_W // 2, y1), (x2 + NODE_W // 2, y2 + NODE_H)
        elif x1 < x2:
            a, b = (x1 + NODE_W, y1 + NODE_H // 2), (x2, y2 + NODE_H // 2)
        else:
            a, b = (x1, y1 + NODE_H // 2), (x2 + NODE_W, y2 + NODE_H // 2)
        dash = ' stroke-dasharray="4 3"' if edge.kind == "actor" else ""
        parts.append(
            f'<line class="edge edge-{edge.kind}" x1="{a[0]}" y1="{a[1]}" x2="{b[0]}" y2="{b[1]}" '
            f'stroke="#666" stroke-width="1.3"{dash} marker-end="url(#arrow)"/>'
        )
    for node in graph.nodes.values():
        x, y = position[node.id]
        fill, stroke = COLOURS[node.kind]
        centre = " center" if node.id == f"d{graph.center.pk}" else ""
        parts.append(
            f'<a href="{escape(node.url)}" class="node node-{node.kind}{centre}" data-node="{escape(node.id)}">'
            f"<title>{escape(node.detail)} {escape(node.label)}</title>"
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{3 if centre else 1.5}"/>'
            f'<text x="{x + 8}" y="{y + 19}" font-size="13" font-family="sans-serif">'
            f"{escape(_short(node.label))}</text>"
            f'<text x="{x + 8}" y="{y + 36}" font-size="11" fill="#555" font-family="sans-serif">'
            f"{escape(_short(node.detail, 40))}</text></a>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped

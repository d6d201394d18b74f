"""Server-rendered SVG charts for the operations page (no JavaScript library, no CDN), in the style of
:mod:`sales.charts`: one line per series over the window's buckets, gaps where a bucket has no data, and
optional reference lines (a quota, an SLA objective)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf")


def _svg_open(width: int, height: int, title: str) -> str:
    """Scales to its container (usable at 375 px) and keeps its proportions (issue 11)."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" role="img" aria-label="{escape(title)}" class="ops-chart" '
        f'style="font:11px sans-serif;background:#fff;max-width:{width}px;height:auto;display:block">'
    )


def _fmt(value: float, unit: str) -> str:
    if unit == "bytes":
        for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
            if abs(value) < 1024 or suffix == "TiB":
                return f"{value:.0f} {suffix}" if suffix == "B" else f"{value:.1f} {suffix}"
            value /= 1024
    if abs(value) >= 1000:
        return f"{value:,.0f}{unit}"
    return f"{value:.3g}{unit}"


def line_chart(
    *,
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    unit: str = "",
    y_max: float | None = None,
    references: Mapping[str, float] | None = None,
    width: int = 560,
    height: int = 220,
) -> SafeString:
    """A line chart; ``None`` values leave a gap. ``references`` draws dashed horizontal lines (quota, objective)."""
    values = [v for s in series.values() for v in s if v is not None]
    refs = dict(references or {})
    top = y_max if y_max is not None else max([*values, *refs.values(), 0.0]) * 1.1 or 1.0
    left, right, top_pad, bottom = 56, 110, 22, 26
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return left + (i + 0.5) * plot_w / n

    def y(v: float) -> float:
        return top_pad + plot_h - min(max(v, 0.0), top) / top * plot_h

    parts = [
        _svg_open(width, height, title),
        f'<text x="{left}" y="14" style="font-weight:bold">{escape(title)}</text>',
    ]
    for frac in (0, 0.5, 1):
        yy = y(top * frac)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{left - 4}" y="{yy + 4:.1f}" text-anchor="end">{escape(_fmt(top * frac, unit))}</text>')
    if not values:
        parts.append(
            f'<text x="{left + plot_w / 2}" y="{top_pad + plot_h / 2}" text-anchor="middle" fill="#888">'
            "no data in this window</text>"
        )
    legend_row = 0
    for i, (name, points) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        segment: list[str] = []
        segments: list[list[str]] = []
        for j, value in enumerate(points):
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x(j):.1f},{y(value):.1f}")
        if segment:
            segments.append(segment)
        for j, value in enumerate(points):  # a tooltip per point: the browser shows <title> on hover
            if value is not None:
                label = labels[j] if j < len(labels) else str(j)
                parts.append(
                    f'<circle cx="{x(j):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}" fill-opacity="0.15">'
                    f"<title>{escape(label)} {escape(name)}: {escape(_fmt(value, unit))}</title></circle>"
                )
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>')
            else:
                parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{" ".join(seg)}"/>')
        legend_row += 1
        parts.append(
            f'<text x="{left + plot_w + 8}" y="{top_pad + 12 * legend_row}" fill="{colour}">{escape(name[:18])}</text>'
        )
    for name, value in refs.items():
        yy = y(value)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#c62828" '
            'stroke-dasharray="4 3"/>'
        )
        legend_row += 1
        parts.append(
            f'<text x="{left + plot_w + 8}" y="{top_pad + 12 * legend_row}" fill="#c62828">'
            f"{escape(name[:14])} {escape(_fmt(value, unit))}</text>"
        )
    if labels:
        parts.append(f'<text x="{left}" y="{height - 8}">{escape(labels[0])}</text>')
        parts.append(f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end">{escape(labels[-1])}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def bar_chart(
    *,
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    unit: str = "",
    width: int = 560,
    height: int = 220,
) -> SafeString:
    """Grouped bars per bucket (e.g. rows and cells processed)."""
    values = [v for s in series.values() for v in s]
    top = max([*values, 0.0]) * 1.1 or 1.0
    left, right, top_pad, bottom = 56, 110, 22, 26
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    n = max(len(labels), 1)
    k = max(len(series), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.8 / k, 1.0)
    parts = [
        _svg_open(width, height, title),
        f'<text x="{left}" y="14" style="font-weight:bold">{escape(title)}</text>',
    ]
    for frac in (0, 0.5, 1):
        yy = top_pad + plot_h - frac * plot_h
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{left - 4}" y="{yy + 4:.1f}" text-anchor="end">{escape(_fmt(top * frac, unit))}</text>')
    if not any(values):
        parts.append(
            f'<text x="{left + plot_w / 2}" y="{top_pad + plot_h / 2}" text-anchor="middle" fill="#888">'
            "no data in this window</text>"
        )
    for i, (name, points) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        for j, value in enumerate(points):
            if not value:
                continue
            h = value / top * plot_h
            xx = left + j * slot + slot * 0.1 + i * bar_w
            label = labels[j] if j < len(labels) else str(j)
            parts.append(
                f'<rect x="{xx:.1f}" y="{top_pad + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(label)} {escape(name)}: {escape(_fmt(value, unit))}</title></rect>'
            )
        parts.append(
            f'<text x="{left + plot_w + 8}" y="{top_pad + 12 * (i + 1)}" fill="{colour}">{escape(name[:18])}</text>'
        )
    if labels:
        parts.append(f'<text x="{left}" y="{height - 8}">{escape(labels[0])}</text>')
        parts.append(f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end">{escape(labels[-1])}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped

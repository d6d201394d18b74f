"""Server-rendered SVG charts for the admin (no JavaScript, no CDN): revenue by day per region, and by region."""

from __future__ import annotations

from collections import defaultdict
from html import escape
from typing import Any

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
# One colour per region on every chart (issue 11): the known regions fixed, any other by a stable hash of its name.
REGION_COLOURS = {"AMER": "#1f77b4", "APAC": "#ff7f0e", "EMEA": "#2ca02c", "LATAM": "#d62728", "NA": "#9467bd"}


def region_colour(region: str) -> str:
    """The colour of ``region`` wherever it is drawn (not its position in one chart's legend)."""
    known = REGION_COLOURS.get(region.upper())
    if known:
        return known
    import hashlib

    return PALETTE[int(hashlib.sha256(region.upper().encode()).hexdigest(), 16) % len(PALETTE)]


def revenue_by_day_series(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The data of the "by day" chart (and of the API's charts endpoint): region -> day -> revenue."""
    series: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        if r.get("day") and isinstance(r.get("revenue"), int | float):  # not a suppressed group
            series[str(r.get("region") or "(none)")][str(r["day"])] = float(r["revenue"])
    return dict(series)


def revenue_by_region_totals(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The data of the "by region" chart (and of the API's charts endpoint): region -> total revenue."""
    totals: dict[str, float] = defaultdict(float)
    for r in rows:
        if isinstance(r.get("revenue"), int | float):  # not a suppressed group
            totals[str(r.get("region") or "(none)")] += float(r["revenue"])
    return dict(totals)


def _svg_open(width: int, height: int, label: str) -> str:
    """A chart that scales to its container (down to a 375 px phone) and keeps its proportions."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" role="img" aria-label="{escape(label)}" class="report-chart" '
        f'style="font:11px sans-serif;max-width:{width}px;height:auto;display:block">'
    )


def revenue_by_day_svg(rows: list[dict[str, Any]], *, width: int = 900, height: int = 320) -> str:
    """One line per region over the days of the report."""
    series = revenue_by_day_series(rows)
    days = sorted({d for s in series.values() for d in s})
    if not days:
        return "<p>No rows.</p>"
    top = max((v for s in series.values() for v in s.values()), default=0) or 1.0
    left, bottom, right, top_pad = 70, 30, 120, 10
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    x = {d: left + (i * plot_w / max(1, len(days) - 1)) for i, d in enumerate(days)}

    def y(v: float) -> float:
        return top_pad + plot_h - v / top * plot_h

    parts = [_svg_open(width, height, "Revenue by day and region")]
    for frac in (0, 0.25, 0.5, 0.75, 1):
        yy = y(top * frac)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{top * frac:,.0f}</text>')
    for i, (region, points) in enumerate(sorted(series.items())):
        colour = region_colour(region)
        path = " ".join(f"{x[d]:.1f},{y(v):.1f}" for d, v in sorted(points.items()))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        for d, v in sorted(points.items()):  # a tooltip on every point (the browser shows <title> on hover)
            parts.append(
                f'<circle cx="{x[d]:.1f}" cy="{y(v):.1f}" r="3" fill="{colour}" fill-opacity="0.6">'
                f"<title>{escape(d)} {escape(region)}: {v:,.2f}</title></circle>"
            )
        parts.append(
            f'<text x="{left + plot_w + 8}" y="{top_pad + 14 * (i + 1)}" fill="{colour}">{escape(region)}</text>'
        )
    parts.append(f'<text x="{left}" y="{height - 8}">{escape(days[0])}</text>')
    parts.append(f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end">{escape(days[-1])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def revenue_by_region_svg(rows: list[dict[str, Any]], *, width: int = 900) -> str:
    """Total revenue per region over the report, as horizontal bars."""
    totals = revenue_by_region_totals(rows)
    if not totals:
        return "<p>No rows.</p>"
    top = max(totals.values()) or 1.0
    bar_h, left = 22, 90
    height = bar_h * len(totals) + 10
    parts = [_svg_open(width, height, "Revenue by region")]
    for i, (region, total) in enumerate(sorted(totals.items(), key=lambda kv: -kv[1])):
        w = (width - left - 120) * total / top
        yy = 5 + i * bar_h
        parts.append(f'<text x="{left - 6}" y="{yy + 15}" text-anchor="end">{escape(region)}</text>')
        parts.append(
            f'<rect x="{left}" y="{yy}" width="{w:.1f}" height="{bar_h - 6}" fill="{region_colour(region)}">'
            f"<title>{escape(region)}: {total:,.2f}</title></rect>"
        )
        parts.append(f'<text x="{left + w + 6:.1f}" y="{yy + 15}">{total:,.2f}</text>')
    parts.append("</svg>")
    return "".join(parts)

"""Small server-side SVG charts, pure: a line plot of one or more series, and bar pairs. No
JavaScript, no fonts to fetch; every chart has a ``<title>`` and a table of its numbers beside
it in the page (screen readers and people who want the figures read that).

>>> svg = line_chart({"p95": [(0.0, 1.0), (60.0, 3.0), (120.0, 2.0)]}, width=200, height=60)
>>> svg.startswith("<svg") and "<polyline" in svg and "p95" in svg
True
>>> line_chart({}) == ""
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

#: Calm colours that stay apart for colour-blind readers (Okabe–Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
MAX_POINTS = 2000


def line_chart(series: Mapping[str, Sequence[tuple[float, float]]], *, width: int = 480, height: int = 120,
               marker: float | None = None, title: str = "") -> str:
    """An SVG of each named series of ``(x, y)`` points (x: unix seconds), on shared axes;
    ``marker``: an x to draw a dashed vertical line at (the onset)."""
    clean = {name: [(x, y) for x, y in pts[:MAX_POINTS] if math.isfinite(x) and math.isfinite(y)]
             for name, pts in series.items()}
    clean = {name: pts for name, pts in clean.items() if pts}
    if not clean:
        return ""
    xs = [x for pts in clean.values() for x, _ in pts]
    ys = [y for pts in clean.values() for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(0.0, min(ys)), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    left, right, top, bottom = 44, 8, 16, 18
    w, h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * w

    def py(y: float) -> float:
        return top + h - (y - y0) / (y1 - y0) * h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">',
             f"<title>{escape(title or ', '.join(clean))}</title>",
             f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" class="axis"/>',
             f'<text x="{left - 4}" y="{top + 8}" class="tick" text-anchor="end">{_num(y1)}</text>',
             f'<text x="{left - 4}" y="{top + h}" class="tick" text-anchor="end">{_num(y0)}</text>',
             f'<text x="{left}" y="{height - 4}" class="tick">{_clock(x0)}</text>',
             f'<text x="{left + w}" y="{height - 4}" class="tick" text-anchor="end">{_clock(x1)}</text>']
    if marker is not None and x0 <= marker <= x1:
        parts.append(f'<line x1="{px(marker):.1f}" y1="{top}" x2="{px(marker):.1f}" y2="{top + h}" class="onset"/>')
    for n, (name, pts) in enumerate(clean.items()):
        colour = PALETTE[n % len(PALETTE)]
        lx = left + 8 + n * (w // max(1, len(clean)))  # the legend: a swatch and the name, on the top line
        parts.append(f'<rect x="{lx}" y="4" width="10" height="3" fill="{colour}"/>'
                     f'<text x="{lx + 14}" y="10" class="tick">{escape(name[:40])}</text>')
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in sorted(pts))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}">'
                     f"<title>{escape(name)}</title></polyline>")
    parts.append("</svg>")
    return "".join(parts)


def bar_pairs(rows: Sequence[tuple[str, float, float]], labels: tuple[str, str], *, width: int = 480,
              height: int = 140, title: str = "") -> str:
    """Two bars per row (e.g. alerts and incidents per day), scaled to the largest value.

    >>> "<rect" in bar_pairs([("12-01", 10, 2), ("12-02", 4, 1)], ("alerts", "incidents"))
    True
    """
    if not rows:
        return ""
    top_value = max(max(a, b) for _, a, b in rows) or 1.0
    left, bottom, top = 36, 18, 14
    h = height - bottom - top
    slot = (width - left) / len(rows)
    bar = max(1.0, slot * 0.38)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">',
             f"<title>{escape(title or ' and '.join(labels))}</title>",
             f'<text x="{left - 4}" y="{top + 8}" class="tick" text-anchor="end">{_num(top_value)}</text>',
             f'<rect x="{left}" y="0" width="10" height="8" fill="{PALETTE[0]}"/>'
             f'<text x="{left + 14}" y="8" class="tick">{escape(labels[0])}</text>',
             f'<rect x="{left + 90}" y="0" width="10" height="8" fill="{PALETTE[1]}"/>'
             f'<text x="{left + 104}" y="8" class="tick">{escape(labels[1])}</text>']
    for n, (label, a, b) in enumerate(rows):
        x = left + n * slot
        for k, value in enumerate((a, b)):
            bh = value / top_value * h
            parts.append(f'<rect x="{x + k * bar:.1f}" y="{top + h - bh:.1f}" width="{bar - 1:.1f}" '
                         f'height="{bh:.1f}" fill="{PALETTE[k]}"><title>{escape(label)}: {_num(value)} '
                         f"{escape(labels[k])}</title></rect>")
        if len(rows) <= 16 or n % max(1, len(rows) // 8) == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 4}" class="tick">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def evidence_series(evidence: Mapping[str, Any]) -> dict[str, list[tuple[float, float]]]:
    """The series a cause's evidence carries, as ``name → [(unix seconds, value)]``: the key
    ``series`` holding ``{name: [[t, v], …]}`` (t: unix seconds or ISO 8601 text), or a list of
    ``{"metric": name, "points": [[t, v], …]}``. Anything else is ignored (no plot).

    >>> evidence_series({"series": {"cpu": [[0, 1], ["1970-01-01T00:01:00Z", 2]]}})
    {'cpu': [(0.0, 1.0), (60.0, 2.0)]}
    >>> evidence_series({"series": "nonsense"})
    {}
    """
    raw = evidence.get("series")
    items: list[tuple[Any, Any]] = []
    if isinstance(raw, Mapping):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = [(s.get("metric"), s.get("points")) for s in raw if isinstance(s, Mapping)]
    found: dict[str, list[tuple[float, float]]] = {}
    for name, points in items[:6]:
        if not isinstance(points, list):
            continue
        pts = []
        for point in points[:MAX_POINTS]:
            if isinstance(point, (list, tuple)) and len(point) == 2:
                t, v = _time(point[0]), _float(point[1])
                if t is not None and v is not None:
                    pts.append((t, v))
        if pts:
            found[str(name)[:80]] = pts
    return found


def _time(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, datetime):
        return value.timestamp()
    return _float(value)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _num(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _clock(x: float) -> str:
    try:
        return datetime.fromtimestamp(x, UTC).strftime("%H:%M")
    except (OverflowError, OSError, ValueError):
        return ""

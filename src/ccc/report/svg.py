"""Tiny dependency-free SVG charts (line and bar) for the run report.

Why hand-written: the report must be a single self-contained file that opens offline, and the
charts are simple; pulling a plotting stack into the client for three charts is not worth it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

WIDTH, HEIGHT, PAD = 640, 220, 40
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


def _scale(value: float, lo: float, hi: float, out_lo: float, out_hi: float) -> float:
    if hi == lo:
        return (out_lo + out_hi) / 2
    return out_lo + (value - lo) * (out_hi - out_lo) / (hi - lo)


def line_chart(title: str, series: Mapping[str, Sequence[tuple[float, float]]], x_label: str, y_label: str) -> str:
    """Step lines of (x, y) points per named series."""
    points = [p for values in series.values() for p in values]
    if not points:
        return f"<h3>{escape(title)}</h3><p class='empty'>no data recorded</p>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_lo, x_hi, y_lo, y_hi = min(xs), max(xs), 0.0, max(max(ys), 1.0)
    parts = [f"<svg viewBox='0 0 {WIDTH} {HEIGHT}' role='img' aria-label='{escape(title)}'>"]
    parts.append(f"<line x1='{PAD}' y1='{HEIGHT - PAD}' x2='{WIDTH - 10}' y2='{HEIGHT - PAD}' stroke='#444'/>")
    parts.append(f"<line x1='{PAD}' y1='10' x2='{PAD}' y2='{HEIGHT - PAD}' stroke='#444'/>")
    parts.append(f"<text x='{PAD}' y='{HEIGHT - 8}' font-size='11'>{escape(x_label)}</text>")
    parts.append(f"<text x='4' y='20' font-size='11'>{escape(y_label)} (max {y_hi:g})</text>")
    for index, (name, values) in enumerate(sorted(series.items())):
        colour = COLOURS[index % len(COLOURS)]
        coords: list[str] = []
        for x, y in sorted(values):
            px = _scale(x, x_lo, x_hi, PAD, WIDTH - 10)
            py = _scale(y, y_lo, y_hi, HEIGHT - PAD, 10)
            if coords:
                coords.append(f"{px:.1f},{coords[-1].split(',')[1]}")
            coords.append(f"{px:.1f},{py:.1f}")
        parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{' '.join(coords)}'/>")
        parts.append(f"<text x='{WIDTH - 150}' y='{20 + 14 * index}' font-size='11' fill='{colour}'>"
                     f"{escape(name)}</text>")
    parts.append("</svg>")
    return f"<h3>{escape(title)}</h3>" + "".join(parts)


def bar_chart(title: str, bars: Sequence[tuple[str, float]], unit: str) -> str:
    """Horizontal bars with labels and values."""
    if not bars:
        return f"<h3>{escape(title)}</h3><p class='empty'>no data recorded</p>"
    row = 22
    height = row * len(bars) + 20
    top = max(value for _, value in bars) or 1.0
    parts = [f"<svg viewBox='0 0 {WIDTH} {height}' role='img' aria-label='{escape(title)}'>"]
    for i, (label, value) in enumerate(bars):
        y = 10 + i * row
        width = _scale(value, 0, top, 0, WIDTH - 260)
        parts.append(f"<text x='0' y='{y + 14}' font-size='11'>{escape(label)}</text>")
        parts.append(f"<rect x='170' y='{y + 2}' width='{width:.1f}' height='{row - 6}' fill='{COLOURS[0]}'/>")
        parts.append(f"<text x='{175 + width:.1f}' y='{y + 14}' font-size='11'>{value:.1f} {escape(unit)}</text>")
    parts.append("</svg>")
    return f"<h3>{escape(title)}</h3>" + "".join(parts)

"""Dependency-free inline SVG charts for the run report: time series, histograms, bars, waterfalls.

Why hand-written: the report must be one self-contained file that opens offline (no script, no
external URL), and four chart shapes with proper axes are ~300 lines; a plotting stack in the
client for that is not worth its weight. Every chart has labelled axes with ticks: time axes in
wall-clock HH:MM:SS (UTC), value axes with "nice" steps (1, 2, 5 × 10^k), integers where the
quantity is a count. A chart plots one quantity (one unit); the caller splits mixed units.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 960
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 30, 40
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
TIME_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600)
FONT = "font-size='11' font-family='sans-serif'"


# ----- ticks and labels -------------------------------------------------------------------------
def nice_step(span: float, max_ticks: int, *, integer: bool = False) -> float:
    """The smallest step of 1, 2 or 5 × 10^k that covers span in at most max_ticks intervals."""
    if span <= 0:
        return 1.0
    raw = span / max(1, max_ticks)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        step = factor * magnitude
        if step >= raw - 1e-12:
            break
    return max(1.0, float(round(step))) if integer else step


def value_ticks(top: float, *, integer: bool = False, max_ticks: int = 5) -> list[float]:
    """Ticks from 0 to the first step at or above top (so the axis always includes the data)."""
    top = max(top, 1.0 if integer else top)
    if top <= 0:
        return [0.0, 1.0]
    step = nice_step(top, max_ticks, integer=integer)
    count = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


def time_ticks(start_ns: int, end_ns: int, max_ticks: int = 8) -> list[int]:
    """Wall-clock ticks at whole multiples of a step (1 s ... 6 h) inside [start, end]."""
    span_s = max(0.0, (end_ns - start_ns) / 1e9)
    step = next((s for s in TIME_STEPS_S if span_s / s <= max_ticks), TIME_STEPS_S[-1])
    first = math.ceil(start_ns / 1e9 / step) * step
    ticks = []
    t = first
    while t * 1e9 <= end_ns:
        ticks.append(int(t * 10**9))
        t += step
    return ticks


def clock(time_ns: int) -> str:
    """HH:MM:SS (UTC) of an epoch-nanosecond timestamp."""
    return dt.datetime.fromtimestamp(time_ns / 1e9, tz=dt.UTC).strftime("%H:%M:%S")


def format_value(value: float, *, integer: bool = False) -> str:
    """A tick or bar label: integers without a decimal point; otherwise at most 3 significant digits."""
    if integer or float(value).is_integer():
        return f"{round(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _scale(value: float, lo: float, hi: float, out_lo: float, out_hi: float) -> float:
    if hi == lo:
        return (out_lo + out_hi) / 2
    return out_lo + (value - lo) * (out_hi - out_lo) / (hi - lo)


def _empty(title: str, why: str = "no data recorded") -> str:
    return f"<h3>{escape(title)}</h3><p class='empty'>{escape(why)}</p>"


def _open(title: str, height: int) -> list[str]:
    return [
        f"<h3>{escape(title)}</h3>",
        f"<svg width='{WIDTH}' height='{height}' viewBox='0 0 {WIDTH} {height}' role='img' "
        f"aria-label='{escape(title, quote=True)}'>",
    ]


def _value_axis_left(ticks: Sequence[float], height: int, unit: str, integer: bool) -> list[str]:
    """Horizontal grid lines and labels for a vertical value axis; the unit above it."""
    parts, top, bottom = [], TOP, height - BOTTOM
    for tick in ticks:
        y = _scale(tick, ticks[0], ticks[-1], bottom, top)
        parts.append(f"<line x1='{LEFT}' y1='{y:.1f}' x2='{WIDTH - RIGHT}' y2='{y:.1f}' stroke='#e4e4e4'/>")
        parts.append(
            f"<text x='{LEFT - 6}' y='{y + 4:.1f}' text-anchor='end' {FONT}>"
            f"{escape(format_value(tick, integer=integer))}</text>"
        )
    parts.append(f"<text x='{LEFT - 6}' y='{TOP - 14}' text-anchor='end' {FONT} fill='#555'>{escape(unit)}</text>")
    parts.append(f"<line x1='{LEFT}' y1='{top}' x2='{LEFT}' y2='{bottom}' stroke='#444'/>")
    parts.append(f"<line x1='{LEFT}' y1='{bottom}' x2='{WIDTH - RIGHT}' y2='{bottom}' stroke='#444'/>")
    return parts


def _x_tick(x: float, height: int, label: str) -> list[str]:
    bottom = height - BOTTOM
    return [
        f"<line x1='{x:.1f}' y1='{bottom}' x2='{x:.1f}' y2='{bottom + 4}' stroke='#444'/>",
        f"<text x='{x:.1f}' y='{bottom + 16}' text-anchor='middle' {FONT}>{escape(label)}</text>",
    ]


def _x_label(height: int, label: str) -> str:
    return (
        f"<text x='{(LEFT + WIDTH - RIGHT) / 2:.0f}' y='{height - 6}' text-anchor='middle' {FONT} "
        f"fill='#555'>{escape(label)}</text>"
    )


def _legend(names: Sequence[str]) -> list[str]:
    parts, x = [], LEFT + 8
    for index, name in enumerate(names):
        colour = COLOURS[index % len(COLOURS)]
        parts.append(f"<rect x='{x}' y='6' width='10' height='10' fill='{colour}'/>")
        parts.append(f"<text x='{x + 14}' y='15' {FONT}>{escape(name)}</text>")
        x += 24 + 7 * len(name)
    return parts


# ----- charts -----------------------------------------------------------------------------------
def time_chart(
    title: str,
    series: Mapping[str, Sequence[tuple[int, float]]],
    unit: str,
    *,
    window: tuple[int, int] | None = None,
    integer: bool = False,
    top: float | None = None,
    height: int = 200,
) -> str:
    """Step lines of (epoch ns, value) per named series, on a wall-clock axis shared across charts.

    window fixes the time range (so stacked charts line up); top fixes the value range (100 for %)."""
    points = [p for values in series.values() for p in values]
    if not points:
        return _empty(title)
    t_lo, t_hi = window if window else (min(p[0] for p in points), max(p[0] for p in points))
    if t_hi <= t_lo:
        t_hi = t_lo + 10**9
    ticks = value_ticks(top if top is not None else max(p[1] for p in points), integer=integer)
    parts = _open(title, height)
    parts += _value_axis_left(ticks, height, unit, integer)
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, height - BOTTOM, TOP
    for tick in time_ticks(t_lo, t_hi):
        parts += _x_tick(_scale(tick, t_lo, t_hi, x0, x1), height, clock(tick))
    parts.append(_x_label(height, "time (UTC)"))
    parts += _legend(list(series))
    for index, values in enumerate(series.values()):
        colour = COLOURS[index % len(COLOURS)]
        coords: list[tuple[float, float]] = []
        for t, v in sorted(values):
            x = _scale(t, t_lo, t_hi, x0, x1)
            y = _scale(min(v, ticks[-1]), ticks[0], ticks[-1], y0, y1)
            if coords:
                coords.append((x, coords[-1][1]))  # step: hold the last reading until the next one
            coords.append((x, y))
        if len(coords) == 1:
            parts.append(f"<circle cx='{coords[0][0]:.1f}' cy='{coords[0][1]:.1f}' r='3' fill='{colour}'/>")
        else:
            text = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            dash = " stroke-dasharray='7 4'" if index else ""  # a line on top of another stays visible
            parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='1.8'{dash} points='{text}'/>")
    parts.append("</svg>")
    return "".join(parts)


def histogram_range(values: Sequence[float]) -> tuple[float, float]:
    """The range the bins cover: all values, unless a few outliers would squash the rest into one bin.

    Values above 2 × the 95th percentile (when there are any) fall outside; the chart says how many."""
    ordered = sorted(values)
    lo, hi = ordered[0], ordered[-1]
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    cut = 2 * p95
    if hi > cut > lo:
        hi = cut
    least = max(1.0, 0.1 * abs(hi))  # equal values get a window around them, not one bin as wide as the chart
    if hi - lo < least:
        pad = (least - (hi - lo)) / 2
        lo, hi = max(0.0, lo - pad), hi + pad
    return lo, hi


def histogram_chart(
    title: str,
    values: Sequence[float],
    unit: str,
    *,
    bins: int = 12,
    markers: Mapping[str, float] | None = None,
    height: int = 210,
) -> str:
    """Counts of values per bin (nice bin edges), count axis in integers; optional marker lines (p50, p95)."""
    if not values:
        return _empty(title)
    lo, hi = histogram_range(values)
    width = nice_step(max(hi - lo, 1e-9), bins)
    start = math.floor(lo / width) * width
    count = max(1, math.ceil((hi - start) / width - 1e-9))
    if start + count * width <= hi:
        count += 1
    end = start + count * width
    counts = [0] * count
    above = [v for v in values if v >= end]
    for value in values:
        if value < end:
            counts[min(count - 1, int((value - start) // width))] += 1
    ticks = value_ticks(max(counts), integer=True)
    parts = _open(title, height)
    parts += _value_axis_left(ticks, height, "jobs", True)
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, height - BOTTOM, TOP
    for index, n in enumerate(counts):
        left = _scale(start + index * width, start, end, x0, x1)
        right = _scale(start + (index + 1) * width, start, end, x0, x1)
        top_y = _scale(n, 0, ticks[-1], y0, y1)
        if n:
            parts.append(
                f"<rect x='{left + 1:.1f}' y='{top_y:.1f}' width='{right - left - 2:.1f}' "
                f"height='{y0 - top_y:.1f}' fill='{COLOURS[0]}'><title>{n}</title></rect>"
            )
    edge_step = nice_step(end - start, 8)
    edge = math.ceil(start / edge_step) * edge_step
    while edge <= end + 1e-9:
        parts += _x_tick(_scale(edge, start, end, x0, x1), height, format_value(edge))
        edge += edge_step
    parts.append(_x_label(height, unit))
    legend_x = LEFT + 8
    for index, (name, value) in enumerate((markers or {}).items()):
        colour = COLOURS[(index + 1) % len(COLOURS)]
        if value < end:
            x = _scale(value, start, end, x0, x1)
            parts.append(
                f"<line x1='{x:.1f}' y1='{y1}' x2='{x:.1f}' y2='{y0}' stroke='{colour}' "
                f"stroke-dasharray='4 3' stroke-width='1.5'/>"
            )
        label = f"{name} {format_value(round(value))} {unit}"
        parts.append(
            f"<line x1='{legend_x}' y1='11' x2='{legend_x + 16}' y2='11' stroke='{colour}' "
            f"stroke-dasharray='4 3' stroke-width='1.5'/>"
        )
        parts.append(f"<text x='{legend_x + 20}' y='15' {FONT}>{escape(label)}</text>")
        legend_x += 36 + 7 * len(label)
    if above:
        parts.append(
            f"<text x='{WIDTH - RIGHT}' y='15' text-anchor='end' {FONT} fill='#d62728'>"
            f"{len(above)} above {format_value(end)} {escape(unit)} (max {format_value(round(max(above)))})"
            "</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    colour: str = COLOURS[0]


def _bottom_axis(ticks: Sequence[float], left: float, right: float, height: int, unit: str, integer: bool) -> list[str]:
    parts = [f"<line x1='{left}' y1='{height - BOTTOM}' x2='{right}' y2='{height - BOTTOM}' stroke='#444'/>"]
    for tick in ticks:
        x = _scale(tick, ticks[0], ticks[-1], left, right)
        parts.append(f"<line x1='{x:.1f}' y1='{TOP - 6}' x2='{x:.1f}' y2='{height - BOTTOM}' stroke='#e4e4e4'/>")
        parts += _x_tick(x, height, format_value(tick, integer=integer))
    parts.append(
        f"<text x='{(left + right) / 2:.0f}' y='{height - 6}' text-anchor='middle' {FONT} "
        f"fill='#555'>{escape(unit)}</text>"
    )
    return parts


LABEL_WIDTH = 230
ROW = 22


def bar_chart(title: str, bars: Sequence[Bar], unit: str, *, integer: bool = False) -> str:
    """Horizontal bars, labels left, value axis with ticks below, each bar's value at its end."""
    if not bars:
        return _empty(title)
    height = TOP + ROW * len(bars) + BOTTOM
    ticks = value_ticks(max(bar.value for bar in bars), integer=integer)
    left, right = LABEL_WIDTH, WIDTH - RIGHT - 60
    parts = _open(title, height)
    parts += _bottom_axis(ticks, left, right, height, unit, integer)
    for index, bar in enumerate(bars):
        y = TOP + index * ROW
        x_end = _scale(bar.value, 0, ticks[-1], left, right)
        parts.append(f"<text x='{left - 8}' y='{y + 15}' text-anchor='end' {FONT}>{escape(bar.label)}</text>")
        parts.append(
            f"<rect x='{left}' y='{y + 4}' width='{x_end - left:.1f}' height='{ROW - 8}' fill='{bar.colour}'/>"
        )
        parts.append(
            f"<text x='{x_end + 4:.1f}' y='{y + 15}' {FONT}>{escape(format_value(bar.value, integer=integer))}</text>"
        )
    parts.append(f"<line x1='{left}' y1='{TOP - 6}' x2='{left}' y2='{height - BOTTOM}' stroke='#444'/>")
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Segment:
    """One row of a waterfall: what happened, when it started (ms after the job began), how long."""

    label: str
    start_ms: float
    duration_ms: float
    component: str  # client | queue | parent | enclave: picks the colour


COMPONENT_COLOURS = {
    "client": "#1f77b4",
    "queue": "#bbbbbb",
    "parent": "#ff7f0e",
    "enclave": "#2ca02c",
    "retry": "#d62728",
}


def waterfall(title: str, segments: Sequence[Segment], *, note: str = "") -> str:
    """Gantt-style rows on one ms axis from the job's start: where the end-to-end time goes."""
    if not segments:
        return _empty(title, note or "no complete trace recorded")
    height = TOP + ROW * len(segments) + BOTTOM
    end = max(s.start_ms + s.duration_ms for s in segments)
    ticks = value_ticks(end)
    left, right = LABEL_WIDTH, WIDTH - RIGHT - 60
    parts = _open(title, height)
    parts += _bottom_axis(ticks, left, right, height, "ms since the job started", False)
    for index, segment in enumerate(segments):
        y = TOP + index * ROW
        x_start = _scale(segment.start_ms, 0, ticks[-1], left, right)
        x_end = _scale(segment.start_ms + segment.duration_ms, 0, ticks[-1], left, right)
        colour = COMPONENT_COLOURS.get(segment.component, COLOURS[4])
        parts.append(f"<text x='{left - 8}' y='{y + 15}' text-anchor='end' {FONT}>{escape(segment.label)}</text>")
        parts.append(
            f"<rect x='{x_start:.1f}' y='{y + 4}' width='{max(1.0, x_end - x_start):.1f}' "
            f"height='{ROW - 8}' fill='{colour}'/>"
        )
        parts.append(
            f"<text x='{max(x_end, x_start + 1) + 4:.1f}' y='{y + 15}' {FONT}>"
            f"{escape(format_value(segment.duration_ms))} ms</text>"
        )
    parts.append(f"<line x1='{left}' y1='{TOP - 6}' x2='{left}' y2='{height - BOTTOM}' stroke='#444'/>")
    parts.append("</svg>")
    html = "".join(parts)
    return html + (f"<p class='note'>{escape(note)}</p>" if note else "")

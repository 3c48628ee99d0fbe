"""A self-contained HTML page of a simulation: the cost/latency trade-off as an inline SVG.

Why no plotting library: the page must open anywhere (no scripts, no network) and the chart is a
handful of points: each scenario at (p95 latency, monthly cost), plus CCC's idle-timeout sweep, the
knob that moves along the trade-off.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

from ccc.cost.scenarios import ScenarioResult, SimulationReport

WIDTH, HEIGHT, MARGIN = 720, 420, 70
STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
)
HEADERS = ("scenario", "USD/month", "idle", "compute", "requests", "p50 s", "p95 s", "p99 s", "jobs")
COLOURS = {"ccc": "#1b7837", "no-warm-pool": "#c2a5cf", "always-on": "#b2182b", "sweep": "#7fbf7b"}


def _scale(values: Sequence[float], lo_px: float, hi_px: float, log: bool) -> Callable[[float], float]:
    lo, hi = min(values), max(values)
    if log:
        lo, hi = math.log10(max(lo, 0.1)), math.log10(max(hi, 0.1))
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad

    def to_px(v: float) -> float:
        x = math.log10(max(v, 0.1)) if log else v
        return lo_px + (x - lo) / (hi - lo) * (hi_px - lo_px)

    return to_px


def svg(report: SimulationReport, sweep: Sequence[tuple[float, ScenarioResult]] = ()) -> str:
    points = [(s.name, s.p95_s, s.monthly_usd) for s in report.scenarios]
    points += [(f"idle {int(t)} s", r.p95_s, r.monthly_usd) for t, r in sweep]
    x_px = _scale([p[1] for p in points], MARGIN, WIDTH - 20, log=True)
    y_px = _scale([p[2] for p in points], HEIGHT - MARGIN, 20, log=False)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
        'aria-label="monthly cost against p95 latency">',
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - 20}" y2="{HEIGHT - MARGIN}" stroke="#333"/>',
        f'<line x1="{MARGIN}" y1="20" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" stroke="#333"/>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 25}" text-anchor="middle">p95 upload → result (s, log scale)</text>',
        f'<text x="18" y="{HEIGHT / 2}" transform="rotate(-90 18 {HEIGHT / 2})" '
        'text-anchor="middle">USD / month</text>',
    ]
    if sweep:
        path = " ".join(f"{x_px(r.p95_s):.1f},{y_px(r.monthly_usd):.1f}" for _, r in sweep)
        out.append(f'<polyline points="{path}" fill="none" stroke="{COLOURS["sweep"]}" stroke-dasharray="4 3"/>')
    for label, p95, usd in points:
        colour = COLOURS.get(label, COLOURS["sweep"])
        x, y = x_px(p95), y_px(usd)
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}"><title>{html.escape(label)}: '
            f"${usd:.2f}/month, p95 {p95:.1f} s</title></circle>"
        )
        out.append(
            f'<text x="{x + 8:.1f}" y="{y - 8:.1f}" font-size="12">{html.escape(label)} '
            f"(${usd:.2f}, {p95:.1f} s)</text>"
        )
    out.append("</svg>")
    return "\n".join(out)


def page(report: SimulationReport, sweep: Sequence[tuple[float, ScenarioResult]] = ()) -> str:
    rows = "\n".join(
        f"<tr><td>{html.escape(s.name)}</td><td>{s.monthly_usd:.2f}</td><td>{s.idle_usd:.2f}</td>"
        f"<td>{s.compute_usd:.2f}</td><td>{s.requests_usd:.2f}</td><td>{s.p50_s:.1f}</td><td>{s.p95_s:.1f}</td>"
        f"<td>{s.p99_s:.1f}</td><td>{s.jobs}</td></tr>"
        for s in report.scenarios
    )
    header = "".join(f"<th>{h}</th>" for h in HEADERS)
    title = f"CCC cost simulation: {html.escape(report.profile)} ({html.escape(report.stage)})"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{STYLE}</style>
</head><body>
<h1>{title}</h1>
<p>Simulated {report.simulated_hours:.1f} h, priced as a month; scaler idle timeout {report.idle_timeout_s:g} s.
Dashed line: CCC with other idle timeouts.</p>
{svg(report, sweep)}
<table><tr>{header}</tr>
{rows}
</table>
</body></html>
"""

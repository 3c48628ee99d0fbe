"""Load a local run's telemetry (JSON Lines) and render it as one self-contained HTML page.

Sections, in the order a person asks: how did the run go (summary, failures), where does a job's
time go (the median job's waterfall, explaining client vs parent latency), how are latencies
distributed, what did the stack do over time (queue, DLQ, fleet, enclave health: one quantity per
chart, wall-clock axes), and every job in a table. Inline SVG only: no script, no external URL.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from ccc.report.jobs import JobView, build_jobs, group_by_trace, median_breakdown, median_job, percentile
from ccc.report.svg import Bar, bar_chart, clock, format_value, histogram_chart, time_chart, waterfall
from ccc_core.telemetry import metric_registry as registry
from ccc_core.telemetry import names

MAX_LINE = 1_000_000
NUMBER = re.compile(r"^[\d,.]+$")
MAX_TABLE_ROWS = 500
# Parent gauges come from every parent of the fleet into one file. Each parent names itself with
# `service.instance.id` (the local stack sets it per worker): one line per instance. Records
# without it (older runs) are drawn as one point per bucket, the highest reading, which keeps two
# enclaves' readings from drawing a zigzag.
PARENT_GAUGE_BUCKET_NS = 2 * 10**9
INSTANCE = "service.instance.id"


@dataclass
class ReportData:
    spans: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    skipped_lines: int = 0


def load_telemetry(directory: Path) -> ReportData:
    """Read every *.jsonl file under directory; malformed lines are counted, not fatal."""
    data = ReportData()
    if not directory.is_dir():
        raise FileNotFoundError(f"no telemetry directory at {directory}")
    for path in sorted(directory.glob("*.jsonl")):
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if len(line) > MAX_LINE:
                    data.skipped_lines += 1
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    data.skipped_lines += 1
                    continue
                if not isinstance(record, dict):
                    data.skipped_lines += 1
                elif record.get("kind") == "span":
                    data.spans.append(record)
                elif record.get("kind") == "metric":
                    data.metrics.append(record)
                else:
                    data.skipped_lines += 1
    return data


# ----- derived facts --------------------------------------------------------------------------
def end_to_end_ms(data: ReportData) -> list[float]:
    """Per job: from the job's start (root span, or submit minus job creation) to its result span's end."""
    return [job.end_to_end_ms for job in build_jobs(data.spans) if job.end_to_end_ms is not None]


def trace_summary(data: ReportData) -> dict[str, int]:
    """How many jobs have a trace reaching each component (one trace per job: client -> enclave)."""
    services_by_trace: dict[str, set[str]] = defaultdict(set)
    jobs_by_trace: dict[str, str] = {}
    for span in data.spans:
        trace_id = span.get("trace_id")
        if not isinstance(trace_id, str):
            continue
        services_by_trace[trace_id].add(str(span.get("name")))
        job = (span.get("attributes") or {}).get(names.ATTR_JOB_ID)
        if isinstance(job, str):
            jobs_by_trace[trace_id] = job
    complete = {names.SPAN_CLIENT_SUBMIT, names.SPAN_PARENT_JOB, names.SPAN_ENCLAVE_JOB, *names.ENCLAVE_STEP_SPANS}
    return {
        "traced jobs": len(jobs_by_trace),
        "traces client -> parent -> enclave stages": sum(1 for t in jobs_by_trace if complete <= services_by_trace[t]),
        "traces with job_events": sum(1 for t in jobs_by_trace if names.SPAN_FN_JOB_EVENTS in services_by_trace[t]),
    }


def gauge_series(data: ReportData, metric: str, *, bucket_ns: int = 0, scale: float = 1.0) -> list[tuple[int, float]]:
    """(epoch ns, value) readings of one gauge; with bucket_ns, the highest reading per bucket."""
    points = [
        (int(m["time_ns"]), float(m["value"]) * scale)
        for m in data.metrics
        if m.get("name") == metric and isinstance(m.get("time_ns"), int) and isinstance(m.get("value"), int | float)
    ]
    if not bucket_ns:
        return sorted(points)
    buckets: dict[int, float] = {}
    for t, v in points:
        key = t // bucket_ns * bucket_ns
        buckets[key] = max(v, buckets.get(key, v))
    return sorted(buckets.items())


def instance_gauge_series(
    data: ReportData, metric: str, *, label: str, scale: float = 1.0
) -> dict[str, list[tuple[int, float]]]:
    """One series per process instance ("label (worker-1)", ...); records without an instance id
    fall back to one bucketed series under `label`."""
    named = sorted({str(m[INSTANCE]) for m in data.metrics if m.get("name") == metric and m.get(INSTANCE)})
    series: dict[str, list[tuple[int, float]]] = {}
    for instance in named:
        only = ReportData(metrics=[m for m in data.metrics if m.get(INSTANCE) == instance])
        series[f"{label} ({instance[:12]})"] = gauge_series(only, metric, scale=scale)
    unnamed = ReportData(metrics=[m for m in data.metrics if not m.get(INSTANCE)])
    rest = gauge_series(unnamed, metric, bucket_ns=PARENT_GAUGE_BUCKET_NS, scale=scale)
    if rest or not series:
        series[label] = rest
    return series


def _latest_total(data: ReportData, metric: str) -> int | None:
    """Sum over processes and attribute sets of the latest cumulative value: a process is its
    instance id when it has one (two parents of a fleet report the same attribute sets)."""
    latest: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
    for record in data.metrics:
        if record.get("name") != metric or not isinstance(record.get("value"), int | float):
            continue
        key = ((INSTANCE, record.get(INSTANCE)), *sorted((record.get("attributes") or {}).items()))
        if key not in latest or record.get("time_ns", 0) >= latest[key].get("time_ns", 0):
            latest[key] = record
    return int(sum(float(r["value"]) for r in latest.values())) if latest else None


def time_window(data: ReportData) -> tuple[int, int] | None:
    times = [int(m["time_ns"]) for m in data.metrics if isinstance(m.get("time_ns"), int)]
    for span in data.spans:
        times += [int(span[k]) for k in ("start_ns", "end_ns") if isinstance(span.get(k), int)]
    return (min(times), max(times)) if times else None


def cumulative_outcomes(
    jobs: Sequence[JobView], spans: Sequence[dict[str, Any]], window: tuple[int, int] | None = None
) -> dict[str, list[tuple[int, float]]]:
    """Jobs finished so far (done / failed) over time, from the end of each job's final parent span.

    Both lines run across the whole window (a flat zero "failed" line says that nothing failed)."""
    ends: dict[str, int] = {}
    for trace_id, trace in group_by_trace(spans).items():
        parents = [s for s in trace if s.get("name") == names.SPAN_PARENT_JOB]
        if parents:
            ends[trace_id] = max(int(s["end_ns"]) for s in parents)
    if not ends:
        return {}
    first, last = window if window else (min(ends.values()), max(ends.values()))
    series: dict[str, list[tuple[int, float]]] = {}
    for status in ("done", "failed"):
        times = sorted(ends[j.trace_id] for j in jobs if j.status == status and j.trace_id in ends)
        series[status] = [(first, 0.0), *((t, float(i + 1)) for i, t in enumerate(times)), (last, float(len(times)))]
    return series


# ----- HTML pieces ----------------------------------------------------------------------------
def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, row_classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        cls = row_classes[index] if index < len(row_classes) and row_classes[index] else ""
        attr = f" class='{cls}'" if cls else ""
        cells = "".join(
            f"<td class='num'>{escape(c)}</td>" if NUMBER.match(c) else f"<td>{escape(c)}</td>" for c in row
        )
        body.append(f"<tr{attr}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _ms_text(value: float | None) -> str:
    """Milliseconds as a person reads them: one decimal below 100 ms, whole milliseconds above."""
    if value is None:
        return ""
    return f"{value:.1f}" if abs(value) < 100 else f"{value:,.0f}"


def _summary(data: ReportData, jobs: Sequence[JobView]) -> str:
    statuses = Counter(job.status for job in jobs)
    parent_ms = [j.parent_ms for j in jobs if j.parent_ms is not None and j.status == "done"]
    e2e_ms = [j.end_to_end_ms for j in jobs if j.end_to_end_ms is not None and j.status == "done"]
    rows: list[tuple[str, str]] = [
        ("jobs", str(len(jobs))),
        ("done", str(statuses.get("done", 0))),
        ("failed", str(statuses.get("failed", 0))),
        ("unfinished in this run", str(len(jobs) - statuses.get("done", 0) - statuses.get("failed", 0))),
        ("jobs retried by the parent", str(sum(1 for j in jobs if j.attempts > 1))),
    ]
    if parent_ms:
        rows.append(
            (
                "parent job latency p50 / p95 (ms, done jobs)",
                f"{_ms_text(percentile(parent_ms, 0.5))} / {_ms_text(percentile(parent_ms, 0.95))}",
            )
        )
    if e2e_ms:
        rows.append(
            (
                "client end-to-end p50 / p95 (ms, done jobs)",
                f"{_ms_text(percentile(e2e_ms, 0.5))} / {_ms_text(percentile(e2e_ms, 0.95))}",
            )
        )
    dlq = gauge_series(data, registry.METRIC_DLQ_VISIBLE)
    if dlq:
        rows.append(
            (
                "dead-letter queue: highest / last depth",
                f"{format_value(max(v for _, v in dlq))} / {format_value(dlq[-1][1])}",
            )
        )
    for key, value in trace_summary(data).items():
        rows.append((key, str(value)))
    for metric, label in (
        (registry.METRIC_ATTESTATIONS, "attestations ok"),
        (registry.METRIC_ATTESTATION_FAILURES, "attestation failures"),
    ):
        total = _latest_total(data, metric)
        if total is not None:
            rows.append((label, str(total)))
    rows.append(("spans / metric points", f"{len(data.spans)} / {len(data.metrics)}"))
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<h2>Summary</h2><table class='summary'>{body}</table>"


def _gap_text(jobs: Sequence[JobView], chosen: JobView | None) -> str:
    """Why the client's latency exceeds the parent's, in the median job's own numbers (they add up)."""
    parent = [j.parent_ms for j in jobs if j.parent_ms is not None and j.status == "done"]
    e2e = [j.end_to_end_ms for j in jobs if j.end_to_end_ms is not None and j.status == "done"]
    if not parent or not e2e or chosen is None or chosen.end_to_end_ms is None or chosen.parent_ms is None:
        return (
            "<p>Client and parent latencies cannot be compared: this run has no client spans "
            "(jobs submitted with <code>ccc submit</code> record them) or no finished job.</p>"
        )
    outside = [s for s in chosen.segments if s.component != "parent" and s.component != "enclave"]
    parts = ", ".join(f"{escape(s.label)} {_ms_text(s.duration_ms)} ms" for s in outside if s.duration_ms >= 0.5)
    return (
        f"<p>Over the done jobs the client's p50 is <b>{_ms_text(percentile(e2e, 0.5))} ms</b> and the "
        f"parent's <b>{_ms_text(percentile(parent, 0.5))} ms</b>. In the median job below, the client waited "
        f"<b>{_ms_text(chosen.end_to_end_ms)} ms</b> and the parent's final attempt took "
        f"<b>{_ms_text(chosen.parent_ms)} ms</b>; the other "
        f"<b>{_ms_text(chosen.end_to_end_ms - chosen.parent_ms)} ms</b> were: {parts}.</p>"
    )


def _failures(data: ReportData, jobs: Sequence[JobView], window: tuple[int, int] | None) -> str:
    failed = [j for j in jobs if j.failed]
    retries: Counter[str] = Counter()
    for span in data.spans:
        attributes = span.get("attributes") or {}
        if span.get("name") == names.SPAN_PARENT_JOB and attributes.get("ccc.outcome") == "retry":
            retries[str(attributes.get("ccc.code") or "unknown")] += 1
    codes = Counter(j.code or "unknown" for j in failed)
    out = ["<h2>Failures</h2>"]
    if codes or retries:
        rows = [
            (code, str(codes.get(code, 0)), str(retries.get(code, 0))) for code in sorted(set(codes) | set(retries))
        ]
        out.append(_table(("code", "jobs failed", "attempts retried"), rows))
    else:
        out.append("<p>No job failed and no attempt was retried.</p>")
    if failed:
        out.append(
            "<p>Failed jobs: "
            + ", ".join(f"<code>{escape(j.job_id)}</code> ({escape(j.code or 'unknown')})" for j in failed[:20])
            + (" …" if len(failed) > 20 else "")
            + "</p>"
        )
    out.append(
        time_chart(
            "Jobs finished (cumulative, from the parent's spans)",
            cumulative_outcomes(jobs, data.spans, window),
            "jobs",
            window=window,
            integer=True,
        )
    )
    out.append(
        time_chart(
            "Dead-letter queue depth",
            {"messages in DLQ": gauge_series(data, registry.METRIC_DLQ_VISIBLE)},
            "messages",
            window=window,
            integer=True,
        )
    )
    if failed:
        first = failed[0]
        out.append(
            waterfall(f"Waterfall of a failed job ({first.job_id[:12]}…, {first.code or 'unknown'})", first.segments)
        )
    return "".join(out)


def _time_section(data: ReportData, window: tuple[int, int] | None) -> str:
    return "".join(
        [
            "<h2>The stack over time</h2>",
            time_chart(
                "Work queue depth",
                {
                    "visible": gauge_series(data, registry.METRIC_QUEUE_VISIBLE),
                    "in flight": gauge_series(data, registry.METRIC_QUEUE_IN_FLIGHT),
                },
                "messages",
                window=window,
                integer=True,
            ),
            time_chart(
                "Fleet size",
                {
                    "desired": gauge_series(data, registry.METRIC_FLEET_DESIRED),
                    "running": gauge_series(data, registry.METRIC_FLEET_RUNNING),
                },
                "instances",
                window=window,
                integer=True,
            ),
            time_chart(
                "Enclave CPU (per worker)",
                instance_gauge_series(data, registry.METRIC_ENCLAVE_CPU, label="CPU"),
                "%",
                window=window,
                top=100.0,
            ),
            time_chart(
                "Enclave jobs in flight (per worker)",
                instance_gauge_series(data, registry.METRIC_ENCLAVE_IN_FLIGHT, label="in flight"),
                "jobs",
                window=window,
                integer=True,
            ),
            time_chart(
                "Enclave memory (per worker)",
                instance_gauge_series(data, registry.METRIC_ENCLAVE_MEMORY, label="memory", scale=1 / 2**20),
                "MiB",
                window=window,
                integer=True,
            ),
        ]
    )


def _latency_section(jobs: Sequence[JobView]) -> str:
    done = [j for j in jobs if j.status == "done"]
    parent = [j.parent_ms for j in done if j.parent_ms is not None]
    e2e = [j.end_to_end_ms for j in done if j.end_to_end_ms is not None]

    def markers(values: list[float]) -> dict[str, float]:
        return {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95)} if values else {}

    stages: dict[str, list[float]] = defaultdict(list)
    for job in done:
        for stage, ms in job.stages_ms.items():
            stages[stage].append(ms)
    bars = [Bar("parent job (inbox GET to result PUT)", percentile(parent, 0.5))] if parent else []
    bars += [Bar(f"enclave: {stage}", percentile(values, 0.5), "#2ca02c") for stage, values in stages.items()]
    return "".join(
        [
            "<h2>Latency (done jobs)</h2>",
            histogram_chart("Parent job latency (inbox GET to result PUT)", parent, "ms", markers=markers(parent)),
            histogram_chart(
                "Client end-to-end latency (job created to verified result)", e2e, "ms", markers=markers(e2e)
            ),
            bar_chart("Median time per stage", bars, "ms"),
        ]
    )


def _jobs_table(jobs: Sequence[JobView]) -> str:
    headers = (
        "job id",
        "status",
        "attempts",
        "end-to-end ms",
        "parent ms",
        "S3 + queue ms",
        "decrypt ms",
        "infer ms",
        "encrypt ms",
        "attest ms",
        "trace id",
    )
    rows, classes = [], []
    for job in jobs[:MAX_TABLE_ROWS]:
        queue = sum(s.duration_ms for s in job.segments if s.component == "queue") if job.segments else None
        rows.append(
            (
                job.job_id,
                job.status_text,
                str(job.attempts),
                _ms_text(job.end_to_end_ms),
                _ms_text(job.parent_ms),
                _ms_text(queue),
                *(_ms_text(job.stages_ms.get(stage)) for stage in ("decrypt", "infer", "encrypt", "attest")),
                job.trace_id,
            )
        )
        classes.append("failed" if job.failed else "")
    note = f"<p>First {MAX_TABLE_ROWS} of {len(jobs)} jobs.</p>" if len(jobs) > MAX_TABLE_ROWS else ""
    return f"<h2>Jobs</h2>{note}<div class='jobs'>{_table(headers, rows, row_classes=classes)}</div>"


def _waterfall_section(jobs: Sequence[JobView]) -> str:
    chosen = median_job(jobs)
    breakdown = median_breakdown(jobs)
    out = ["<h2>Where a job's time goes</h2>", _gap_text(jobs, chosen)]
    if chosen is None:
        out.append(waterfall("Waterfall of the median job", []))
        return "".join(out)
    latency = (
        f"{_ms_text(chosen.end_to_end_ms)} ms end to end"
        if chosen.end_to_end_ms is not None
        else f"{_ms_text(chosen.parent_ms)} ms in the parent; no client spans"
    )
    title = f"Waterfall of the median job ({chosen.job_id[:12]}…, {latency})"
    out.append(
        waterfall(
            title,
            chosen.segments,
            note="Grey: waiting in S3 events and the SQS queue; blue: the client; orange: the parent "
            "agent; green: the enclave (its stage times are on the protocol's coarse grid).",
        )
    )
    if breakdown:
        out.append(_table(("step", "median ms", "jobs"), [(label, _ms_text(ms), str(n)) for label, ms, n in breakdown]))
    return "".join(out)


STYLE = (
    "body{font-family:sans-serif;max-width:1320px;margin:1.5em auto;color:#222}"
    "h2{border-bottom:1px solid #ddd;padding-bottom:2px;margin-top:1.6em}h3{margin:1.2em 0 .2em;font-size:1em}"
    "table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}"
    "td{font-variant-numeric:tabular-nums}.summary th{font-weight:normal;background:#f6f6f6}"
    "tr.failed td{background:#fde8e8}.empty{color:#888}.note{color:#555;font-size:12px;margin-top:0}"
    ".jobs td,.jobs th{white-space:nowrap}.jobs td{font-family:monospace;font-size:12px}.num{text-align:right}"
)


def render_html(data: ReportData, title: str = "CCC local run", run_id: str | None = None) -> str:
    jobs = build_jobs(data.spans)
    window = time_window(data)
    services = sorted({str(r.get("service.name")) for r in data.spans + data.metrics})
    when = f"{clock(window[0])}–{clock(window[1])} UTC" if window else "no records"
    run = f"run {escape(run_id)}, " if run_id else ""
    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p>{run}{escape(when)}. Services: {escape(', '.join(services) or 'none')}. "
        "Metadata only: no images, counts or results are recorded.</p>",
        _summary(data, jobs),
        _waterfall_section(jobs),
        _failures(data, jobs, window),
        _latency_section(jobs),
        _time_section(data, window),
        _jobs_table(jobs),
    ]
    if data.skipped_lines:
        body.append(f"<p>{data.skipped_lines} malformed telemetry lines were skipped.</p>")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>"
    )

"""Load a local run's telemetry (JSON Lines) and render queue/fleet/latency/stage charts as HTML."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from ccc.report.svg import bar_chart, line_chart
from ccc_core.telemetry import metric_registry as registry
from ccc_core.telemetry import names

MAX_LINE = 1_000_000


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


def _series(data: ReportData, metric_names: tuple[str, ...]) -> dict[str, list[tuple[float, float]]]:
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    times = [m["time_ns"] for m in data.metrics if isinstance(m.get("time_ns"), int)]
    t0 = min(times) if times else 0
    for metric in data.metrics:
        if metric.get("name") in metric_names and isinstance(metric.get("value"), int | float):
            series[metric["name"]].append(((metric["time_ns"] - t0) / 1e9, float(metric["value"])))
    return dict(series)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _histogram(values: list[float], bins: int = 10) -> list[tuple[str, float]]:
    if not values:
        return []
    lo, hi = min(values), max(values)
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - lo) / width))] += 1
    return [(f"{lo + i * width:.0f}-{lo + (i + 1) * width:.0f} ms", float(c)) for i, c in enumerate(counts)]


def end_to_end_ms(data: ReportData) -> list[float]:
    """Per job: the client's submit start to its result span's end (what a user waits)."""
    starts: dict[str, int] = {}
    ends: dict[str, int] = {}
    for span in data.spans:
        job = (span.get("attributes") or {}).get(names.ATTR_JOB_ID)
        start, end = span.get("start_ns"), span.get("end_ns")
        if not isinstance(job, str) or not isinstance(start, int) or not isinstance(end, int):
            continue
        if span.get("name") == names.SPAN_CLIENT_SUBMIT:
            starts[job] = min(start, starts.get(job, start))
        elif span.get("name") == names.SPAN_CLIENT_RESULT:
            ends[job] = max(end, ends.get(job, end))
    return [(ends[j] - starts[j]) / 1e6 for j in starts if j in ends and ends[j] >= starts[j]]


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


def _latest_by_attributes(data: ReportData, metric: str) -> dict[tuple[tuple[str, Any], ...], dict[str, Any]]:
    latest: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
    for record in data.metrics:
        if record.get("name") != metric or not isinstance(record.get("value"), int | float):
            continue
        key = tuple(sorted((record.get("attributes") or {}).items()))
        if key not in latest or record.get("time_ns", 0) >= latest[key].get("time_ns", 0):
            latest[key] = record
    return latest


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def render_html(data: ReportData, title: str = "CCC local run") -> str:
    job_ms = [float(s["duration_ms"]) for s in data.spans if s.get("name") == names.SPAN_PARENT_JOB]
    e2e_ms = end_to_end_ms(data)
    stage_bars = []
    for stage in (names.SPAN_PARENT_JOB, *names.ENCLAVE_STEP_SPANS):
        durations = [float(s["duration_ms"]) for s in data.spans if s.get("name") == stage]
        if durations:
            stage_bars.append((stage.removeprefix("ccc."), statistics.median(durations)))
    services = sorted({str(r.get("service.name")) for r in data.spans + data.metrics})
    summary: list[tuple[str, float]] = [
        ("spans", len(data.spans)), ("metric points", len(data.metrics)), ("jobs", len(job_ms))
    ]
    if job_ms:
        summary.append(("job p50 ms", round(_percentile(job_ms, 0.5), 1)))
        summary.append(("job p95 ms", round(_percentile(job_ms, 0.95), 1)))
    if e2e_ms:
        summary.append(("end-to-end p50 ms (client)", round(_percentile(e2e_ms, 0.5), 1)))
        summary.append(("end-to-end p95 ms (client)", round(_percentile(e2e_ms, 0.95), 1)))
    summary.extend((k, float(v)) for k, v in trace_summary(data).items())
    for metric, label in ((registry.METRIC_ATTESTATIONS, "attestations ok"),
                          (registry.METRIC_ATTESTATION_FAILURES, "attestation failures")):
        latest = _latest_by_attributes(data, metric)
        if latest:
            summary.append((label, sum(float(r["value"]) for r in latest.values())))
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(_number(v))}</td></tr>" for k, v in summary)
    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p>Services: {escape(', '.join(services) or 'none')}. Metadata only: no images or results are recorded.</p>",
        f"<table>{rows}</table>",
        line_chart("Queue depth", _series(data, (registry.METRIC_QUEUE_VISIBLE, registry.METRIC_QUEUE_IN_FLIGHT)),
                   "seconds since first sample", "messages"),
        line_chart("Fleet size", _series(data, (registry.METRIC_FLEET_DESIRED, registry.METRIC_FLEET_RUNNING)),
                   "seconds since first sample", "instances"),
        bar_chart("Job latency histogram (parent agent, per job)", _histogram(job_ms), "jobs"),
        bar_chart("Per-stage timing (median)", stage_bars, "ms"),
        bar_chart("End-to-end latency histogram (client: submit to verified result)", _histogram(e2e_ms), "jobs"),
        line_chart("Enclave health", _series(data, (registry.METRIC_ENCLAVE_CPU, registry.METRIC_ENCLAVE_IN_FLIGHT)),
                   "seconds since first sample", "CPU % / jobs in flight"),
    ]
    if data.skipped_lines:
        body.append(f"<p>{data.skipped_lines} malformed telemetry lines were skipped.</p>")
    style = ("body{font-family:sans-serif;max-width:720px;margin:2em auto}table{border-collapse:collapse}"
             "th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}.empty{color:#888}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")

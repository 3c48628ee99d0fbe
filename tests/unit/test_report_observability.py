"""The report's observability sections: end-to-end latency, trace completeness."""

from __future__ import annotations

from ccc.report import ReportData
from ccc.report.render import end_to_end_ms, trace_summary
from ccc_core.telemetry import names

JOB = "ab" * 16


def _span(name: str, trace: str = "t1", start: int = 0, end: int = 10**6, job: str | None = JOB) -> dict:
    attributes = {names.ATTR_JOB_ID: job} if job else {}
    return {"kind": "span", "name": name, "trace_id": trace, "start_ns": start, "end_ns": end,
            "duration_ms": (end - start) / 1e6, "attributes": attributes, "service.name": "x"}


def _full_trace(trace: str, job: str) -> list[dict]:
    names_in_order = [names.SPAN_CLIENT_SUBMIT, names.SPAN_PARENT_JOB, names.SPAN_ENCLAVE_JOB,
                      *names.ENCLAVE_STEP_SPANS]
    spans = [_span(n, trace, job=job if n in (names.SPAN_CLIENT_SUBMIT, names.SPAN_PARENT_JOB) else None)
             for n in names_in_order]
    spans.append(_span(names.SPAN_CLIENT_RESULT, trace, start=5 * 10**6, end=250 * 10**6, job=job))
    return spans


def test_end_to_end_latency_runs_from_submit_start_to_result_end() -> None:
    data = ReportData(spans=_full_trace("t1", JOB))
    assert end_to_end_ms(data) == [250.0]
    assert end_to_end_ms(ReportData(spans=[_span(names.SPAN_CLIENT_SUBMIT)])) == []  # no result yet


def test_trace_summary_counts_complete_traces_only() -> None:
    broken = [s for s in _full_trace("t2", "cd" * 16) if s["name"] != names.SPAN_ENCLAVE_INFER]
    data = ReportData(spans=_full_trace("t1", JOB) + broken + [_span(names.SPAN_FN_JOB_EVENTS, "t1")])
    summary = trace_summary(data)
    assert summary["traced jobs"] == 2
    assert summary["traces client -> parent -> enclave stages"] == 1
    assert summary["traces with job_events"] == 1

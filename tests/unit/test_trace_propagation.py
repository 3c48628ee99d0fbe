"""A job is one trace even across hops that cannot carry a header (the job-derived trace context)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from ccc_core.telemetry.propagation import extract, inject, job_context, job_span_context, job_trace_id
from ccc_core.telemetry.setup import setup_telemetry

JOB = "0123456789abcdef0123456789abcdef"


@given(st.from_regex(r"\A[0-9a-f]{32}\Z"), st.from_regex(r"\A[0-9a-f]{32}\Z"))
def test_job_trace_ids_are_deterministic_valid_and_distinct(a, b):
    assert job_trace_id(a) == job_trace_id(a) and len(job_trace_id(a)) == 32
    assert job_span_context(a).is_valid and job_span_context(a).is_remote
    assert (a == b) == (job_trace_id(a) == job_trace_id(b))


def test_without_a_carrier_every_process_lands_in_the_job_trace_and_a_carrier_wins(tmp_path):
    handle = setup_telemetry("svc", state_dir=tmp_path, set_global=False)
    tracer = handle.tracer()
    with tracer.start_as_current_span("client", context=job_context(JOB)):
        carrier = inject()
    with tracer.start_as_current_span("parent-without-carrier", context=extract({}, job_id=JOB)):
        pass
    with tracer.start_as_current_span("parent-with-carrier", context=extract(carrier, job_id=JOB)):
        pass
    with tracer.start_as_current_span("garbage-carrier", context=extract({"traceparent": "00-zz"}, job_id=JOB)):
        pass
    with tracer.start_as_current_span("no-job", context=extract({})):
        pass
    handle.shutdown()
    lines = (tmp_path / "telemetry" / "svc.spans.jsonl").read_text().splitlines()
    spans = {s["name"]: s for s in map(json.loads, lines)}
    root = f"{job_span_context(JOB).span_id:016x}"
    for name in ("client", "parent-without-carrier", "parent-with-carrier", "garbage-carrier"):
        assert spans[name]["trace_id"] == job_trace_id(JOB), name
    assert spans["parent-without-carrier"]["parent_span_id"] == root
    assert spans["parent-with-carrier"]["parent_span_id"] == spans["client"]["span_id"]
    assert spans["no-job"]["trace_id"] != job_trace_id(JOB) and spans["no-job"]["parent_span_id"] is None

"""A job's trace has a real root: the span every component's top-level span points at exists.

Why it matters: components that cannot receive a `traceparent` start their spans under the job's
deterministic root span id; if no span carries that id, trace viewers report "invalid parent
span" for every top-level span of every job.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ccc_core.identity import new_job_id, validate_job_id
from ccc_core.telemetry.job_root import JobRootIdGenerator, job_root_span
from ccc_core.telemetry.names import SPAN_JOB_ROOT
from ccc_core.telemetry.propagation import job_context, job_span_context

JOB = "0123456789abcdef0123456789abcdef"


def _parent_id(span: ReadableSpan) -> int:
    assert span.parent is not None
    return span.parent.span_id


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider(id_generator=JobRootIdGenerator())
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, memory


def test_the_root_span_carries_the_jobs_deterministic_ids_and_children_point_at_it() -> None:
    provider, memory = _provider()
    tracer = provider.get_tracer("t")
    with job_root_span(provider, JOB, {"ccc.job_id": JOB}), tracer.start_as_current_span("ccc.client.submit"):
        pass
    # a component elsewhere, with no carrier, starts in the deterministic context
    with tracer.start_as_current_span("ccc.fn.job_events", context=job_context(JOB)):
        pass
    spans = {span.name: span for span in memory.get_finished_spans()}
    root = spans[SPAN_JOB_ROOT]
    expected = job_span_context(JOB)
    assert root.parent is None
    assert (root.context.trace_id, root.context.span_id) == (expected.trace_id, expected.span_id)
    assert _parent_id(spans["ccc.client.submit"]) == root.context.span_id
    assert _parent_id(spans["ccc.fn.job_events"]) == root.context.span_id
    assert {span.context.trace_id for span in spans.values()} == {expected.trace_id}


def test_only_one_span_gets_the_root_id() -> None:
    provider, memory = _provider()
    tracer = provider.get_tracer("t")
    with job_root_span(provider, JOB):
        with tracer.start_as_current_span("a"):
            pass
        with tracer.start_as_current_span("b"):
            pass
    ids = [span.context.span_id for span in memory.get_finished_spans()]
    assert len(set(ids)) == 3


def test_a_failure_inside_marks_the_root_as_error() -> None:
    provider, memory = _provider()
    try:
        with job_root_span(provider, JOB):
            raise RuntimeError("job failed")
    except RuntimeError:
        pass
    (root,) = memory.get_finished_spans()
    assert root.status.status_code is trace.StatusCode.ERROR
    assert root.events == ()  # no exception event: messages can quote data


def test_a_foreign_provider_gets_no_fake_root_but_the_job_context() -> None:
    provider = TracerProvider()  # not ours: ids cannot be chosen
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with job_root_span(provider, JOB), provider.get_tracer("t").start_as_current_span("child"):
        pass
    (child,) = memory.get_finished_spans()
    assert _parent_id(child) == job_span_context(JOB).span_id


def test_new_job_ids_make_xray_compatible_trace_ids() -> None:
    # X-Ray accepts a trace id only if its first 32 bits are a recent Unix time (in seconds).
    job_id = new_job_id(now_s=1_796_000_000)
    assert validate_job_id(job_id) == job_id
    trace_id = job_span_context(job_id).trace_id
    assert trace_id >> 96 == 1_796_000_000
    assert f"{trace_id:032x}"[:8] == job_id[:8]
    assert job_span_context(job_id) == job_span_context(job_id)  # every component derives the same
    assert job_span_context(new_job_id(now_s=1_796_000_000)).trace_id != trace_id  # 96 random bits

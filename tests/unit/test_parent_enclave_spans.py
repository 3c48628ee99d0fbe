"""The enclave's part of a job's trace, rebuilt by its parent from the reply (issue 15).

What an SRE relies on: one job is one trace in the OTLP backend including the enclave's stages,
the stages sit under the parent's job span in pipeline order, and they carry nothing finer than
the reply's coarse timings (the host must not learn more from telemetry than from the protocol).
"""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ccc_core.telemetry.names import ENCLAVE_STEP_SPANS, SPAN_ENCLAVE_JOB
from ccc_enclave.protocol.job_messages import JobMetrics
from enclave_worker.parent.enclave_spans import ATTR_RECONSTRUCTED, EnclaveSpanRelay

MS = 1_000_000


def test_stage_spans_follow_the_coarse_reply_timings_under_the_parents_span() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    parent_tracer = TracerProvider().get_tracer("parent")
    timings = JobMetrics(decrypt_ms=31.4159, infer_ms=214.2, encrypt_ms=27.0, attest_ms=1.3)
    with parent_tracer.start_as_current_span("ccc.parent.job") as parent:
        EnclaveSpanRelay(provider).emit(parent, job_id="a" * 32, tenant="tenant-a", sent_ns=1_000 * MS,
                                        received_ns=1_400 * MS, timings=timings)
    spans = {span.name: span for span in memory.get_finished_spans()}
    job = spans[SPAN_ENCLAVE_JOB]
    assert job.parent is not None and job.parent.span_id == parent.get_span_context().span_id
    assert (job.start_time, job.end_time) == (1_000 * MS, 1_400 * MS)
    cursor = 1_000 * MS
    expected = (timings.decrypt_ms, timings.infer_ms, timings.encrypt_ms, timings.attest_ms)
    for name, ms in zip(ENCLAVE_STEP_SPANS, expected, strict=True):
        stage = spans[name]
        assert stage.parent is not None and stage.parent.span_id == job.context.span_id
        assert stage.start_time == cursor and stage.end_time == cursor + int(ms * MS)
        assert stage.attributes is not None and stage.attributes[ATTR_RECONSTRUCTED] is True
        cursor = stage.end_time
    # the reply's values are already on the protocol's grid: nothing finer reaches the trace
    assert timings.decrypt_ms != 31.4159


def test_without_an_otlp_provider_nothing_is_emitted() -> None:
    parent = TracerProvider().get_tracer("parent").start_span("ccc.parent.job")
    timings = JobMetrics(decrypt_ms=1, infer_ms=1, encrypt_ms=1, attest_ms=1)
    EnclaveSpanRelay(None).emit(parent, job_id="a" * 32, tenant="t", sent_ns=0, received_ns=1, timings=timings)


def test_a_failure_reply_is_an_error_span_with_its_code_and_no_stages() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    parent = TracerProvider().get_tracer("parent").start_span("ccc.parent.job")
    EnclaveSpanRelay(provider).emit_failure(parent, job_id="a" * 32, tenant="t", sent_ns=5 * MS, received_ns=9 * MS,
                                            code="bad_image")
    (job,) = memory.get_finished_spans()
    assert job.name == SPAN_ENCLAVE_JOB and (job.start_time, job.end_time) == (5 * MS, 9 * MS)
    assert job.status.status_code.name == "ERROR" and job.status.description == "bad_image"
    assert job.parent is not None and job.parent.span_id == parent.get_span_context().span_id

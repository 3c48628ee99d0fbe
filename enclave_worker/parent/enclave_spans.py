"""The enclave's stage spans, exported by its parent from the reply's coarse timings.

Why the parent: the enclave has no network (on AWS its only channel is the parent's vsock), and its
pinned requirements carry no exporter. Shipping the enclave's own spans out would hand the host
microsecond timings it could average over replays; the reply already carries each stage's duration
snapped to the protocol's grid (`JobMetrics`, issue 12). So the parent rebuilds the enclave's part of
the job's trace from exactly what it already knows — when it sent the job, when the reply came, the
coarse stage durations — and exports it under `service.name = enclave`, marked
`ccc.enclave.reconstructed = true`. One job is then one trace from the client through the Lambdas,
the parent and the enclave in any OTLP backend, with no timing finer than the host already sees.

Locally the enclave process also writes its own JSON Lines (for `ccc report`); the relay exports
to OTLP only, so nothing is counted twice.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode

from ccc_core.redaction import safe_attributes
from ccc_core.telemetry.names import ATTR_JOB_ID, ATTR_TENANT, ENCLAVE_STEP_SPANS, SPAN_ENCLAVE_JOB
from ccc_enclave.protocol.job_messages import JobMetrics

_NS_PER_MS = 1_000_000
ATTR_RECONSTRUCTED = "ccc.enclave.reconstructed"


class EnclaveSpanRelay:
    """Emits `ccc.enclave.job` and its stage spans for one answered job (no-op without a provider)."""

    def __init__(self, provider: TracerProvider | None) -> None:
        self._provider = provider

    def emit(
        self, parent: trace.Span, *, job_id: str, tenant: str, sent_ns: int, received_ns: int, timings: JobMetrics
    ) -> None:
        if self._provider is None:
            return
        tracer = self._provider.get_tracer("ccc.enclave.relay")
        context = trace.set_span_in_context(parent)
        attributes = safe_attributes({ATTR_JOB_ID: job_id, ATTR_TENANT: tenant, ATTR_RECONSTRUCTED: True})
        job = tracer.start_span(SPAN_ENCLAVE_JOB, context=context, start_time=sent_ns, attributes=attributes)
        stage_context = trace.set_span_in_context(job)
        cursor = sent_ns
        durations = (timings.decrypt_ms, timings.infer_ms, timings.encrypt_ms, timings.attest_ms)
        for name, ms in zip(ENCLAVE_STEP_SPANS, durations, strict=True):
            end = min(cursor + int(ms * _NS_PER_MS), received_ns)
            span = tracer.start_span(name, context=stage_context, start_time=cursor, attributes=attributes)
            span.end(end_time=end)
            cursor = end
        job.end(end_time=max(received_ns, cursor))

    def emit_failure(
        self, parent: trace.Span, *, job_id: str, tenant: str, sent_ns: int, received_ns: int, code: str
    ) -> None:
        """The enclave answered with a failure: its job span, ERROR with the failure code (a fixed
        word the host sees in the reply anyway), and no stages (a failure reply carries no timings)."""
        if self._provider is None:
            return
        tracer = self._provider.get_tracer("ccc.enclave.relay")
        attributes = safe_attributes(
            {ATTR_JOB_ID: job_id, ATTR_TENANT: tenant, ATTR_RECONSTRUCTED: True, "ccc.code": code}
        )
        job = tracer.start_span(
            SPAN_ENCLAVE_JOB, context=trace.set_span_in_context(parent), start_time=sent_ns, attributes=attributes
        )
        job.set_status(Status(StatusCode.ERROR, code))
        job.end(end_time=received_ns)

    def shutdown(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()

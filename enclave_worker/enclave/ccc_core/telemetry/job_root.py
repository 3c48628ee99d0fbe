"""Emit a job's root span with the job's deterministic ids.

Why: every component starts its spans in the job's deterministic trace context
(`propagation.job_context`: trace id and root span id derived from the job id), because not every
hop can carry a `traceparent`. Until someone emits a span *with that span id*, every top-level span
points at a parent that never arrives, and trace viewers show "invalid parent span". The client
that creates the job emits it: `job_root_span` starts a root span whose ids come from
`job_span_context(job_id)` instead of the random generator.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.util.types import AttributeValue

from ccc_core.telemetry.names import SPAN_JOB_ROOT
from ccc_core.telemetry.propagation import job_context, job_span_context


class JobRootIdGenerator(IdGenerator):
    """Random ids, except for the one root span `job_root_span` asks for on this thread."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()
        self._pending = threading.local()

    def expect_root(self, trace_id: int, span_id: int) -> None:
        self._pending.ids = (trace_id, span_id)

    def clear(self) -> None:
        self._pending.ids = None

    def generate_trace_id(self) -> int:
        ids = getattr(self._pending, "ids", None)
        return ids[0] if ids else self._random.generate_trace_id()

    def generate_span_id(self) -> int:
        ids = getattr(self._pending, "ids", None)
        if ids:
            self._pending.ids = None  # exactly one span gets the root's id
            return int(ids[1])
        return self._random.generate_span_id()


@contextmanager
def job_root_span(
    tracer_provider: trace.TracerProvider, job_id: str, attributes: Mapping[str, AttributeValue] | None = None
) -> Iterator[trace.Span]:
    """The job's root span (name `ccc.job`), current for the block; its children are the job's spans.

    With a provider CCC did not install (its id generator is not ours) no span can carry the
    deterministic id: then the block runs in the job context as before, and nothing is emitted.
    """
    generator = getattr(tracer_provider, "id_generator", None)
    if not isinstance(tracer_provider, TracerProvider) or not isinstance(generator, JobRootIdGenerator):
        token = otel_context.attach(job_context(job_id))
        try:
            yield trace.get_current_span()
        finally:
            otel_context.detach(token)
        return
    root = job_span_context(job_id)
    generator.expect_root(root.trace_id, root.span_id)
    try:
        span = tracer_provider.get_tracer("ccc").start_span(
            SPAN_JOB_ROOT, context=otel_context.Context(), attributes=attributes
        )
    finally:
        generator.clear()
    with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=True):
        yield span

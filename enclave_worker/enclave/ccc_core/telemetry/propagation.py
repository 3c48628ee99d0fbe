"""Carry one job's trace context across boundaries as W3C trace-context strings.

The carrier is a plain str->str mapping so that it fits S3 user metadata
(`x-amz-meta-traceparent`), SQS message attributes and vsock job frames alike.

Why a job-derived fallback: not every hop can carry a header. A presigned PUT only accepts the
headers that were signed into it, and an S3 event delivered to a Lambda carries no object metadata.
So every job also has a deterministic *job trace context*: trace id and root span id derived from
the job id (its time prefix + SHA-256, domain-separated; see `job_span_context`). A component that
receives no carrier starts its span in that context, and the job is still one trace; where a
carrier exists (object metadata, the vsock `trace` field) it names the same trace id and gives the
exact parent span.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
CARRIER_KEYS = ("traceparent", "tracestate")
_JOB_TRACE_DOMAIN = b"ccc.job-trace.v1:"


def inject(ctx: otel_context.Context | None = None) -> dict[str, str]:
    """The current (or given) span context as a carrier dict; empty when nothing is recording."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=ctx)
    return {k: v for k, v in carrier.items() if k in CARRIER_KEYS}


def job_span_context(job_id: str) -> trace.SpanContext:
    """The job's deterministic root: trace id = the job id's 8-hex time prefix (`identity.new_job_id`)
    followed by SHA-256(domain || job id)[:12]; root span id = SHA-256(...)[12:20].

    The time prefix makes the trace id an AWS X-Ray trace id (X-Ray requires its first 32 bits to be a
    recent Unix time), so the same trace id works in X-Ray and in any OTLP backend. A job id that is
    not hex (never valid, but this must not raise) hashes whole."""
    digest = hashlib.sha256(_JOB_TRACE_DOMAIN + job_id.encode("utf-8")).digest()
    prefix = job_id[:8]
    try:
        epoch = int(prefix, 16) if len(prefix) == 8 else int.from_bytes(digest[12:16], "big")
    except ValueError:
        epoch = int.from_bytes(digest[12:16], "big")
    trace_id = (epoch << 96 | int.from_bytes(digest[:12], "big")) or 1
    span_id = int.from_bytes(digest[12:20], "big") or 1
    return trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))


def job_trace_id(job_id: str) -> str:
    """The job's trace id as 32 hex digits (what the JSON Lines exporter writes)."""
    return f"{job_span_context(job_id).trace_id:032x}"


def job_context(job_id: str) -> otel_context.Context:
    """A context whose (remote, non-recording) parent is the job's deterministic root span."""
    return trace.set_span_in_context(trace.NonRecordingSpan(job_span_context(job_id)))


def extract(carrier: Mapping[str, str] | None, *, job_id: str | None = None) -> otel_context.Context:
    """A context to start child spans in; ignores malformed carriers (a bad header is not an error).

    Without a usable carrier, `job_id` selects the job's deterministic trace context instead.
    """
    clean = {k: v for k, v in (carrier or {}).items() if k in CARRIER_KEYS and isinstance(v, str) and len(v) < 512}
    ctx = _PROPAGATOR.extract(clean)
    if job_id is not None and not trace.get_current_span(ctx).get_span_context().is_valid:
        return job_context(job_id)
    return ctx

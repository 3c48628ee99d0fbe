"""Carry one job's trace context across boundaries as W3C trace-context strings.

The carrier is a plain str->str mapping so that it fits S3 user metadata (`x-amz-meta-traceparent`),
SQS message attributes and vsock job frames alike.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
CARRIER_KEYS = ("traceparent", "tracestate")


def inject(ctx: otel_context.Context | None = None) -> dict[str, str]:
    """The current (or given) span context as a carrier dict; empty when nothing is recording."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=ctx)
    return {k: v for k, v in carrier.items() if k in CARRIER_KEYS}


def extract(carrier: Mapping[str, str] | None) -> otel_context.Context:
    """A context to start child spans in; ignores malformed carriers (a bad header is not an error)."""
    clean = {k: v for k, v in (carrier or {}).items() if k in CARRIER_KEYS and isinstance(v, str) and len(v) < 512}
    return _PROPAGATOR.extract(clean)

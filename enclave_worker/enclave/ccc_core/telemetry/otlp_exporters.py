"""OTLP exporters, when their packages are installed.

Why optional: the enclave's pinned requirements carry no exporter (it has no network; its parent
exports for it), while the client, the Lambdas' layer and the parent agent install
`opentelemetry-exporter-otlp-proto-http` (and the dev environment the gRPC one, which
`opentelemetry-instrument`'s default protocol needs). A missing package means "no OTLP export",
said once by the caller, never an import error.
"""

from __future__ import annotations

import importlib
from typing import Any

from ccc_core.telemetry.otel_env import GRPC

_MODULES = {
    ("http/protobuf", "traces"): ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"),
    ("http/protobuf", "metrics"): ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "OTLPMetricExporter"),
    (GRPC, "traces"): ("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "OTLPSpanExporter"),
    (GRPC, "metrics"): ("opentelemetry.exporter.otlp.proto.grpc.metric_exporter", "OTLPMetricExporter"),
}


def _exporter(protocol: str, signal: str) -> Any | None:
    module_name, class_name = _MODULES[(protocol, signal)]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return getattr(module, class_name)()


def otlp_span_exporter(protocol: str) -> Any | None:
    """A span exporter configured from the OTEL_EXPORTER_OTLP_* variables, or None if not installed."""
    return _exporter(protocol, "traces")


def otlp_metric_exporter(protocol: str) -> Any | None:
    """A metric exporter configured from the OTEL_EXPORTER_OTLP_* variables, or None if not installed."""
    return _exporter(protocol, "metrics")

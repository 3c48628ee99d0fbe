"""A small OTLP/HTTP receiver for tests: what a real backend would be sent, decoded with the
OpenTelemetry protobuf definitions (`opentelemetry-proto`), so a test asserts on the wire format,
not on our own exporter's idea of it.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    status_code: int  # 0 unset, 1 ok, 2 error
    attributes: dict[str, Any]
    resource: dict[str, Any]


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def _attributes(key_values: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in key_values}


@dataclass
class OtlpReceiver:
    """Collects every span and metric name POSTed to /v1/traces and /v1/metrics."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    metric_names: list[tuple[str, str]] = field(default_factory=list)  # (service, metric name)
    bad_requests: int = 0
    bodies: list[bytes] = field(default_factory=list)  # every request body as received (leak scans)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> OtlpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                try:
                    receiver._ingest(self.path, body)
                except Exception:
                    with receiver._lock:
                        receiver.bad_requests += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _ingest(self, path: str, body: bytes) -> None:
        with self._lock:
            self.bodies.append(body)
        if path.rstrip("/").endswith("/v1/traces"):
            request = trace_service_pb2.ExportTraceServiceRequest()
            request.ParseFromString(body)
            spans = list(self._spans(request))
            with self._lock:
                self.spans.extend(spans)
        elif path.rstrip("/").endswith("/v1/metrics"):
            metric_request = metrics_service_pb2.ExportMetricsServiceRequest()
            metric_request.ParseFromString(body)
            names = [
                (str(_attributes(rm.resource.attributes).get("service.name")), metric.name)
                for rm in metric_request.resource_metrics
                for sm in rm.scope_metrics
                for metric in sm.metrics
            ]
            with self._lock:
                self.metric_names.extend(names)
        else:
            raise ValueError(f"unexpected path {path}")

    @staticmethod
    def _spans(request: Any) -> Iterator[ReceivedSpan]:
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    yield ReceivedSpan(
                        service=str(resource.get("service.name")),
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        status_code=span.status.code,
                        attributes=_attributes(span.attributes),
                        resource=resource,
                    )

    def snapshot(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

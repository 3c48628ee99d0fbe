"""Install tracer and meter providers for one process.

Locally (the embedded default) spans and metrics are written as JSON Lines under
`<state-dir>/telemetry/<service>.{spans,metrics}.jsonl`, every record carrying `service.name`,
so tests can scan them and `ccc report` can render them. On AWS the same code exports through
OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the ADOT collector / CloudWatch agent), and does
nothing otherwise. Independently, `emf_target` (the parent agent on AWS) adds a CloudWatch
embedded-metric-format exporter (`ccc.telemetry.emf`) for the metrics the dashboard reads.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from ccc_core.redaction import safe_attributes

# Optional: the OTLP exporter is not among the enclave's pins (the enclave exports only through its
# parent), so its absence means "no OTLP export", not an error.
try:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
except ImportError:
    OTLPMetricExporter = None  # type: ignore[assignment,misc]
    OTLPSpanExporter = None  # type: ignore[assignment,misc]

TELEMETRY_DIRNAME = "telemetry"
# Millisecond buckets for every histogram (job latency, inference, crypto): fine where jobs live.
MS_BUCKETS = (5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000)


class _JsonLinesFile:
    """Append-only JSON Lines file shared by the exporters of one process."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            for record in records:
                self._fh.write(json.dumps(record, sort_keys=True, default=str) + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


class JsonLinesSpanExporter(SpanExporter):
    def __init__(self, path: Path, service_name: str) -> None:
        self._file = _JsonLinesFile(path)
        self._service = service_name

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        records = []
        for span in spans:
            ctx = span.get_span_context()
            parent = span.parent
            records.append({
                "kind": "span",
                "service.name": self._service,
                "name": span.name,
                "trace_id": f"{ctx.trace_id:032x}" if ctx else None,
                "span_id": f"{ctx.span_id:016x}" if ctx else None,
                "parent_span_id": f"{parent.span_id:016x}" if parent else None,
                "start_ns": span.start_time,
                "end_ns": span.end_time,
                "duration_ms": ((span.end_time or 0) - (span.start_time or 0)) / 1e6,
                "status": span.status.status_code.name,
                "attributes": dict(span.attributes or {}),
                "links": [f"{link.context.trace_id:032x}" for link in span.links],
            })
        self._file.write(records)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._file.close()


class JsonLinesMetricExporter(MetricExporter):
    def __init__(self, path: Path, service_name: str) -> None:
        super().__init__()
        self._file = _JsonLinesFile(path)
        self._service = service_name

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        records: list[dict[str, Any]] = []
        for resource_metrics in metrics_data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in metric.data.data_points:
                        record: dict[str, Any] = {
                            "kind": "metric",
                            "service.name": self._service,
                            "name": metric.name,
                            "unit": metric.unit,
                            "time_ns": point.time_unix_nano,
                            "attributes": dict(point.attributes or {}),
                        }
                        for field in ("value", "count", "sum", "min", "max"):
                            if hasattr(point, field):
                                record[field] = getattr(point, field)
                        records.append(record)
        if records:
            self._file.write(records)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._file.close()


@dataclass
class TelemetryHandle:
    """What setup installed; call shutdown() before the process exits to flush."""

    service_name: str
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    directory: Path | None

    def tracer(self) -> trace.Tracer:
        return self.tracer_provider.get_tracer(self.service_name)

    def meter(self) -> metrics.Meter:
        return self.meter_provider.get_meter(self.service_name)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def telemetry_dir(state_dir: Path) -> Path:
    return state_dir / TELEMETRY_DIRNAME


def setup_telemetry(
    service_name: str,
    *,
    state_dir: Path | None = None,
    export_interval_ms: int = 2_000,
    set_global: bool = True,
    metric_exporters: Sequence[MetricExporter] = (),
) -> TelemetryHandle:
    """Install providers for `service_name`; JSON Lines under state_dir when given, else OTLP/none;
    plus every exporter of `metric_exporters` (the parent agent's CloudWatch EMF exporter), each
    read at most every 10 s: CloudWatch bills per metric datum."""
    resource = Resource.create(safe_attributes({"service.name": service_name, "service.namespace": "ccc"}))
    tracer_provider = TracerProvider(resource=resource)
    readers = []
    directory = telemetry_dir(state_dir) if state_dir is not None else None
    if directory is not None:
        tracer_provider.add_span_processor(
            BatchSpanProcessor(JsonLinesSpanExporter(directory / f"{service_name}.spans.jsonl", service_name),
                               schedule_delay_millis=500)
        )
        readers.append(PeriodicExportingMetricReader(
            JsonLinesMetricExporter(directory / f"{service_name}.metrics.jsonl", service_name),
            export_interval_millis=export_interval_ms,
        ))
    elif os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        _add_otlp(tracer_provider, readers)
    for exporter in metric_exporters:
        readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=max(export_interval_ms, 10_000)))
    views = [View(instrument_type=Histogram, aggregation=ExplicitBucketHistogramAggregation(MS_BUCKETS))]
    meter_provider = MeterProvider(resource=resource, metric_readers=readers, views=views)
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    return TelemetryHandle(service_name, tracer_provider, meter_provider, directory)


def _add_otlp(tracer_provider: TracerProvider, readers: list[Any]) -> None:
    """OTLP export on AWS (ADOT collector). Optional dependency: absent exporter means no export."""
    if OTLPSpanExporter is None or OTLPMetricExporter is None:
        return
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))

"""Install tracer and meter providers for one process.

Locally (the embedded default) spans and metrics are written as JSON Lines under
`<state-dir>/telemetry/<service>.{spans,metrics}.jsonl`, every record carrying `service.name`,
so tests can scan them and `ccc report` can render them. Independently, the standard OTEL_*
environment (`ccc_core.telemetry.otel_env`) adds OTLP export — both when both are configured, so a
local stack can feed a real backend and still render its report. A provider that is already
installed (by `opentelemetry-instrument`) is extended, never replaced. `emf_target` exporters (the
parent agent's CloudWatch embedded-metric-format exporter, `ccc.telemetry.emf`) are CCC's own
operations contract (dashboard, alarms) and are added whatever the OTEL_* variables say.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
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
from ccc_core.telemetry.job_root import JobRootIdGenerator
from ccc_core.telemetry.otel_env import OtelConfigError, OtelSettings, settings_from_environ
from ccc_core.telemetry.otlp_exporters import otlp_metric_exporter, otlp_span_exporter

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


INSTANCE_ATTRIBUTE = "service.instance.id"


def _instance(attributes: Mapping[str, Any]) -> dict[str, str]:
    """The record's process instance (OTel's `service.instance.id`: the SDK draws a random one per
    process unless OTEL_RESOURCE_ATTRIBUTES names it, as the local stack does per worker), so the
    readings of two parents of one fleet, written to one file, stay apart; {} when unset."""
    value = attributes.get(INSTANCE_ATTRIBUTE)
    return {INSTANCE_ATTRIBUTE: str(value)} if value else {}


class JsonLinesSpanExporter(SpanExporter):
    def __init__(self, path: Path, service_name: str) -> None:
        self._file = _JsonLinesFile(path)
        self._service = service_name

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        records = []
        for span in spans:
            ctx = span.get_span_context()
            parent = span.parent
            records.append(
                {
                    "kind": "span",
                    "service.name": self._service,
                    **_instance(span.resource.attributes),
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
                }
            )
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
                            **_instance(resource_metrics.resource.attributes),
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
    environ: Mapping[str, str] | None = None,
) -> TelemetryHandle:
    """Install providers for `service_name`: JSON Lines under state_dir when given, plus OTLP as the
    OTEL_* variables of `environ` (default: this process's) ask, plus every exporter of
    `metric_exporters` (the parent agent's CloudWatch EMF exporter), each read at most every 10 s:
    CloudWatch bills per metric datum. A bad OTEL_* value is one line on stderr and no OTLP, never a
    process that does not start: telemetry must not take the product down."""
    settings = _settings(os.environ if environ is None else environ)
    resource = Resource.create(safe_attributes({"service.name": service_name, "service.namespace": settings.namespace}))
    directory = telemetry_dir(state_dir) if state_dir is not None and not settings.disabled else None
    installed_tracers = trace.get_tracer_provider()
    reuse_tracers = isinstance(installed_tracers, TracerProvider) and not _ours(installed_tracers)
    tracer_provider: TracerProvider
    if isinstance(installed_tracers, TracerProvider) and reuse_tracers:
        # `opentelemetry-instrument` (or the embedding application) installed a provider with its own
        # exporters: add ours beside them; replacing it is refused by the API anyway.
        tracer_provider = installed_tracers
    else:
        tracer_provider = TracerProvider(resource=resource, id_generator=JobRootIdGenerator())
        tracer_provider._ccc_installed = True  # type: ignore[attr-defined]
    if directory is not None:
        tracer_provider.add_span_processor(
            BatchSpanProcessor(
                JsonLinesSpanExporter(directory / f"{service_name}.spans.jsonl", service_name),
                schedule_delay_millis=500,
            )
        )
    if settings.traces.enabled and not reuse_tracers:
        span_exporter = otlp_span_exporter(settings.traces.protocol)
        if span_exporter is None:
            _warn(f"OTLP/{settings.traces.protocol} span exporter not installed; spans stay local")
        else:
            tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))

    readers: list[Any] = []
    if directory is not None:
        readers.append(
            PeriodicExportingMetricReader(
                JsonLinesMetricExporter(directory / f"{service_name}.metrics.jsonl", service_name),
                export_interval_millis=export_interval_ms,
            )
        )
    if settings.metrics.enabled:
        metric_exporter = otlp_metric_exporter(settings.metrics.protocol)
        if metric_exporter is None:
            _warn(f"OTLP/{settings.metrics.protocol} metric exporter not installed; metrics stay local")
        else:
            readers.append(PeriodicExportingMetricReader(metric_exporter))
    for exporter in metric_exporters:
        readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=max(export_interval_ms, 10_000)))
    views = [View(instrument_type=Histogram, aggregation=ExplicitBucketHistogramAggregation(MS_BUCKETS))]
    meter_provider = MeterProvider(resource=resource, metric_readers=readers, views=views)
    meter_provider._ccc_installed = True  # type: ignore[attr-defined]
    if set_global and not settings.disabled:
        if not reuse_tracers:
            trace.set_tracer_provider(tracer_provider)
        installed_meters = metrics.get_meter_provider()
        # Metric readers cannot be added to an installed provider: then ours serves CCC's meters
        # through the handle (every CCC meter comes from `handle.meter()`) and the installed one
        # stays global for the instrumentation that installed it.
        if not (isinstance(installed_meters, MeterProvider) and not _ours(installed_meters)):
            metrics.set_meter_provider(meter_provider)
    return TelemetryHandle(service_name, tracer_provider, meter_provider, directory)


def otlp_relay_provider(service_name: str, *, environ: Mapping[str, str] | None = None) -> TracerProvider | None:
    """A tracer provider that exports over OTLP only, for spans one process emits on behalf of
    another (the parent, for its enclave: `enclave_worker.parent.enclave_spans`); None when the
    OTEL_* variables ask for no OTLP traces or the exporter is not installed."""
    settings = _settings(os.environ if environ is None else environ)
    if not settings.traces.enabled:
        return None
    exporter = otlp_span_exporter(settings.traces.protocol)
    if exporter is None:
        return None
    resource = Resource.create(
        safe_attributes({"service.name": service_name, "service.namespace": settings.namespace})
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _ours(provider: object) -> bool:
    return bool(getattr(provider, "_ccc_installed", False))


def _settings(environ: Mapping[str, str]) -> OtelSettings:
    try:
        return settings_from_environ(environ)
    except OtelConfigError as exc:
        _warn(f"{exc}; OTLP export is off")
        return settings_from_environ(
            {k: v for k, v in environ.items() if not k.startswith("OTEL_")}
            | {"OTEL_SDK_DISABLED": environ.get("OTEL_SDK_DISABLED", "")}
        )


def _warn(message: str) -> None:
    print(f"ccc telemetry: {message}", file=sys.stderr)

"""CloudWatch embedded metric format (EMF) export for the parent agent on AWS.

Why EMF: the enclave hosts already run the CloudWatch agent (it ships the parent's log file). With
`{"logs": {"metrics_collected": {"emf": {}}}}` in its configuration the agent listens on
tcp/udp 127.0.0.1:25888 and turns each EMF JSON document into CloudWatch metrics, using the host
role's `logs:PutLogEvents` — no OTLP collector to run, no `PutMetricData` calls from the agent.

What is published: only the OTel metrics `CLOUDWATCH_NAMES` maps, which is derived from
`ccc_core.telemetry.metric_registry` (the metrics whose registry row names the parent as a
CloudWatch emitter), under their registry CloudWatch name, unit and dimensions (namespace `CCC`,
dimension `Stage`; the CDK dashboard and alarms read the same rows). Every metric is published
per stage only, whatever its OTel attributes: none is per tenant. `ccc.jobs.failed` is
deliberately not published: `JobsFailed` is counted from the jobs table (job_events,
dead_letters), where each failed job appears once.

Counters and histograms are exported with delta temporality (each document covers one export
interval). A histogram point becomes an array of at most 100 representative values (bucket
midpoints repeated by their counts, thinned proportionally above 100), which CloudWatch accepts as
the values of one metric and from which it computes p50/p95 to bucket resolution.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from opentelemetry.sdk.metrics import Counter, Histogram, ObservableCounter, UpDownCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
)

from ccc.errors import CccError
from ccc_core.telemetry import metric_registry as registry

# OTel name -> CloudWatch name of every metric the parent publishes (tests/unit/test_emf_mapping.py).
CLOUDWATCH_NAMES: dict[str, str] = registry.otel_to_cloudwatch(registry.Emitter.PARENT)

MAX_VALUES = 100  # EMF: at most 100 values per metric per document


class EmfTargetError(CccError, ValueError):
    """The EMF target is not `tcp://host:port`, `udp://host:port`, `file:///path` or `stdout`."""


Sink = Callable[[Sequence[str]], None]


def histogram_values(
    bounds: Sequence[float], counts: Sequence[int], low: float, high: float
) -> tuple[list[float], int]:
    """Representative values of a histogram point (at most MAX_VALUES) and how many samples they stand for."""
    total = sum(counts)
    if total == 0:
        return [], 0
    edges = [low, *bounds, high]
    values: list[float] = []
    for index, count in enumerate(counts):
        if not count:
            continue
        lo, hi = max(edges[index], low), min(edges[index + 1], high)
        mid = (lo + hi) / 2 if hi >= lo else lo
        values.extend([round(mid, 3)] * count)
    if len(values) > MAX_VALUES:
        step = len(values) / MAX_VALUES
        values = [values[int(i * step)] for i in range(MAX_VALUES)]
    return values, total


def emf_document(
    *, namespace: str, stage: str, name: str, unit: str, value: float | list[float], timestamp_ms: int,
    dimensions: Mapping[str, str] | None = None, properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    dims = {registry.STAGE_DIMENSION: stage, **(dimensions or {})}
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {"Namespace": namespace, "Dimensions": [sorted(dims)], "Metrics": [{"Name": name, "Unit": unit}]}
            ],
        },
        **dims,
        **(properties or {}),
        name: value,
    }
    return document


class EmfMetricExporter(MetricExporter):
    """OTel metric exporter writing EMF documents (one per data point) to a sink."""

    def __init__(self, sink: Sink, *, namespace: str = registry.NAMESPACE, stage: str = "dev",
                 names: Mapping[str, str] = CLOUDWATCH_NAMES) -> None:
        delta = AggregationTemporality.DELTA
        super().__init__(preferred_temporality={Counter: delta, UpDownCounter: delta, Histogram: delta,
                                                ObservableCounter: delta})
        self._sink = sink
        self._namespace = namespace
        self._stage = stage
        self._names = dict(names)

    def documents(self, metrics_data: MetricsData) -> list[dict[str, Any]]:
        documents: list[dict[str, Any]] = []
        for resource_metrics in metrics_data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    cloudwatch_name = self._names.get(metric.name)
                    if cloudwatch_name is None:
                        continue
                    spec = registry.spec(cloudwatch_name)
                    for point in metric.data.data_points:
                        document = self._document(spec, point)
                        if document is not None:
                            documents.append(document)
        return documents

    def _document(self, spec: registry.MetricSpec, point: Any) -> dict[str, Any] | None:
        """One EMF document: the registry's name, unit and dimensions (a point lacking the attribute
        of a dimension is not published: it would land in another series)."""
        attributes = dict(point.attributes or {})
        value: float | list[float]
        if isinstance(point, HistogramDataPoint):
            values, _ = histogram_values(point.explicit_bounds, point.bucket_counts, point.min, point.max)
            if not values:
                return None
            value = values
        elif isinstance(point, NumberDataPoint):
            value = float(point.value)
        else:  # exponential histograms and others are not configured for the parent
            return None
        dimensions: dict[str, str] = {}
        for dimension in spec.dimensions:
            if dimension == registry.STAGE_DIMENSION:
                continue
            key = registry.DIMENSION_ATTRIBUTES[dimension]
            if key not in attributes:
                return None
            dimensions[dimension] = str(attributes[key])
        name = str(spec.cloudwatch)
        return emf_document(namespace=self._namespace, stage=self._stage, name=name, unit=spec.unit.value, value=value,
                            timestamp_ms=point.time_unix_nano // 1_000_000, dimensions=dimensions)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        documents = self.documents(metrics_data)
        if not documents:
            return MetricExportResult.SUCCESS
        try:
            self._sink([json.dumps(d, separators=(",", ":"), sort_keys=True) for d in documents])
        except OSError:
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


def _file_sink(path: Path) -> Sink:
    lock = threading.Lock()

    def write(lines: Sequence[str]) -> None:
        with lock, path.open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))

    return write


def _stream_sink(stream: IO[str]) -> Sink:
    def write(lines: Sequence[str]) -> None:
        stream.write("".join(line + "\n" for line in lines))
        stream.flush()

    return write


def _tcp_sink(host: str, port: int, timeout_s: float = 2.0) -> Sink:
    def write(lines: Sequence[str]) -> None:
        with socket.create_connection((host, port), timeout=timeout_s) as conn:
            conn.sendall("".join(line + "\n" for line in lines).encode())

    return write


def _udp_sink(host: str, port: int) -> Sink:
    def write(lines: Sequence[str]) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as conn:
            for line in lines:
                conn.sendto(line.encode(), (host, port))

    return write


def sink_for(target: str) -> Sink:
    """`tcp://127.0.0.1:25888` (the CloudWatch agent), `udp://...`, `file:///path`, or `stdout`."""
    if target == "stdout":
        return _stream_sink(sys.stdout)
    parts = urlsplit(target)
    if parts.scheme == "file" and parts.path.startswith("/"):
        return _file_sink(Path(parts.path))
    if parts.scheme in ("tcp", "udp"):
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            host, port = None, None
        if host and port:
            return _tcp_sink(host, port) if parts.scheme == "tcp" else _udp_sink(host, port)
    raise EmfTargetError(f"EMF target {target!r} must be tcp://host:port, udp://host:port, file:///path or stdout")

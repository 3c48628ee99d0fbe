"""CloudWatch embedded metric format (EMF) export for the parent agent on AWS.

Why EMF: the enclave hosts already run the CloudWatch agent (it ships the parent's log file). With
`{"logs": {"metrics_collected": {"emf": {}}}}` in its configuration the agent listens on
tcp/udp 127.0.0.1:25888 and turns each EMF JSON document into CloudWatch metrics, using the host
role's `logs:PutLogEvents` — no OTLP collector to run, no `PutMetricData` calls from the agent.

What is published: only the OTel metrics named in `CLOUDWATCH_NAMES` below, under the CloudWatch
names of `ccc_common.domain.cloudwatch_metrics` (the module the CDK dashboard and alarms read them from; namespace
`CCC`, dimension `Stage`). The differentially private releases also carry a `Tenant` dimension
(their values are noisy by construction); every other metric is published per stage only,
whatever its OTel attributes. `ccc.jobs.failed` is deliberately not published: `JobsFailed` is
counted from the jobs table (job_events, dead_letters), where each failed job appears once.

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

from ccc_common.domain import cloudwatch_metrics as cw
from ccc_core.telemetry import names
from ccc_core.telemetry.names import DP_METRICS

# OTel name (ccc_core.telemetry.names) -> CloudWatch name (ccc_common.domain.cloudwatch_metrics); every
# value is a metric the registry lists with the parent as an emitter (tests/unit/test_emf_mapping.py).
CLOUDWATCH_NAMES: dict[str, str] = {
    names.METRIC_JOB_LATENCY_MS: cw.JOB_LATENCY_MS,
    names.METRIC_ENCLAVE_INFER_MS: cw.INFERENCE_MS,
    names.METRIC_ATTESTATION_FAILURES: cw.ATTESTATION_FAILURES,
    names.METRIC_KMS_UNAVAILABLE: cw.KMS_UNAVAILABLE,
    names.METRIC_ENCLAVE_CPU: cw.ENCLAVE_CPU_PERCENT,
    names.METRIC_ENCLAVE_MEMORY: cw.ENCLAVE_MEMORY_BYTES,
    names.METRIC_ENCLAVE_IN_FLIGHT: cw.ENCLAVE_IN_FLIGHT,
    names.METRIC_ENCLAVE_UP: cw.ENCLAVE_UP,
    names.METRIC_DP_CATS: cw.DP_CATS_PER_DAY,
    names.METRIC_DP_UPLOADS: cw.DP_UPLOADS_PER_DAY,
}

MAX_VALUES = 100  # EMF: at most 100 values per metric per document
UNITS = {"ms": "Milliseconds", "By": "Bytes", "%": "Percent", "1": "Count", "s": "Seconds"}
# OTel attribute -> CloudWatch dimension, for the metrics whose meaning needs it.
_TENANT_DIMENSION = ("ccc.tenant", cw.TENANT_DIMENSION)
_PROPERTIES = {"ccc.day": "Day", "ccc.epsilon": "Epsilon"}


class EmfTargetError(ValueError):
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
    dims = {cw.STAGE_DIMENSION: stage, **(dimensions or {})}
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

    def __init__(self, sink: Sink, *, namespace: str = cw.NAMESPACE, stage: str = "dev",
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
                    unit = UNITS.get(metric.unit or "", "None")
                    for point in metric.data.data_points:
                        document = self._document(metric.name, cloudwatch_name, unit, point)
                        if document is not None:
                            documents.append(document)
        return documents

    def _document(self, otel_name: str, name: str, unit: str, point: Any) -> dict[str, Any] | None:
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
        properties: dict[str, Any] = {}
        if otel_name in DP_METRICS:
            key, dimension = _TENANT_DIMENSION
            if key not in attributes:
                return None
            dimensions[dimension] = str(attributes[key])
            properties = {label: attributes[k] for k, label in _PROPERTIES.items() if k in attributes}
        return emf_document(namespace=self._namespace, stage=self._stage, name=name, unit=unit, value=value,
                            timestamp_ms=point.time_unix_nano // 1_000_000, dimensions=dimensions,
                            properties=properties)

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

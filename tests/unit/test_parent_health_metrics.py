"""The parent exports enclave health and per-job metrics as OTel metrics (and EMF on AWS).

What an operator relies on: CPU/memory/in-flight/attestation metrics follow the enclave's health
replies (and survive an enclave restart); an unreachable enclave shows as up=0; no metric carries a
tenant; the EMF documents use the CloudWatch names the dashboard reads, with a Stage dimension.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader

from ccc.telemetry.emf import MAX_VALUES, EmfMetricExporter, EmfTargetError, histogram_values, sink_for
from ccc_core.telemetry import metric_registry as registry
from ccc_enclave.protocol.health_messages import PIPELINE_STEPS, EnclaveMetrics, EnclaveStatus, StageTiming
from ccc_enclave.protocol.job_messages import JobMetrics
from enclave_worker.parent.agent_metrics import ParentMetrics
from enclave_worker.parent.enclave_client import EnclaveUnavailable
from enclave_worker.parent.monitor import EnclaveMonitor

GIB = 1 << 30


def _status(*, uptime: float, cpu: float, ok: int = 0, failed: int = 0, busy: int = 0, rss: int = 320 << 20,
            in_flight: int = 1) -> EnclaveStatus:
    stages = {s: StageTiming(count=ok, total_ms=10.0 * ok, max_ms=12.0 if ok else 0.0) for s in PIPELINE_STEPS}
    metrics = EnclaveMetrics(cpu_s=cpu, memory_total_bytes=4 * GIB, memory_available_bytes=3 * GIB,
                               busy_refusals=busy, attestations_ok=ok, attestations_failed=failed, stages=stages)
    return EnclaveStatus(uptime_s=uptime, jobs_served=ok, jobs_failed=failed, in_flight=in_flight, concurrency=2,
                         model_name="m", model_sha256="ab" * 32, pcr0_hex="cd" * 48, cpu_count=2, rss_bytes=rss,
                         metrics=metrics)


@dataclass
class FakeEnclave:
    statuses: list[Any] = field(default_factory=list)

    def health(self, *, timeout_s: float) -> EnclaveStatus:
        item = self.statuses.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


class Readings:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        self.metrics = ParentMetrics(self.provider.get_meter("test"))

    def points(self) -> list[tuple[str, dict[str, Any], Any]]:
        data = self.reader.get_metrics_data()
        found = []
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        found.append((metric.name, dict(point.attributes or {}), point))
        return found

    def value(self, name: str, **attributes: Any) -> Any:
        matches = [pt for n, a, pt in self.points() if n == name and all(a.get(k) == v for k, v in attributes.items())]
        assert matches, f"no point for {name} {attributes}"
        point = matches[-1]
        return getattr(point, "value", None) if hasattr(point, "value") else point


def test_health_replies_become_enclave_metrics_and_survive_a_restart() -> None:
    readings = Readings()
    enclave = FakeEnclave([
        _status(uptime=10.0, cpu=2.0, ok=3, failed=0, busy=1),
        _status(uptime=20.0, cpu=7.0, ok=5, failed=1, busy=1),  # 5 CPU s in 10 s on 2 CPUs: 25 %
        EnclaveUnavailable("gone"),
        _status(uptime=1.0, cpu=0.5, ok=1, failed=0, busy=0),  # restarted: counters start again
    ])
    monitor = EnclaveMonitor(enclave, readings.metrics)
    assert monitor.poll_health() and monitor.poll_health()
    assert readings.value(registry.METRIC_ENCLAVE_CPU) == pytest.approx(25.0)
    assert readings.value(registry.METRIC_ENCLAVE_UP) == 1
    assert readings.value(registry.METRIC_ENCLAVE_MEMORY) == 320 << 20
    assert readings.value(registry.METRIC_ENCLAVE_MEMORY_AVAILABLE) == 3 * GIB
    assert readings.value(registry.METRIC_ENCLAVE_IN_FLIGHT) == 1
    assert readings.value(registry.METRIC_ATTESTATIONS) == 5
    assert readings.value(registry.METRIC_ATTESTATION_FAILURES) == 1
    assert readings.value(registry.METRIC_ENCLAVE_BUSY) == 1
    assert readings.value(registry.METRIC_ENCLAVE_STAGE_MEAN_MS, **{"ccc.stage": "infer"}) == pytest.approx(10.0)
    assert not monitor.poll_health()
    assert readings.value(registry.METRIC_ENCLAVE_UP) == 0
    assert monitor.poll_health()
    assert readings.value(registry.METRIC_ATTESTATIONS) == 6  # 5 before the restart + 1 after
    assert readings.value(registry.METRIC_ATTESTATION_FAILURES) == 1


def test_health_of_an_older_enclave_without_metrics_still_exports_the_basics() -> None:
    readings = Readings()
    old = EnclaveStatus(uptime_s=5.0, jobs_served=1, jobs_failed=0, in_flight=0, concurrency=2, model_name="m",
                        model_sha256="ab" * 32, pcr0_hex="cd" * 48, cpu_count=2, rss_bytes=GIB)
    EnclaveMonitor(FakeEnclave([old]), readings.metrics).poll_health()
    assert readings.value(registry.METRIC_ENCLAVE_MEMORY) == GIB
    assert all(n != registry.METRIC_ENCLAVE_CPU for n, _, _ in readings.points())


def test_job_metrics_carry_outcome_but_no_tenant() -> None:
    readings = Readings()
    readings.metrics.job_handled("done", None, 120.0)
    readings.metrics.job_handled("failed", "bad_image", 30.0)
    readings.metrics.job_handled("retry", "kms_unavailable", 5.0)
    readings.metrics.enclave_timings(JobMetrics(decrypt_ms=10.0, infer_ms=75.0, encrypt_ms=20.0, attest_ms=5.0))
    assert readings.value(registry.METRIC_JOBS, **{"ccc.outcome": "done"}) == 1
    assert readings.value(registry.METRIC_JOBS_FAILED, **{"ccc.code": "bad_image"}) == 1
    assert readings.value(registry.METRIC_KMS_UNAVAILABLE) == 1
    latency = readings.value(registry.METRIC_JOB_LATENCY_MS, **{"ccc.outcome": "done"})
    assert latency.count == 1 and latency.sum == 120.0
    assert readings.value(registry.METRIC_ENCLAVE_INFER_MS).sum == 75.0
    assert readings.value(registry.METRIC_ENCLAVE_CRYPTO_MS, **{"ccc.stage": "decrypt"}).sum == 10.0
    assert not any("ccc.tenant" in a for _, a, _ in readings.points())


# ----- EMF ---------------------------------------------------------------------------------


def _emf_world() -> tuple[ParentMetrics, MeterProvider, list[dict[str, Any]]]:
    documents: list[dict[str, Any]] = []
    exporter = EmfMetricExporter(lambda lines: documents.extend(json.loads(line) for line in lines),
                                 namespace="CCC", stage="dev")
    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)])
    return ParentMetrics(provider.get_meter("test")), provider, documents


def test_emf_documents_use_the_dashboard_names_and_stage_dimension() -> None:
    metrics, provider, documents = _emf_world()
    for ms in (40.0, 80.0, 300.0):
        metrics.job_handled("done", None, ms)
    metrics.job_handled("failed", "decrypt_failed", 20.0)
    metrics.enclave_timings(JobMetrics(decrypt_ms=10.0, infer_ms=75.0, encrypt_ms=20.0, attest_ms=5.0))
    metrics.enclave_health(_status(uptime=1.0, cpu=0.1, failed=2))
    provider.force_flush()
    by_name: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        directive = document["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "CCC" and document["Stage"] == "dev"
        for metric in directive["Metrics"]:
            by_name.setdefault(metric["Name"], []).append(document)
    # CPU needs two readings; the crypto histogram and stage means are not CloudWatch metrics.
    # JobsFailed is counted from the jobs table by the Lambdas (each failed job once), not here.
    assert set(by_name) == {"JobLatencyMs", "InferenceMs", "AttestationFailures", "EnclaveUp",
                            "EnclaveMemoryBytes", "EnclaveInFlight"}
    latency_values = sorted(v for d in by_name["JobLatencyMs"] for v in d["JobLatencyMs"])
    assert len(latency_values) == 4 and latency_values[0] < 40.0 < latency_values[-1]
    assert by_name["InferenceMs"][0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Milliseconds"
    assert sum(d["AttestationFailures"] for d in by_name["AttestationFailures"]) == 2
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage"]] for d in by_name["JobLatencyMs"])
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage"]] for d in documents)
    assert not any("ccc." in key for d in documents for key in d)  # OTel names never reach CloudWatch
    documents.clear()
    metrics.job_handled("done", None, 50.0)
    provider.force_flush()
    jobs = [v for d in documents if "JobLatencyMs" in d for v in d["JobLatencyMs"]]
    assert len(jobs) == 1  # delta temporality: each document covers one interval


def test_histogram_values_are_representative_and_capped() -> None:
    values, total = histogram_values([10.0, 100.0], [2, 3, 0], low=4.0, high=60.0)
    assert total == 5 and values == [7.0] * 2 + [35.0] * 3
    many, total = histogram_values([10.0], [500, 500], low=1.0, high=20.0)
    assert total == 1000 and len(many) == MAX_VALUES and many.count(5.5) == 50


def test_emf_targets_are_validated_and_tcp_delivers_lines(tmp_path) -> None:
    for bad in ("http://x:1", "tcp://host", "file://relative", "udp://:99"):
        with pytest.raises(EmfTargetError):
            sink_for(bad)
    sink_for(f"file://{tmp_path}/emf.log")(["{}", "{}"])
    assert (tmp_path / "emf.log").read_text() == "{}\n{}\n"
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def accept() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(4096):
                received.append(chunk)

    thread = threading.Thread(target=accept)
    thread.start()
    sink_for(f"tcp://127.0.0.1:{server.getsockname()[1]}")(['{"a":1}', '{"b":2}'])
    thread.join(5)
    server.close()
    assert b"".join(received) == b'{"a":1}\n{"b":2}\n'

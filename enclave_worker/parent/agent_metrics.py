"""The parent agent's OpenTelemetry instruments: per-job metrics and enclave health.

Why the parent: it is the component outside the enclave that sees every job's outcome and timing
(never its content) and can poll the enclave's health channel. Each instrument's name, unit and
description come from its row in `ccc_core.telemetry.metric_registry`; the exporter is whatever
`ccc_core.telemetry.setup.setup_telemetry` installed (JSON Lines locally, EMF/OTLP on AWS). Every
attribute passes `safe_attributes`.

No metric carries a tenant or anything derived from image content: job counters and latencies
are per enclave host, and the enclave's timings arrive already coarsened (job_messages.JobMetrics).
"""

from __future__ import annotations

from opentelemetry import metrics

from ccc_core.redaction import safe_attributes
from ccc_core.telemetry import metric_registry as registry
from ccc_enclave.protocol.health_messages import EnclaveStatus
from ccc_enclave.protocol.job_messages import JobMetrics


class _Instruments:
    """Creates instruments for registered metrics only, with the registry's unit and description."""

    def __init__(self, meter: metrics.Meter) -> None:
        self._meter = meter

    def counter(self, name: str) -> metrics.Counter:
        spec = registry.otel(name)
        return self._meter.create_counter(name, unit=spec.unit.otel, description=spec.description)

    def histogram(self, name: str) -> metrics.Histogram:
        spec = registry.otel(name)
        return self._meter.create_histogram(name, unit=spec.unit.otel, description=spec.description)

    def gauge(self, name: str) -> metrics._Gauge:  # the API's synchronous gauge type has no public name yet
        spec = registry.otel(name)
        return self._meter.create_gauge(name, unit=spec.unit.otel, description=spec.description)


class _Cumulative:
    """Turns a counter the enclave reports since its boot into increments (a restart resets it)."""

    def __init__(self) -> None:
        self._last: int | None = None

    def delta(self, value: int) -> int:
        previous, self._last = self._last, value
        if previous is None:
            return value
        return value - previous if value >= previous else value


class ParentMetrics:
    def __init__(self, meter: metrics.Meter | None = None) -> None:
        meter = meter or metrics.get_meter("ccc.parent")
        make = _Instruments(meter)
        self.jobs = make.counter(registry.METRIC_JOBS)
        self.jobs_failed = make.counter(registry.METRIC_JOBS_FAILED)
        self.kms_unavailable = make.counter(registry.METRIC_KMS_UNAVAILABLE)
        self.latency = make.histogram(registry.METRIC_JOB_LATENCY_MS)
        self.infer = make.histogram(registry.METRIC_ENCLAVE_INFER_MS)
        self.crypto = make.histogram(registry.METRIC_ENCLAVE_CRYPTO_MS)
        self.up = make.gauge(registry.METRIC_ENCLAVE_UP)
        self.cpu = make.gauge(registry.METRIC_ENCLAVE_CPU)
        self.memory = make.gauge(registry.METRIC_ENCLAVE_MEMORY)
        self.memory_available = make.gauge(registry.METRIC_ENCLAVE_MEMORY_AVAILABLE)
        self.in_flight = make.gauge(registry.METRIC_ENCLAVE_IN_FLIGHT)
        self.stage_mean = make.gauge(registry.METRIC_ENCLAVE_STAGE_MEAN_MS)
        self.busy = make.counter(registry.METRIC_ENCLAVE_BUSY)
        self.attestations = make.counter(registry.METRIC_ATTESTATIONS)
        self.attestation_failures = make.counter(registry.METRIC_ATTESTATION_FAILURES)
        self._busy = _Cumulative()
        self._attest_ok = _Cumulative()
        self._attest_failed = _Cumulative()
        self._cpu_baseline: tuple[float, float] | None = None  # (cpu_s, uptime_s) of the last reading

    # ----- per job ---------------------------------------------------------------------------
    def job_handled(self, outcome: str, code: str | None, elapsed_ms: float) -> None:
        attributes = safe_attributes({"ccc.outcome": outcome})
        self.jobs.add(1, attributes)
        self.latency.record(elapsed_ms, attributes)
        if outcome == "failed":
            self.jobs_failed.add(1, safe_attributes({"ccc.code": code or "unknown"}))
        if code == "kms_unavailable":
            self.kms_unavailable.add(1)

    def enclave_timings(self, timings: JobMetrics) -> None:
        self.infer.record(timings.infer_ms)
        for stage, ms in (("decrypt", timings.decrypt_ms), ("encrypt", timings.encrypt_ms),
                          ("attest", timings.attest_ms)):
            self.crypto.record(ms, safe_attributes({"ccc.stage": stage}))

    # ----- health channel --------------------------------------------------------------------
    def enclave_down(self) -> None:
        self.up.set(0)

    def enclave_health(self, status: EnclaveStatus) -> None:
        self.up.set(1)
        self.memory.set(status.rss_bytes)
        self.in_flight.set(status.in_flight)
        m = status.metrics
        if m is None:  # an enclave of the previous release: identity and counters only
            return
        if m.memory_available_bytes:
            self.memory_available.set(m.memory_available_bytes)
        baseline, self._cpu_baseline = self._cpu_baseline, (m.cpu_s, status.uptime_s)
        if baseline is not None and status.uptime_s > baseline[1] and m.cpu_s >= baseline[0]:
            wall = status.uptime_s - baseline[1]
            self.cpu.set(round(100.0 * (m.cpu_s - baseline[0]) / wall / max(1, status.cpu_count), 2))
        self.busy.add(self._busy.delta(m.busy_refusals))
        self.attestations.add(self._attest_ok.delta(m.attestations_ok))
        self.attestation_failures.add(self._attest_failed.delta(m.attestations_failed))
        for stage, timing in m.stages.items():
            if timing.count:
                self.stage_mean.set(round(timing.total_ms / timing.count, 3), safe_attributes({"ccc.stage": stage}))

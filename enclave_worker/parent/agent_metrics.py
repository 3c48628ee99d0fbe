"""The parent agent's OpenTelemetry instruments: per-job metrics, enclave health, DP releases.

Why the parent: it is the component outside the enclave that sees every job's outcome and timing
(never its content) and can poll the enclave's health channel. Names come from
`ccc_core.telemetry.names`; the exporter is whatever `ccc_core.telemetry.setup.setup_telemetry` installed
(JSON Lines locally, EMF/OTLP on AWS). Every attribute passes `safe_attributes`.

Only one kind of metric carries a tenant: the differentially private releases, whose values are
noisy by construction. Job counters and latencies are per enclave host, never per tenant.
"""

from __future__ import annotations

from opentelemetry import metrics

from ccc_core.redaction import safe_attributes
from ccc_core.telemetry import names
from ccc_enclave.protocol.health_messages import EnclaveStatus
from ccc_enclave.protocol.job_messages import JobMetrics
from ccc_enclave.protocol.privacy_messages import PrivacyReleaseReply

_METRIC_OF = {"cats": names.METRIC_DP_CATS, "uploads": names.METRIC_DP_UPLOADS}


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
        self.jobs = meter.create_counter(names.METRIC_JOBS, unit="1", description="jobs handled, by outcome")
        self.jobs_failed = meter.create_counter(names.METRIC_JOBS_FAILED, unit="1",
                                                description="jobs that failed for good (failure record)")
        self.kms_unavailable = meter.create_counter(names.METRIC_KMS_UNAVAILABLE, unit="1",
                                                    description="jobs that met KMS throttling or outage")
        self.latency = meter.create_histogram(names.METRIC_JOB_LATENCY_MS, unit="ms",
                                              description="parent job time: inbox GET to result PUT")
        self.infer = meter.create_histogram(names.METRIC_ENCLAVE_INFER_MS, unit="ms")
        self.crypto = meter.create_histogram(names.METRIC_ENCLAVE_CRYPTO_MS, unit="ms")
        self.up = meter.create_gauge(names.METRIC_ENCLAVE_UP, unit="1")
        self.cpu = meter.create_gauge(names.METRIC_ENCLAVE_CPU, unit="%")
        self.memory = meter.create_gauge(names.METRIC_ENCLAVE_MEMORY, unit="By")
        self.memory_available = meter.create_gauge(names.METRIC_ENCLAVE_MEMORY_AVAILABLE, unit="By")
        self.in_flight = meter.create_gauge(names.METRIC_ENCLAVE_IN_FLIGHT, unit="1")
        self.stage_mean = meter.create_gauge(names.METRIC_ENCLAVE_STAGE_MEAN_MS, unit="ms")
        self.busy = meter.create_counter(names.METRIC_ENCLAVE_BUSY, unit="1")
        self.attestations = meter.create_counter(names.METRIC_ATTESTATIONS, unit="1")
        self.attestation_failures = meter.create_counter(names.METRIC_ATTESTATION_FAILURES, unit="1")
        self.dp = {metric: meter.create_gauge(name, unit="1") for metric, name in _METRIC_OF.items()}
        self.dp_refused = meter.create_counter(names.METRIC_DP_REFUSED, unit="1")
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

    # ----- differential privacy --------------------------------------------------------------
    def privacy_released(self, reply: PrivacyReleaseReply) -> None:
        """Export the enclave's noisy releases (the only per-tenant numbers in telemetry)."""
        for release in reply.releases:
            attributes = safe_attributes({"ccc.tenant": release.tenant, "ccc.day": release.day,
                                          "ccc.epsilon": release.epsilon})
            self.dp[release.metric].set(release.value, attributes)
        if reply.refused:
            self.dp_refused.add(reply.refused)

"""Span and metric names: one vocabulary for every process, the report and the dashboard."""

from __future__ import annotations

# Spans (one job = one trace: client submit -> parent job -> enclave stages; Lambdas linked by job id).
SPAN_CLIENT_SUBMIT = "ccc.client.submit"
SPAN_CLIENT_RESULT = "ccc.client.result"
SPAN_PARENT_JOB = "ccc.parent.job"
SPAN_ENCLAVE_JOB = "ccc.enclave.job"
SPAN_ENCLAVE_DECRYPT = "ccc.enclave.decrypt"
SPAN_ENCLAVE_INFER = "ccc.enclave.infer"
SPAN_ENCLAVE_ENCRYPT = "ccc.enclave.encrypt"
SPAN_ENCLAVE_ATTEST = "ccc.enclave.attest"
SPAN_FN_PREFIX = "ccc.fn."

# Metrics.
METRIC_QUEUE_VISIBLE = "ccc.queue.visible"
METRIC_QUEUE_IN_FLIGHT = "ccc.queue.in_flight"
METRIC_FLEET_DESIRED = "ccc.fleet.desired"
METRIC_FLEET_RUNNING = "ccc.fleet.running"
METRIC_JOB_LATENCY_MS = "ccc.job.latency_ms"
METRIC_JOBS = "ccc.jobs"
METRIC_ENCLAVE_INFER_MS = "ccc.enclave.infer_ms"
METRIC_ENCLAVE_CRYPTO_MS = "ccc.enclave.crypto_ms"
METRIC_ENCLAVE_CPU = "ccc.enclave.cpu_percent"
METRIC_ENCLAVE_MEMORY = "ccc.enclave.memory_bytes"
METRIC_ENCLAVE_IN_FLIGHT = "ccc.enclave.in_flight"
METRIC_ATTESTATION_FAILURES = "ccc.attestation.failures"

# The enclave's internal stages, in pipeline order, for the per-stage breakdown.
ENCLAVE_STAGES = (SPAN_ENCLAVE_DECRYPT, SPAN_ENCLAVE_INFER, SPAN_ENCLAVE_ENCRYPT, SPAN_ENCLAVE_ATTEST)

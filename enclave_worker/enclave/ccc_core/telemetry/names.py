"""Span and metric names: one vocabulary for every process, the report and the dashboard.

OpenTelemetry names (dotted, lower case) are what the processes emit and what `ccc report`
reads. CloudWatch names live in `ccc_common.domain.cloudwatch_metrics` (the module the CDK dashboard and alarms
read); the parent's EMF exporter maps some OTel names to them (`ccc.telemetry.emf.CLOUDWATCH_NAMES`)
and the Lambdas publish Powertools metrics under them directly.
"""

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
SPAN_FN_JOB_EVENTS = SPAN_FN_PREFIX + "job_events"

# Span attributes every job span carries.
ATTR_JOB_ID = "ccc.job_id"
ATTR_TENANT = "ccc.tenant"

# Metrics: queue and fleet (local supervisor; on AWS the SQS / Auto Scaling metrics).
METRIC_QUEUE_VISIBLE = "ccc.queue.visible"
METRIC_QUEUE_IN_FLIGHT = "ccc.queue.in_flight"
METRIC_QUEUE_OLDEST_AGE_S = "ccc.queue.oldest_age_s"
METRIC_DLQ_VISIBLE = "ccc.dlq.visible"
METRIC_FLEET_DESIRED = "ccc.fleet.desired"
METRIC_FLEET_RUNNING = "ccc.fleet.running"
# Parent agent, per job.
METRIC_JOB_LATENCY_MS = "ccc.job.latency_ms"
METRIC_JOBS = "ccc.jobs"  # attribute ccc.outcome (done, failed, retry, ...)
METRIC_JOBS_FAILED = "ccc.jobs.failed"  # permanent failures (failure record written)
METRIC_KMS_UNAVAILABLE = "ccc.local.kms.unavailable"  # jobs that met KMS throttling / 5xx / unreachable
METRIC_ENCLAVE_INFER_MS = "ccc.enclave.infer_ms"
METRIC_ENCLAVE_CRYPTO_MS = "ccc.enclave.crypto_ms"  # attribute ccc.stage = decrypt | encrypt | attest
# Enclave health (polled by the parent over the health channel; metadata only).
METRIC_ENCLAVE_UP = "ccc.enclave.up"
METRIC_ENCLAVE_CPU = "ccc.enclave.cpu_percent"
METRIC_ENCLAVE_MEMORY = "ccc.enclave.memory_bytes"  # resident set of the enclave server
METRIC_ENCLAVE_MEMORY_AVAILABLE = "ccc.enclave.memory_available_bytes"  # of the enclave VM
METRIC_ENCLAVE_IN_FLIGHT = "ccc.enclave.in_flight"
METRIC_ENCLAVE_BUSY = "ccc.enclave.busy_refusals"
METRIC_ENCLAVE_STAGE_MEAN_MS = "ccc.enclave.stage_mean_ms"  # attribute ccc.stage; mean since enclave boot
METRIC_ATTESTATIONS = "ccc.attestation.ok"
METRIC_ATTESTATION_FAILURES = "ccc.attestation.failures"
# Differentially private content aggregates (released by the enclave, exported by the parent).
METRIC_DP_CATS = "ccc.dp.cats_per_day"  # attributes ccc.tenant, ccc.day, ccc.epsilon
METRIC_DP_UPLOADS = "ccc.dp.uploads_per_day"
METRIC_DP_REFUSED = "ccc.dp.refused"  # releases the epsilon budget refused (no tenant attribute)
DP_METRICS = (METRIC_DP_CATS, METRIC_DP_UPLOADS)

# The enclave's internal stages, in pipeline order, for the per-stage breakdown.
ENCLAVE_STAGES = (SPAN_ENCLAVE_DECRYPT, SPAN_ENCLAVE_INFER, SPAN_ENCLAVE_ENCRYPT, SPAN_ENCLAVE_ATTEST)

"""Span and span-attribute names: one trace vocabulary for every process and the report.

OpenTelemetry span names (dotted, lower case) are what the processes emit and what `ccc report`
reads. Metric names are not here: each metric (its OpenTelemetry name, CloudWatch name, unit,
emitters and dimensions) is one row of `ccc_core.telemetry.metric_registry`.
"""

from __future__ import annotations

# Spans (one job = one trace: client submit -> parent job -> enclave stages; Lambdas linked by job id).
# The job root: emitted once, by the client that creates the job, with the job's deterministic ids.
SPAN_JOB_ROOT = "ccc.job"
SPAN_CLIENT_SUBMIT = "ccc.client.submit"
SPAN_CLIENT_RESULT = "ccc.client.result"
# Children of submit / result: where the client's own time goes (the report's waterfall).
SPAN_CLIENT_ENCRYPT = "ccc.client.encrypt"
SPAN_CLIENT_UPLOAD = "ccc.client.upload"
SPAN_CLIENT_FETCH = "ccc.client.fetch"
SPAN_CLIENT_VERIFY = "ccc.client.verify"
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

# The enclave's internal stages, in pipeline order, for the per-stage breakdown.
ENCLAVE_STEP_SPANS = (SPAN_ENCLAVE_DECRYPT, SPAN_ENCLAVE_INFER, SPAN_ENCLAVE_ENCRYPT, SPAN_ENCLAVE_ATTEST)

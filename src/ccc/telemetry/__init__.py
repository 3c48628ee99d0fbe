"""OpenTelemetry for every CCC process, with metadata-only attributes.

Why one module: every process (client, parent agent, enclave, local stack, in-process Lambdas)
must export the same way and must obey the same rule: telemetry carries metadata (job ids,
sizes, timings, status codes), never image bytes or results. `setup_telemetry` installs the
providers; `safe_attributes` is the single gate attributes pass through; `inject`/`extract`
carry one job's trace across process and service boundaries (S3 object metadata, SQS message
attributes, vsock frames) as W3C `traceparent`.
"""

from ccc.telemetry.attributes import UnsafeAttributeError, safe_attributes
from ccc.telemetry.propagation import extract, inject, job_context, job_trace_id
from ccc.telemetry.setup import TelemetryHandle, setup_telemetry

__all__ = [
    "TelemetryHandle",
    "UnsafeAttributeError",
    "extract",
    "inject",
    "job_context",
    "job_trace_id",
    "safe_attributes",
    "setup_telemetry",
]

"""OpenTelemetry for every CCC process, with metadata-only attributes.

Why one module: every process (client, parent agent, enclave, local stack, in-process Lambdas)
must export the same way and must obey the same rule: telemetry carries metadata (job ids,
sizes, timings, status codes), never image bytes or results. `setup.setup_telemetry` installs the
providers; `ccc_core.redaction.safe_attributes` (the one redaction rule, refusing) is the gate attributes pass;
`propagation.inject`/`extract` carry one job's trace across process and service boundaries
(S3 object metadata, SQS message attributes, vsock frames) as W3C `traceparent`.
"""

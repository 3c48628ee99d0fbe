"""Host-side telemetry: CloudWatch EMF export, the local stack's queue/fleet sampler, the leak scan.

Set-up, propagation and span/metric names are shared with the enclave and live in
`ccc_core.telemetry`; the redaction gate is `ccc_core.redaction`.
"""

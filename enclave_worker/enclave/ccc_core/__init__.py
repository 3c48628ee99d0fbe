"""The shared core of CCC: what every process, trusted or not, must agree on.

Job identity and encryption context (`identity`), limits (`limits`), the attestation document
format (`attestation`), the result document the enclave writes and the client reads
(`result_document`, on the strict versioned-JSON discipline of `versioned`), the one redaction
gate for logs and traces (`redaction`, `logs`) and telemetry set-up (`telemetry`). It ships inside
the enclave distribution because the enclave runs it; everything else imports it from here. It
imports nothing else from this repository.
"""

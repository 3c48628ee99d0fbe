"""Parent agent and enclave server of the Confidential Cat Counter (see docs/protocol.md).

Layout:
    enclave/   the enclave distribution `ccc-enclave` (measured into PCR0): `ccc_core` (shared
               core) and `ccc_enclave` (server, pipeline, `ccc_enclave.protocol` frames and
               messages, transport, KMS relay, NSM, counting)
    parent/    host agent: SQS -> S3 inbox -> enclave -> S3 results, IMDSv2, drain
"""

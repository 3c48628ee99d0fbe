"""The parent agent on the EC2 host: SQS -> S3 inbox -> enclave -> S3 results; see docs/protocol.md.

Run: `python -m enclave_worker.parent --config FILE.json` (format in `enclave_worker.parent.agent_config`).
"""

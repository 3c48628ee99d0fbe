"""The library the Lambdas share (shipped as their layer with `ccc_core`), also used by the CDK
app, the parent agent and the local stack.

Split by role:
    domain/         pure domain and policies (no AWS SDK, no I/O)
    aws/            AWS adapters behind the domain's ports
    contracts/      formats that cross a process boundary outside the enclave
    observability   Lambda-only logger, metrics and tracer (Powertools)
It depends on the standard library, pydantic and `ccc_core` only, so it ships as a small layer.
"""

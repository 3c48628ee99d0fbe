"""The root of every error the enclave program raises.

Why one root: the server turns any `EnclaveError` it did not map to a protocol error code into
`internal` without a traceback leaving the enclave; each subclass keeps its builtin base
(`ValueError` for bad input, `RuntimeError` for a failing dependency).
"""

from __future__ import annotations


class EnclaveError(Exception):
    """Base of this package's errors."""

"""The root of every error `ccc_core` raises.

Why one root: a caller (the enclave, the client, a Lambda) can tell "the shared core refused this"
from a bug, with one `except`; each subclass keeps its builtin base (`ValueError` for bad input)
so existing handlers keep working.
"""

from __future__ import annotations


class CoreError(Exception):
    """Base of this package's errors."""

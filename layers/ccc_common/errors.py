"""The root of every error `ccc_common` (the Lambda layer) raises.

Why one root: a handler can tell "the shared library refused this" from a bug with one `except`;
each subclass keeps its builtin base.
"""

from __future__ import annotations


class CommonError(Exception):
    """Base of this package's errors."""

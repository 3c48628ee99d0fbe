"""The root of every error the parent agent raises (configuration, IMDS, the enclave link)."""

from __future__ import annotations


class ParentError(Exception):
    """Base of this package's errors."""

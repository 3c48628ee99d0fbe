"""Client errors: each carries a reason a user can act on."""

from __future__ import annotations

from ccc.errors import CccError


class ClientError(CccError, RuntimeError):
    """Base class: the client could not do what was asked (the message says why)."""


class InputError(ClientError):
    """An image path that cannot be submitted (missing, unreadable, empty, too large)."""


class TargetError(ClientError):
    """The stack to talk to cannot be found or is incompletely described."""


class VerificationError(ClientError):
    """A result whose attestation or encryption context does not prove it came from our enclave.

    `reason` is a short stable code a caller can branch on and print next to `verified: false`
    (`ccc.client.provenance` defines the codes it raises: `input_mismatch`, `pcr_mismatch`, ...);
    `unverified` when no finer code applies.
    """

    def __init__(self, message: str, reason: str = "unverified") -> None:
        super().__init__(message)
        self.reason = reason


class JobFailed(ClientError):
    """The pipeline ended the job as failed; `reason` comes from the failure record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownJob(ClientError):
    """The jobs API knows no such job for this tenant (it does not exist, or is another tenant's,
    which a tenant must not be able to tell apart). Waiting cannot help."""


class WaitTimeout(ClientError):
    """Neither a result nor a failure record appeared within the timeout."""

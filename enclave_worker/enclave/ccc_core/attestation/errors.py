"""The one exception every attestation failure raises.

Callers (the KMS gateway, the client, the CLI) only need to know *that* a document was refused
and *why*, in words a person can act on; a single type keeps their `except` clauses honest.
"""

from __future__ import annotations

from ccc_core.errors import CoreError


class AttestationError(CoreError, ValueError):
    """An attestation document is malformed, not authentic, or does not satisfy the policy.

    `reason` is a short human sentence (never contains secret material) suitable for logs and
    for the CLI's `{"valid": false, "reason": ...}` answer.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

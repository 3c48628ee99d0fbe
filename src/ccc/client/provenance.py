"""Verify that a result came from the expected enclave: the client's provenance check.

Why a module of its own: this is the one decision that makes a result trustworthy, so it is kept
small, pure and unit-tested apart from the network code around it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from ccc.attestation import AttestationPolicy, verify_document
from ccc.client.errors import VerificationError
from ccc_core.attestation.document import AttestationDocument, parse_document
from ccc_core.attestation.errors import AttestationError

# How far ahead of this machine's clock an attestation timestamp may be.
ATTESTATION_CLOCK_SKEW = timedelta(minutes=5)


def verify_result_attestation(
    document: bytes,
    result_ciphertext: bytes,
    *,
    root_der: bytes | None,
    expected_pcrs: Mapping[int, bytes],
    now: datetime | None = None,
) -> AttestationDocument:
    """The attestation must chain to `root_der`, carry `expected_pcrs`, and bind this ciphertext.

    Provenance is checked at the moment the enclave signed: Nitro leaf certificates live about
    three hours, and a result must stay verifiable after that. Freshness is not what binds the
    result (user_data = SHA-256 of this ciphertext, whose encryption context names the job), but a
    document claiming to be signed in the future is refused.
    """

    current = now or datetime.now(UTC)
    policy = AttestationPolicy(
        expected_pcrs=dict(expected_pcrs), user_data=hashlib.sha256(result_ciphertext).digest()
    )
    try:
        signed_at = parse_document(document).timestamp
        if signed_at > current + ATTESTATION_CLOCK_SKEW:
            raise AttestationError(f"document timestamp {signed_at.isoformat()} is in the future")
        return verify_document(document, root_der=root_der, at=signed_at, policy=policy)
    except AttestationError as exc:
        raise VerificationError(f"attestation does not verify: {exc}") from None

"""Verify a Nitro attestation document end to end: structure, chain, signature, policy.

The verification time is a parameter because Nitro leaf certificates live about three hours:
archived documents (and the test vectors) can only be checked "as of" their own time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ccc.attestation.chain import verify_chain
from ccc.attestation.policy import AttestationPolicy, check_policy
from ccc.attestation.roots import aws_nitro_root_der
from ccc_core.attestation.cose import verify_es384
from ccc_core.attestation.document import AttestationDocument, parse_signed_document
from ccc_core.attestation.errors import AttestationError


def verify_document(
    data: bytes,
    *,
    root_der: bytes | None = None,
    at: datetime | None = None,
    policy: AttestationPolicy | None = None,
) -> AttestationDocument:
    """Return the document's payload if it is authentic under `root_der` at `at` and meets `policy`.

    root_der: the trusted root (DER); None means the pinned AWS Nitro Enclaves Root-G1.
    at: timezone-aware verification time; None means now.
    policy: None means the default policy (no PCR pins, debug refused, user_data/nonce up
    to the device's 1024 bytes).
    Raises AttestationError (with `.reason`) on any failure.
    """
    if at is None:
        at = datetime.now(UTC)
    elif at.tzinfo is None or at.utcoffset() is None:
        raise AttestationError("verification time must be timezone-aware")
    signed = parse_signed_document(data)
    document = signed.document
    trusted_root = aws_nitro_root_der() if root_der is None else bytes(root_der)
    leaf_key = verify_chain(document.certificate, document.cabundle, trusted_root, at)
    verify_es384(signed.cose, leaf_key)
    check_policy(document, policy if policy is not None else AttestationPolicy(), at)
    return document

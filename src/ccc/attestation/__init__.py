"""Verification of Nitro Enclaves attestation documents (the tenant side of attestation).

Public API:
    AttestationPolicy
    verify_document(data, *, root_der, at, policy) -> AttestationDocument
    aws_nitro_root_der() -> bytes                         (pinned root, fingerprint-checked)
The document format (parse, AttestationDocument, AttestationError) is `ccc_core.attestation`.
Producers live in `ccc_enclave.nsm.simulated` (SimulatedNsm, LocalNitroCA, measure_enclave) and
`ccc_enclave.nsm.device` (DeviceNsm for /dev/nsm). See docs/attestation.md.
"""

from __future__ import annotations

from ccc.attestation.policy import AttestationPolicy
from ccc.attestation.roots import AWS_NITRO_ROOT_G1_SHA256, aws_nitro_root_der
from ccc.attestation.verify import verify_document

__all__ = [
    "AWS_NITRO_ROOT_G1_SHA256",
    "AttestationPolicy",
    "aws_nitro_root_der",
    "verify_document",
]

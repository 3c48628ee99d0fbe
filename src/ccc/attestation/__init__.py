"""Nitro Enclaves attestation documents: parse, verify, and (for the local tier) produce.

Public API:
    AttestationError, AttestationDocument, AttestationPolicy,
    parse_document(data) -> AttestationDocument          (structure only, not trusted)
    verify_document(data, *, root_der, at, policy) -> AttestationDocument
    aws_nitro_root_der() -> bytes                         (pinned root, fingerprint-checked)
Producers live in `ccc.attestation.nsm` (SimulatedNsm, LocalNitroCA, measure_enclave) and
`ccc.attestation.nsm_device` (DeviceNsm for /dev/nsm). See docs/attestation.md.
"""

from __future__ import annotations

from ccc.attestation.document import AttestationDocument, parse_document
from ccc.attestation.errors import AttestationError
from ccc.attestation.policy import AttestationPolicy
from ccc.attestation.roots import AWS_NITRO_ROOT_G1_SHA256, aws_nitro_root_der
from ccc.attestation.verify import verify_document

__all__ = [
    "AWS_NITRO_ROOT_G1_SHA256",
    "AttestationDocument",
    "AttestationError",
    "AttestationPolicy",
    "aws_nitro_root_der",
    "parse_document",
    "verify_document",
]

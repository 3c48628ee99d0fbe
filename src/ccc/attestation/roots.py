"""The pinned AWS Nitro Enclaves Root-G1 certificate, shipped as package data.

The file is checked against its published SHA-256 fingerprint every time it is loaded, so a
modified installation fails loudly instead of silently trusting another root.
(docs.aws.amazon.com/enclaves/latest/user/verify-root.html)
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ccc_core.attestation.errors import AttestationError

AWS_NITRO_ROOT_G1_SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
_ROOT_RESOURCE = "aws_nitro_root_g1.der"


@lru_cache(maxsize=1)
def aws_nitro_root_der() -> bytes:
    """DER of AWS Nitro Enclaves Root-G1, after checking its fingerprint."""
    der = resources.files("ccc.attestation").joinpath(_ROOT_RESOURCE).read_bytes()
    fingerprint = hashlib.sha256(der).hexdigest()
    if fingerprint != AWS_NITRO_ROOT_G1_SHA256:
        raise RuntimeError(
            f"packaged AWS Nitro root has SHA-256 {fingerprint}, expected {AWS_NITRO_ROOT_G1_SHA256}: "
            "the installation is corrupt or tampered with"
        )
    return der


def root_der_from_bytes(data: bytes) -> bytes:
    """Accept a root certificate as PEM or DER and return its DER (what cabundle[0] must equal)."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
        x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise AttestationError("root certificate is neither a PEM nor a DER X.509 certificate") from exc
    return bytes(data)

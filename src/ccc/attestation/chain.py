"""Certificate-chain verification for Nitro attestation documents, done by hand on purpose.

The chain is `leaf <- cabundle[-1] <- ... <- cabundle[1] <- cabundle[0]`, and cabundle[0] must be
byte-equal to the pinned root. Nitro leaf certificates carry no Authority Key Identifier, which
RFC 5280 profile validators (including `cryptography`'s own) refuse, so each link is checked
here explicitly: issuer name == subject name, the issuer's ECDSA-P-384 signature, validity at the
verification time, CA basic constraints and path length, key usage where present, and no
unknown critical extension.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtensionOID, SignatureAlgorithmOID

from ccc_core.attestation.errors import AttestationError

_UNDERSTOOD_CRITICAL = frozenset({ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE})
_ALLOWED_SIGNATURE_ALGORITHMS = frozenset({SignatureAlgorithmOID.ECDSA_WITH_SHA384})


def verify_chain(
    leaf_der: bytes, cabundle: Sequence[bytes], root_der: bytes, at: datetime
) -> ec.EllipticCurvePublicKey:
    """Verify the chain at time `at` and return the leaf's public key (the COSE signing key)."""
    try:
        return _verify_chain(leaf_der, cabundle, root_der, at)
    except AttestationError:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
        # `cryptography` parses certificate fields lazily: a malformed field surfaces on access.
        raise AttestationError(f"certificate chain is malformed ({type(exc).__name__}: {exc})") from exc


def _verify_chain(
    leaf_der: bytes, cabundle: Sequence[bytes], root_der: bytes, at: datetime
) -> ec.EllipticCurvePublicKey:
    if not cabundle:
        raise AttestationError("cabundle is empty")
    if cabundle[0] != root_der:
        raise AttestationError("cabundle[0] is not the trusted root certificate")
    names = ["root", *(f"intermediate {i}" for i in range(1, len(cabundle))), "leaf"]
    certs = [_load(der, name) for der, name in zip([*cabundle, leaf_der], names, strict=True)]
    for cert, name in zip(certs, names, strict=True):
        _check_validity(cert, name, at)
        _check_critical_extensions(cert, name)
        _check_signature_algorithm(cert, name)
    _check_signed_by(certs[0], certs[0], "root")  # pinned by bytes; self-signature checked anyway
    for child, parent, name in zip(certs[1:], certs[:-1], names[1:], strict=True):
        _check_signed_by(child, parent, name)
    ca_certs = certs[:-1]
    for position, (cert, name) in enumerate(zip(ca_certs, names, strict=False)):
        intermediates_below = len(ca_certs) - 1 - position
        _check_ca(cert, name, intermediates_below)
    return _check_leaf(certs[-1])


def _load(der: bytes, name: str) -> x509.Certificate:
    try:
        with warnings.catch_warnings():
            # Tampered serial numbers trigger deprecation warnings; the refusal below is the answer.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return x509.load_der_x509_certificate(der)
    except Exception as exc:  # ValueError, x509.InvalidVersion, ...: any parse failure is a refusal
        raise AttestationError(f"{name} certificate is not valid DER X.509 ({type(exc).__name__})") from exc


def _check_validity(cert: x509.Certificate, name: str, at: datetime) -> None:
    if at < cert.not_valid_before_utc:
        raise AttestationError(
            f"{name} certificate is not yet valid at {at.isoformat()} (from {cert.not_valid_before_utc.isoformat()})"
        )
    if at > cert.not_valid_after_utc:
        raise AttestationError(
            f"{name} certificate expired before {at.isoformat()} (until {cert.not_valid_after_utc.isoformat()})"
        )


def _check_critical_extensions(cert: x509.Certificate, name: str) -> None:
    try:
        extensions = list(cert.extensions)
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise AttestationError(f"{name} certificate has malformed extensions") from exc
    for extension in extensions:
        if extension.critical and extension.oid not in _UNDERSTOOD_CRITICAL:
            oid = extension.oid.dotted_string
            raise AttestationError(f"{name} certificate has an unknown critical extension {oid}")


def _check_signature_algorithm(cert: x509.Certificate, name: str) -> None:
    if cert.signature_algorithm_oid not in _ALLOWED_SIGNATURE_ALGORITHMS:
        algorithm = cert.signature_algorithm_oid.dotted_string
        raise AttestationError(f"{name} certificate is signed with {algorithm}, expected ecdsa-with-SHA384")


def _check_signed_by(child: x509.Certificate, issuer: x509.Certificate, name: str) -> None:
    try:
        child.verify_directly_issued_by(issuer)
    except ValueError as exc:  # issuer name mismatch or inconsistent algorithm parameters
        raise AttestationError(f"{name} certificate is not issued by the next certificate up ({exc})") from exc
    except (InvalidSignature, UnsupportedAlgorithm, TypeError) as exc:
        raise AttestationError(f"{name} certificate's signature does not verify with its issuer's key") from exc


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _check_ca(cert: x509.Certificate, name: str, intermediates_below: int) -> None:
    constraints = _extension(cert, x509.BasicConstraints)
    if not isinstance(constraints, x509.BasicConstraints) or not constraints.ca:
        raise AttestationError(f"{name} certificate is not a CA (basicConstraints cA missing or false)")
    if constraints.path_length is not None and intermediates_below > constraints.path_length:
        raise AttestationError(
            f"{name} certificate allows {constraints.path_length} intermediate(s) below it, "
            f"chain has {intermediates_below}"
        )
    usage = _extension(cert, x509.KeyUsage)
    if isinstance(usage, x509.KeyUsage) and not usage.key_cert_sign:
        raise AttestationError(f"{name} certificate's key usage does not allow signing certificates")


def _check_leaf(leaf: x509.Certificate) -> ec.EllipticCurvePublicKey:
    constraints = _extension(leaf, x509.BasicConstraints)
    if isinstance(constraints, x509.BasicConstraints) and constraints.ca:
        raise AttestationError("leaf certificate is a CA certificate")
    usage = _extension(leaf, x509.KeyUsage)
    if isinstance(usage, x509.KeyUsage) and not usage.digital_signature:
        raise AttestationError("leaf certificate's key usage does not allow digital signatures")
    try:
        key = leaf.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise AttestationError("leaf certificate's public key cannot be read") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise AttestationError("leaf certificate's key is not an ECDSA P-384 key")
    return key

"""COSE_Sign1 with ES384, exactly the subset the Nitro Secure Module emits (RFC 9052).

The NSM returns an *untagged* CBOR array `[protected, unprotected, payload, signature]`;
other tooling prepends tag 18 (0xd2). The signature covers the Sig_structure built from the
*original* protected-header and payload byte strings, never a re-encoding: some documents carry
indefinite-length payload maps, which a decode/encode round trip would silently change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ccc_core.attestation.cbor_input import decode_exact
from ccc_core.attestation.errors import AttestationError

COSE_SIGN1_TAG = 18
HEADER_ALG = 1
ALG_ES384 = -35
ES384_SIGNATURE_BYTES = 96  # raw r || s, 48 bytes each
_P384_COORDINATE_BYTES = 48
PROTECTED_ES384 = cbor2.dumps({HEADER_ALG: ALG_ES384})  # b"\xa1\x01\x38\x22", as the NSM writes it


@dataclass(frozen=True)
class CoseSign1:
    """The four parts of a COSE_Sign1 message; byte strings are kept exactly as received."""

    protected: bytes
    unprotected: dict[Any, Any]
    payload: bytes
    signature: bytes


def decode_sign1(data: bytes) -> CoseSign1:
    """Split a tagged or untagged COSE_Sign1 into its parts, checking shape and the ES384 header."""
    item = decode_exact(data, "attestation document")
    if isinstance(item, cbor2.CBORTag):
        if item.tag != COSE_SIGN1_TAG:
            raise AttestationError(f"attestation document has CBOR tag {item.tag}, expected 18 (COSE_Sign1)")
        item = item.value  # cbor2 decodes a tag's content immutably: tuple / frozendict
    if not isinstance(item, list | tuple) or len(item) != 4:
        raise AttestationError("attestation document is not a COSE_Sign1 array of four items")
    protected, unprotected, payload, signature = item
    if not isinstance(protected, bytes):
        raise AttestationError("COSE protected header is not a byte string")
    if not isinstance(unprotected, Mapping):
        raise AttestationError("COSE unprotected header is not a map")
    if not isinstance(payload, bytes) or not payload:
        raise AttestationError("COSE payload is missing or not a byte string")
    if not isinstance(signature, bytes):
        raise AttestationError("COSE signature is not a byte string")
    _check_protected_header(protected)
    if len(signature) != ES384_SIGNATURE_BYTES:
        raise AttestationError(
            f"COSE signature is {len(signature)} bytes, ES384 needs {ES384_SIGNATURE_BYTES} (raw r||s)"
        )
    return CoseSign1(protected=protected, unprotected=dict(unprotected), payload=payload, signature=signature)


def _check_protected_header(protected: bytes) -> None:
    header = decode_exact(protected, "COSE protected header")
    if not isinstance(header, dict):
        raise AttestationError("COSE protected header is not a map")
    alg = header.get(HEADER_ALG)
    if type(alg) is not int or alg != ALG_ES384:
        raise AttestationError(f"COSE algorithm is {alg!r}, only ES384 (-35) is accepted")
    extra = set(header) - {HEADER_ALG}
    if extra:
        # Unknown protected labels (e.g. `crit`) could change the meaning of the signature.
        raise AttestationError(f"COSE protected header has unsupported labels {sorted(map(repr, extra))}")


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The bytes ES384 signs: `["Signature1", protected, external_aad = b"", payload]`."""
    return cbor2.dumps(["Signature1", protected, b"", payload])


def verify_es384(message: CoseSign1, public_key: ec.EllipticCurvePublicKey) -> None:
    """Check the COSE signature with the leaf certificate's P-384 key."""
    if not isinstance(public_key.curve, ec.SECP384R1):
        raise AttestationError(f"signing key is on {public_key.curve.name}, ES384 needs secp384r1")
    r = int.from_bytes(message.signature[:_P384_COORDINATE_BYTES], "big")
    s = int.from_bytes(message.signature[_P384_COORDINATE_BYTES:], "big")
    try:
        public_key.verify(
            encode_dss_signature(r, s),
            sig_structure(message.protected, message.payload),
            ec.ECDSA(hashes.SHA384()),
        )
    except InvalidSignature as exc:
        raise AttestationError("COSE signature does not verify with the leaf certificate's key") from exc


def sign_es384(payload: bytes, private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """Produce an untagged COSE_Sign1 (what /dev/nsm returns) over `payload`."""
    if not isinstance(private_key.curve, ec.SECP384R1):
        raise ValueError("ES384 signing needs a secp384r1 key")
    der = private_key.sign(sig_structure(PROTECTED_ES384, payload), ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(_P384_COORDINATE_BYTES, "big") + s.to_bytes(_P384_COORDINATE_BYTES, "big")
    return cbor2.dumps([PROTECTED_ES384, {}, payload, raw])

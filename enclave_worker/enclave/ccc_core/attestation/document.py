"""The Nitro attestation document: its fields, their types and their size limits.

Parsing checks *structure only* (is this shaped like something /dev/nsm signs?). Whether it is
authentic and acceptable is `verify.verify_document`'s job; a parsed document must never be
trusted on its own. Limits follow aws-nitro-enclaves-nsm-api `docs/attestation_process.md`,
relaxed only where genuine AWS documents prove the device does otherwise (see constants).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ccc_core.attestation.cbor_input import decode_exact
from ccc_core.attestation.cose import CoseSign1, decode_sign1
from ccc_core.attestation.errors import AttestationError
from ccc_core.limits import LIMITS

# Whole document: a real one is 4.4-7.6 KiB (a 4-certificate chain plus up to 3 KiB of optional
# fields); anything far larger is not from an NSM and is refused before decoding. The same limit
# bounds what the enclave may return and what the client downloads (ccc_core.limits).
MAX_DOCUMENT_BYTES = LIMITS.max_attestation_bytes
DIGEST_SHA384 = "SHA384"
PCR_BYTES = 48  # SHA-384
MAX_PCR_INDEX = 31  # the NSM has 32 PCRs
DEBUG_PCRS = (0, 1, 2)  # all zero in a debug-mode enclave (PCR3/PCR4 may still be set)
# The NSM's hard limit for each optional field (public_key, user_data, nonce). The AWS validation
# rules say 512 bytes for user_data/nonce, but genuine documents carry 746- and 1024-byte
# user_data, so parsing and the default `AttestationPolicy` accept the device limit; the 512-byte
# rule is opt-in (`AttestationPolicy.strict()`, `ccc attest verify --strict`).
MAX_OPTIONAL_FIELD_BYTES = 1024
MAX_MODULE_ID_CHARS = 256
MIN_CABUNDLE = 1
MAX_CABUNDLE = 8  # AWS sends 4 (root + 3 intermediates)
MAX_CERTIFICATE_BYTES = 4096
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AttestationDocument:
    """The signed payload of a Nitro attestation document.

    `public_key`, `user_data` and `nonce` are `None` when the document carries CBOR null and
    `b""` when it carries an empty byte string: the two are different claims.
    """

    module_id: str
    digest: str
    timestamp: datetime
    timestamp_ms: int
    pcrs: dict[int, bytes]
    certificate: bytes
    cabundle: tuple[bytes, ...]
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None

    @property
    def is_debug(self) -> bool:
        """True when PCR0, PCR1 and PCR2 are all zero: the enclave runs in debug mode."""
        return all(self.pcrs.get(i) == bytes(PCR_BYTES) for i in DEBUG_PCRS)


@dataclass(frozen=True)
class SignedDocument:
    """A parsed document together with the COSE parts its signature check needs."""

    document: AttestationDocument
    cose: CoseSign1


def parse_document(data: bytes) -> AttestationDocument:
    """Parse a (tagged or untagged) COSE_Sign1 Nitro attestation document. Does NOT verify it."""
    return parse_signed_document(data).document


def parse_signed_document(data: bytes) -> SignedDocument:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise AttestationError("attestation document must be bytes")
    data = bytes(data)
    if not data:
        raise AttestationError("attestation document is empty")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise AttestationError(f"attestation document is {len(data)} bytes, limit {MAX_DOCUMENT_BYTES}")
    cose = decode_sign1(data)
    payload = decode_exact(cose.payload, "attestation payload")
    if not isinstance(payload, dict):
        raise AttestationError("attestation payload is not a CBOR map")
    return SignedDocument(document=_document_from_map(payload), cose=cose)


def _document_from_map(payload: dict[Any, Any]) -> AttestationDocument:
    for key in payload:
        if not isinstance(key, str):
            raise AttestationError(f"attestation payload has a non-text key {key!r}")
    module_id = _required(payload, "module_id", str)
    if not module_id or len(module_id) > MAX_MODULE_ID_CHARS:
        raise AttestationError(f"module_id must be 1..{MAX_MODULE_ID_CHARS} characters")
    digest = _required(payload, "digest", str)
    if digest != DIGEST_SHA384:
        raise AttestationError(f"digest is {digest!r}, expected {DIGEST_SHA384!r}")
    timestamp_ms, timestamp = _timestamp(payload)
    certificate = _required(payload, "certificate", bytes)
    if not certificate or len(certificate) > MAX_CERTIFICATE_BYTES:
        raise AttestationError(f"certificate must be 1..{MAX_CERTIFICATE_BYTES} bytes")
    return AttestationDocument(
        module_id=module_id,
        digest=digest,
        timestamp=timestamp,
        timestamp_ms=timestamp_ms,
        pcrs=_pcrs(payload),
        certificate=certificate,
        cabundle=_cabundle(payload),
        public_key=_optional_bytes(payload, "public_key"),
        user_data=_optional_bytes(payload, "user_data"),
        nonce=_optional_bytes(payload, "nonce"),
    )


def _required(payload: dict[str, Any], name: str, kind: type) -> Any:
    if name not in payload:
        raise AttestationError(f"attestation payload lacks {name!r}")
    value = payload[name]
    if type(value) is not kind:
        raise AttestationError(f"{name!r} is {type(value).__name__}, expected {kind.__name__}")
    return value


def _timestamp(payload: dict[str, Any]) -> tuple[int, datetime]:
    timestamp_ms = _required(payload, "timestamp", int)
    if timestamp_ms <= 0:
        raise AttestationError("timestamp must be a positive number of milliseconds")
    try:
        timestamp = _EPOCH + timedelta(milliseconds=timestamp_ms)
    except (OverflowError, OSError, ValueError) as exc:
        raise AttestationError("timestamp is out of range") from exc
    return timestamp_ms, timestamp


def _pcrs(payload: dict[str, Any]) -> dict[int, bytes]:
    raw = _required(payload, "pcrs", dict)
    if not raw or len(raw) > MAX_PCR_INDEX + 1:
        raise AttestationError(f"pcrs must hold 1..{MAX_PCR_INDEX + 1} entries")
    pcrs: dict[int, bytes] = {}
    for index, value in raw.items():
        if type(index) is not int or not 0 <= index <= MAX_PCR_INDEX:
            raise AttestationError(f"PCR index {index!r} is not an integer in 0..{MAX_PCR_INDEX}")
        if type(value) is not bytes or len(value) != PCR_BYTES:
            raise AttestationError(f"PCR{index} is not a {PCR_BYTES}-byte string")
        pcrs[index] = value
    missing = [i for i in DEBUG_PCRS if i not in pcrs]
    if missing:
        raise AttestationError(f"pcrs lack the image/kernel/application registers {missing}")
    return dict(sorted(pcrs.items()))


def _cabundle(payload: dict[str, Any]) -> tuple[bytes, ...]:
    raw = _required(payload, "cabundle", list)
    if not MIN_CABUNDLE <= len(raw) <= MAX_CABUNDLE:
        raise AttestationError(f"cabundle has {len(raw)} certificates, expected {MIN_CABUNDLE}..{MAX_CABUNDLE}")
    for position, cert in enumerate(raw):
        if type(cert) is not bytes or not cert or len(cert) > MAX_CERTIFICATE_BYTES:
            raise AttestationError(f"cabundle[{position}] is not a 1..{MAX_CERTIFICATE_BYTES}-byte string")
    return tuple(raw)


def _optional_bytes(payload: dict[str, Any], name: str) -> bytes | None:
    # Absent and CBOR null both mean "not supplied"; b"" is kept as the distinct empty claim.
    value = payload.get(name)
    if value is None:
        return None
    if type(value) is not bytes:
        raise AttestationError(f"{name!r} is {type(value).__name__}, expected bytes or null")
    if len(value) > MAX_OPTIONAL_FIELD_BYTES:
        raise AttestationError(f"{name} is {len(value)} bytes, limit {MAX_OPTIONAL_FIELD_BYTES}")
    return value

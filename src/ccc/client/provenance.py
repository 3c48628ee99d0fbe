"""Verify that a result came from the expected enclave, and from the input the tenant uploaded.

Why a module of its own: this is the one decision that makes a result trustworthy, so it is kept
small, pure and unit-tested apart from the network code around it.

What a verified result proves (docs/attestation.md, "Result binding"):

* the attestation document chains to the pinned root and was signed by an enclave whose PCRs are
  the expected release's;
* its `user_data` is a `ccc-result-binding/1` (`ccc_core.result_binding`) naming SHA-256 of *this*
  result ciphertext and SHA-256 of the input ciphertext the enclave decrypted;
* with `expected_input_sha256` (the digest the client recorded when it uploaded), that input is
  the tenant's own upload: a genuinely attested result for a ciphertext someone else made under
  the tenant's encryption context is refused as `input_mismatch`;
* after decryption, `check_result_document` confirms the document inside names the same input.

Every refusal is a VerificationError whose `reason` is one of the codes below.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from ccc.attestation import AttestationPolicy, verify_document
from ccc.attestation.policy import check_policy
from ccc.client.errors import VerificationError
from ccc_core.attestation.document import AttestationDocument, parse_document
from ccc_core.attestation.errors import AttestationError
from ccc_core.result_binding import ResultBindingError, parse_result_binding
from ccc_core.result_document import ResultDocument

# How far ahead of this machine's clock an attestation timestamp may be.
ATTESTATION_CLOCK_SKEW = timedelta(minutes=5)

# Reason codes (VerificationError.reason).
ATTESTATION_INVALID: Final = "attestation_invalid"  # malformed, not authentic under the root, signed in the future
PCR_MISMATCH: Final = "pcr_mismatch"  # authentic, but not from the expected release
BINDING_UNKNOWN: Final = "binding_unknown"  # user_data is not a result binding this client knows
RESULT_MISMATCH: Final = "result_mismatch"  # the attested result digest is not this ciphertext's
INPUT_MISMATCH: Final = "input_mismatch"  # the attested or documented input is not the expected upload

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class VerifiedResult:
    """An attestation that verified: the document, and the input ciphertext's digest it vouches for."""

    document: AttestationDocument
    input_sha256: str  # lower-case hex SHA-256 of the input ciphertext the enclave decrypted
    result_sha256: str  # lower-case hex SHA-256 of the result ciphertext

    @property
    def pcrs(self) -> Mapping[int, bytes]:
        return self.document.pcrs


def verify_result_attestation(
    document: bytes,
    result_ciphertext: bytes,
    *,
    root_der: bytes | None,
    expected_pcrs: Mapping[int, bytes],
    expected_input_sha256: str | None = None,
    now: datetime | None = None,
) -> VerifiedResult:
    """The attestation must chain to `root_der`, carry `expected_pcrs`, and bind this ciphertext
    (and, with `expected_input_sha256`, that input) — or VerificationError with a reason code.

    Provenance is checked at the moment the enclave signed: Nitro leaf certificates live about
    three hours, and a result must stay verifiable after that. Freshness is not what binds the
    result (user_data names this ciphertext, whose encryption context names the job, and the input
    it came from), but a document claiming to be signed in the future is refused.
    """

    expected_input = _expected_digest(expected_input_sha256)
    current = now or datetime.now(UTC)
    try:
        signed_at = parse_document(document).timestamp
        if signed_at > current + ATTESTATION_CLOCK_SKEW:
            raise AttestationError(f"document timestamp {signed_at.isoformat()} is in the future")
        verified = verify_document(document, root_der=root_der, at=signed_at, policy=AttestationPolicy())
    except AttestationError as exc:
        raise VerificationError(f"attestation does not verify: {exc}", ATTESTATION_INVALID) from None
    try:
        check_policy(verified, AttestationPolicy(expected_pcrs=dict(expected_pcrs)), signed_at)
    except AttestationError as exc:
        raise VerificationError(f"attestation is not from the expected release: {exc}", PCR_MISMATCH) from None
    try:
        binding = parse_result_binding(verified.user_data)
    except ResultBindingError as exc:
        raise VerificationError(f"attestation does not bind a result: {exc}", BINDING_UNKNOWN) from None
    if not binding.binds_result(result_ciphertext):
        raise VerificationError("attestation user_data names another result ciphertext", RESULT_MISMATCH)
    if expected_input is not None and not hmac.compare_digest(binding.input_sha256, expected_input):
        raise VerificationError(
            f"the result was computed from input {binding.input_sha256.hex()[:16]}…, not the "
            f"{expected_input.hex()[:16]}… this client uploaded",
            INPUT_MISMATCH,
        )
    return VerifiedResult(
        document=verified,
        input_sha256=binding.input_sha256.hex(),
        result_sha256=hashlib.sha256(result_ciphertext).hexdigest(),
    )


def check_result_document(verified: VerifiedResult, result: ResultDocument) -> None:
    """The decrypted document must name the input the attestation vouches for (`input_mismatch`)."""
    if not hmac.compare_digest(result.input_sha256, verified.input_sha256):
        raise VerificationError("the result document names another input than its attestation", INPUT_MISMATCH)


def _expected_digest(value: str | None) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA256_HEX.fullmatch(value):
        # A damaged upload record cannot confirm any input: refuse rather than skip the check.
        raise VerificationError("the recorded input digest is not 64 lower-case hex characters", INPUT_MISMATCH)
    return bytes.fromhex(value)


__all__ = [
    "ATTESTATION_INVALID",
    "BINDING_UNKNOWN",
    "INPUT_MISMATCH",
    "PCR_MISMATCH",
    "RESULT_MISMATCH",
    "VerifiedResult",
    "check_result_document",
    "verify_result_attestation",
]

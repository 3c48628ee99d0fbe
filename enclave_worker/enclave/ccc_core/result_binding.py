"""The attestation's ``user_data`` for a job result: which input ciphertext produced which result.

Writer: the enclave (``ccc_enclave.pipeline``), which asks the NSM to sign these bytes. Reader: the
tenant's client (``ccc.client.provenance``). One definition, imported by both, so they cannot
disagree about the layout.

Layout (``ccc-result-binding/1``, 85 bytes, fixed)::

    b"ccc-result-binding/1\\x00"  (21 bytes: domain tag and version)
    SHA-256 of the input ciphertext the enclave decrypted  (32 bytes)
    SHA-256 of the result ciphertext the enclave produced  (32 bytes)

Why this construction (docs/attestation.md, "Result binding"):

* The two digests are stated in the clear rather than hashed together. Fixed-length fields after
  a fixed tag make the encoding injective, so the binding is exactly as strong as SHA-256's
  second-preimage resistance on each ciphertext, with no extra hash to reason about. Nothing is
  hidden by hashing them together anyway: both ciphertexts are stored in S3 and pass through the
  untrusted host, which can compute their digests itself.
* Because the input digest is readable from the signed document, a client that did not keep an
  upload record (``ccc result`` on another machine) can still report which input a result claims
  to come from, and a client that did keep one compares without decrypting first.
* The tag separates this use of ``user_data`` from any other document the enclave's NSM signs
  (a future format, or an unrelated use): a document whose ``user_data`` lacks the tag, such as
  one from an enclave that signed only SHA-256(result), is refused as an unknown binding instead
  of being misread.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from ccc_core.errors import CoreError

RESULT_BINDING_TAG: Final = b"ccc-result-binding/1\x00"
DIGEST_BYTES: Final = 32
RESULT_BINDING_BYTES: Final = len(RESULT_BINDING_TAG) + 2 * DIGEST_BYTES


class ResultBindingError(CoreError, ValueError):
    """``user_data`` that is not a result binding this reader knows (wrong tag, wrong length)."""


@dataclass(frozen=True)
class ResultBinding:
    """The two SHA-256 digests (raw bytes) an attestation document vouches for."""

    input_sha256: bytes
    result_sha256: bytes

    def __post_init__(self) -> None:
        for name in ("input_sha256", "result_sha256"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != DIGEST_BYTES:
                raise ResultBindingError(f"{name} must be {DIGEST_BYTES} bytes")

    @classmethod
    def of(cls, input_ciphertext: bytes, result_ciphertext: bytes) -> ResultBinding:
        """The binding of these exact ciphertext bytes."""
        return cls(hashlib.sha256(input_ciphertext).digest(), hashlib.sha256(result_ciphertext).digest())

    def user_data(self) -> bytes:
        """The bytes the enclave asks the NSM to sign (see the module docstring for the layout)."""
        return RESULT_BINDING_TAG + self.input_sha256 + self.result_sha256

    @property
    def input_sha256_hex(self) -> str:
        return self.input_sha256.hex()

    def binds_result(self, result_ciphertext: bytes) -> bool:
        """Whether ``result_ciphertext`` is the result this binding names (constant-time compare)."""
        return hmac.compare_digest(self.result_sha256, hashlib.sha256(result_ciphertext).digest())


def result_user_data(input_ciphertext: bytes, result_ciphertext: bytes) -> bytes:
    """The attestation ``user_data`` binding a result ciphertext to the input ciphertext it came from."""
    return ResultBinding.of(input_ciphertext, result_ciphertext).user_data()


def parse_result_binding(user_data: bytes | None) -> ResultBinding:
    """The digests in ``user_data``; ResultBindingError unless it is exactly a ``ccc-result-binding/1``."""
    if user_data is None:
        raise ResultBindingError("the attestation document carries no user_data (no result binding)")
    if len(user_data) != RESULT_BINDING_BYTES or not user_data.startswith(RESULT_BINDING_TAG):
        raise ResultBindingError(
            f"user_data ({len(user_data)} bytes) is not a ccc-result-binding/1 (an older or foreign enclave)"
        )
    body = user_data[len(RESULT_BINDING_TAG) :]
    return ResultBinding(input_sha256=body[:DIGEST_BYTES], result_sha256=body[DIGEST_BYTES:])


__all__ = [
    "RESULT_BINDING_BYTES",
    "RESULT_BINDING_TAG",
    "ResultBinding",
    "ResultBindingError",
    "parse_result_binding",
    "result_user_data",
]

"""What the enclave's job pipeline needs from the outside world, as small ports.

Why ports: the pipeline (decrypt -> check context -> count -> encrypt -> attest) is the security
logic worth testing exhaustively; ESDK+KMS, onnxruntime and the NSM are heavy adapters. With these
protocols the pipeline and the server run in unit tests with in-memory fakes, and the real
adapters (`ccc_enclave.adapters`) are exercised by integration tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ccc_enclave.errors import EnclaveError
from ccc_enclave.protocol.errors import ErrorCode
from ccc_enclave.protocol.job_messages import Credentials, KmsTarget


class JobError(EnclaveError):
    """A job failed for a classified reason; `reason` is metadata only (never plaintext)."""

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class DecryptedInput:
    """The decrypted job input, its authenticated encryption context, and the KMS key that wrapped it."""

    plaintext: bytes = field(repr=False)
    encryption_context: Mapping[str, str]
    key_arn: str


class CryptoSession(Protocol):
    """ESDK operations with attested KMS, bound to one job's credentials and KMS endpoint."""

    def decrypt(self, ciphertext: bytes) -> DecryptedInput:
        """Raise JobError(decrypt_failed | kms_* | credentials_expired) on failure."""
        ...

    def encrypt(self, plaintext: bytes, encryption_context: Mapping[str, str], key_arn: str) -> bytes:
        """An ESDK message of `plaintext` under `key_arn`; raise JobError on failure."""
        ...


class EnvelopeCrypto(Protocol):
    def session(self, credentials: Credentials, kms: KmsTarget) -> CryptoSession: ...


@dataclass(frozen=True)
class CatDetection:
    box: tuple[float, float, float, float]
    score: float


@dataclass(frozen=True)
class CountOutcome:
    cats: int
    detections: tuple[CatDetection, ...]


class Counter(Protocol):
    """The loaded, warmed model. `count` raises JobError(bad_image) for bytes that are not a usable image."""

    @property
    def model_name(self) -> str: ...

    @property
    def model_sha256(self) -> str: ...

    def count(self, image: bytes) -> CountOutcome: ...


class Attester(Protocol):
    """Attestation documents from the NSM, always carrying the enclave's public key."""

    @property
    def pcr0_hex(self) -> str: ...

    def attest(self, user_data: bytes) -> bytes: ...

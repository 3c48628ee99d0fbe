"""The protocol's error codes and its one exception root.

Why one root: the parent host is outside the trust boundary, so the enclave must answer *every*
malformed frame or message with an `error` reply rather than crash a connection thread on an
exception type nobody expected. Framing, CBOR decoding and field validation therefore all raise
`ProtocolError` (or a subclass), and each carries the `ErrorCode` the reply should name.
"""

from __future__ import annotations

from enum import StrEnum

from ccc_enclave.errors import EnclaveError


class ErrorCode(StrEnum):
    """Every error code a reply may carry; `RETRYABLE_CODES` says which may succeed if tried again."""

    BAD_REQUEST = "bad_request"  # malformed frame/message: the sender is broken
    UNSUPPORTED_VERSION = "unsupported_version"
    TOO_LARGE = "too_large"
    BUSY = "busy"  # enclave at its concurrency limit
    TIMEOUT = "timeout"
    DECRYPT_FAILED = "decrypt_failed"  # not an ESDK message, tampered, or not decryptable
    CONTEXT_MISMATCH = "context_mismatch"  # ciphertext belongs to another job/tenant, or is a result
    BAD_IMAGE = "bad_image"  # the plaintext is not an image the counter accepts
    KMS_ACCESS_DENIED = "kms_access_denied"  # may be a key-policy rollout race: retried, then DLQ
    KMS_UNAVAILABLE = "kms_unavailable"
    CREDENTIALS_EXPIRED = "credentials_expired"
    ATTESTATION_FAILED = "attestation_failed"
    ENCLAVE_UNAVAILABLE = "enclave_unavailable"  # parent side: could not reach/lost the enclave
    INPUT_MISSING = "input_missing"  # parent side: the inbox object named by the event is gone
    INTERNAL = "internal"


RETRYABLE_CODES = frozenset(
    {
        ErrorCode.BUSY,
        ErrorCode.TIMEOUT,
        ErrorCode.KMS_ACCESS_DENIED,
        ErrorCode.KMS_UNAVAILABLE,
        ErrorCode.CREDENTIALS_EXPIRED,
        ErrorCode.ATTESTATION_FAILED,
        ErrorCode.ENCLAVE_UNAVAILABLE,
        ErrorCode.INTERNAL,
    }
)


def is_retryable(code: str) -> bool:
    """Default retry classification; unknown codes are retryable so the DLQ, not a guess, ends them."""
    try:
        return ErrorCode(code) in RETRYABLE_CODES
    except ValueError:
        return True


class ProtocolError(EnclaveError, ValueError):
    """A frame or message that breaks the protocol; `code` is the error code to answer with.

    `reason` never quotes the offending value: it may be a credential or ciphertext, and reasons
    end up in error replies and logs.
    """

    def __init__(self, reason: str, code: str = ErrorCode.BAD_REQUEST) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class FrameTooLarge(ProtocolError):
    """A frame header announced more bytes than the maximum (refused before reading the body)."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"frame of {length} bytes exceeds the maximum of {limit}", code=ErrorCode.TOO_LARGE)
        self.length = length
        self.limit = limit


class ConnectionClosed(ProtocolError):
    """The peer closed the stream cleanly at a frame boundary (not an error by itself)."""

    def __init__(self) -> None:
        super().__init__("connection closed by peer", code="closed")

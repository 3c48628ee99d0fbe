"""What a verifier requires of an authentic document: measurements, freshness, bindings.

Authenticity (chain + signature) says *an* enclave produced the document; the policy says it is
*our* enclave (PCRs), not in debug mode, answering *this* request (nonce) about *this* data
(user_data), recently (max_age). Byte comparisons are constant-time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType

from ccc_core.attestation.document import (
    MAX_OPTIONAL_FIELD_BYTES,
    MAX_PCR_INDEX,
    PCR_BYTES,
    AttestationDocument,
)
from ccc_core.attestation.errors import AttestationError

# A verifier must accept what genuine devices produce: /dev/nsm takes up to 1024 bytes of
# user_data and nonce, and real AWS documents carry 746- and 1024-byte user_data. So the default
# is the device's limit; STRICT_MAX_BINDING_BYTES is the 512-byte rule of AWS's written validation
# steps, for verifiers that want it (`ccc attest verify --strict`).
DEFAULT_MAX_BINDING_BYTES = MAX_OPTIONAL_FIELD_BYTES
STRICT_MAX_BINDING_BYTES = 512
# A document may be stamped slightly after the verifier's clock reading (clocks differ).
CLOCK_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class AttestationPolicy:
    """Requirements checked after the document is proven authentic.

    expected_pcrs: index -> 48-byte value that must match exactly.
    nonce / user_data: when set, the document must carry exactly these bytes.
    max_age: when set, the document's timestamp must be at most this old at verification time.
    allow_debug: accept documents whose PCR0, PCR1 and PCR2 are all zero (debug-mode enclaves).
    max_user_data / max_nonce: size limits (default 1024, the device's; `strict()` gives the
    512 of AWS's written rule).
    """

    expected_pcrs: Mapping[int, bytes] = field(default_factory=dict)
    nonce: bytes | None = None
    user_data: bytes | None = None
    max_age: timedelta | None = None
    allow_debug: bool = False
    max_user_data: int = DEFAULT_MAX_BINDING_BYTES
    max_nonce: int = DEFAULT_MAX_BINDING_BYTES

    def __post_init__(self) -> None:
        pcrs: dict[int, bytes] = {}
        for index, value in dict(self.expected_pcrs).items():
            if type(index) is not int or not 0 <= index <= MAX_PCR_INDEX:
                raise ValueError(f"expected PCR index {index!r} is not in 0..{MAX_PCR_INDEX}")
            if not isinstance(value, bytes) or len(value) != PCR_BYTES:
                raise ValueError(f"expected PCR{index} must be {PCR_BYTES} bytes")
            pcrs[index] = value
        object.__setattr__(self, "expected_pcrs", MappingProxyType(pcrs))
        if self.max_age is not None and self.max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        for name in ("max_user_data", "max_nonce"):
            limit = getattr(self, name)
            if type(limit) is not int or not 0 <= limit <= MAX_OPTIONAL_FIELD_BYTES:
                raise ValueError(f"{name} must be an integer in 0..{MAX_OPTIONAL_FIELD_BYTES}")


    def strict(self) -> AttestationPolicy:
        """This policy with AWS's documented 512-byte user_data/nonce rule instead of the device's 1024."""
        return replace(self, max_user_data=STRICT_MAX_BINDING_BYTES, max_nonce=STRICT_MAX_BINDING_BYTES)


def check_policy(document: AttestationDocument, policy: AttestationPolicy, at: datetime) -> None:
    """Raise AttestationError with the first requirement `document` fails."""
    if document.is_debug and not policy.allow_debug:
        raise AttestationError("document comes from a debug-mode enclave (PCR0, PCR1 and PCR2 are zero)")
    for index, expected in sorted(policy.expected_pcrs.items()):
        actual = document.pcrs.get(index)
        if actual is None:
            raise AttestationError(f"document has no PCR{index}")
        if not hmac.compare_digest(actual, expected):
            raise AttestationError(f"PCR{index} does not match the expected measurement")
    _check_size("user_data", document.user_data, policy.max_user_data)
    _check_size("nonce", document.nonce, policy.max_nonce)
    _check_binding("nonce", document.nonce, policy.nonce)
    _check_binding("user_data", document.user_data, policy.user_data)
    if policy.max_age is not None:
        age = at - document.timestamp
        if age < -CLOCK_SKEW:
            raise AttestationError(f"document timestamp {document.timestamp.isoformat()} is in the future")
        if age > policy.max_age:
            raise AttestationError(f"document is {age} old, maximum age is {policy.max_age}")


def _check_size(name: str, value: bytes | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise AttestationError(f"{name} is {len(value)} bytes, policy allows {limit}")


def _check_binding(name: str, actual: bytes | None, expected: bytes | None) -> None:
    if expected is None:
        return
    if actual is None:
        raise AttestationError(f"document carries no {name}, expected one")
    if not hmac.compare_digest(actual, expected):
        raise AttestationError(f"{name} does not match the expected value")

"""The error body every failed reply carries, and the `error` message for an unparseable request.

Why separate from the job messages: the same `ErrorInfo` answers a failed job (`job_reply` with
`ok: false`) and a frame the enclave could not even parse (`error`), and the parent classifies
both the same way (`retryable` decides between a retry and a failure record).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, StrictBool

from ccc_enclave.protocol.codec import WireMessage, WireModel
from ccc_enclave.protocol.errors import ErrorCode, is_retryable
from ccc_enclave.protocol.fields import RequestId, matching

MAX_REASON_CHARS = 512
_CODE_RE = re.compile(r"^[a-z][a-z_]{0,39}$")


class ErrorInfo(WireModel):
    """Why a request failed: a machine code, a short reason (never plaintext), and whether to retry."""

    code: Annotated[str, matching(_CODE_RE)]
    reason: Annotated[str, Field(max_length=MAX_REASON_CHARS)]
    retryable: StrictBool

    @classmethod
    def of(cls, code: ErrorCode | str, reason: str, retryable: bool | None = None) -> ErrorInfo:
        """Build with the default retry classification, truncating an over-long reason."""
        code_str = str(code)
        return cls(
            code=code_str,
            reason=reason[:MAX_REASON_CHARS],
            retryable=is_retryable(code_str) if retryable is None else retryable,
        )


class ErrorReply(WireMessage):
    """Answer to a frame that could not be parsed as a request (request_id None if unknown)."""

    KIND = "error"

    request_id: RequestId | None  # the one message whose id may be unknown
    error: ErrorInfo

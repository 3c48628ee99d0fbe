"""Value types shared by the message modules: each constraint is written once, as a type.

Why types rather than checks in each message: a field declared `RequestId` or `Count` cannot
forget its bound, and the same declaration serves both the constructor (the enclave building a
reply) and the decoder (the enclave reading a hostile request). The models are strict, so these
types never coerce (`true` is not an integer, "3" is not a number); a bad value raises
`ProtocolError` whose reason names the field, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, Field

from ccc_core.identity import NamingError, validate_job_id, validate_tenant
from ccc_enclave.protocol.errors import ProtocolError
from ccc_enclave.protocol.resolution import coarse_bytes, coarse_ms, coarse_seconds

MAX_REQUEST_ID_CHARS = 64
REQUEST_ID_RE = re.compile(rf"^[A-Za-z0-9._-]{{1,{MAX_REQUEST_ID_CHARS}}}$")
_HEX_RE = re.compile(r"^[0-9a-f]*$")
MAX_COUNTER = 2**63 - 1
# Timings, sizes and epsilons are far below this; the bound keeps every number finite and printable.
MAX_NUMBER = 1e12


def matching(pattern: re.Pattern[str]) -> AfterValidator:
    """A check that the whole string matches `pattern` (fullmatch: a trailing newline does not pass)."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ProtocolError(f"must match {pattern.pattern}")
        return value

    return AfterValidator(check)


def hex_string(*lengths: int) -> AfterValidator:
    """Lowercase hex of one of `lengths` (0 = unknown, e.g. a simulated enclave without PCRs)."""

    def check(value: str) -> str:
        if len(value) not in lengths or not _HEX_RE.fullmatch(value):
            raise ProtocolError(f"must be lowercase hex of length {' or '.join(map(str, lengths))}")
        return value

    return AfterValidator(check)


def _naming(validate: Callable[[str], str]) -> AfterValidator:
    """Job ids and tenants follow the one naming rule of the system (`ccc_core.identity`)."""

    def check(value: str) -> str:
        try:
            return validate(value)
        except NamingError as exc:
            raise ProtocolError(str(exc)) from None

    return AfterValidator(check)


def _request_id(value: str) -> str:
    if not REQUEST_ID_RE.fullmatch(value):
        raise ProtocolError(f"must be 1-{MAX_REQUEST_ID_CHARS} characters of [A-Za-z0-9._-]")
    return value


RequestId = Annotated[str, AfterValidator(_request_id)]
JobId = Annotated[str, _naming(validate_job_id)]
Tenant = Annotated[str, _naming(validate_tenant)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNTER)]
# Non-negative measurements (milliseconds, seconds, epsilons); an int on the wire is read as a float.
Number = Annotated[float, Field(ge=0, le=MAX_NUMBER, allow_inf_nan=False)]
SignedNumber = Annotated[float, Field(ge=-MAX_NUMBER, le=MAX_NUMBER, allow_inf_nan=False)]
# Measurements of the enclave, snapped to the protocol's grid when a message is built or read
# (`resolution`: replies never carry more precision than operations need).
CoarseMs = Annotated[float, Field(ge=0, le=MAX_NUMBER, allow_inf_nan=False), AfterValidator(coarse_ms)]
CoarseSeconds = Annotated[float, Field(ge=0, le=MAX_NUMBER, allow_inf_nan=False), AfterValidator(coarse_seconds)]
CoarseBytes = Annotated[int, Field(ge=0, le=MAX_COUNTER), AfterValidator(coarse_bytes)]
Sha256Hex = Annotated[str, hex_string(0, 64)]
Pcr0Hex = Annotated[str, hex_string(0, 96)]

"""Differentially private releases: `privacy_release` (parent -> enclave) and its reply.

Why the request has no fields: the parent is untrusted, so it chooses nothing (no tenant, no
epsilon); the enclave's policy and budget ledger decide what is released (`ccc_enclave.dp`,
`ccc_enclave.privacy_release`). The reply carries only Laplace-noised per-tenant, per-day
aggregates, the only content-derived numbers that ever leave the enclave; no field could carry
an exact value.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from ccc_enclave.protocol.codec import WireMessage, WireModel
from ccc_enclave.protocol.errors import ProtocolError
from ccc_enclave.protocol.fields import MAX_NUMBER, RequestId, SignedNumber, Tenant, matching

PRIVACY_METRICS = ("cats", "uploads")
MAX_RELEASES = 512
MAX_REFUSED = 2**31
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Noise parameters are strictly positive: epsilon 0 would mean infinite noise, scale 0 none at all.
PositiveNumber = Annotated[float, Field(gt=0, le=MAX_NUMBER, allow_inf_nan=False)]


def _known_metric(metric: str) -> str:
    if metric not in PRIVACY_METRICS:
        raise ProtocolError(f"must be one of {list(PRIVACY_METRICS)}")
    return metric


class PrivacyReleaseRequest(WireMessage):
    """Ask the enclave for its differentially private aggregates (no parameters, see the module docstring)."""

    KIND = "privacy_release"

    request_id: RequestId


class PrivacyRelease(WireModel):
    """One noisy per-tenant, per-day aggregate (Laplace mechanism); never the exact value."""

    tenant: Tenant
    day: Annotated[str, matching(_DAY_RE)]  # YYYY-MM-DD (UTC)
    metric: Annotated[str, AfterValidator(_known_metric)]
    value: SignedNumber  # may be negative: noise is not clamped, clamping would bias it
    epsilon: PositiveNumber
    scale: PositiveNumber


class PrivacyReleaseReply(WireMessage):
    """The releases the budget allowed, and how many (tenant, day, metric) aggregates it refused."""

    KIND = "privacy_release_reply"

    request_id: RequestId
    releases: Annotated[tuple[PrivacyRelease, ...], Field(max_length=MAX_RELEASES)]
    refused: Annotated[int, Field(ge=0, le=MAX_REFUSED)]

"""The job exchange: `job` (parent -> enclave) and `job_reply` (a success or a failure).

A job request carries the ciphertext and what the enclave needs to decrypt it (AWS credentials
and the KMS target, since the enclave has no IMDS and no network of its own); the parent's claim
about which job it is gets checked against the ciphertext's authenticated context. A success
carries only ciphertext and an attestation document: the parent never learns the count.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from ccc_core.limits import LIMITS
from ccc_enclave.protocol.codec import Wire, WireMessage, WireModel
from ccc_enclave.protocol.error_replies import ErrorInfo
from ccc_enclave.protocol.errors import ErrorCode, ProtocolError
from ccc_enclave.protocol.fields import CoarseMs, JobId, Pcr0Hex, RequestId, Sha256Hex, Tenant, matching
from ccc_enclave.protocol.framing import MAX_FRAME_BYTES

# The ciphertext limit comes from the stage settings; the others are generous bounds on fields
# whose real sizes are a few hundred bytes.
MAX_CIPHERTEXT_BYTES = LIMITS.max_ciphertext_bytes
MAX_SESSION_TOKEN_CHARS = 8192
MAX_URL_CHARS = 2048
MAX_TRACE_ENTRIES = 4
MAX_TRACE_VALUE_CHARS = 512

_ACCESS_KEY_RE = re.compile(r"^[\x21-\x7e]{1,128}$")
_SECRET_RE = re.compile(r"^[\x21-\x7e]{1,256}$")
_TOKEN_RE = re.compile(rf"^[\x21-\x7e]{{1,{MAX_SESSION_TOKEN_CHARS}}}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_TRACE_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _http_url(value: str) -> str:
    """The enclave connects to this URL with the job's credentials: http(s), a host, a valid port."""
    if not 0 < len(value) <= MAX_URL_CHARS or not value.isprintable():
        raise ProtocolError(f"must be a URL of at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        raise ProtocolError("must be an http(s) URL with a host") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ProtocolError("must be an http(s) URL with a host")
    return value


def _trace(trace: Mapping[str, str]) -> Mapping[str, str]:
    """W3C trace context only: a few short printable entries (it is logged and put on spans)."""
    if len(trace) > MAX_TRACE_ENTRIES:
        raise ProtocolError(f"must be a map of at most {MAX_TRACE_ENTRIES} entries")
    for key, item in trace.items():
        if not _TRACE_KEY_RE.fullmatch(key):
            raise ProtocolError("keys must be short lowercase names")
        if len(item) > MAX_TRACE_VALUE_CHARS or not item.isprintable():
            raise ProtocolError(f"values must be printable strings of at most {MAX_TRACE_VALUE_CHARS} chars")
    return trace


class JobSpec(WireModel):
    """Which job the parent claims this ciphertext is; the enclave checks it against the ciphertext."""

    job_id: JobId
    tenant: Tenant


class Credentials(WireModel):
    """AWS credentials the enclave uses for KMS (the enclave has no IMDS). Never logged."""

    access_key_id: Annotated[str, matching(_ACCESS_KEY_RE)]
    secret_access_key: Annotated[str, matching(_SECRET_RE), Field(repr=False)]
    # Required on the wire (null when absent): a message means the same whoever wrote it.
    session_token: Annotated[Annotated[str, matching(_TOKEN_RE)] | None, Field(repr=False)] = None


class KmsTarget(WireModel):
    """Where the enclave's KMS client connects (endpoint_url None = the region's public endpoint)."""

    region: Annotated[str, matching(_REGION_RE)]
    endpoint_url: Annotated[str, AfterValidator(_http_url)] | None = None


class JobRequest(WireMessage):
    """One ciphertext to count, with the means to decrypt it."""

    KIND = "job"

    request_id: RequestId
    job: JobSpec
    # The constructor bounds the ciphertext by the frame; the stage limit is applied when decoding.
    ciphertext: Annotated[bytes, Field(min_length=1, max_length=MAX_FRAME_BYTES, repr=False)]
    credentials: Credentials
    kms: KmsTarget
    # W3C trace context (e.g. {"traceparent": ...}) so one job's trace spans parent and enclave.
    trace: Annotated[Mapping[str, str], AfterValidator(_trace), Wire(optional=True)] = Field(default_factory=dict)

    def check_ciphertext_limit(self, max_ciphertext_bytes: int) -> None:
        """The stage's ciphertext limit, applied when decoding: the constructor only knows the frame bound."""
        if len(self.ciphertext) > max_ciphertext_bytes:
            raise ProtocolError(f"ciphertext is {len(self.ciphertext)} bytes, the maximum is {max_ciphertext_bytes}",
                                code=ErrorCode.TOO_LARGE)


class JobMetrics(WireModel):
    """Milliseconds per pipeline stage of one job, each snapped to the latency grid (`resolution`):
    the host can replay a job and average these, so they are no finer than the dashboards' buckets."""

    decrypt_ms: CoarseMs
    infer_ms: CoarseMs
    encrypt_ms: CoarseMs
    attest_ms: CoarseMs


class JobSuccess(WireMessage):
    """The enclave's answer for a counted job: ciphertext + attestation; the parent learns no count."""

    KIND = "job_reply"

    request_id: RequestId
    ok: Literal[True] = True
    result_ciphertext: Annotated[bytes, Field(min_length=1, max_length=LIMITS.max_result_ciphertext_bytes, repr=False)]
    attestation_document: Annotated[bytes, Field(min_length=1, max_length=LIMITS.max_attestation_bytes, repr=False)]
    metrics: JobMetrics
    # For the result's S3 object metadata; empty when unknown (e.g. a simulated enclave's PCR0).
    model_sha256: Annotated[Sha256Hex, Wire(path=("enclave", "model_sha256"))] = ""
    pcr0_hex: Annotated[Pcr0Hex, Wire(path=("enclave", "pcr0"))] = ""


class JobFailure(WireMessage):
    """The enclave's answer for a job it could not count, and whether trying again may help."""

    KIND = "job_reply"

    request_id: RequestId
    ok: Literal[False] = False
    error: ErrorInfo


JobReply = JobSuccess | JobFailure

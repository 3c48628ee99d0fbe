"""The parent <-> enclave wire protocol: length-prefixed frames carrying versioned CBOR messages.

Why this shape: the parent host is outside the trust boundary, so everything the enclave reads
from the socket is hostile until validated. A frame is a 4-byte big-endian length followed by
that many bytes; the length is checked against the maximum *before* a buffer is allocated, and
the body is read exactly (a stream socket may deliver any number of bytes per `recv`). The body
is one CBOR map (CBOR carries the ciphertext as bytes without base64), decoded with semantic tags
disabled and then checked field by field: exact key sets, exact types, sizes, and the protocol
version. Every failure is a `ProtocolError`, never another exception type.

Message kinds (all maps carry `version`, `kind`, `request_id`): `health` -> `health_reply`,
`job` -> `job_reply`, `privacy_release` -> `privacy_release_reply` (differentially private
per-tenant aggregates, the only content-derived numbers that leave the enclave), and `error` for
a request the enclave could not even parse.
See docs/protocol.md.
"""

from __future__ import annotations

import io
import math
import re
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, Union
from urllib.parse import urlsplit

import cbor2

from ccc_core.identity import NamingError, validate_job_id, validate_tenant
from ccc_core.limits import LIMITS

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = frozenset({PROTOCOL_VERSION})
FRAME_HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = LIMITS.max_frame_bytes

# Field limits. The ciphertext limit comes from the stage settings; the others are generous
# bounds on fields whose real sizes are a few hundred bytes.
MAX_CIPHERTEXT_BYTES = LIMITS.max_ciphertext_bytes
MAX_RESULT_CIPHERTEXT_BYTES = 1024 * 1024
MAX_ATTESTATION_BYTES = 16 * 1024
MAX_REQUEST_ID_CHARS = 64
MAX_REASON_CHARS = 512
MAX_SESSION_TOKEN_CHARS = 8192
MAX_URL_CHARS = 2048
MAX_TRACE_ENTRIES = 4
MAX_TRACE_VALUE_CHARS = 512
MAX_NESTING = 6
# Reading the body in bounded slices keeps a slow sender from making us allocate many small buffers.
_READ_CHUNK = 1024 * 1024

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ACCESS_KEY_RE = re.compile(r"^[\x21-\x7e]{1,128}$")
_SECRET_RE = re.compile(r"^[\x21-\x7e]{1,256}$")
_TOKEN_RE = re.compile(r"^[\x21-\x7e]{1,8192}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_CODE_RE = re.compile(r"^[a-z][a-z_]{0,39}$")
_HEX_RE = re.compile(r"^[0-9a-f]*$")
_TRACE_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_MODEL_NAME_RE = re.compile(r"^[\x20-\x7e]{0,128}$")
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Enclave pipeline stages whose timing aggregates the health reply carries (job_reply.metrics order).
STAGES = ("decrypt", "infer", "encrypt", "attest")
PRIVACY_METRICS = ("cats", "uploads")
MAX_RELEASES = 512


class ProtocolError(ValueError):
    """A frame or message that breaks the protocol; `code` is the error code to answer with."""

    def __init__(self, reason: str, code: str = "bad_request") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class FrameTooLarge(ProtocolError):
    """A frame header announced more bytes than the maximum (refused before reading the body)."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"frame of {length} bytes exceeds the maximum of {limit}", code="too_large")
        self.length = length
        self.limit = limit


class ConnectionClosed(ProtocolError):
    """The peer closed the stream cleanly at a frame boundary (not an error by itself)."""

    def __init__(self) -> None:
        super().__init__("connection closed by peer", code="closed")


class ErrorCode(StrEnum):
    """Every error code a reply may carry, with whether the job may succeed if tried again."""

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


# --------------------------------------------------------------------------------------------- frames


class ByteSource(Protocol):
    """What frame reading needs from a stream: `socket.socket` satisfies it."""

    def recv_into(self, buffer: memoryview, nbytes: int = 0, /) -> int: ...


class ByteSink(Protocol):
    def sendall(self, data: bytes, /) -> Any: ...


def _read_exact_into(source: ByteSource, view: memoryview, *, at_boundary: bool) -> bool:
    """Fill `view` completely; False on a clean EOF before the first byte when `at_boundary`."""
    filled = 0
    total = len(view)
    while filled < total:
        got = source.recv_into(view[filled:], min(total - filled, _READ_CHUNK))
        if got == 0:
            if filled == 0 and at_boundary:
                return False
            raise ProtocolError(f"stream ended after {filled} of {total} bytes", code="bad_request")
        if got < 0 or got > total - filled:
            raise ProtocolError("stream reported an impossible read size")
        filled += got
    return True


def read_frame(source: ByteSource, max_frame_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """Read one frame body. Raises ConnectionClosed on EOF between frames, FrameTooLarge before allocating."""
    header = bytearray(FRAME_HEADER.size)
    if not _read_exact_into(source, memoryview(header), at_boundary=True):
        raise ConnectionClosed()
    (length,) = FRAME_HEADER.unpack(header)
    if length > max_frame_bytes:
        raise FrameTooLarge(length, max_frame_bytes)
    if length == 0:
        raise ProtocolError("empty frame")
    body = bytearray(length)
    _read_exact_into(source, memoryview(body), at_boundary=False)
    return bytes(body)


def encode_frame(payload: bytes, max_frame_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """Header + payload; refuses payloads the peer would refuse."""
    if not payload:
        raise ProtocolError("empty frame")
    if len(payload) > max_frame_bytes:
        raise FrameTooLarge(len(payload), max_frame_bytes)
    return FRAME_HEADER.pack(len(payload)) + payload


def write_frame(sink: ByteSink, payload: bytes, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
    if not payload:
        raise ProtocolError("empty frame")
    if len(payload) > max_frame_bytes:
        raise FrameTooLarge(len(payload), max_frame_bytes)
    # Two writes avoid copying a 24 MiB payload just to prepend four bytes.
    sink.sendall(FRAME_HEADER.pack(len(payload)))
    sink.sendall(payload)


# -------------------------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class JobSpec:
    """Which job the parent claims this ciphertext is; the enclave checks it against the ciphertext."""

    job_id: str
    tenant: str

    def __post_init__(self) -> None:
        try:
            validate_job_id(self.job_id)
            validate_tenant(self.tenant)
        except NamingError as exc:
            raise ProtocolError(str(exc)) from exc


@dataclass(frozen=True)
class Credentials:
    """AWS credentials the enclave uses for KMS (the enclave has no IMDS). Never logged."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_re(self.access_key_id, _ACCESS_KEY_RE, "credentials.access_key_id")
        _check_re(self.secret_access_key, _SECRET_RE, "credentials.secret_access_key")
        if self.session_token is not None:
            _check_re(self.session_token, _TOKEN_RE, "credentials.session_token")


@dataclass(frozen=True)
class KmsTarget:
    """Where the enclave's KMS client connects (endpoint_url None = the region's public endpoint)."""

    region: str
    endpoint_url: str | None = None

    def __post_init__(self) -> None:
        _check_re(self.region, _REGION_RE, "kms.region")
        if self.endpoint_url is not None:
            _check_url(self.endpoint_url, "kms.endpoint_url")


@dataclass(frozen=True)
class HealthRequest:
    request_id: str

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)


@dataclass(frozen=True)
class StageTiming:
    """Cumulative timing of one pipeline stage since boot (count, total and maximum milliseconds)."""

    count: int
    total_ms: float
    max_ms: float

    def __post_init__(self) -> None:
        _check_int(self.count, "stage.count", 0, 2**63 - 1)
        _check_number(self.total_ms, "stage.total_ms")
        _check_number(self.max_ms, "stage.max_ms")


@dataclass(frozen=True)
class EnclaveMetrics:
    """Resource use and pipeline counters of the enclave: metadata only, never job content.

    `cpu_s` is the server process's CPU time (user + system) since boot: the parent turns two
    readings into a utilisation. Memory comes from the enclave VM's /proc/meminfo (0 if unknown).
    """

    cpu_s: float
    memory_total_bytes: int
    memory_available_bytes: int
    busy_refusals: int
    attestations_ok: int
    attestations_failed: int
    stages: Mapping[str, StageTiming]

    def __post_init__(self) -> None:
        _check_number(self.cpu_s, "metrics.cpu_s")
        for name in ("memory_total_bytes", "memory_available_bytes", "busy_refusals", "attestations_ok",
                     "attestations_failed"):
            _check_int(getattr(self, name), f"metrics.{name}", 0, 2**63 - 1)
        if not isinstance(self.stages, Mapping) or set(self.stages) != set(STAGES):
            raise ProtocolError(f"metrics.stages must have exactly the stages {list(STAGES)}")
        if not all(isinstance(t, StageTiming) for t in self.stages.values()):
            raise ProtocolError("metrics.stages values must be stage timings")


@dataclass(frozen=True)
class EnclaveStatus:
    """Health metadata: counters and identities only, never job content."""

    uptime_s: float
    jobs_served: int
    jobs_failed: int
    in_flight: int
    concurrency: int
    model_name: str
    model_sha256: str
    pcr0_hex: str
    cpu_count: int
    rss_bytes: int
    # Optional so that a parent can talk to an enclave of the release before (which omits it).
    metrics: EnclaveMetrics | None = None

    def __post_init__(self) -> None:
        _check_number(self.uptime_s, "status.uptime_s")
        if self.metrics is not None and not isinstance(self.metrics, EnclaveMetrics):
            raise ProtocolError("status.metrics must be enclave metrics")
        for name in ("jobs_served", "jobs_failed", "in_flight", "cpu_count", "rss_bytes"):
            _check_int(getattr(self, name), f"status.{name}", 0, 2**63 - 1)
        _check_int(self.concurrency, "status.concurrency", 1, 4096)
        _check_re(self.model_name, _MODEL_NAME_RE, "status.model_name")
        _check_hex(self.model_sha256, "status.model_sha256", (0, 64))
        _check_hex(self.pcr0_hex, "status.pcr0_hex", (0, 96))


@dataclass(frozen=True)
class HealthReply:
    request_id: str
    status: EnclaveStatus

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)


@dataclass(frozen=True)
class PrivacyReleaseRequest:
    """Ask the enclave for its differentially private aggregates. The parent chooses nothing
    (no tenant, no epsilon): the enclave's policy and budget ledger decide what is released."""

    request_id: str

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)


@dataclass(frozen=True)
class PrivacyRelease:
    """One noisy per-tenant, per-day aggregate (Laplace mechanism); never the exact value."""

    tenant: str
    day: str  # YYYY-MM-DD (UTC)
    metric: str  # cats | uploads
    value: float  # may be negative: noise is not clamped, clamping would bias it
    epsilon: float
    scale: float

    def __post_init__(self) -> None:
        try:
            validate_tenant(self.tenant)
        except NamingError as exc:
            raise ProtocolError(str(exc)) from exc
        _check_re(self.day, _DAY_RE, "release.day")
        if self.metric not in PRIVACY_METRICS:
            raise ProtocolError(f"release.metric must be one of {list(PRIVACY_METRICS)}")
        _check_signed(self.value, "release.value")
        _check_number(self.epsilon, "release.epsilon")
        _check_number(self.scale, "release.scale")
        if self.epsilon <= 0 or self.scale <= 0:
            raise ProtocolError("release.epsilon and release.scale must be positive")


@dataclass(frozen=True)
class PrivacyReleaseReply:
    """The releases the budget allowed, and how many (tenant, day, metric) aggregates it refused."""

    request_id: str
    releases: tuple[PrivacyRelease, ...]
    refused: int

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        if not isinstance(self.releases, tuple) or len(self.releases) > MAX_RELEASES:
            raise ProtocolError(f"releases must be a list of at most {MAX_RELEASES}")
        if not all(isinstance(r, PrivacyRelease) for r in self.releases):
            raise ProtocolError("releases must hold privacy releases")
        _check_int(self.refused, "refused", 0, 2**31)


@dataclass(frozen=True)
class JobRequest:
    request_id: str
    job: JobSpec
    ciphertext: bytes = field(repr=False)
    credentials: Credentials
    kms: KmsTarget
    # W3C trace context (e.g. {"traceparent": ...}) so one job's trace spans parent and enclave.
    trace: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        # The configurable stage limit is applied when decoding; here only the frame bound.
        _check_bytes(self.ciphertext, "ciphertext", 1, MAX_FRAME_BYTES)
        _check_trace(self.trace)


@dataclass(frozen=True)
class JobMetrics:
    decrypt_ms: float
    infer_ms: float
    encrypt_ms: float
    attest_ms: float

    def __post_init__(self) -> None:
        for name in ("decrypt_ms", "infer_ms", "encrypt_ms", "attest_ms"):
            _check_number(getattr(self, name), f"metrics.{name}")


@dataclass(frozen=True)
class JobSuccess:
    """The enclave's answer for a counted job: ciphertext + attestation; the parent learns no count."""

    request_id: str
    result_ciphertext: bytes = field(repr=False)
    attestation_document: bytes = field(repr=False)
    metrics: JobMetrics
    model_sha256: str = ""
    pcr0_hex: str = ""

    ok = True

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        _check_bytes(self.result_ciphertext, "result_ciphertext", 1, MAX_RESULT_CIPHERTEXT_BYTES)
        _check_bytes(self.attestation_document, "attestation_document", 1, MAX_ATTESTATION_BYTES)
        _check_hex(self.model_sha256, "enclave.model_sha256", (0, 64))
        _check_hex(self.pcr0_hex, "enclave.pcr0_hex", (0, 96))


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    reason: str
    retryable: bool

    def __post_init__(self) -> None:
        _check_re(self.code, _CODE_RE, "error.code")
        if not isinstance(self.reason, str) or len(self.reason) > MAX_REASON_CHARS:
            raise ProtocolError(f"error.reason must be a string of at most {MAX_REASON_CHARS} characters")
        if type(self.retryable) is not bool:
            raise ProtocolError("error.retryable must be a boolean")

    @classmethod
    def of(cls, code: ErrorCode | str, reason: str, retryable: bool | None = None) -> ErrorInfo:
        """Build with the default retry classification, truncating an over-long reason."""
        code_str = str(code)
        return cls(
            code=code_str,
            reason=reason[:MAX_REASON_CHARS],
            retryable=is_retryable(code_str) if retryable is None else retryable,
        )


@dataclass(frozen=True)
class JobFailure:
    request_id: str
    error: ErrorInfo

    ok = False

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)


@dataclass(frozen=True)
class ErrorReply:
    """Answer to a frame that could not be parsed as a request (request_id None if unknown)."""

    request_id: str | None
    error: ErrorInfo

    def __post_init__(self) -> None:
        if self.request_id is not None:
            _check_request_id(self.request_id)


JobReply = Union[JobSuccess, JobFailure]  # noqa: UP007 - used at runtime in isinstance checks
Message = Union[  # noqa: UP007
    HealthRequest, HealthReply, JobRequest, JobSuccess, JobFailure, ErrorReply, PrivacyReleaseRequest,
    PrivacyReleaseReply,
]
Request = Union[HealthRequest, JobRequest, PrivacyReleaseRequest]  # noqa: UP007


# ------------------------------------------------------------------------------------------- encoding


def encode_message(message: Message) -> bytes:
    """CBOR bytes of a message (already validated by its constructor)."""
    return cbor2.dumps(_to_wire(message))


def _to_wire(message: Message) -> dict[str, Any]:
    head: dict[str, Any] = {"version": PROTOCOL_VERSION, "request_id": message.request_id}
    if isinstance(message, HealthRequest):
        return {**head, "kind": "health"}
    if isinstance(message, HealthReply):
        s = message.status
        status: dict[str, Any] = {
            "uptime_s": float(s.uptime_s),
            "jobs_served": s.jobs_served,
            "jobs_failed": s.jobs_failed,
            "in_flight": s.in_flight,
            "concurrency": s.concurrency,
            "model": {"name": s.model_name, "sha256": s.model_sha256},
            "pcr0": s.pcr0_hex,
            "cpu_count": s.cpu_count,
            "rss_bytes": s.rss_bytes,
        }
        if s.metrics is not None:
            status["metrics"] = _metrics_to_wire(s.metrics)
        return {**head, "kind": "health_reply", "status": status}
    if isinstance(message, PrivacyReleaseRequest):
        return {**head, "kind": "privacy_release"}
    if isinstance(message, PrivacyReleaseReply):
        return {
            **head,
            "kind": "privacy_release_reply",
            "releases": [
                {"tenant": r.tenant, "day": r.day, "metric": r.metric, "value": float(r.value),
                 "epsilon": float(r.epsilon), "scale": float(r.scale)}
                for r in message.releases
            ],
            "refused": message.refused,
        }
    if isinstance(message, JobRequest):
        c = message.credentials
        return {
            **head,
            "kind": "job",
            "job": {"job_id": message.job.job_id, "tenant": message.job.tenant},
            "ciphertext": message.ciphertext,
            "credentials": {
                "access_key_id": c.access_key_id,
                "secret_access_key": c.secret_access_key,
                "session_token": c.session_token,
            },
            "kms": {"region": message.kms.region, "endpoint_url": message.kms.endpoint_url},
            "trace": dict(message.trace),
        }
    if isinstance(message, JobSuccess):
        m = message.metrics
        return {
            **head,
            "kind": "job_reply",
            "ok": True,
            "result_ciphertext": message.result_ciphertext,
            "attestation_document": message.attestation_document,
            "metrics": {
                "decrypt_ms": float(m.decrypt_ms),
                "infer_ms": float(m.infer_ms),
                "encrypt_ms": float(m.encrypt_ms),
                "attest_ms": float(m.attest_ms),
            },
            "enclave": {"model_sha256": message.model_sha256, "pcr0": message.pcr0_hex},
        }
    if isinstance(message, JobFailure):
        return {**head, "kind": "job_reply", "ok": False, "error": _error_to_wire(message.error)}
    if isinstance(message, ErrorReply):
        return {**head, "kind": "error", "error": _error_to_wire(message.error)}
    raise TypeError(f"not a protocol message: {type(message).__name__}")


def _metrics_to_wire(m: EnclaveMetrics) -> dict[str, Any]:
    return {
        "cpu_s": float(m.cpu_s),
        "memory_total_bytes": m.memory_total_bytes,
        "memory_available_bytes": m.memory_available_bytes,
        "busy_refusals": m.busy_refusals,
        "attestation": {"ok": m.attestations_ok, "failed": m.attestations_failed},
        "stages": {
            name: {"count": t.count, "total_ms": float(t.total_ms), "max_ms": float(t.max_ms)}
            for name, t in m.stages.items()
        },
    }


def _error_to_wire(error: ErrorInfo) -> dict[str, Any]:
    return {"code": error.code, "reason": error.reason, "retryable": error.retryable}


# ------------------------------------------------------------------------------------------- decoding


class _NoSemanticTags(Mapping[int, Callable[[Any], Any]]):
    """Passed as cbor2's `semantic_decoders`: every tag (dates, bignums, regexes, shared refs) refused."""

    def __getitem__(self, tag: int) -> Callable[[Any], Any]:
        def refuse(_decoder: Any) -> Any:
            raise cbor2.CBORDecodeError(f"CBOR tag {tag} is not allowed")

        return refuse

    def __contains__(self, tag: object) -> bool:
        return True

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _refuse_tag(_decoder: Any, tag: Any) -> Any:
    raise cbor2.CBORDecodeError("CBOR tags are not allowed")


def decode_cbor(data: bytes) -> Any:
    """Exactly one untagged CBOR item spanning all of `data`; any decoder failure -> ProtocolError."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError("message body must be bytes")
    stream = io.BytesIO(bytes(data))
    try:
        decoder = cbor2.CBORDecoder(
            stream,
            tag_hook=_refuse_tag,
            semantic_decoders=_NoSemanticTags(),
            max_depth=MAX_NESTING,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            strict_hashable_types=True,
        )
        value = decoder.decode()
    except Exception as exc:  # cbor2 raises decode/value/overflow/recursion/memory errors on junk
        raise ProtocolError(f"message is not valid CBOR ({type(exc).__name__})") from None
    if stream.tell() != len(data):
        raise ProtocolError(f"{len(data) - stream.tell()} trailing byte(s) after the CBOR message")
    return value


def peek_request_id(data: bytes) -> str | None:
    """Best effort: the request id of a message that failed validation, for the error reply."""
    try:
        value = decode_cbor(data)
    except ProtocolError:
        return None
    if isinstance(value, dict):
        rid = value.get("request_id")
        if isinstance(rid, str) and _REQUEST_ID_RE.fullmatch(rid):
            return rid
    return None


def decode_message(data: bytes, *, max_ciphertext_bytes: int = MAX_CIPHERTEXT_BYTES) -> Message:
    """Parse and validate one message body. Raises ProtocolError (code unsupported_version/bad_request)."""
    value = decode_cbor(data)
    if not isinstance(value, dict):
        raise ProtocolError("message must be a CBOR map")
    version = value.get("version")
    if type(version) is not int:
        raise ProtocolError("message.version must be an integer")
    if version not in SUPPORTED_VERSIONS:
        raise ProtocolError(
            f"protocol version {version} is not supported (supported: {sorted(SUPPORTED_VERSIONS)})",
            code=ErrorCode.UNSUPPORTED_VERSION,
        )
    kind = value.get("kind")
    try:
        if kind == "health":
            _exact_keys(value, {"version", "kind", "request_id"}, "health")
            return HealthRequest(request_id=_str(value, "request_id"))
        if kind == "health_reply":
            _exact_keys(value, {"version", "kind", "request_id", "status"}, "health_reply")
            return HealthReply(request_id=_str(value, "request_id"), status=_status(_map(value, "status")))
        if kind == "privacy_release":
            _exact_keys(value, {"version", "kind", "request_id"}, "privacy_release")
            return PrivacyReleaseRequest(request_id=_str(value, "request_id"))
        if kind == "privacy_release_reply":
            return _privacy_reply(value)
        if kind == "job":
            return _job_request(value, max_ciphertext_bytes)
        if kind == "job_reply":
            return _job_reply(value)
        if kind == "error":
            _exact_keys(value, {"version", "kind", "request_id", "error"}, "error")
            rid = value["request_id"]
            if rid is not None and not isinstance(rid, str):
                raise ProtocolError("error.request_id must be a string or null")
            return ErrorReply(request_id=rid, error=_error(_map(value, "error")))
    except ProtocolError:
        raise
    except (TypeError, ValueError, KeyError, OverflowError) as exc:  # defensive: never leak other types
        raise ProtocolError(f"invalid message ({type(exc).__name__})") from None
    raise ProtocolError(f"unknown message kind {kind!r}" if isinstance(kind, str) else "message.kind must be a string")


def _job_request(value: dict[str, Any], max_ciphertext_bytes: int) -> JobRequest:
    _exact_keys(value, {"version", "kind", "request_id", "job", "ciphertext", "credentials", "kms"}, "job",
                optional={"trace"})
    job = _map(value, "job")
    _exact_keys(job, {"job_id", "tenant"}, "job.job")
    creds = _map(value, "credentials")
    _exact_keys(creds, {"access_key_id", "secret_access_key", "session_token"}, "job.credentials")
    kms = _map(value, "kms")
    _exact_keys(kms, {"region", "endpoint_url"}, "job.kms")
    ciphertext = value["ciphertext"]
    _check_bytes(ciphertext, "ciphertext", 1, max_ciphertext_bytes)
    trace = value.get("trace", {})
    if not isinstance(trace, dict):
        raise ProtocolError("trace must be a map")
    return JobRequest(
        request_id=_str(value, "request_id"),
        job=JobSpec(job_id=_str(job, "job_id"), tenant=_str(job, "tenant")),
        ciphertext=ciphertext,
        credentials=Credentials(
            access_key_id=_str(creds, "access_key_id"),
            secret_access_key=_str(creds, "secret_access_key"),
            session_token=_opt_str(creds, "session_token"),
        ),
        kms=KmsTarget(region=_str(kms, "region"), endpoint_url=_opt_str(kms, "endpoint_url")),
        trace=trace,
    )


def _job_reply(value: dict[str, Any]) -> JobReply:
    ok = value.get("ok")
    if ok is True:
        _exact_keys(value, {"version", "kind", "request_id", "ok", "result_ciphertext", "attestation_document",
                            "metrics", "enclave"}, "job_reply")
        metrics = _map(value, "metrics")
        _exact_keys(metrics, {"decrypt_ms", "infer_ms", "encrypt_ms", "attest_ms"}, "job_reply.metrics")
        enclave = _map(value, "enclave")
        _exact_keys(enclave, {"model_sha256", "pcr0"}, "job_reply.enclave")
        return JobSuccess(
            request_id=_str(value, "request_id"),
            result_ciphertext=value["result_ciphertext"],
            attestation_document=value["attestation_document"],
            metrics=JobMetrics(
                decrypt_ms=metrics["decrypt_ms"],
                infer_ms=metrics["infer_ms"],
                encrypt_ms=metrics["encrypt_ms"],
                attest_ms=metrics["attest_ms"],
            ),
            model_sha256=_str(enclave, "model_sha256"),
            pcr0_hex=_str(enclave, "pcr0"),
        )
    if ok is False:
        _exact_keys(value, {"version", "kind", "request_id", "ok", "error"}, "job_reply")
        return JobFailure(request_id=_str(value, "request_id"), error=_error(_map(value, "error")))
    raise ProtocolError("job_reply.ok must be a boolean")


def _status(value: dict[str, Any]) -> EnclaveStatus:
    _exact_keys(value, {"uptime_s", "jobs_served", "jobs_failed", "in_flight", "concurrency", "model", "pcr0",
                        "cpu_count", "rss_bytes"}, "health_reply.status", optional={"metrics"})
    metrics = _enclave_metrics(_map(value, "metrics")) if "metrics" in value else None
    model = _map(value, "model")
    _exact_keys(model, {"name", "sha256"}, "health_reply.status.model")
    return EnclaveStatus(
        uptime_s=value["uptime_s"],
        jobs_served=value["jobs_served"],
        jobs_failed=value["jobs_failed"],
        in_flight=value["in_flight"],
        concurrency=value["concurrency"],
        model_name=_str(model, "name"),
        model_sha256=_str(model, "sha256"),
        pcr0_hex=_str(value, "pcr0"),
        cpu_count=value["cpu_count"],
        rss_bytes=value["rss_bytes"],
        metrics=metrics,
    )


def _enclave_metrics(value: dict[str, Any]) -> EnclaveMetrics:
    _exact_keys(value, {"cpu_s", "memory_total_bytes", "memory_available_bytes", "busy_refusals", "attestation",
                        "stages"}, "health_reply.status.metrics")
    attestation = _map(value, "attestation")
    _exact_keys(attestation, {"ok", "failed"}, "health_reply.status.metrics.attestation")
    stages = _map(value, "stages")
    _exact_keys(stages, set(STAGES), "health_reply.status.metrics.stages")
    timings = {}
    for name in STAGES:
        stage = _map(stages, name)
        _exact_keys(stage, {"count", "total_ms", "max_ms"}, f"health_reply.status.metrics.stages.{name}")
        timings[name] = StageTiming(count=stage["count"], total_ms=stage["total_ms"], max_ms=stage["max_ms"])
    return EnclaveMetrics(
        cpu_s=value["cpu_s"],
        memory_total_bytes=value["memory_total_bytes"],
        memory_available_bytes=value["memory_available_bytes"],
        busy_refusals=value["busy_refusals"],
        attestations_ok=attestation["ok"],
        attestations_failed=attestation["failed"],
        stages=timings,
    )


def _privacy_reply(value: dict[str, Any]) -> PrivacyReleaseReply:
    _exact_keys(value, {"version", "kind", "request_id", "releases", "refused"}, "privacy_release_reply")
    items = value["releases"]
    if not isinstance(items, list) or len(items) > MAX_RELEASES:
        raise ProtocolError(f"releases must be a list of at most {MAX_RELEASES}")
    releases = []
    for item in items:
        if not isinstance(item, dict):
            raise ProtocolError("each release must be a map")
        _exact_keys(item, {"tenant", "day", "metric", "value", "epsilon", "scale"}, "privacy_release_reply.release")
        releases.append(PrivacyRelease(tenant=_str(item, "tenant"), day=_str(item, "day"), metric=_str(item, "metric"),
                                       value=item["value"], epsilon=item["epsilon"], scale=item["scale"]))
    return PrivacyReleaseReply(request_id=_str(value, "request_id"), releases=tuple(releases),
                               refused=value["refused"])


def _error(value: dict[str, Any]) -> ErrorInfo:
    _exact_keys(value, {"code", "reason", "retryable"}, "error")
    return ErrorInfo(code=_str(value, "code"), reason=_str(value, "reason"), retryable=value["retryable"])


# ----------------------------------------------------------------------------------------- validators


def _exact_keys(value: dict[str, Any], required: set[str], what: str, optional: frozenset[str] | set[str] = frozenset(),
                ) -> None:
    keys = set(value)
    if not all(isinstance(k, str) for k in keys):
        raise ProtocolError(f"{what}: map keys must be strings")
    missing = required - keys
    if missing:
        raise ProtocolError(f"{what}: missing field(s) {sorted(missing)}")
    unknown = keys - required - set(optional)
    if unknown:
        raise ProtocolError(f"{what}: unknown field(s) {sorted(unknown)[:5]}")


def _map(value: dict[str, Any], key: str) -> dict[str, Any]:
    item = value[key]
    if not isinstance(item, dict):
        raise ProtocolError(f"{key} must be a map")
    return item


def _str(value: dict[str, Any], key: str) -> str:
    item = value[key]
    if not isinstance(item, str):
        raise ProtocolError(f"{key} must be a string")
    return item


def _opt_str(value: dict[str, Any], key: str) -> str | None:
    item = value[key]
    if item is not None and not isinstance(item, str):
        raise ProtocolError(f"{key} must be a string or null")
    return item


def _check_request_id(request_id: object) -> None:
    if not isinstance(request_id, str) or not _REQUEST_ID_RE.fullmatch(request_id):
        raise ProtocolError(f"request_id must be 1-{MAX_REQUEST_ID_CHARS} characters of [A-Za-z0-9._-]")


def _check_re(value: object, pattern: re.Pattern[str], what: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ProtocolError(f"{what} is missing or malformed")


def _check_url(value: object, what: str) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_URL_CHARS or not value.isprintable():
        raise ProtocolError(f"{what} must be a URL of at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ProtocolError(f"{what} must be an http(s) URL with a host")


def _check_bytes(value: object, what: str, min_len: int, max_len: int) -> None:
    if not isinstance(value, bytes):
        raise ProtocolError(f"{what} must be a byte string")
    if len(value) < min_len:
        raise ProtocolError(f"{what} is empty")
    if len(value) > max_len:
        raise ProtocolError(f"{what} is {len(value)} bytes, the maximum is {max_len}", code=ErrorCode.TOO_LARGE)


def _check_int(value: object, what: str, low: int, high: int) -> None:
    if type(value) is not int or not low <= value <= high:
        raise ProtocolError(f"{what} must be an integer in {low}..{high}")


def _check_number(value: object, what: str) -> None:
    if type(value) not in (int, float):
        raise ProtocolError(f"{what} must be a number")
    if isinstance(value, int) and not 0 <= value <= 10**12:
        raise ProtocolError(f"{what} must be a finite number in 0..1e12")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number) or not 0 <= number <= 1e12:
        raise ProtocolError(f"{what} must be a finite number in 0..1e12")


def _check_signed(value: object, what: str) -> None:
    if type(value) not in (int, float) or not math.isfinite(float(value)) or abs(float(value)) > 1e12:  # type: ignore[arg-type]
        raise ProtocolError(f"{what} must be a finite number in -1e12..1e12")


def _check_hex(value: object, what: str, lengths: tuple[int, ...]) -> None:
    if not isinstance(value, str) or len(value) not in lengths or not _HEX_RE.fullmatch(value):
        raise ProtocolError(f"{what} must be lowercase hex of length {' or '.join(map(str, lengths))}")


def _check_trace(trace: object) -> None:
    if not isinstance(trace, Mapping) or len(trace) > MAX_TRACE_ENTRIES:
        raise ProtocolError(f"trace must be a map of at most {MAX_TRACE_ENTRIES} entries")
    for key, item in trace.items():
        if not isinstance(key, str) or not _TRACE_KEY_RE.fullmatch(key):
            raise ProtocolError("trace keys must be short lowercase names")
        if not isinstance(item, str) or len(item) > MAX_TRACE_VALUE_CHARS or not item.isprintable():
            raise ProtocolError(f"trace values must be printable strings of at most {MAX_TRACE_VALUE_CHARS} chars")

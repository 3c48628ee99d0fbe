"""The parent<->enclave protocol: frames and messages round-trip, and hostile bytes only ever raise ProtocolError."""

from __future__ import annotations

import contextlib
import struct

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccc_enclave.protocol.codec import peek_request_id
from ccc_enclave.protocol.error_replies import MAX_REASON_CHARS, ErrorInfo, ErrorReply
from ccc_enclave.protocol.errors import ConnectionClosed, ErrorCode, FrameTooLarge, ProtocolError
from ccc_enclave.protocol.framing import encode_frame, read_frame, write_frame
from ccc_enclave.protocol.health_messages import EnclaveStatus, HealthReply, HealthRequest
from ccc_enclave.protocol.job_messages import (
    Credentials,
    JobFailure,
    JobMetrics,
    JobRequest,
    JobSpec,
    JobSuccess,
    KmsTarget,
)
from ccc_enclave.protocol.messages import Message, decode_message, encode_message

REQUEST_IDS = st.from_regex(r"\A[A-Za-z0-9._-]{1,64}\Z")
JOB_IDS = st.from_regex(r"\A[0-9a-f]{32}\Z")
TENANTS = st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,62}\Z")
PRINTABLE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
HEX64 = st.from_regex(r"\A[0-9a-f]{64}\Z")
HEX96 = st.from_regex(r"\A[0-9a-f]{96}\Z")
MS = st.floats(min_value=0, max_value=1e9, allow_nan=False)
COUNTS = st.integers(min_value=0, max_value=2**40)


def _job_requests() -> st.SearchStrategy[JobRequest]:
    return st.builds(
        JobRequest,
        request_id=REQUEST_IDS,
        job=st.builds(JobSpec, job_id=JOB_IDS, tenant=TENANTS),
        ciphertext=st.binary(min_size=1, max_size=2048),
        credentials=st.builds(
            Credentials, access_key_id=PRINTABLE, secret_access_key=PRINTABLE,
            session_token=st.none() | PRINTABLE,
        ),
        kms=st.builds(
            KmsTarget,
            region=st.sampled_from(["us-east-1", "eu-west-2", "us-gov-west-1", "ap-southeast-3"]),
            endpoint_url=st.none() | st.sampled_from(["http://127.0.0.1:4566", "https://kms.us-east-1.amazonaws.com"]),
        ),
        trace=st.dictionaries(st.sampled_from(["traceparent", "tracestate"]), st.from_regex(r"\A[ -~]{0,80}\Z")),
    )


def _errors() -> st.SearchStrategy[ErrorInfo]:
    return st.builds(
        ErrorInfo, code=st.sampled_from([c.value for c in ErrorCode]), reason=st.text(max_size=200),
        retryable=st.booleans(),
    )


MESSAGES = st.one_of(
    st.builds(HealthRequest, request_id=REQUEST_IDS),
    st.builds(
        HealthReply,
        request_id=REQUEST_IDS,
        status=st.builds(
            EnclaveStatus, uptime_s=MS, jobs_served=COUNTS, jobs_failed=COUNTS, in_flight=COUNTS,
            concurrency=st.integers(1, 64), model_name=st.sampled_from(["nanodet-g", ""]), model_sha256=HEX64,
            pcr0_hex=HEX96, cpu_count=st.integers(0, 512), rss_bytes=COUNTS,
        ),
    ),
    _job_requests(),
    st.builds(
        JobSuccess, request_id=REQUEST_IDS, result_ciphertext=st.binary(min_size=1, max_size=512),
        attestation_document=st.binary(min_size=1, max_size=512),
        metrics=st.builds(JobMetrics, decrypt_ms=MS, infer_ms=MS, encrypt_ms=MS, attest_ms=MS),
        model_sha256=HEX64, pcr0_hex=HEX96,
    ),
    st.builds(JobFailure, request_id=REQUEST_IDS, error=_errors()),
    st.builds(ErrorReply, request_id=st.none() | REQUEST_IDS, error=_errors()),
)


class ChunkedSource:
    """A stream that hands out its bytes in the given chunk sizes, like a real socket may."""

    def __init__(self, data: bytes, chunks: list[int] | None = None) -> None:
        self.data = data
        self.pos = 0
        self.chunks = list(chunks or [])
        self.largest_request = 0

    def recv_into(self, buffer: memoryview, nbytes: int = 0) -> int:
        want = nbytes or len(buffer)
        self.largest_request = max(self.largest_request, want)
        if self.chunks:
            want = max(1, min(want, self.chunks.pop(0)))
        piece = self.data[self.pos : self.pos + want]
        buffer[: len(piece)] = piece
        self.pos += len(piece)
        return len(piece)


class Sink:
    def __init__(self) -> None:
        self.data = b""

    def sendall(self, data: bytes) -> None:
        self.data += data


@given(MESSAGES)
@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)
def test_every_message_round_trips(message: Message) -> None:
    assert decode_message(encode_message(message)) == message


@given(MESSAGES, st.lists(st.integers(1, 64), max_size=50))
@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=100)
def test_frames_round_trip_whatever_the_read_sizes(message: Message, chunks: list[int]) -> None:
    sink = Sink()
    write_frame(sink, encode_message(message))
    assert sink.data == encode_frame(encode_message(message))
    source = ChunkedSource(sink.data + sink.data, chunks)
    assert decode_message(read_frame(source)) == message
    assert decode_message(read_frame(source)) == message
    with pytest.raises(ConnectionClosed):
        read_frame(source)


@given(st.binary(max_size=4096))
@settings(max_examples=500)
def test_arbitrary_message_bytes_raise_only_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_message(data)


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=30,
))
@settings(max_examples=300)
def test_arbitrary_cbor_values_raise_only_protocol_error(value: object) -> None:
    with contextlib.suppress(ProtocolError):
        decode_message(cbor2.dumps(value))


@given(_job_requests(), st.data())
@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)
def test_mutated_valid_messages_raise_only_protocol_error(message: JobRequest, data: st.DataObject) -> None:
    wire = cbor2.loads(encode_message(message))
    section = data.draw(st.sampled_from(["top", "job", "credentials", "kms"]))
    target = wire if section == "top" else wire[section]
    key = data.draw(st.sampled_from(sorted(target)))
    replacement = data.draw(st.none() | st.integers() | st.text(max_size=5) | st.binary(max_size=5)
                            | st.just({}) | st.just([]) | st.just("DELETE"))
    if replacement == "DELETE":
        del target[key]
    else:
        target[key] = replacement
    try:
        decoded = decode_message(cbor2.dumps(wire))
    except ProtocolError:
        return
    assert isinstance(decoded, JobRequest)  # a mutation the schema allows (e.g. a new valid string)


@given(st.binary(max_size=300), st.lists(st.integers(1, 16), max_size=20))
@settings(max_examples=300)
def test_arbitrary_stream_bytes_raise_only_protocol_error(data: bytes, chunks: list[int]) -> None:
    source = ChunkedSource(data, chunks)
    try:
        while True:
            decode_message(read_frame(source, max_frame_bytes=256))
    except ProtocolError:
        pass


@given(st.integers(min_value=1025, max_value=2**32 - 1))
def test_oversize_frame_is_refused_before_reading_the_body(length: int) -> None:
    source = ChunkedSource(struct.pack(">I", length) + b"x" * 10)
    with pytest.raises(FrameTooLarge) as info:
        read_frame(source, max_frame_bytes=1024)
    assert info.value.length == length
    assert info.value.code == "too_large"
    assert source.pos == 4  # only the header was consumed
    assert source.largest_request <= 4


def test_encoder_refuses_oversize_and_empty_frames() -> None:
    with pytest.raises(FrameTooLarge):
        encode_frame(b"x" * 11, max_frame_bytes=10)
    with pytest.raises(FrameTooLarge):
        write_frame(Sink(), b"x" * 11, max_frame_bytes=10)
    with pytest.raises(ProtocolError):
        encode_frame(b"")


def test_truncated_body_and_header_are_errors_not_clean_close() -> None:
    frame = encode_frame(encode_message(HealthRequest(request_id="r1")))
    for cut in (1, 3, 5, len(frame) - 1):
        with pytest.raises(ProtocolError) as info:
            read_frame(ChunkedSource(frame[:cut]))
        assert not isinstance(info.value, ConnectionClosed)


def test_empty_frame_is_refused() -> None:
    with pytest.raises(ProtocolError):
        read_frame(ChunkedSource(b"\x00\x00\x00\x00"))


def test_unknown_version_is_reported_as_such_with_the_request_id() -> None:
    body = cbor2.dumps({"version": 2, "kind": "health", "request_id": "abc"})
    with pytest.raises(ProtocolError) as info:
        decode_message(body)
    assert info.value.code == ErrorCode.UNSUPPORTED_VERSION
    assert peek_request_id(body) == "abc"


@pytest.mark.parametrize(
    "hex_body",
    [
        "c11a514b67b0",  # tag 1 (epoch datetime)
        "d81c81d81d00",  # shared-reference tags (cycles)
        "c249010000000000000000",  # bignum
        "9b7fffffffffffffff",  # array announcing 2^63 items
        "bf61616101ff",  # indefinite-length map
        "a2616101616102",  # duplicate keys
    ],
)
def test_hostile_cbor_constructs_are_refused(hex_body: str) -> None:
    with pytest.raises(ProtocolError):
        decode_message(bytes.fromhex(hex_body))


def test_trailing_bytes_are_refused() -> None:
    body = encode_message(HealthRequest(request_id="r"))
    with pytest.raises(ProtocolError, match="trailing"):
        decode_message(body + b"\x00")


def test_ciphertext_limit_is_applied_when_decoding() -> None:
    request = JobRequest(
        request_id="r", job=JobSpec(job_id="0" * 32, tenant="acme"), ciphertext=b"x" * 100,
        credentials=Credentials(access_key_id="AKID", secret_access_key="secret"), kms=KmsTarget(region="us-east-1"),
    )
    body = encode_message(request)
    assert decode_message(body, max_ciphertext_bytes=100) == request
    with pytest.raises(ProtocolError) as info:
        decode_message(body, max_ciphertext_bytes=99)
    assert info.value.code == "too_large"


def test_fields_are_validated() -> None:
    with pytest.raises(ProtocolError):
        JobSpec(job_id="../etc", tenant="acme")
    with pytest.raises(ProtocolError):
        JobSpec(job_id="0" * 32, tenant="Acme/../x")
    with pytest.raises(ProtocolError):
        KmsTarget(region="us-east-1", endpoint_url="file:///etc/passwd")
    with pytest.raises(ProtocolError):
        KmsTarget(region="not a region")
    with pytest.raises(ProtocolError):
        Credentials(access_key_id="has space", secret_access_key="s")
    with pytest.raises(ProtocolError):
        ErrorInfo(code="busy", reason="x", retryable=1)  # type: ignore[arg-type]
    with pytest.raises(ProtocolError):
        HealthRequest(request_id="")


def test_credentials_and_payloads_stay_out_of_reprs() -> None:
    request = JobRequest(
        request_id="r", job=JobSpec(job_id="0" * 32, tenant="acme"), ciphertext=b"CIPHERTEXT-BYTES",
        credentials=Credentials(access_key_id="AKIDEXAMPLE", secret_access_key="TOP-SECRET",
                                session_token="SESSION-TOKEN"),
        kms=KmsTarget(region="us-east-1"),
    )
    text = repr(request)
    assert "TOP-SECRET" not in text and "SESSION-TOKEN" not in text and "CIPHERTEXT" not in text


def test_retry_classification() -> None:
    assert ErrorInfo.of(ErrorCode.BUSY, "x").retryable is True
    assert ErrorInfo.of(ErrorCode.CONTEXT_MISMATCH, "x").retryable is False
    assert ErrorInfo.of(ErrorCode.BAD_IMAGE, "x").retryable is False
    assert ErrorInfo.of("something_new", "x").retryable is True
    assert len(ErrorInfo.of("internal", "y" * 5000).reason) == MAX_REASON_CHARS

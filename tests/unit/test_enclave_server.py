"""The enclave server over real sockets with fake crypto/counter/NSM ports.

What a user relies on: a correct job gets an encrypted, attested result under the input's key and
the result context; a wrong context, a bad image or a hostile frame gets an error reply and the
server stays healthy; the concurrency limit answers `busy`; stop() lets running jobs finish.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc_core.result_binding import result_user_data
from ccc_enclave.pipeline import JobProcessor, check_input_context
from ccc_enclave.ports import CatDetection, CountOutcome, DecryptedInput, JobError
from ccc_enclave.protocol.error_replies import ErrorInfo, ErrorReply
from ccc_enclave.protocol.errors import ConnectionClosed, ErrorCode
from ccc_enclave.protocol.health_messages import EnclaveStatus, HealthReply, HealthRequest
from ccc_enclave.protocol.job_messages import Credentials, JobFailure, JobRequest, JobSpec, JobSuccess, KmsTarget
from ccc_enclave.protocol.messages import Message
from ccc_enclave.server import EnclaveServer, ServerSettings
from ccc_enclave.transport import Channel, connect, listen

JOB = "0123456789abcdef0123456789abcdef"
OTHER_JOB = "fedcba9876543210fedcba9876543210"
TENANT = "acme"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
SECRET = "wJalrXUtnFEMI-SECRET-KEY"
IMAGE_MARKER = b"IMG:PLAINTEXT-PIXELS"
SHA = "ab" * 32
PCR0 = "cd" * 48


def fake_ciphertext(plaintext: bytes, context: Mapping[str, str], key_arn: str = KEY_ARN) -> bytes:
    """The fake envelope: CBOR of context, key and plaintext (the fake crypto 'decrypts' it)."""
    return cbor2.dumps({"ctx": dict(context), "key": key_arn, "pt": plaintext})


class FakeSession:
    def __init__(self, owner: FakeCrypto) -> None:
        self.owner = owner

    def decrypt(self, ciphertext: bytes) -> DecryptedInput:
        try:
            env = cbor2.loads(ciphertext)
            return DecryptedInput(plaintext=env["pt"], encryption_context=env["ctx"], key_arn=env["key"])
        except Exception:
            raise JobError(ErrorCode.DECRYPT_FAILED, "not a fake envelope") from None

    def encrypt(self, plaintext: bytes, encryption_context: Mapping[str, str], key_arn: str) -> bytes:
        self.owner.encrypted.append((dict(encryption_context), key_arn))
        return fake_ciphertext(plaintext, encryption_context, key_arn)


class FakeCrypto:
    def __init__(self) -> None:
        self.encrypted: list[tuple[dict[str, str], str]] = []
        self.sessions: list[Credentials] = []

    def session(self, credentials: Credentials, kms: KmsTarget) -> FakeSession:
        self.sessions.append(credentials)
        return FakeSession(self)


class FakeCounter:
    """Counts occurrences of b'cat'; images must start with b'IMG'. Can block to hold a slot."""

    model_name = "fake-detector"
    model_sha256 = SHA

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.crash = False

    def count(self, image: bytes) -> CountOutcome:
        self.entered.set()
        assert self.gate.wait(10)
        if self.crash:
            raise RuntimeError("boom with " + image.decode(errors="replace"))  # message quotes plaintext!
        if not image.startswith(b"IMG"):
            raise JobError(ErrorCode.BAD_IMAGE, "not a usable image: unknown format")
        n = image.count(b"cat")
        return CountOutcome(cats=n, detections=tuple(CatDetection((1.0, 2.0, 3.0, 4.0), 0.9) for _ in range(n)))


class FakeAttester:
    pcr0_hex = PCR0

    def attest(self, user_data: bytes) -> bytes:
        return b"DOC:" + user_data


@dataclass
class Harness:
    server: EnclaveServer
    crypto: FakeCrypto
    counter: FakeCounter
    thread: threading.Thread

    @property
    def uri(self) -> str:
        return self.server.listener.endpoint.uri

    def channel(self) -> Channel:
        return Channel.connect(self.uri, timeout=5)

    def call(self, message: Message) -> Message:
        with self.channel() as channel:
            channel.send(message, timeout=5)
            return channel.receive(timeout=10)

    def healthy(self) -> EnclaveStatus:
        reply = self.call(HealthRequest(request_id="health"))
        assert isinstance(reply, HealthReply)
        return reply.status


@pytest.fixture
def harness() -> Iterator[Harness]:
    crypto, counter = FakeCrypto(), FakeCounter()
    listener = listen("tcp://127.0.0.1:0")
    server = EnclaveServer(
        listener, JobProcessor(crypto, counter, FakeAttester()), model_name="fake-detector", model_sha256=SHA,
        pcr0_hex=PCR0,
        settings=ServerSettings(concurrency=1, max_connections=4, frame_timeout_s=5, accept_poll_s=0.05,
                                shutdown_grace_s=10),
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    h = Harness(server, crypto, counter, thread)
    yield h
    counter.gate.set()
    server.stop()
    thread.join(10)
    assert not thread.is_alive()


def job_request(ciphertext: bytes, *, request_id: str = "req-1", job: str = JOB, tenant: str = TENANT) -> JobRequest:
    return JobRequest(
        request_id=request_id, job=JobSpec(job_id=job, tenant=tenant), ciphertext=ciphertext,
        credentials=Credentials(access_key_id="AKIDEXAMPLE", secret_access_key=SECRET, session_token="SESSION-TOKEN"),
        kms=KmsTarget(region="us-east-1"),
    )


def input_for(
    job: str = JOB, tenant: str = TENANT, image: bytes = IMAGE_MARKER + b" cat cat cat", **extra: str
) -> bytes:
    return fake_ciphertext(image, {"ccc:job": job, "ccc:tenant": tenant, **extra})


def test_job_is_counted_encrypted_under_the_input_key_and_attested(harness: Harness) -> None:
    reply = harness.call(job_request(input_for()))
    assert isinstance(reply, JobSuccess), reply
    assert reply.request_id == "req-1"
    env = cbor2.loads(reply.result_ciphertext)
    assert env["key"] == KEY_ARN
    assert env["ctx"] == {"ccc:job": JOB, "ccc:tenant": TENANT, "ccc:kind": "result"}
    result = json.loads(env["pt"])
    assert result["job_id"] == JOB and result["tenant"] == TENANT and result["cats"] == 3
    assert result["model"] == {"name": "fake-detector", "sha256": SHA}
    assert len(result["detections"]) == 3 and result["detections"][0]["box"] == [1.0, 2.0, 3.0, 4.0]
    request_ciphertext = job_request(input_for()).ciphertext
    assert result["input_sha256"] == hashlib.sha256(request_ciphertext).hexdigest()
    assert reply.attestation_document == b"DOC:" + result_user_data(request_ciphertext, reply.result_ciphertext)
    assert reply.pcr0_hex == PCR0 and reply.model_sha256 == SHA
    assert all(v >= 0 for v in (reply.metrics.decrypt_ms, reply.metrics.infer_ms, reply.metrics.attest_ms))
    assert harness.crypto.sessions[0].secret_access_key == SECRET  # credentials reached the KMS session
    assert harness.healthy().jobs_served == 1


def test_result_key_comes_from_the_input_not_the_parent(harness: Harness) -> None:
    other_key = KEY_ARN.replace("1111", "9999")
    reply = harness.call(job_request(fake_ciphertext(b"IMG cat", {"ccc:job": JOB, "ccc:tenant": TENANT}, other_key)))
    assert isinstance(reply, JobSuccess)
    assert harness.crypto.encrypted == [({"ccc:job": JOB, "ccc:tenant": TENANT, "ccc:kind": "result"}, other_key)]


@pytest.mark.parametrize(
    "ciphertext",
    [
        input_for(job=OTHER_JOB),  # cut from another job
        input_for(tenant="evil"),  # another tenant
        input_for(**{"ccc:kind": "result"}),  # a result pasted back as input
        input_for(**{"ccc:stage": "x"}),  # unknown ccc: key
        fake_ciphertext(b"IMG cat", {"ccc:tenant": TENANT}),  # no job
    ],
)
def test_wrong_context_is_refused_and_the_server_stays_healthy(harness: Harness, ciphertext: bytes) -> None:
    reply = harness.call(job_request(ciphertext))
    assert isinstance(reply, JobFailure)
    assert reply.error.code == "context_mismatch" and reply.error.retryable is False
    assert harness.crypto.encrypted == []  # nothing was counted or encrypted
    status = harness.healthy()
    assert status.jobs_failed == 1 and status.in_flight == 0


def test_bad_image_and_undecryptable_input_are_permanent_failures(harness: Harness) -> None:
    reply = harness.call(job_request(input_for(image=b"GIF89a not really")))
    assert isinstance(reply, JobFailure) and reply.error.code == "bad_image" and not reply.error.retryable
    reply = harness.call(job_request(b"\x01\x02 not an envelope"))
    assert isinstance(reply, JobFailure) and reply.error.code == "decrypt_failed" and not reply.error.retryable
    assert harness.healthy().jobs_failed == 2


def test_an_unexpected_crash_is_a_retryable_internal_error_that_leaks_nothing(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.counter.crash = True
    with caplog.at_level(logging.DEBUG):
        reply = harness.call(job_request(input_for()))
    assert isinstance(reply, JobFailure)
    assert reply.error.code == "internal" and reply.error.retryable is True
    assert "PLAINTEXT" not in reply.error.reason
    harness.counter.crash = False
    assert isinstance(harness.call(job_request(input_for(), request_id="again")), JobSuccess)
    logged = caplog.text + "".join(str(getattr(r, "ccc_fields", "")) for r in caplog.records)
    assert "PLAINTEXT" not in logged and SECRET not in logged and "SESSION-TOKEN" not in logged


def test_garbage_and_unknown_versions_get_error_replies_on_a_live_connection(harness: Harness) -> None:
    with harness.channel() as channel:
        channel.send_bytes(b"\xff\xfe not cbor", timeout=5)
        reply = channel.receive(timeout=5)
        assert isinstance(reply, ErrorReply) and reply.error.code == "bad_request" and reply.request_id is None
        channel.send_bytes(cbor2.dumps({"version": 99, "kind": "job", "request_id": "v99"}), timeout=5)
        reply = channel.receive(timeout=5)
        assert isinstance(reply, ErrorReply) and reply.error.code == "unsupported_version"
        assert reply.request_id == "v99"
        channel.send(ErrorReply(request_id="x", error=ErrorInfo.of("busy", "a reply is not a request")), timeout=5)
        reply = channel.receive(timeout=5)
        assert isinstance(reply, ErrorReply) and reply.error.code == "bad_request"
        channel.send(HealthRequest(request_id="h"), timeout=5)  # the same connection still works
        assert isinstance(channel.receive(timeout=5), HealthReply)


def test_oversize_frame_is_answered_and_the_connection_closed(harness: Harness) -> None:
    raw = connect(harness.uri, timeout=5)
    raw.sendall((2**31).to_bytes(4, "big"))
    with Channel(raw) as channel:
        reply = channel.receive(timeout=5)
        assert isinstance(reply, ErrorReply) and reply.error.code == "too_large"
        with pytest.raises(ConnectionClosed):
            channel.receive(timeout=5)
    assert harness.healthy().in_flight == 0


def test_peers_vanishing_mid_frame_do_not_hurt_the_server(harness: Harness) -> None:
    for junk in (b"\x00\x00", b"\x00\x00\x01\x00partial", b""):
        raw = connect(harness.uri, timeout=5)
        raw.sendall(junk)
        raw.close()
    raw = connect(harness.uri, timeout=5)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
    raw.sendall(b"\x00\x00\x10\x00abc")
    raw.close()
    assert harness.healthy().concurrency == 1


def test_concurrency_limit_answers_busy_and_health_still_works(harness: Harness) -> None:
    harness.counter.gate.clear()
    first = harness.channel()
    first.send(job_request(input_for(), request_id="slow"), timeout=5)
    assert harness.counter.entered.wait(5)
    reply = harness.call(job_request(input_for(), request_id="second"))
    assert isinstance(reply, JobFailure)
    assert reply.error.code == "busy" and reply.error.retryable is True
    status = harness.healthy()
    assert status.in_flight == 1
    harness.counter.gate.set()
    slow = first.receive(timeout=10)
    first.close()
    assert isinstance(slow, JobSuccess) and slow.request_id == "slow"
    assert harness.healthy().in_flight == 0


def test_connection_cap_answers_busy() -> None:
    listener = listen("tcp://127.0.0.1:0")
    counter = FakeCounter()
    server = EnclaveServer(
        listener, JobProcessor(FakeCrypto(), counter, FakeAttester()), model_name="m", model_sha256=SHA, pcr0_hex=PCR0,
        settings=ServerSettings(concurrency=1, max_connections=1, frame_timeout_s=5, accept_poll_s=0.05),
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        held = Channel.connect(listener.endpoint, timeout=5)
        held.send(HealthRequest(request_id="h1"), timeout=5)
        assert isinstance(held.receive(timeout=5), HealthReply)
        with Channel.connect(listener.endpoint, timeout=5) as extra:
            reply = extra.receive(timeout=5)
            assert isinstance(reply, ErrorReply) and reply.error.code == "busy" and reply.error.retryable
        held.close()
    finally:
        server.stop()
        thread.join(10)


def test_stop_lets_the_running_job_finish_and_answers_it(harness: Harness) -> None:
    harness.counter.gate.clear()
    channel = harness.channel()
    channel.send(job_request(input_for(), request_id="inflight"), timeout=5)
    assert harness.counter.entered.wait(5)
    idle = harness.channel()  # an idle connection must not hold up shutdown
    idle.send(HealthRequest(request_id="i"), timeout=5)
    idle.receive(timeout=5)
    harness.server.stop()
    time.sleep(0.3)
    assert harness.thread.is_alive()  # waiting for the in-flight job
    harness.counter.gate.set()
    reply = channel.receive(timeout=10)
    assert isinstance(reply, JobSuccess) and reply.request_id == "inflight"
    harness.thread.join(10)
    assert not harness.thread.is_alive()
    with pytest.raises(Exception):  # noqa: B017 - refused or reset: the listener is gone
        Channel.connect(harness.uri, timeout=1).send(HealthRequest(request_id="late"), timeout=1)
    channel.close()
    idle.close()


def test_health_reports_metadata_only(harness: Harness) -> None:
    status = harness.healthy()
    assert status.model_sha256 == SHA and status.pcr0_hex == PCR0 and status.model_name == "fake-detector"
    assert status.concurrency == 1 and status.cpu_count >= 1 and status.rss_bytes > 0 and status.uptime_s >= 0


CONTEXT_VALUES = st.sampled_from([JOB, OTHER_JOB, TENANT, "evil", "input", "result", ""])


@given(st.dictionaries(st.sampled_from(["ccc:job", "ccc:tenant", "ccc:kind", "ccc:x", "aws-crypto-public-key", "mine"]),
                       CONTEXT_VALUES))
def test_context_check_accepts_exactly_this_jobs_input_context(context: dict[str, str]) -> None:
    expected_ok = (
        context.get("ccc:job") == JOB
        and context.get("ccc:tenant") == TENANT
        and set(context) <= {"ccc:job", "ccc:tenant", "aws-crypto-public-key"}
    )
    try:
        check_input_context(context, JobSpec(job_id=JOB, tenant=TENANT))
    except JobError as exc:
        assert exc.code == ErrorCode.CONTEXT_MISMATCH
        assert not expected_ok
    else:
        assert expected_ok


class _CountingTo:
    """A counter that finds `n` cats with boxes of realistic, varying widths."""

    model_name = "fake-detector"
    model_sha256 = SHA

    def __init__(self, n: int) -> None:
        self.n = n

    def count(self, image: bytes) -> CountOutcome:
        boxes = tuple(CatDetection((12.3 * i, 4.5, 1234.5 - i, 987.6), 0.4321 + i / 1000) for i in range(self.n))
        return CountOutcome(cats=self.n, detections=boxes)


def test_result_ciphertext_size_does_not_reveal_the_count() -> None:
    """The parent sees the result's size (and S3 stores it); ESDK does not pad, so the enclave must."""
    from ccc.client.crypto import parse_result

    sizes, counts = set(), []
    for n in (0, 1, 7, 60, 300):
        crypto = FakeCrypto()
        reply = JobProcessor(crypto, _CountingTo(n), FakeAttester()).process(
            job_request(fake_ciphertext(b"IMG", {"ccc:job": JOB, "ccc:tenant": TENANT}))
        )
        assert isinstance(reply, JobSuccess), reply
        plaintext = cbor2.loads(reply.result_ciphertext)["pt"]
        sizes.add(len(plaintext))
        counts.append(parse_result(plaintext).cats)
    assert counts == [0, 1, 7, 60, 300]
    assert len(sizes) == 1

"""What the host sees of the enclave: metadata-only health, coarse timings, nothing per tenant.

Real sockets and the real server/pipeline, with the fake crypto/counter/NSM ports of
test_enclave_server. What a user relies on: the health reply's counters follow the jobs (stage
timings, attestation outcomes, busy refusals, CPU and memory); every measurement leaves on the
protocol's grid; replaying one job 100 times gives the host nothing that depends on the count (the
transcripts for a 0-cat and a 5-cat image are identical up to ciphertext bytes); there is no
release of per-tenant totals to ask for; no reply or log line carries a count.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import cbor2
import pytest

from ccc_enclave.pipeline import JobProcessor
from ccc_enclave.ports import CountOutcome
from ccc_enclave.protocol.error_replies import ErrorInfo, ErrorReply
from ccc_enclave.protocol.errors import ErrorCode
from ccc_enclave.protocol.framing import FRAME_HEADER
from ccc_enclave.protocol.health_messages import PIPELINE_STEPS, EnclaveStatus, HealthReply, HealthRequest
from ccc_enclave.protocol.job_messages import JobFailure, JobSuccess
from ccc_enclave.protocol.messages import Message, decode_message, encode_message
from ccc_enclave.protocol.resolution import BYTES_STEP, TIMING_GRID_MS, coarse_bytes
from ccc_enclave.server import EnclaveServer, ServerSettings
from ccc_enclave.stats import EnclaveStats, read_meminfo
from ccc_enclave.transport import Channel, connect, listen

from .test_enclave_server import (
    IMAGE_MARKER,
    JOB,
    PCR0,
    SHA,
    FakeAttester,
    FakeCounter,
    FakeCrypto,
    input_for,
    job_request,
)

TENANT_A, TENANT_B = "tenant-a", "tenant-b"
REPLAYS = 100


class Enclave:
    def __init__(self, *, concurrency: int = 2, counter: FakeCounter | None = None) -> None:
        self.crypto, self.counter = FakeCrypto(), counter or FakeCounter()
        processor = JobProcessor(self.crypto, self.counter, FakeAttester())
        self.server = EnclaveServer(
            listen("tcp://127.0.0.1:0"),
            processor,
            model_name="fake-detector",
            model_sha256=SHA,
            pcr0_hex=PCR0,
            settings=ServerSettings(
                concurrency=concurrency, max_connections=8, frame_timeout_s=5, accept_poll_s=0.05, shutdown_grace_s=10
            ),
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def call(self, message: Message) -> Message:
        with Channel.connect(self.server.listener.endpoint.uri, timeout=5) as channel:
            channel.send(message, timeout=5)
            return channel.receive(timeout=10)

    def call_raw(self, body: bytes) -> Message:
        """Send a frame the parent builds by hand (e.g. a message kind this protocol no longer has)."""
        with connect(self.server.listener.endpoint.uri, timeout=5) as sock:
            sock.sendall(FRAME_HEADER.pack(len(body)) + body)
            return Channel(sock).receive(timeout=10)

    def job(self, index: int, tenant: str, cats: int) -> Message:
        job_id = f"{index:032x}"
        image = IMAGE_MARKER + b" cat" * cats
        return self.call(
            job_request(input_for(job_id, tenant, image), request_id=f"r{index}", job=job_id, tenant=tenant)
        )

    def status(self) -> EnclaveStatus:
        reply = self.call(HealthRequest(request_id="h"))
        assert isinstance(reply, HealthReply)
        return reply.status

    def stop(self) -> None:
        self.counter.gate.set()
        self.server.stop()
        self.thread.join(10)


@pytest.fixture
def enclave() -> Iterator[Enclave]:
    e = Enclave()
    yield e
    e.stop()


def test_health_metrics_follow_the_jobs(enclave: Enclave) -> None:
    before = enclave.status().metrics
    assert before is not None and before.attestations_ok == 0 and before.stages["infer"].count == 0
    for i in range(3):
        assert isinstance(enclave.job(i, TENANT_A, cats=2), JobSuccess)
    forged = job_request(input_for(JOB, TENANT_B), job=JOB, tenant=TENANT_A)  # context names another tenant
    assert isinstance(enclave.call(forged), JobFailure)
    metrics = enclave.status().metrics
    assert metrics is not None
    assert metrics.attestations_ok == 3 and metrics.attestations_failed == 0
    for stage in PIPELINE_STEPS:
        timing = metrics.stages[stage]
        assert timing.count == 3 and 0 < timing.max_ms <= timing.total_ms and timing.max_ms in TIMING_GRID_MS
    assert metrics.cpu_s >= 0 and metrics.cpu_s.is_integer()
    total, available = read_meminfo()
    assert metrics.memory_total_bytes == coarse_bytes(total)
    assert total == 0 or 0 < metrics.memory_available_bytes <= metrics.memory_total_bytes


def test_busy_refusals_and_attestation_failures_are_counted() -> None:
    stats = EnclaveStats(cpu_clock=lambda: 1.75, meminfo=lambda: (4 << 30, (3 << 30) + 4321))
    stats.busy_refused()
    stats.job_finished(JobFailure(request_id="r", error=ErrorInfo.of(ErrorCode.ATTESTATION_FAILED, "nsm said no")))
    stats.job_finished(JobFailure(request_id="r", error=ErrorInfo.of(ErrorCode.BAD_IMAGE, "not an image")))
    snapshot = stats.snapshot()
    assert (snapshot.busy_refusals, snapshot.attestations_failed, snapshot.attestations_ok) == (1, 1, 0)
    # Readings leave on the grid: whole seconds, 16 MiB steps.
    assert (snapshot.memory_total_bytes, snapshot.memory_available_bytes, snapshot.cpu_s) == (4 << 30, 3 << 30, 1.0)


def test_busy_enclave_counts_the_refusal_and_still_answers_health() -> None:
    e = Enclave(concurrency=1)
    try:
        e.counter.gate.clear()
        holder = threading.Thread(target=e.job, args=(1, TENANT_A, 1))
        holder.start()
        assert e.counter.entered.wait(5)
        refused = e.job(2, TENANT_A, 1)
        assert isinstance(refused, JobFailure) and refused.error.code == ErrorCode.BUSY
        status = e.status()
        assert status.in_flight == 1 and status.metrics is not None and status.metrics.busy_refusals == 1
        e.counter.gate.set()
        holder.join(10)
    finally:
        e.stop()


class SlowCounter(FakeCounter):
    """Takes a known time, so the reported timing can be checked against the grid."""

    def count(self, image: bytes) -> CountOutcome:
        time.sleep(0.012)
        return super().count(image)


def test_timings_leave_the_enclave_on_the_dashboard_grid() -> None:
    e = Enclave(counter=SlowCounter())
    try:
        reply = e.job(1, TENANT_A, cats=3)
        assert isinstance(reply, JobSuccess)
        m = reply.metrics
        assert m.infer_ms in (20.0, 35.0, 50.0)  # 12 ms of inference, reported as its bucket's bound
        for value in (m.decrypt_ms, m.infer_ms, m.encrypt_ms, m.attest_ms):
            assert value in TIMING_GRID_MS
        status = e.status()
        assert status.uptime_s.is_integer() and status.rss_bytes % BYTES_STEP == 0
    finally:
        e.stop()


def _host_view(message: Message) -> Any:
    """Everything the host gets from a reply, with ciphertext bytes replaced by their length and
    the readings that vary run to run (timings, CPU, memory, uptime) replaced by a marker once
    checked to be on the grid. Ciphertext is opaque to the host (AES-GCM under the tenant's key)."""
    wire = cbor2.loads(encode_message(message))

    def scrub(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: scrub(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        if isinstance(value, bytes):
            return ("bytes", len(value))
        if key.endswith("_ms") or key in ("cpu_s", "uptime_s") or key.endswith("_bytes"):
            assert float(value) == float(value) // 1 or float(value) in TIMING_GRID_MS, (key, value)
            return "reading"
        return value

    return scrub(wire)


def _replay_transcript(enclave: Enclave, index: int, cats: int) -> list[Any]:
    job_id = f"{index:032x}"
    request = job_request(
        input_for(job_id, TENANT_A, IMAGE_MARKER + b" cat" * cats), request_id="replay", job=job_id, tenant=TENANT_A
    )
    transcript = []
    for _ in range(REPLAYS):
        reply = enclave.call(request)
        assert isinstance(reply, JobSuccess)
        transcript.append(_host_view(reply))
    transcript.append(_host_view(HealthReply(request_id="h", status=enclave.status())))
    old_release = cbor2.dumps({"version": 1, "request_id": "dp-1", "kind": "privacy_release"})
    transcript.append(_host_view(enclave.call_raw(old_release)))
    return transcript


def test_replaying_one_job_100_times_tells_the_host_nothing_about_its_count() -> None:
    """Issue 12 §1: the host replayed a job 100 times and read count x 100 off the DP release.
    Now the host's whole transcript (100 replies, then health, then the old release request) is
    the same for a 0-cat and a 5-cat image, restart or not: its best estimate of the count is what
    it knew before."""
    transcripts = []
    for cats in (0, 5):
        e = Enclave()  # a fresh enclave each time: a restart gives the host nothing either
        try:
            transcripts.append(_replay_transcript(e, index=1, cats=cats))
        finally:
            e.stop()
    zero, five = transcripts
    assert zero == five
    refused = zero[-1]
    assert refused["kind"] == "error" and refused["error"]["code"] == "bad_request"
    assert zero[-2]["status"]["jobs_served"] == REPLAYS


def test_nothing_content_derived_leaves_in_replies_or_logs(enclave: Enclave, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for i in range(3):
        enclave.job(i, TENANT_A, cats=4)
    status_wire = encode_message(HealthReply(request_id="h", status=enclave.status()))
    assert TENANT_A.encode() not in status_wire  # health is per enclave, never per tenant
    assert set(cbor2.loads(status_wire)["status"]) == {
        "uptime_s",
        "jobs_served",
        "jobs_failed",
        "in_flight",
        "concurrency",
        "model",
        "pcr0",
        "cpu_count",
        "rss_bytes",
        "metrics",
    }
    for record in caplog.records:
        fields = getattr(record, "ccc_fields", {})
        assert "cats" not in fields and not any(k.endswith("cats") for k in fields), fields


def test_a_privacy_release_request_gets_an_error_and_the_enclave_serves_on(enclave: Enclave) -> None:
    assert isinstance(enclave.job(1, TENANT_A, cats=2), JobSuccess)
    reply = enclave.call_raw(cbor2.dumps({"version": 1, "request_id": "dp-7", "kind": "privacy_release"}))
    assert isinstance(reply, ErrorReply) and reply.error.code == "bad_request" and reply.request_id == "dp-7"
    assert isinstance(decode_message(encode_message(reply)), ErrorReply)
    assert isinstance(enclave.job(2, TENANT_A, cats=2), JobSuccess)

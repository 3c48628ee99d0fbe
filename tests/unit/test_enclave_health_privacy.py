"""The enclave reports metadata-only health metrics and releases content aggregates only with noise.

Real sockets and the real server/pipeline, with the fake crypto/counter/NSM ports of
test_enclave_server. What a user relies on: the health reply's counters follow the jobs (stage
timings, attestation outcomes, busy refusals, CPU and memory); a release request returns noisy
per-tenant values that differ from the exact sums, spends the daily budget and then answers with
"no release" (not an error); forged uploads never count; no reply or log line carries an exact
per-tenant number.
"""

from __future__ import annotations

import logging
import random
import statistics
import threading
from collections.abc import Iterator
from datetime import date

import pytest

from ccc_enclave.dp import ContentAggregates, InMemoryBudgetLedger, PrivacyPolicy, PrivateAggregator
from ccc_enclave.pipeline import JobProcessor
from ccc_enclave.privacy_release import PrivacyReleaser
from ccc_enclave.protocol.error_replies import ErrorInfo, ErrorReply
from ccc_enclave.protocol.errors import ErrorCode
from ccc_enclave.protocol.health_messages import PIPELINE_STEPS, EnclaveStatus, HealthReply, HealthRequest
from ccc_enclave.protocol.job_messages import JobFailure, JobSuccess
from ccc_enclave.protocol.messages import Message, encode_message
from ccc_enclave.protocol.privacy_messages import PrivacyReleaseReply, PrivacyReleaseRequest
from ccc_enclave.server import EnclaveServer, ServerSettings
from ccc_enclave.stats import EnclaveStats, read_meminfo
from ccc_enclave.transport import Channel, listen

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

DAY = date(2026, 11, 24)
TENANT_A, TENANT_B = "tenant-a", "tenant-b"


def _job_id(i: int) -> str:
    return f"{i:032x}"


class Enclave:
    def __init__(self, policy: PrivacyPolicy, *, concurrency: int = 2, rng: random.Random | None = None) -> None:
        self.crypto, self.counter = FakeCrypto(), FakeCounter()
        self.aggregates = ContentAggregates(policy)
        aggregator = PrivateAggregator(InMemoryBudgetLedger(), policy, rng=rng)  # type: ignore[arg-type]
        processor = JobProcessor(self.crypto, self.counter, FakeAttester(), aggregates=self.aggregates,
                                 today=lambda: DAY)
        self.server = EnclaveServer(
            listen("tcp://127.0.0.1:0"), processor, model_name="fake-detector", model_sha256=SHA, pcr0_hex=PCR0,
            settings=ServerSettings(concurrency=concurrency, max_connections=8, frame_timeout_s=5, accept_poll_s=0.05,
                                    shutdown_grace_s=10),
            privacy=PrivacyReleaser(self.aggregates, aggregator, today=lambda: DAY),
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def call(self, message: Message) -> Message:
        with Channel.connect(self.server.listener.endpoint.uri, timeout=5) as channel:
            channel.send(message, timeout=5)
            return channel.receive(timeout=10)

    def job(self, index: int, tenant: str, cats: int) -> Message:
        image = IMAGE_MARKER + b" cat" * cats
        return self.call(job_request(input_for(_job_id(index), tenant, image), request_id=f"r{index}",
                                     job=_job_id(index), tenant=tenant))

    def status(self) -> EnclaveStatus:
        reply = self.call(HealthRequest(request_id="h"))
        assert isinstance(reply, HealthReply)
        return reply.status

    def release(self) -> PrivacyReleaseReply:
        reply = self.call(PrivacyReleaseRequest(request_id="dp"))
        assert isinstance(reply, PrivacyReleaseReply), reply
        return reply

    def stop(self) -> None:
        self.counter.gate.set()
        self.server.stop()
        self.thread.join(10)


@pytest.fixture
def enclave() -> Iterator[Enclave]:
    e = Enclave(PrivacyPolicy(daily_budget=1.0, epsilon_per_release=0.25, clip_cats_per_image=6.0))
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
        assert timing.count == 3 and 0 <= timing.max_ms <= timing.total_ms
    assert metrics.cpu_s > 0
    total, available = read_meminfo()
    assert metrics.memory_total_bytes == total and (total == 0 or 0 < metrics.memory_available_bytes <= total)


def test_busy_refusals_and_attestation_failures_are_counted() -> None:
    stats = EnclaveStats(cpu_clock=lambda: 1.0, meminfo=lambda: (100, 40))
    stats.busy_refused()
    stats.job_finished(JobFailure(request_id="r", error=ErrorInfo.of(ErrorCode.ATTESTATION_FAILED, "nsm said no")))
    stats.job_finished(JobFailure(request_id="r", error=ErrorInfo.of(ErrorCode.BAD_IMAGE, "not an image")))
    snapshot = stats.snapshot()
    assert (snapshot.busy_refusals, snapshot.attestations_failed, snapshot.attestations_ok) == (1, 1, 0)
    assert (snapshot.memory_total_bytes, snapshot.memory_available_bytes, snapshot.cpu_s) == (100, 40, 1.0)


def test_busy_enclave_counts_the_refusal_and_still_answers_health() -> None:
    e = Enclave(PrivacyPolicy(), concurrency=1)
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


def test_releases_are_noisy_per_tenant_and_stop_when_the_budget_is_spent(enclave: Enclave) -> None:
    exact = {(TENANT_A, "cats"): 0.0, (TENANT_A, "uploads"): 0.0, (TENANT_B, "cats"): 0.0, (TENANT_B, "uploads"): 0.0}
    for i, (tenant, cats) in enumerate([(TENANT_A, 1), (TENANT_A, 9), (TENANT_B, 3), (TENANT_A, 0)]):
        assert isinstance(enclave.job(i, tenant, cats), JobSuccess)
        exact[(tenant, "cats")] += min(cats, 6)
        exact[(tenant, "uploads")] += 1
    # A forged job (ciphertext of tenant-b claimed as tenant-a) is refused and is not an upload.
    enclave.call(job_request(input_for(_job_id(99), TENANT_B), job=_job_id(99), tenant=TENANT_A))
    totals = {(t, "cats"): c for t, _, c, _ in enclave.aggregates.snapshot(DAY)}
    totals.update({(t, "uploads"): u for t, _, _, u in enclave.aggregates.snapshot(DAY)})
    assert totals == exact

    seen: dict[tuple[str, str], list[float]] = {}
    for _round in range(2):  # budget 1.0, 0.25 per release, two metrics: two full rounds
        reply = enclave.release()
        assert reply.refused == 0 and len(reply.releases) == 4
        for release in reply.releases:
            assert release.day == DAY.isoformat() and release.epsilon == 0.25
            assert release.scale == (6.0 if release.metric == "cats" else 1.0) / 0.25
            seen.setdefault((release.tenant, release.metric), []).append(release.value)
    for key, values in seen.items():
        assert all(value != exact[key] for value in values), key
        assert values[0] != values[1]  # fresh noise every release

    spent = enclave.release()  # "no release", not an error, and the enclave keeps working
    assert spent.releases == () and spent.refused == 4
    assert isinstance(enclave.job(7, TENANT_A, 1), JobSuccess)
    assert enclave.status().jobs_served == 5


def test_released_values_are_unbiased_around_the_clipped_total() -> None:
    policy = PrivacyPolicy(daily_budget=1e6, epsilon_per_release=1.0, clip_cats_per_image=6.0)
    aggregates = ContentAggregates(policy)
    for cats in (2, 20, 0, 5):  # 20 clips to 6: exact clipped total 13
        aggregates.record_upload(TENANT_A, DAY)
        aggregates.record_cats(TENANT_A, DAY, cats)
    releaser = PrivacyReleaser(aggregates, PrivateAggregator(InMemoryBudgetLedger(), policy, rng=random.Random(5)),  # type: ignore[arg-type]
                               today=lambda: DAY)
    cats = [r.value for _ in range(3000) for r in releaser.release("r").releases if r.metric == "cats"]
    assert len(cats) == 3000
    assert statistics.fmean(cats) == pytest.approx(13.0, abs=4 * (2**0.5) * 6.0 / 3000**0.5)
    assert statistics.fmean(abs(v - 13.0) for v in cats) == pytest.approx(6.0, rel=0.08)
    assert 13.0 not in cats


def test_old_days_are_dropped_and_memory_is_bounded() -> None:
    aggregates = ContentAggregates(PrivacyPolicy(), retention_days=2, max_entries=3)
    for tenant in ("t1", "t2", "t3", "t4"):
        aggregates.record_upload(tenant, DAY)
    assert len(aggregates.snapshot(DAY)) == 3
    assert aggregates.snapshot(date(2026, 11, 26)) == []
    assert "t1" not in repr(aggregates) and "1.0" not in repr(aggregates)


def test_nothing_exact_leaves_in_replies_or_logs(enclave: Enclave, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for i in range(3):
        enclave.job(i, TENANT_A, cats=4)  # exact: 12 cats, 3 uploads
    status_wire = encode_message(HealthReply(request_id="h", status=enclave.status()))
    assert TENANT_A.encode() not in status_wire  # health is per enclave, never per tenant
    release_wire = encode_message(enclave.release())
    import cbor2

    values = [r["value"] for r in cbor2.loads(release_wire)["releases"]]
    assert 12 not in values and 12.0 not in values and 3.0 not in values
    for record in caplog.records:
        fields = getattr(record, "ccc_fields", {})
        assert "cats" not in fields and not any(k.endswith("cats") for k in fields), fields


def test_without_a_releaser_the_request_is_refused_cleanly() -> None:
    from .test_enclave_server import FakeAttester as Attester

    server = EnclaveServer(listen("tcp://127.0.0.1:0"), JobProcessor(FakeCrypto(), FakeCounter(), Attester()),
                           model_name="m", model_sha256=SHA, pcr0_hex=PCR0,
                           settings=ServerSettings(accept_poll_s=0.05, shutdown_grace_s=5))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Channel.connect(server.listener.endpoint.uri, timeout=5) as channel:
            channel.send(PrivacyReleaseRequest(request_id="dp"), timeout=5)
            reply = channel.receive(timeout=5)
        assert isinstance(reply, ErrorReply) and reply.error.code == "bad_request"
    finally:
        server.stop()
        thread.join(10)

"""The health channel's messages, the measurement grid, and the end of the privacy releases.

What a user relies on: health replies round-trip exactly; the decoder stays strict (exact key
sets, exact types, bounded sizes); a health reply without metrics (an enclave of the previous
release) still decodes; every measurement is snapped to the protocol's grid however it was built
or read (`ccc_enclave.protocol.resolution`); and `privacy_release`, through which a host could
replay jobs into per-tenant totals and read counts back, is no message at all any more.
"""

from __future__ import annotations

import contextlib
import math

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccc_enclave.protocol.errors import ProtocolError
from ccc_enclave.protocol.health_messages import PIPELINE_STEPS, EnclaveMetrics, EnclaveStatus, HealthReply, StageTiming
from ccc_enclave.protocol.job_messages import JobMetrics, JobSuccess
from ccc_enclave.protocol.messages import Message, decode_message, encode_message
from ccc_enclave.protocol.resolution import (
    BYTES_STEP,
    TIMING_GRID_MS,
    TIMING_STEP_BEYOND_GRID_MS,
    coarse_bytes,
    coarse_ms,
    coarse_seconds,
)

REQUEST_IDS = st.from_regex(r"\A[A-Za-z0-9._-]{1,64}\Z")
TENANTS = st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,62}\Z")
MS = st.floats(min_value=0, max_value=1e9, allow_nan=False)
COUNTS = st.integers(min_value=0, max_value=2**40)
TIMING = st.builds(StageTiming, count=COUNTS, total_ms=MS, max_ms=MS)
METRICS = st.builds(
    EnclaveMetrics,
    cpu_s=MS,
    memory_total_bytes=COUNTS,
    memory_available_bytes=COUNTS,
    busy_refusals=COUNTS,
    attestations_ok=COUNTS,
    attestations_failed=COUNTS,
    stages=st.fixed_dictionaries({name: TIMING for name in PIPELINE_STEPS}),
)
STATUS = st.builds(
    EnclaveStatus,
    uptime_s=MS,
    jobs_served=COUNTS,
    jobs_failed=COUNTS,
    in_flight=COUNTS,
    concurrency=st.integers(1, 64),
    model_name=st.just("nanodet-g"),
    model_sha256=st.just("ab" * 32),
    pcr0_hex=st.just("cd" * 48),
    cpu_count=st.integers(0, 512),
    rss_bytes=COUNTS,
    metrics=st.none() | METRICS,
)
MESSAGES = st.builds(HealthReply, request_id=REQUEST_IDS, status=STATUS)


def _timings() -> dict[str, StageTiming]:
    return {name: StageTiming(count=3, total_ms=30.0, max_ms=12.5) for name in PIPELINE_STEPS}


def _metrics() -> EnclaveMetrics:
    return EnclaveMetrics(
        cpu_s=1.5,
        memory_total_bytes=4 << 30,
        memory_available_bytes=3 << 30,
        busy_refusals=2,
        attestations_ok=3,
        attestations_failed=1,
        stages=_timings(),
    )


def _wire(message: Message) -> dict:
    return cbor2.loads(encode_message(message))


@given(MESSAGES)
@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
def test_health_replies_round_trip(message: Message) -> None:
    assert decode_message(encode_message(message)) == message


def test_health_reply_without_metrics_still_decodes_as_before() -> None:
    status = EnclaveStatus(
        uptime_s=1.0,
        jobs_served=0,
        jobs_failed=0,
        in_flight=0,
        concurrency=2,
        model_name="m",
        model_sha256="ab" * 32,
        pcr0_hex="cd" * 48,
        cpu_count=2,
        rss_bytes=1,
    )
    wire = _wire(HealthReply(request_id="h", status=status))
    assert "metrics" not in wire["status"]
    assert decode_message(cbor2.dumps(wire)) == HealthReply(request_id="h", status=status)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda w: w["status"]["metrics"].update(extra=1),
        lambda w: w["status"]["metrics"].pop("cpu_s"),
        lambda w: w["status"]["metrics"]["stages"].pop("infer"),
        lambda w: w["status"]["metrics"]["stages"].update(upload={"count": 1, "total_ms": 1.0, "max_ms": 1.0}),
        lambda w: w["status"]["metrics"]["stages"]["infer"].update(total_ms="12"),
        lambda w: w["status"]["metrics"]["stages"]["infer"].update(count=True),
        lambda w: w["status"]["metrics"]["attestation"].update(ok=-1),
        lambda w: w["status"]["metrics"].update(memory_total_bytes=1.5),
        lambda w: w["status"]["metrics"].update(cpu_s=math.inf),
        lambda w: w["status"].update(metrics=[1, 2]),
    ],
)
def test_health_metrics_are_decoded_strictly(mutate) -> None:
    status = EnclaveStatus(
        uptime_s=1.0,
        jobs_served=0,
        jobs_failed=0,
        in_flight=0,
        concurrency=2,
        model_name="m",
        model_sha256="ab" * 32,
        pcr0_hex="cd" * 48,
        cpu_count=2,
        rss_bytes=1,
        metrics=_metrics(),
    )
    wire = _wire(HealthReply(request_id="h", status=status))
    mutate(wire)
    with pytest.raises(ProtocolError):
        decode_message(cbor2.dumps(wire))


def _reply() -> HealthReply:
    status = EnclaveStatus(
        uptime_s=1.0,
        jobs_served=0,
        jobs_failed=0,
        in_flight=0,
        concurrency=2,
        model_name="m",
        model_sha256="ab" * 32,
        pcr0_hex="cd" * 48,
        cpu_count=2,
        rss_bytes=1,
        metrics=_metrics(),
    )
    return HealthReply(request_id="r", status=status)


@pytest.mark.parametrize("fields", [{}, {"tenant": "tenant-a"}, {"epsilon": 100.0}])
def test_a_privacy_release_request_is_an_unknown_message(fields: dict) -> None:
    wire = {"version": 1, "request_id": "dp-1", "kind": "privacy_release", **fields}
    with pytest.raises(ProtocolError) as info:
        decode_message(cbor2.dumps(wire))
    assert info.value.code == "bad_request"


# ----- the measurement grid --------------------------------------------------------------


def test_the_timing_grid_is_the_dashboards_histogram_buckets() -> None:
    from ccc_core.telemetry.setup import MS_BUCKETS

    assert TIMING_GRID_MS == MS_BUCKETS  # a finer report would show nothing on a dashboard


@given(st.floats(min_value=0, max_value=1e11, allow_nan=False))
def test_coarse_ms_is_an_idempotent_monotone_upper_bound_on_the_grid(value: float) -> None:
    snapped = coarse_ms(value)
    assert snapped >= value and coarse_ms(snapped) == snapped and coarse_ms(value / 2) <= snapped
    assert value == 0 or snapped in TIMING_GRID_MS or snapped % TIMING_STEP_BEYOND_GRID_MS == 0


@given(st.floats(min_value=0, max_value=1e11, allow_nan=False), st.integers(0, 2**50))
def test_seconds_and_bytes_are_whole_steps(seconds: float, size: int) -> None:
    assert coarse_seconds(seconds) == math.floor(seconds) and coarse_seconds(seconds) <= seconds
    assert coarse_bytes(size) % BYTES_STEP == 0 and size - BYTES_STEP < coarse_bytes(size) <= size


def test_microsecond_timings_cannot_be_put_on_the_wire() -> None:
    metrics = JobMetrics(decrypt_ms=12.345678, infer_ms=401.000001, encrypt_ms=0.001, attest_ms=31234.5)
    assert (metrics.decrypt_ms, metrics.infer_ms, metrics.encrypt_ms, metrics.attest_ms) == (20, 500, 5, 40000)
    # What a reader takes off the wire is snapped too (an older enclave's microseconds included).
    reply = JobSuccess(request_id="j", result_ciphertext=b"r", attestation_document=b"a", metrics=metrics)
    wire = _wire(reply)
    wire["metrics"] = {"decrypt_ms": 12.345678, "infer_ms": 401.000001, "encrypt_ms": 0.001, "attest_ms": 31234.5}
    assert decode_message(cbor2.dumps(wire)) == reply
    status = EnclaveStatus(
        uptime_s=12.9,
        jobs_served=0,
        jobs_failed=0,
        in_flight=0,
        concurrency=2,
        model_name="m",
        model_sha256="ab" * 32,
        pcr0_hex="cd" * 48,
        cpu_count=2,
        rss_bytes=BYTES_STEP * 3 + 12345,
        metrics=EnclaveMetrics(
            cpu_s=1.234,
            memory_total_bytes=(4 << 30) + 1,
            memory_available_bytes=BYTES_STEP + 1,
            busy_refusals=0,
            attestations_ok=0,
            attestations_failed=0,
            stages=_timings(),
        ),
    )
    decoded = decode_message(encode_message(HealthReply(request_id="h", status=status)))
    assert isinstance(decoded, HealthReply) and decoded.status.metrics is not None
    assert (decoded.status.uptime_s, decoded.status.rss_bytes) == (12.0, BYTES_STEP * 3)
    m = decoded.status.metrics
    assert (m.cpu_s, m.memory_total_bytes, m.memory_available_bytes) == (1.0, 4 << 30, BYTES_STEP)
    assert {t.max_ms for t in m.stages.values()} == {20.0}


@given(st.binary(max_size=2048))
@settings(max_examples=300)
def test_hostile_bytes_after_a_valid_prefix_raise_only_protocol_error(tail: bytes) -> None:
    body = encode_message(_reply())
    with contextlib.suppress(ProtocolError):
        decode_message(body[: len(body) // 2] + tail)

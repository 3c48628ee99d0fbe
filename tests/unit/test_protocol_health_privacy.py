"""Protocol additions for observability: enclave metrics in health replies, privacy releases.

What a user relies on: both round-trip exactly; the decoder stays strict (exact key sets, exact
types, bounded sizes); a health reply without metrics (an enclave of the previous release) still
decodes; the parent cannot smuggle parameters (tenant, epsilon) into a release request.
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
from ccc_enclave.protocol.messages import Message, decode_message, encode_message
from ccc_enclave.protocol.privacy_messages import (
    MAX_RELEASES,
    PRIVACY_METRICS,
    PrivacyRelease,
    PrivacyReleaseReply,
    PrivacyReleaseRequest,
)

REQUEST_IDS = st.from_regex(r"\A[A-Za-z0-9._-]{1,64}\Z")
TENANTS = st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,62}\Z")
MS = st.floats(min_value=0, max_value=1e9, allow_nan=False)
COUNTS = st.integers(min_value=0, max_value=2**40)
TIMING = st.builds(StageTiming, count=COUNTS, total_ms=MS, max_ms=MS)
METRICS = st.builds(
    EnclaveMetrics, cpu_s=MS, memory_total_bytes=COUNTS, memory_available_bytes=COUNTS, busy_refusals=COUNTS,
    attestations_ok=COUNTS, attestations_failed=COUNTS,
    stages=st.fixed_dictionaries({name: TIMING for name in PIPELINE_STEPS}),
)
STATUS = st.builds(
    EnclaveStatus, uptime_s=MS, jobs_served=COUNTS, jobs_failed=COUNTS, in_flight=COUNTS,
    concurrency=st.integers(1, 64), model_name=st.just("nanodet-g"), model_sha256=st.just("ab" * 32),
    pcr0_hex=st.just("cd" * 48), cpu_count=st.integers(0, 512), rss_bytes=COUNTS, metrics=st.none() | METRICS,
)
RELEASE = st.builds(
    PrivacyRelease, tenant=TENANTS,
    day=st.dates().map(lambda d: d.isoformat()).filter(lambda s: len(s) == 10),
    metric=st.sampled_from(PRIVACY_METRICS), value=st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    epsilon=st.floats(min_value=0.001, max_value=10), scale=st.floats(min_value=0.001, max_value=1e6),
)
MESSAGES = st.one_of(
    st.builds(HealthReply, request_id=REQUEST_IDS, status=STATUS),
    st.builds(PrivacyReleaseRequest, request_id=REQUEST_IDS),
    st.builds(PrivacyReleaseReply, request_id=REQUEST_IDS,
              releases=st.lists(RELEASE, max_size=8).map(tuple), refused=st.integers(0, 1000)),
)


def _timings() -> dict[str, StageTiming]:
    return {name: StageTiming(count=3, total_ms=30.0, max_ms=12.5) for name in PIPELINE_STEPS}


def _metrics() -> EnclaveMetrics:
    return EnclaveMetrics(cpu_s=1.5, memory_total_bytes=4 << 30, memory_available_bytes=3 << 30, busy_refusals=2,
                            attestations_ok=3, attestations_failed=1, stages=_timings())


def _wire(message: Message) -> dict:
    return cbor2.loads(encode_message(message))


@given(MESSAGES)
@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
def test_new_messages_round_trip(message: Message) -> None:
    assert decode_message(encode_message(message)) == message


def test_health_reply_without_metrics_still_decodes_as_before() -> None:
    status = EnclaveStatus(uptime_s=1.0, jobs_served=0, jobs_failed=0, in_flight=0, concurrency=2, model_name="m",
                           model_sha256="ab" * 32, pcr0_hex="cd" * 48, cpu_count=2, rss_bytes=1)
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
    status = EnclaveStatus(uptime_s=1.0, jobs_served=0, jobs_failed=0, in_flight=0, concurrency=2, model_name="m",
                           model_sha256="ab" * 32, pcr0_hex="cd" * 48, cpu_count=2, rss_bytes=1, metrics=_metrics())
    wire = _wire(HealthReply(request_id="h", status=status))
    mutate(wire)
    with pytest.raises(ProtocolError):
        decode_message(cbor2.dumps(wire))


def _reply() -> PrivacyReleaseReply:
    release = PrivacyRelease(tenant="tenant-a", day="2026-11-24", metric="cats", value=-3.25, epsilon=0.25, scale=24.0)
    return PrivacyReleaseReply(request_id="r", releases=(release,), refused=1)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda w: w.update(extra=1),
        lambda w: w.pop("refused"),
        lambda w: w.update(refused=-1),
        lambda w: w["releases"][0].update(exact=3),  # no field can carry the exact value
        lambda w: w["releases"][0].update(metric="detections"),
        lambda w: w["releases"][0].update(tenant="Tenant A"),
        lambda w: w["releases"][0].update(day="24/11/2026"),
        lambda w: w["releases"][0].update(value=math.nan),
        lambda w: w["releases"][0].update(value="3"),
        lambda w: w["releases"][0].update(epsilon=0.0),
        lambda w: w.update(releases=[w["releases"][0]] * (MAX_RELEASES + 1)),
        lambda w: w.update(releases={"a": 1}),
    ],
)
def test_privacy_replies_are_decoded_strictly(mutate) -> None:
    wire = _wire(_reply())
    mutate(wire)
    with pytest.raises(ProtocolError):
        decode_message(cbor2.dumps(wire))


@pytest.mark.parametrize("field", [{"tenant": "tenant-a"}, {"epsilon": 100.0}, {"day": "2026-11-24"}])
def test_a_release_request_carries_no_parameters(field) -> None:
    wire = {**_wire(PrivacyReleaseRequest(request_id="r")), **field}
    with pytest.raises(ProtocolError, match="unknown field"):
        decode_message(cbor2.dumps(wire))


def test_negative_noisy_values_are_allowed_but_not_unbounded() -> None:
    assert decode_message(encode_message(_reply())) == _reply()
    with pytest.raises(ProtocolError):
        PrivacyRelease(tenant="tenant-a", day="2026-11-24", metric="cats", value=-1e13, epsilon=0.25, scale=24.0)


@given(st.binary(max_size=2048))
@settings(max_examples=300)
def test_hostile_bytes_after_a_valid_prefix_raise_only_protocol_error(tail: bytes) -> None:
    body = encode_message(_reply())
    with contextlib.suppress(ProtocolError):
        decode_message(body[: len(body) // 2] + tail)

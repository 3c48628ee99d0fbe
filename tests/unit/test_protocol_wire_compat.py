"""Wire compatibility: every message type encodes to exactly the bytes the protocol has always sent.

Why golden bytes: parents and enclaves of two releases talk to each other during a rollout, and an
enclave's image is measured (PCR0), so a refactoring of the protocol code must not change a single
byte on the wire. The hex literals below were produced by the protocol implementation before it was
restructured (one flat module with hand-written encoders); the tests pin the encoder to them and check
that the decoder reads them back into equal messages.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator

import pytest

from ccc_enclave.protocol.error_replies import ErrorInfo, ErrorReply
from ccc_enclave.protocol.errors import ErrorCode
from ccc_enclave.protocol.framing import encode_frame
from ccc_enclave.protocol.health_messages import (
    PIPELINE_STEPS,
    EnclaveMetrics,
    EnclaveStatus,
    HealthReply,
    HealthRequest,
    StageTiming,
)
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
from ccc_enclave.protocol.privacy_messages import PrivacyRelease, PrivacyReleaseReply, PrivacyReleaseRequest


def _cases() -> Iterator[tuple[str, Message]]:
    timings = {s: StageTiming(count=i + 1, total_ms=10.5 * (i + 1), max_ms=7.25) for i, s in enumerate(PIPELINE_STEPS)}
    int_timings = {s: StageTiming(count=2, total_ms=30, max_ms=12) for s in PIPELINE_STEPS}
    metrics = EnclaveMetrics(cpu_s=1.5, memory_total_bytes=4 << 30, memory_available_bytes=3 << 30,
                               busy_refusals=2, attestations_ok=3, attestations_failed=1, stages=timings)
    int_metrics = EnclaveMetrics(cpu_s=2, memory_total_bytes=0, memory_available_bytes=0,
                                   busy_refusals=0, attestations_ok=0, attestations_failed=0, stages=int_timings)
    status = dict(uptime_s=12.25, jobs_served=7, jobs_failed=1, in_flight=0, concurrency=2, model_name="nanodet-g",
                  model_sha256="ab" * 32, pcr0_hex="cd" * 48, cpu_count=2, rss_bytes=123456789)
    yield "health", HealthRequest(request_id="health-1")
    yield "health_reply", HealthReply(request_id="health-1", status=EnclaveStatus(**status, metrics=metrics))
    yield "health_reply_int_numbers", HealthReply(
        request_id="h", status=EnclaveStatus(**{**status, "uptime_s": 5}, metrics=int_metrics))
    yield "health_reply_without_metrics", HealthReply(
        request_id="health-2", status=EnclaveStatus(**{**status, "model_name": "", "model_sha256": "",
                                                           "pcr0_hex": ""}))
    yield "privacy_release", PrivacyReleaseRequest(request_id="dp-1")
    yield "privacy_release_reply", PrivacyReleaseReply(request_id="dp-1", releases=(
        PrivacyRelease(tenant="tenant-a", day="2026-11-24", metric="cats", value=-3.25, epsilon=0.25, scale=24.0),
        PrivacyRelease(tenant="tenant-b", day="2026-11-25", metric="uploads", value=2, epsilon=1, scale=4),
    ), refused=3)
    yield "privacy_release_reply_empty", PrivacyReleaseReply(request_id="dp-2", releases=(), refused=0)
    yield "job", JobRequest(
        request_id="job-1", job=JobSpec(job_id="0123456789abcdef0123456789abcdef", tenant="acme"),
        ciphertext=b"\x00\x01ciphertext\xff", credentials=Credentials(
            access_key_id="AKIDEXAMPLE", secret_access_key="secret/key+x", session_token="SESSION-TOKEN"),
        kms=KmsTarget(region="eu-west-2", endpoint_url="http://127.0.0.1:4566"),
        trace={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "a=b"})
    yield "job_minimal", JobRequest(
        request_id="j", job=JobSpec(job_id="f" * 32, tenant="t"), ciphertext=b"x",
        credentials=Credentials(access_key_id="AKID", secret_access_key="s"), kms=KmsTarget(region="us-east-1"))
    yield "job_reply_ok", JobSuccess(
        request_id="job-1", result_ciphertext=b"result-bytes", attestation_document=b"\xd2\x84attestation",
        metrics=JobMetrics(decrypt_ms=29.5, infer_ms=9, encrypt_ms=52.125, attest_ms=1.0),
        model_sha256="ab" * 32, pcr0_hex="cd" * 48)
    yield "job_reply_ok_defaults", JobSuccess(
        request_id="job-2", result_ciphertext=b"r", attestation_document=b"a",
        metrics=JobMetrics(decrypt_ms=0.0, infer_ms=0.0, encrypt_ms=0.0, attest_ms=0.0))
    yield "job_reply_failed", JobFailure(
        request_id="job-1", error=ErrorInfo(code="decrypt_failed", reason="not an ESDK message", retryable=False))
    yield "job_reply_failed_retryable", JobFailure(request_id="job-3", error=ErrorInfo.of(ErrorCode.BUSY, "busy"))
    yield "error", ErrorReply(request_id="r-1", error=ErrorInfo(code="bad_request", reason="bad", retryable=False))
    yield "error_without_request_id", ErrorReply(
        request_id=None, error=ErrorInfo(code="too_large", reason="frame of 5 bytes", retryable=False))


MESSAGES = dict(_cases())

GOLDEN = {
    "health": "a36776657273696f6e016a726571756573745f6964686865616c74682d31646b696e64666865616c7468",
    "health_reply": (
        "a46776657273696f6e016a726571756573745f6964686865616c74682d31646b696e646c6865616c74685f7265706c79"
        "66737461747573aa68757074696d655f73fb40288000000000006b6a6f62735f736572766564076b6a6f62735f666169"
        "6c65640169696e5f666c69676874006b636f6e63757272656e637902656d6f64656ca2646e616d65696e616e6f646574"
        "2d6766736861323536784061626162616261626162616261626162616261626162616261626162616261626162616261"
        "626162616261626162616261626162616261626162616261626162647063723078606364636463646364636463646364"
        "636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364"
        "63646364636463646364636463646364636463646364636463646364636463646364696370755f636f756e7402697273"
        "735f62797465731a075bcd15676d657472696373a6656370755f73fb3ff8000000000000726d656d6f72795f746f7461"
        "6c5f62797465731b0000000100000000766d656d6f72795f617661696c61626c655f62797465731ac00000006d627573"
        "795f7265667573616c73026b6174746573746174696f6ea2626f6b03666661696c65640166737461676573a467646563"
        "72797074a365636f756e740168746f74616c5f6d73fb4025000000000000666d61785f6d73fb401d0000000000006569"
        "6e666572a365636f756e740268746f74616c5f6d73fb4035000000000000666d61785f6d73fb401d0000000000006765"
        "6e6372797074a365636f756e740368746f74616c5f6d73fb403f800000000000666d61785f6d73fb401d000000000000"
        "66617474657374a365636f756e740468746f74616c5f6d73fb4045000000000000666d61785f6d73fb401d0000000000"
        "00"
    ),
    "health_reply_int_numbers": (
        "a46776657273696f6e016a726571756573745f69646168646b696e646c6865616c74685f7265706c7966737461747573"
        "aa68757074696d655f73fb40140000000000006b6a6f62735f736572766564076b6a6f62735f6661696c65640169696e"
        "5f666c69676874006b636f6e63757272656e637902656d6f64656ca2646e616d65696e616e6f6465742d676673686132"
        "353678406162616261626162616261626162616261626162616261626162616261626162616261626162616261626162"
        "616261626162616261626162616261626162616264706372307860636463646364636463646364636463646364636463"
        "646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463"
        "646364636463646364636463646364636463646364636463646364696370755f636f756e7402697273735f6279746573"
        "1a075bcd15676d657472696373a6656370755f73fb4000000000000000726d656d6f72795f746f74616c5f6279746573"
        "00766d656d6f72795f617661696c61626c655f6279746573006d627573795f7265667573616c73006b61747465737461"
        "74696f6ea2626f6b00666661696c65640066737461676573a46764656372797074a365636f756e740268746f74616c5f"
        "6d73fb403e000000000000666d61785f6d73fb402800000000000065696e666572a365636f756e740268746f74616c5f"
        "6d73fb403e000000000000666d61785f6d73fb402800000000000067656e6372797074a365636f756e740268746f7461"
        "6c5f6d73fb403e000000000000666d61785f6d73fb402800000000000066617474657374a365636f756e740268746f74"
        "616c5f6d73fb403e000000000000666d61785f6d73fb4028000000000000"
    ),
    "health_reply_without_metrics": (
        "a46776657273696f6e016a726571756573745f6964686865616c74682d32646b696e646c6865616c74685f7265706c79"
        "66737461747573a968757074696d655f73fb40288000000000006b6a6f62735f736572766564076b6a6f62735f666169"
        "6c65640169696e5f666c69676874006b636f6e63757272656e637902656d6f64656ca2646e616d656066736861323536"
        "60647063723060696370755f636f756e7402697273735f62797465731a075bcd15"
    ),
    "privacy_release": "a36776657273696f6e016a726571756573745f69646464702d31646b696e646f707269766163795f72656c65617365",
    "privacy_release_reply": (
        "a56776657273696f6e016a726571756573745f69646464702d31646b696e6475707269766163795f72656c656173655f"
        "7265706c796872656c656173657382a66674656e616e746874656e616e742d61636461796a323032362d31312d323466"
        "6d657472696364636174736576616c7565fbc00a00000000000067657073696c6f6efb3fd0000000000000657363616c"
        "65fb4038000000000000a66674656e616e746874656e616e742d62636461796a323032362d31312d3235666d65747269"
        "636775706c6f6164736576616c7565fb400000000000000067657073696c6f6efb3ff0000000000000657363616c65fb"
        "4010000000000000677265667573656403"
    ),
    "privacy_release_reply_empty": (
        "a56776657273696f6e016a726571756573745f69646464702d32646b696e6475707269766163795f72656c656173655f"
        "7265706c796872656c656173657380677265667573656400"
    ),
    "job": (
        "a86776657273696f6e016a726571756573745f6964656a6f622d31646b696e64636a6f62636a6f62a2666a6f625f6964"
        "782030313233343536373839616263646566303132333435363738396162636465666674656e616e746461636d656a63"
        "6970686572746578744d000163697068657274657874ff6b63726564656e7469616c73a36d6163636573735f6b65795f"
        "69646b414b49444558414d504c45717365637265745f6163636573735f6b65796c7365637265742f6b65792b786d7365"
        "7373696f6e5f746f6b656e6d53455353494f4e2d544f4b454e636b6d73a266726567696f6e6965752d776573742d326c"
        "656e64706f696e745f75726c75687474703a2f2f3132372e302e302e313a34353636657472616365a26b747261636570"
        "6172656e74783730302d30616637363531393136636434336464383434386562323131633830333139632d6237616436"
        "62373136393230333333312d30316a7472616365737461746563613d62"
    ),
    "job_minimal": (
        "a86776657273696f6e016a726571756573745f6964616a646b696e64636a6f62636a6f62a2666a6f625f696478206666"
        "6666666666666666666666666666666666666666666666666666666666666674656e616e7461746a6369706865727465"
        "787441786b63726564656e7469616c73a36d6163636573735f6b65795f696464414b4944717365637265745f61636365"
        "73735f6b657961736d73657373696f6e5f746f6b656ef6636b6d73a266726567696f6e6975732d656173742d316c656e"
        "64706f696e745f75726cf6657472616365a0"
    ),
    "job_reply_ok": (
        "a86776657273696f6e016a726571756573745f6964656a6f622d31646b696e64696a6f625f7265706c79626f6bf57172"
        "6573756c745f636970686572746578744c726573756c742d6279746573746174746573746174696f6e5f646f63756d65"
        "6e744dd2846174746573746174696f6e676d657472696373a46a646563727970745f6d73fb403d80000000000068696e"
        "6665725f6d73fb40220000000000006a656e63727970745f6d73fb404a100000000000696174746573745f6d73fb3ff0"
        "00000000000067656e636c617665a26c6d6f64656c5f7368613235367840616261626162616261626162616261626162"
        "616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626470"
        "637230786063646364636463646364636463646364636463646364636463646364636463646364636463646364636463"
        "646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463"
        "6463646364"
    ),
    "job_reply_ok_defaults": (
        "a86776657273696f6e016a726571756573745f6964656a6f622d32646b696e64696a6f625f7265706c79626f6bf57172"
        "6573756c745f636970686572746578744172746174746573746174696f6e5f646f63756d656e744161676d6574726963"
        "73a46a646563727970745f6d73fb000000000000000068696e6665725f6d73fb00000000000000006a656e6372797074"
        "5f6d73fb0000000000000000696174746573745f6d73fb000000000000000067656e636c617665a26c6d6f64656c5f73"
        "686132353660647063723060"
    ),
    "job_reply_failed": (
        "a56776657273696f6e016a726571756573745f6964656a6f622d31646b696e64696a6f625f7265706c79626f6bf46565"
        "72726f72a364636f64656e646563727970745f6661696c656466726561736f6e736e6f7420616e204553444b206d6573"
        "7361676569726574727961626c65f4"
    ),
    "job_reply_failed_retryable": (
        "a56776657273696f6e016a726571756573745f6964656a6f622d33646b696e64696a6f625f7265706c79626f6bf46565"
        "72726f72a364636f6465646275737966726561736f6e646275737969726574727961626c65f5"
    ),
    "error": (
        "a46776657273696f6e016a726571756573745f696463722d31646b696e64656572726f72656572726f72a364636f6465"
        "6b6261645f7265717565737466726561736f6e6362616469726574727961626c65f4"
    ),
    "error_without_request_id": (
        "a46776657273696f6e016a726571756573745f6964f6646b696e64656572726f72656572726f72a364636f646569746f"
        "6f5f6c6172676566726561736f6e706672616d65206f66203520627974657369726574727961626c65f4"
    ),
}


def test_every_message_type_has_a_golden_vector() -> None:
    assert set(GOLDEN) == set(MESSAGES)
    assert {type(message) for message in MESSAGES.values()} == set(typing.get_args(Message))


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_encoding_is_byte_identical(name: str) -> None:
    assert encode_message(MESSAGES[name]).hex() == GOLDEN[name]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_bytes_decode_to_the_same_message(name: str) -> None:
    decoded = decode_message(bytes.fromhex(GOLDEN[name]))
    assert decoded == MESSAGES[name]
    assert type(decoded) is type(MESSAGES[name])
    assert encode_message(decoded).hex() == GOLDEN[name]


def test_framed_golden_bytes() -> None:
    body = bytes.fromhex(GOLDEN["health"])
    assert encode_frame(body) == len(body).to_bytes(4, "big") + body

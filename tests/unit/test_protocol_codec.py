"""The declarative message machinery: declarations are checked when a class is defined, and the
derived decoder is as strict as the hand-written one it replaced.

What a user relies on: a message type is declared once, so a mistake in that declaration (a
wire key used twice, an optional key without a default, two types of one kind nobody can tell
apart) must fail at import rather than on the wire; constructors and the decoder raise only
`ProtocolError`, whose reason never quotes the offending value (it may be a secret).
"""

from __future__ import annotations

from typing import Annotated, Literal

import cbor2
import pytest

from ccc_enclave.protocol.codec import MessageRegistry, Wire, WireMessage, WireModel
from ccc_enclave.protocol.error_replies import ErrorInfo
from ccc_enclave.protocol.errors import ErrorCode, ProtocolError
from ccc_enclave.protocol.fields import RequestId
from ccc_enclave.protocol.health_messages import PIPELINE_STEPS, EnclaveMetrics, EnclaveStatus, HealthReply, StageTiming
from ccc_enclave.protocol.job_messages import Credentials, JobFailure, JobMetrics, JobSuccess
from ccc_enclave.protocol.messages import REGISTRY, Message, decode_message, encode_message


def _status(**changes: object) -> EnclaveStatus:
    values: dict[str, object] = dict(uptime_s=1.0, jobs_served=0, jobs_failed=0, in_flight=0, concurrency=2,
                                     model_name="m", model_sha256="ab" * 32, pcr0_hex="cd" * 48, cpu_count=2,
                                     rss_bytes=1)
    return EnclaveStatus(**{**values, **changes})  # type: ignore[arg-type]


def _metrics() -> EnclaveMetrics:
    return EnclaveMetrics(cpu_s=1.0, memory_total_bytes=1, memory_available_bytes=1, busy_refusals=0,
                          attestations_ok=0, attestations_failed=0,
                          stages={s: StageTiming(count=1, total_ms=1.0, max_ms=1.0) for s in PIPELINE_STEPS})


def _wire(message: Message) -> dict:
    return cbor2.loads(encode_message(message))


def test_an_optional_wire_key_needs_a_default() -> None:
    with pytest.raises(TypeError, match="needs a default"):
        class Broken(WireModel):
            value: Annotated[int, Wire(optional=True)]


def test_a_wire_key_cannot_be_used_twice() -> None:
    with pytest.raises(TypeError, match="used twice"):
        class Broken(WireModel):
            a: Annotated[int, Wire(path=("x",))]
            x: int


def test_message_types_sharing_a_kind_need_a_literal_to_tell_them_apart() -> None:
    class First(WireMessage):
        KIND = "twin"
        request_id: RequestId

    class Second(WireMessage):
        KIND = "twin"
        request_id: RequestId

    with pytest.raises(TypeError, match="Literal"):
        MessageRegistry([First, Second])

    class Yes(WireMessage):
        KIND = "twin"
        request_id: RequestId
        answer: Literal["yes"] = "yes"

    class No(WireMessage):
        KIND = "twin"
        request_id: RequestId
        answer: Literal["no"] = "no"

    registry = MessageRegistry([Yes, No])
    assert type(registry.decode(registry.encode(No(request_id="r")))) is No


def test_a_message_type_needs_a_request_id() -> None:
    class Anonymous(WireMessage):
        KIND = "anonymous"

    with pytest.raises(TypeError, match="request_id"):
        MessageRegistry([Anonymous])


def test_the_registry_knows_exactly_the_message_types() -> None:
    assert {t.__name__ for t in REGISTRY.message_types} == {
        "HealthRequest", "HealthReply", "JobRequest", "JobSuccess", "JobFailure", "ErrorReply",
    }
    with pytest.raises(TypeError, match="not a protocol message"):
        REGISTRY.encode(ErrorInfo.of("busy", "x"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "build",
    [
        lambda: HealthReply(request_id="h", status={}),  # type: ignore[arg-type]
        lambda: _status(metrics={"cpu_s": 1.0}),
        lambda: EnclaveMetrics(cpu_s=1.0, memory_total_bytes=1, memory_available_bytes=1, busy_refusals=0,
                               attestations_ok=0, attestations_failed=0,
                               stages={s: {"count": 1, "total_ms": 1.0, "max_ms": 1.0} for s in PIPELINE_STEPS}),
        lambda: JobFailure(request_id="r", error={"code": "busy", "reason": "x", "retryable": True}),
    ],
)
def test_constructors_take_models_not_maps(build) -> None:
    with pytest.raises(ProtocolError, match="must hold"):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda: StageTiming(count=True, total_ms=1.0, max_ms=1.0),  # a bool is not an integer
        lambda: StageTiming(count=1, total_ms="1", max_ms=1.0),  # a string is not a number
        lambda: StageTiming(count=1, total_ms=10**400, max_ms=1.0),  # no float for it
        lambda: JobMetrics(decrypt_ms=-1.0, infer_ms=0.0, encrypt_ms=0.0, attest_ms=0.0),
        lambda: _status(concurrency=0),
        lambda: _status(model_sha256="AB" * 32),  # lowercase hex only
        lambda: JobSuccess(request_id="r", ok=False, result_ciphertext=b"r", attestation_document=b"a",
                           metrics=JobMetrics(decrypt_ms=0.0, infer_ms=0.0, encrypt_ms=0.0, attest_ms=0.0)),
    ],
)
def test_constructors_never_coerce(build) -> None:
    with pytest.raises(ProtocolError):
        build()


def test_reasons_never_quote_the_value() -> None:
    with pytest.raises(ProtocolError) as info:
        Credentials(access_key_id="AKID", secret_access_key="TOP SECRET WITH A SPACE")
    assert "TOP SECRET" not in info.value.reason and "secret_access_key" in info.value.reason
    assert info.value.code == ErrorCode.BAD_REQUEST


def test_oversize_bytes_are_too_large_not_just_bad() -> None:
    with pytest.raises(ProtocolError) as info:
        JobSuccess(request_id="r", result_ciphertext=b"x" * (1024 * 1024 + 1), attestation_document=b"a",
                   metrics=JobMetrics(decrypt_ms=0.0, infer_ms=0.0, encrypt_ms=0.0, attest_ms=0.0))
    assert info.value.code == ErrorCode.TOO_LARGE


def test_an_optional_key_may_be_absent_but_not_null() -> None:
    wire = _wire(HealthReply(request_id="h", status=_status(metrics=_metrics())))
    wire["status"]["metrics"] = None
    with pytest.raises(ProtocolError, match="absent but not null"):
        decode_message(cbor2.dumps(wire))


def test_a_literal_tag_must_match_exactly() -> None:
    wire = _wire(JobFailure(request_id="r", error=ErrorInfo.of("busy", "x")))
    for tag in (0, None, "false"):
        wire["ok"] = tag
        with pytest.raises(ProtocolError, match="ok must be one of"):
            decode_message(cbor2.dumps(wire))


def test_a_map_of_models_is_bounded_before_its_values_are_read() -> None:
    wire = _wire(HealthReply(request_id="h", status=_status(metrics=_metrics())))
    wire["status"]["metrics"]["stages"] = {f"s{i}": None for i in range(len(PIPELINE_STEPS) + 1)}
    with pytest.raises(ProtocolError, match="at most 4 entries"):
        decode_message(cbor2.dumps(wire))


def test_nested_maps_come_from_the_wire_paths() -> None:
    wire = _wire(HealthReply(request_id="h", status=_status(metrics=_metrics())))
    assert wire["status"]["model"] == {"name": "m", "sha256": "ab" * 32}
    assert wire["status"]["pcr0"] == "cd" * 48
    assert wire["status"]["metrics"]["attestation"] == {"ok": 0, "failed": 0}
    assert list(wire) == ["version", "request_id", "kind", "status"]

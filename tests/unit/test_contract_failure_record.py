"""The failure record contract (`ccc_common.contracts.failure_record`): the parent agent writes it,
the job-events Lambda and the client read it."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc.client.input_record import InputRecord
from ccc.client.job_runner import CccClient
from ccc.trust import TrustFile, aws_nitro_root
from ccc.trust.releases import pinned_release
from ccc_common.contracts.failure_record import (
    FAILURE_RECORD_FORMAT,
    MAX_FAILURE_RECORD_BYTES,
    MAX_REASON_CHARS,
    DocumentError,
    FailureRecord,
    decode_failure_record,
    encode_failure_record,
)
from ccc_common.domain.job_lifecycle import reason_from_failure_record
from ccc_core.identity import JobRef
from enclave_worker.parent.agent import AgentSettings, ParentAgent
from tests.support.client_target import offline_target

JOB = JobRef(tenant="tenant-a", job_id="0123456789abcdef0123456789abcdef")

jobs = st.builds(
    JobRef,
    tenant=st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True),
    job_id=st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
)
codes = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,30}", fullmatch=True)


def _record(**changes: object) -> bytes:
    record = json.loads(encode_failure_record(FailureRecord.for_job(JOB, "bad_image", "not an image")))
    record.update(changes)
    return json.dumps(record).encode()


@settings(max_examples=80, deadline=None)
@given(jobs, codes, st.text(min_size=1, max_size=300).filter(lambda t: t.strip()))
def test_encode_then_decode_is_the_identity(job: JobRef, code: str, reason: str) -> None:
    record = FailureRecord.for_job(job, code, reason)
    assert decode_failure_record(encode_failure_record(record), job=job) == record
    assert record.summary() == f"{code}: {' '.join(reason.split())}"


def test_the_wire_shape_is_the_one_the_parent_always_wrote_plus_the_format_tag() -> None:
    raw = encode_failure_record(FailureRecord.for_job(JOB, "context_mismatch", "wrong context"))
    assert json.loads(raw) == {
        "job_id": JOB.job_id,
        "tenant": JOB.tenant,
        "status": "failed",
        "code": "context_mismatch",
        "reason": "wrong context",
        "format": FAILURE_RECORD_FORMAT,
    }
    assert raw == json.dumps(json.loads(raw), sort_keys=True).encode()


def test_the_writer_normalises_and_clips_reasons_so_writing_never_fails() -> None:
    assert FailureRecord.for_job(JOB, "x", "  a\n b  ").reason == "a b"
    assert FailureRecord.for_job(JOB, "x", "   ").reason == "no reason given"
    long = FailureRecord.for_job(JOB, "x", "y" * 10_000)
    assert len(long.reason) == MAX_REASON_CHARS and long.reason.endswith("...")


@pytest.mark.parametrize("tag", ["ccc-failure-record/2", "", 1, None])
def test_unknown_formats_are_refused(tag: object) -> None:
    with pytest.raises(DocumentError) as info:
        decode_failure_record(_record(format=tag))
    assert info.value.reason == "unknown-format"
    untagged = json.loads(_record())
    del untagged["format"]
    with pytest.raises(DocumentError) as info:
        decode_failure_record(json.dumps(untagged).encode())
    assert info.value.reason == "unknown-format"


@pytest.mark.parametrize("extra", [{"error": "too big"}, {"message": "x"}, {"retryable": False}])
def test_fields_the_writer_never_writes_are_refused(extra: dict[str, object]) -> None:
    with pytest.raises(DocumentError, match="Extra inputs") as info:
        decode_failure_record(_record(**extra))
    assert info.value.reason == "malformed"


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "done"},
        {"code": "Bad Code"},
        {"code": 7},
        {"reason": ""},
        {"reason": "y" * (MAX_REASON_CHARS + 1)},
        {"job_id": "nope"},
        {"tenant": None},
    ],
)
def test_wrong_types_and_values_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(DocumentError) as info:
        decode_failure_record(_record(**changes))
    assert info.value.reason == "malformed"


def test_size_json_and_job_are_checked() -> None:
    with pytest.raises(DocumentError) as info:
        decode_failure_record(b" " * (MAX_FAILURE_RECORD_BYTES + 1))
    assert info.value.reason == "too-large"
    with pytest.raises(DocumentError) as info:
        decode_failure_record(b"[" * 50_000)
    assert info.value.reason == "invalid-json"
    with pytest.raises(DocumentError) as info:
        decode_failure_record(_record(), job=JobRef(tenant="tenant-b", job_id=JOB.job_id))
    assert info.value.reason == "wrong-job"


# --- the writer's output, read by every reader ---------------------------------------------------


class _RecordingS3:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> None:
        self.objects[Key] = Body

    def get_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        body = self.objects[Key]
        return {"ContentLength": len(body), "Body": io.BytesIO(body)}


def _written_by_the_parent_agent(code: str, reason: str) -> _RecordingS3:
    s3 = _RecordingS3()
    settings = AgentSettings(queue_url="q", inbox_bucket="in", results_bucket="out", kms=None)  # type: ignore[arg-type]
    agent = ParentAgent(sqs=None, s3=s3, enclave=None, credentials=None, settings=settings)  # type: ignore[arg-type]
    agent._record_failure(JOB, SimpleNamespace(code=code, reason=reason))  # type: ignore[arg-type]
    return s3


def _client(s3: _RecordingS3) -> CccClient:
    target = offline_target(api_url=None)
    trust = TrustFile(
        format="ccc.trust/v1",
        tenant=JOB.tenant,
        data_key_arn="arn:aws:kms:eu-west-1:111122223333:key/k",
        attestation_root=aws_nitro_root(),
        releases=[pinned_release(None, {0: "01" * 48}, source="pcrs")],
    )
    client = CccClient(target, JOB.tenant, trust=trust, inputs=InputRecord(Path(tempfile.mkdtemp())))
    client._s3 = s3
    return client


def test_what_the_parent_agent_writes_the_lambda_and_the_client_read_alike() -> None:
    s3 = _written_by_the_parent_agent("context_mismatch", "encryption context names another job")
    raw = s3.objects[JOB.failure_key]
    expected = "context_mismatch: encryption context names another job"
    assert decode_failure_record(raw, job=JOB).summary() == expected
    assert reason_from_failure_record(raw, JOB) == expected
    assert _client(s3)._failure_reason(JOB) == expected


def test_a_record_the_readers_cannot_use_still_fails_the_job_with_a_reason_that_says_why() -> None:
    s3 = _RecordingS3()
    s3.objects[JOB.failure_key] = b'{"error": "too big", "code": "limit"}'
    assert "unknown-format" in reason_from_failure_record(s3.objects[JOB.failure_key], JOB)
    assert "failure record is unusable" in _client(s3)._failure_reason(JOB)

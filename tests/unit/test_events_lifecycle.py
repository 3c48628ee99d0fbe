"""Job lifecycle from S3 events (the job-events logic) with in-memory ports."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

import pytest

from ccc_common.contracts.failure_record import FAILURE_RECORD_FORMAT, FailureRecord, encode_failure_record
from ccc_common.contracts.work_message import EventError
from ccc_common.domain.events import ObjectKind
from ccc_common.domain.fleet_ports import ScalerWaker
from ccc_common.domain.job_lifecycle import (
    MAX_FAILURE_RECORD_BYTES,
    EventOutcome,
    JobLifecycle,
    reason_from_failure_record,
)
from ccc_common.domain.jobs import JobStatus, new_job
from ccc_common.domain.storage_ports import FailureRecordReader
from ccc_core.identity import JobRef
from tests.conftest import load_event
from tests.support.fake_fleet import RecordingWaker
from tests.support.fake_job_store import InMemoryJobStore

INBOX = "ccc-local-inbox-111122223333-eu-west-1"
RESULTS = "ccc-local-results-111122223333-eu-west-1"
REF = JobRef(tenant="tenant-a", job_id="0123456789abcdef0123456789abcdef")
NOW = datetime(2025, 3, 1, 13, 0, tzinfo=UTC)


def _record(code: str, reason: str) -> bytes:
    """A failure record as the parent agent writes it."""
    return encode_failure_record(FailureRecord.for_job(REF, code, reason))


class DictReader(FailureRecordReader):
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def read(self, bucket: str, key: str) -> bytes:
        return self.objects[key][: MAX_FAILURE_RECORD_BYTES + 1]


class BrokenWaker(ScalerWaker):
    def wake(self, job_id: str, pending_jobs: int = 1) -> None:
        raise ConnectionError("lambda unreachable")


def lifecycle(store=None, reader=None, waker=None) -> tuple[JobLifecycle, InMemoryJobStore, RecordingWaker]:
    store = store or InMemoryJobStore()
    recording = RecordingWaker()
    return (
        JobLifecycle(
            store,
            inbox_bucket=INBOX,
            results_bucket=RESULTS,
            failure_reader=reader
            or DictReader({REF.failure_key: _record("bad-context", "context mismatch")}),
            waker=waker or recording,
            clock=lambda: NOW,
        ),
        store,
        recording,
    )


def test_inbox_event_queues_the_job_and_wakes_the_scaler() -> None:
    logic, store, waker = lifecycle()
    store.create(new_job(REF, datetime(2025, 3, 1, 11, 59, tzinfo=UTC), 30))
    result = logic.handle_eventbridge(load_event("s3_object_created_inbox.json"))
    assert result.outcome is EventOutcome.APPLIED and result.kind is ObjectKind.INPUT and result.woke_scaler
    assert waker.calls == [(REF.job_id, 1)]
    job = store.get(REF.job_id)
    assert job is not None and job.status is JobStatus.QUEUED
    assert job.updated_at == datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)  # the S3 event time
    again = logic.handle_eventbridge(load_event("s3_object_created_inbox.json"))
    assert again.outcome is EventOutcome.STALE and waker.calls == [(REF.job_id, 1)]  # duplicates do not wake


def test_every_order_of_the_three_events_ends_done() -> None:
    names = ["s3_object_created_inbox.json", "s3_object_created_result.json", "s3_object_created_failure_record.json"]
    for order in itertools.permutations(names):
        logic, store, _ = lifecycle()
        for name in [*order, *order]:
            logic.handle_eventbridge(load_event(name))
        job = store.get(REF.job_id)
        assert job is not None and job.status is JobStatus.DONE and job.result_key == REF.result_key


def test_failure_record_reason_is_recorded() -> None:
    logic, store, _ = lifecycle()
    logic.handle_eventbridge(load_event("s3_object_created_inbox.json"))
    result = logic.handle_eventbridge(load_event("s3_object_created_failure_record.json"))
    assert result.outcome is EventOutcome.APPLIED and result.status is JobStatus.FAILED
    job = store.get(REF.job_id)
    assert job is not None and job.error == "bad-context: context mismatch"


def test_unreadable_failure_record_still_fails_the_job() -> None:
    logic, store, _ = lifecycle(reader=DictReader({}))
    logic.handle_eventbridge(load_event("s3_object_created_failure_record.json"))
    job = store.get(REF.job_id)
    assert job is not None and job.status is JobStatus.FAILED and "unreadable" in (job.error or "")


def test_other_objects_are_ignored_and_foreign_tenants_refused() -> None:
    logic, store, waker = lifecycle()
    assert logic.handle_eventbridge(load_event("s3_object_created_attestation.json")).outcome is EventOutcome.IGNORED
    assert logic.handle_eventbridge(load_event("scheduled_event.json")).outcome is EventOutcome.IGNORED
    store.create(new_job(JobRef(tenant="tenant-b", job_id=REF.job_id), NOW, 30))
    result = logic.handle_eventbridge(load_event("s3_object_created_result.json"))
    assert result.outcome is EventOutcome.REFUSED
    job = store.get(REF.job_id)
    assert job is not None and job.tenant == "tenant-b" and job.status is JobStatus.SUBMITTED
    assert waker.calls == []


def test_wake_failure_does_not_lose_the_transition() -> None:
    logic, store, _ = lifecycle(waker=BrokenWaker())
    result = logic.handle_eventbridge(load_event("s3_object_created_inbox.json"))
    assert (
        result.outcome is EventOutcome.APPLIED
        and not result.woke_scaler
        and "ConnectionError" in (result.wake_error or "")
    )
    job = store.get(REF.job_id)
    assert job is not None and job.status is JobStatus.QUEUED


def test_malformed_event_raises_typed_error() -> None:
    logic, _, _ = lifecycle()
    event = load_event("s3_object_created_inbox.json")
    del event["detail"]["object"]
    with pytest.raises(EventError):
        logic.handle_eventbridge(event)


def _tagged(**fields: object) -> bytes:
    return json.dumps({"format": FAILURE_RECORD_FORMAT, **fields}).encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (_record("bad_image", "not an image"), "bad_image: not an image"),
        # What the old reader accepted although the parent never wrote it: refused, job still failed.
        (b'{"reason": "not an image"}', "unknown-format"),
        (b'{"error": "too big", "code": "limit"}', "unknown-format"),
        (_tagged(job_id=REF.job_id, tenant=REF.tenant, status="failed", code="x", message="x"), "malformed"),
        (b"[]", "malformed"),
        (b"\xff\xfe", "invalid-json"),
        (b"[" * 100_000, "too-large"),
        (_record("too_large", "y" * 5000), "y" * 100),  # the writer clips, the reader still bounds
    ],
)
def test_failure_record_reading(raw: bytes, expected: str) -> None:
    reason = reason_from_failure_record(raw, REF)
    assert expected in reason and len(reason) <= 1024


def test_a_failure_record_of_another_job_is_not_believed() -> None:
    other = JobRef(tenant="tenant-b", job_id=REF.job_id)
    reason = reason_from_failure_record(encode_failure_record(FailureRecord.for_job(other, "x", "y")), REF)
    assert "wrong-job" in reason and "x: y" not in reason

"""Dead letters: archived first, jobs failed with a reason, nothing dropped (in-memory ports)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ccc_common.domain.dead_letters import (
    DeadLetter,
    DeadLetterError,
    DeadLetterHandler,
    archive_key,
)
from ccc_common.domain.jobs import JobEvent, JobStatus, new_job
from ccc_common.domain.storage_ports import Archive
from ccc_core.identity import JobRef
from tests.conftest import load_event
from tests.support.fake_archive import InMemoryArchive
from tests.support.fake_job_store import InMemoryJobStore

INBOX = "ccc-local-inbox-111122223333-eu-west-1"
NOW = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
REF_A = JobRef(tenant="tenant-a", job_id="0123456789abcdef0123456789abcdef")
REF_B = JobRef(tenant="tenant-b", job_id="fedcba9876543210fedcba9876543210")


class FailingArchive(Archive):
    def put(self, key: str, document: bytes) -> None:
        raise OSError("archive unavailable")


def letters() -> list[DeadLetter]:
    return [DeadLetter.from_lambda_record(r) for r in load_event("sqs_dead_letter_batch.json")["Records"]]


def handler(store=None, archive=None) -> tuple[DeadLetterHandler, InMemoryJobStore, InMemoryArchive]:
    store = store or InMemoryJobStore()
    archive = archive or InMemoryArchive()
    return (
        DeadLetterHandler(store, archive, inbox_bucket=INBOX, max_receive_count=3, clock=lambda: NOW),
        store,
        archive,
    )


def test_each_message_is_archived_and_its_job_failed() -> None:
    logic, store, archive = handler()
    store.create(new_job(REF_A, NOW, 30))
    store.apply(JobEvent.queued(REF_A, NOW))
    eventbridge, classic, garbage = letters()

    result = logic.handle(eventbridge)
    assert result.failed == (REF_A,) and result.archive_key == f"dead-letters/2025/03/01/{eventbridge.message_id}.json"
    job = store.get(REF_A.job_id)
    assert job is not None and job.status is JobStatus.FAILED and job.attempts == 3
    assert "3 delivery attempts" in (job.error or "")
    document = json.loads(archive.objects[result.archive_key])
    assert document["body"] == eventbridge.body and document["receive_count"] == 4
    assert document["attributes"]["DeadLetterQueueSourceArn"].endswith(":ccc-local-work")

    assert logic.handle(classic).failed == (REF_B,)  # unknown job: recorded as failed

    unparsable = logic.handle(garbage)
    assert unparsable.failed == () and unparsable.unparsable and "invalid-json" in unparsable.unparsable
    assert unparsable.archive_key in archive.objects


def test_done_jobs_stay_done_and_duplicates_are_harmless() -> None:
    logic, store, _ = handler()
    store.apply(JobEvent.done(REF_A, NOW))
    letter = letters()[0]
    first = logic.handle(letter)
    second = logic.handle(letter)
    assert first.unchanged == (REF_A,) and second.unchanged == (REF_A,)
    assert store.get(REF_A.job_id).status is JobStatus.DONE  # type: ignore[union-attr]


def test_archive_failure_raises_before_touching_the_job() -> None:
    logic, store, _ = handler(archive=FailingArchive())
    with pytest.raises(OSError):
        logic.handle(letters()[0])
    assert store.get(REF_A.job_id) is None


def test_reason_attribute_and_odd_message_ids() -> None:
    record = load_event("sqs_dead_letter_batch.json")["Records"][0]
    record["messageAttributes"] = {"ccc-failure-reason": {"stringValue": "enclave crashed", "dataType": "String"}}
    record["messageId"] = "../../escape"
    logic, store, archive = handler()
    result = logic.handle(DeadLetter.from_lambda_record(record))
    assert "enclave crashed" in (store.get(REF_A.job_id).error or "")  # type: ignore[union-attr]
    assert result.archive_key.startswith("dead-letters/2025/03/01/sha256-") and ".." not in result.archive_key
    assert archive_key("abc-123", NOW) == "dead-letters/2025/03/01/abc-123.json"


def test_record_without_body_is_rejected() -> None:
    with pytest.raises(DeadLetterError):
        DeadLetter.from_lambda_record({"messageId": "x"})
    letter = DeadLetter.from_lambda_record(
        {"messageId": "x", "body": "{}", "attributes": {"ApproximateReceiveCount": "x"}}
    )
    assert letter.receive_count is None


def test_the_failure_reason_names_the_last_attempts_error_code() -> None:
    """Issue 13: a job denied by KMS for good ended with "moved to the dead-letter queue" and no hint."""
    logic, store, _ = handler()
    store.create(new_job(REF_A, NOW, 30).model_copy(update={"last_error": "kms_access_denied"}))
    eventbridge, _, _ = letters()
    assert logic.handle(eventbridge).failed == (REF_A,)
    job = store.get(REF_A.job_id)
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.endswith("(moved to the dead-letter queue); last error: kms_access_denied")


def test_without_a_recorded_error_the_reason_adds_nothing() -> None:
    logic, store, _ = handler()
    store.create(new_job(REF_A, NOW, 30))
    eventbridge, _, _ = letters()
    logic.handle(eventbridge)
    job = store.get(REF_A.job_id)
    assert job is not None and "last error" not in (job.error or "")

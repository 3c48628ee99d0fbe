"""dead_letters handler on moto: archive + mark failed; partial batch failures keep messages safe."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto import mock_aws

from ccc_common.aws.jobs_dal import DynamoJobStore
from ccc_common.domain.jobs import JobEvent, JobStatus, new_job
from ccc_core.identity import JobRef
from tests.conftest import load_event
from tests.integration.fn_helpers import (
    ARTIFACTS,
    INBOX,
    REGION,
    TABLE,
    FakeLambdaContext,
    create_bucket,
    create_jobs_table,
    load_handler,
)

REF_A = JobRef(tenant="tenant-a", job_id="0123456789abcdef0123456789abcdef")
REF_B = JobRef(tenant="tenant-b", job_id="fedcba9876543210fedcba9876543210")


@pytest.fixture
def aws(monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        create_jobs_table(boto3.client("dynamodb"))
        create_bucket(boto3.client("s3"), ARTIFACTS)
        yield


def handler_for(monkeypatch, archive_bucket: str = ARTIFACTS) -> ModuleType:
    return load_handler(
        monkeypatch,
        "dead_letters",
        {"CCC_JOBS_TABLE": TABLE, "CCC_INBOX_BUCKET": INBOX, "CCC_ARCHIVE_BUCKET": archive_bucket},
    )


def store() -> DynamoJobStore:
    return DynamoJobStore(boto3.client("dynamodb"), TABLE, ttl_days=30)


def archived() -> dict[str, dict]:
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=ARTIFACTS).get("Contents", [])]
    return {key: json.loads(s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read()) for key in keys}


def test_dead_letters_are_archived_and_jobs_marked_failed(aws, monkeypatch, capsys) -> None:
    now = datetime.now(UTC)
    store().create(new_job(REF_A, now, 30))
    store().apply(JobEvent.queued(REF_A, now))
    module = handler_for(monkeypatch)
    event = load_event("sqs_dead_letter_batch.json")

    response = module.handler(event, FakeLambdaContext())

    assert response == {"batchItemFailures": []}  # all three handled; Lambda deletes them
    for ref in (REF_A, REF_B):
        job = store().get(ref.job_id)
        assert job is not None and job.status is JobStatus.FAILED and job.attempts == 3
        assert "dead-letter queue" in (job.error or "")
    documents = archived()
    assert len(documents) == 3
    assert {doc["message_id"] for doc in documents.values()} == {r["messageId"] for r in event["Records"]}
    assert all(key.startswith("dead-letters/") for key in documents)
    garbage = next(doc for doc in documents.values() if doc["body"] == "this is not JSON {")
    assert garbage["receive_count"] == 5
    out = capsys.readouterr().out
    assert '"DeadLetters"' in out and '"DeadLettersUnparsable"' in out


def test_done_job_is_not_failed_by_a_late_dead_letter(aws, monkeypatch) -> None:
    store().apply(JobEvent.done(REF_A, datetime.now(UTC)))
    module = handler_for(monkeypatch)
    event = load_event("sqs_dead_letter_batch.json")
    event["Records"] = event["Records"][:1]
    assert module.handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    assert store().get(REF_A.job_id).status is JobStatus.DONE  # type: ignore[union-attr]
    assert len(archived()) == 1


def test_unarchivable_messages_stay_in_the_queue(aws, monkeypatch) -> None:
    module = handler_for(monkeypatch, archive_bucket="ccc-local-no-such-bucket")
    event = load_event("sqs_dead_letter_batch.json")
    # every record failed: Powertools fails the whole invocation, so Lambda deletes nothing
    with pytest.raises(BatchProcessingError):
        module.handler(event, FakeLambdaContext())
    assert store().get(REF_A.job_id) is None  # archive first: no job touched without an archive

    partly = load_event("sqs_dead_letter_batch.json")
    create_bucket(boto3.client("s3"), "ccc-local-no-such-bucket")
    module.runtime.cache_clear()
    response = module.handler(partly, FakeLambdaContext())
    assert response == {"batchItemFailures": []}


def test_one_bad_record_does_not_block_the_others(aws, monkeypatch) -> None:
    module = handler_for(monkeypatch)
    event = load_event("sqs_dead_letter_batch.json")
    del event["Records"][1]["body"]  # not an SQS message at all
    response = module.handler(event, FakeLambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert store().get(REF_A.job_id).status is JobStatus.FAILED  # type: ignore[union-attr]
    assert len(archived()) == 2

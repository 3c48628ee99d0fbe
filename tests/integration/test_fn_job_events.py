"""job_events handler on moto: S3 events keep the jobs table right whatever their order."""

from __future__ import annotations

import io
import itertools
import zipfile
from collections.abc import Iterator
from types import ModuleType

import boto3
import pytest
from moto import mock_aws

from ccc_common.aws.jobs_dal import DynamoJobStore
from ccc_common.contracts.failure_record import FailureRecord, encode_failure_record
from ccc_common.domain.jobs import JobStatus
from ccc_core.identity import JobRef
from tests.conftest import load_event
from tests.integration.fn_helpers import (
    INBOX,
    RESULTS,
    TABLE,
    FakeLambdaContext,
    create_bucket,
    create_jobs_table,
    load_handler,
)

JOB_ID = "0123456789abcdef0123456789abcdef"
EVENTS = ["s3_object_created_inbox.json", "s3_object_created_result.json", "s3_object_created_failure_record.json"]


@pytest.fixture
def aws(monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        yield


@pytest.fixture
def aws_with_lambda(monkeypatch) -> Iterator[None]:
    """moto's Lambda without Docker: invocations are accepted (202) and not executed."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def setup_resources(with_scaler: bool) -> None:
    create_jobs_table(boto3.client("dynamodb"))
    s3 = boto3.client("s3")
    create_bucket(s3, INBOX)
    create_bucket(s3, RESULTS)
    s3.put_object(
        Bucket=RESULTS,
        Key=f"results/tenant-a/{JOB_ID}.failed.json",
        Body=encode_failure_record(FailureRecord.for_job(
            JobRef("tenant-a", JOB_ID), "context-mismatch", "encryption context does not match the job"
        )),
    )
    if with_scaler:
        role = boto3.client("iam").create_role(RoleName="scaler", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("h.py", "def handler(event, context):\n    return None\n")
        boto3.client("lambda").create_function(
            FunctionName="ccc-local-scaler",
            Runtime="python3.12",
            Role=role,
            Handler="h.handler",
            Code={"ZipFile": code.getvalue()},
        )


def handler_for(monkeypatch, scaler: str = "") -> ModuleType:
    return load_handler(
        monkeypatch,
        "job_events",
        {
            "CCC_JOBS_TABLE": TABLE,
            "CCC_INBOX_BUCKET": INBOX,
            "CCC_RESULTS_BUCKET": RESULTS,
            "CCC_SCALER_FUNCTION": scaler,
        },
    )


def job_status() -> JobStatus | None:
    job = DynamoJobStore(boto3.client("dynamodb"), TABLE, ttl_days=30).get(JOB_ID)
    return None if job is None else job.status


def test_upload_queues_the_job_and_wakes_the_scaler(aws_with_lambda, monkeypatch) -> None:
    setup_resources(with_scaler=True)
    module = handler_for(monkeypatch, scaler="ccc-local-scaler")
    result = module.handler(load_event("s3_object_created_inbox.json"), FakeLambdaContext())
    assert result == {"outcome": "applied", "job_id": JOB_ID, "status": "queued", "woke_scaler": True}
    assert job_status() is JobStatus.QUEUED
    duplicate = module.handler(load_event("s3_object_created_inbox.json"), FakeLambdaContext())
    assert duplicate["outcome"] == "stale" and not duplicate["woke_scaler"]


def test_missing_scaler_function_does_not_lose_the_job(aws, monkeypatch) -> None:
    setup_resources(with_scaler=False)
    module = handler_for(monkeypatch, scaler="ccc-local-no-such-function")
    result = module.handler(load_event("s3_object_created_inbox.json"), FakeLambdaContext())
    assert result["outcome"] == "applied" and not result["woke_scaler"]
    assert job_status() is JobStatus.QUEUED


@pytest.mark.parametrize("order", list(itertools.permutations(EVENTS)))
def test_out_of_order_and_duplicate_events_never_move_backwards(aws, monkeypatch, order) -> None:
    setup_resources(with_scaler=False)
    module = handler_for(monkeypatch)
    rank_seen = []
    for name in [*order, order[0], *order]:
        module.handler(load_event(name), FakeLambdaContext())
        status = job_status()
        assert status is not None
        rank_seen.append(status.rank)
    assert rank_seen == sorted(rank_seen)
    job = DynamoJobStore(boto3.client("dynamodb"), TABLE, ttl_days=30).get(JOB_ID)
    assert job is not None and job.status is JobStatus.DONE and job.error is None
    assert job.result_key == f"results/tenant-a/{JOB_ID}.ccc"


def test_failure_record_fails_the_job_with_its_reason(aws, monkeypatch) -> None:
    setup_resources(with_scaler=False)
    module = handler_for(monkeypatch)
    module.handler(load_event("s3_object_created_inbox.json"), FakeLambdaContext())
    result = module.handler(load_event("s3_object_created_failure_record.json"), FakeLambdaContext())
    assert result["status"] == "failed"
    job = DynamoJobStore(boto3.client("dynamodb"), TABLE, ttl_days=30).get(JOB_ID)
    assert job is not None and job.error == "context-mismatch: encryption context does not match the job"


def test_ignored_and_malformed_events_do_not_raise(aws, monkeypatch, capsys) -> None:
    setup_resources(with_scaler=False)
    module = handler_for(monkeypatch)
    assert module.handler(load_event("s3_object_created_attestation.json"), FakeLambdaContext())["outcome"] == "ignored"
    broken = load_event("s3_object_created_inbox.json")
    broken["detail"]["object"] = "nope"
    assert module.handler(broken, FakeLambdaContext())["outcome"] == "malformed"
    assert job_status() is None
    emitted = capsys.readouterr().out
    assert "MalformedJobEvents" in emitted  # EMF metric flushed to stdout

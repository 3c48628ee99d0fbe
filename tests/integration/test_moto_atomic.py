"""Conditional writes against moto, made atomic as on AWS (`ccc.local.moto_atomic`): many threads
race to claim the same jobs' leases and to create the same result objects; exactly one wins each."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ccc.local.moto_atomic import make_conditional_writes_atomic
from ccc_common.aws.job_leases import DynamoJobLeases
from ccc_common.contracts.jobs_table import create_table_request
from ccc_common.domain.job_leases import Lease, LeaseHeld
from ccc_core.identity import JobRef

REGION = "us-east-1"
TABLE = "ccc-local-jobs"
BUCKET = "ccc-local-results-123456789012-us-east-1"
THREADS = 6
JOBS = 30


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    make_conditional_writes_atomic()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(**create_table_request(TABLE))
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        yield dynamodb, s3


def _race(work: Any) -> Counter[int]:
    wins: Counter[int] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def worker(index: int) -> None:
        for job in range(JOBS):
            start.wait()
            if work(index, job):
                with lock:
                    wins[job] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return wins


def test_one_claim_wins_each_lease_and_it_ends_when_released_or_expired(aws: tuple[Any, Any]) -> None:
    leases = DynamoJobLeases(aws[0], TABLE, ttl_days=30)
    now = datetime.now(UTC)

    def claim(index: int, job: int) -> bool:
        ref = JobRef(tenant="tenant-a", job_id=f"{job:032x}")
        return isinstance(leases.claim(ref, f"worker-{index}", now=now, until=now + timedelta(seconds=60)), Lease)

    assert _race(claim) == {job: 1 for job in range(JOBS)}
    ref = JobRef(tenant="tenant-a", job_id=f"{0:032x}")
    held = leases.claim(ref, "late", now=now, until=now + timedelta(seconds=60))
    assert isinstance(held, LeaseHeld) and held.until > now + timedelta(seconds=59)
    # Expired: the next claim wins (the holder died); the old holder's release then changes nothing.
    later = now + timedelta(seconds=61)
    taken = leases.claim(ref, "successor", now=later, until=later + timedelta(seconds=60))
    assert isinstance(taken, Lease)
    leases.release(Lease(job=ref, owner="worker-0", until=now))
    assert isinstance(leases.claim(ref, "third", now=later, until=later), LeaseHeld)
    leases.release(taken)
    assert isinstance(leases.claim(ref, "third", now=later, until=later), Lease)
    # A claim names the tenant: another tenant's job id is never leased (or created) for it.
    assert isinstance(leases.claim(JobRef(tenant="tenant-b", job_id=f"{1:032x}"), "x", now=later, until=later),
                      LeaseHeld)
    item = aws[0].get_item(TableName=TABLE, Key={"job_id": {"S": f"{5:032x}"}})["Item"]
    assert item["status"] == {"S": "queued"} and item["tenant"] == {"S": "tenant-a"}  # a valid job item


def test_one_conditional_put_creates_each_object(aws: tuple[Any, Any]) -> None:
    s3 = aws[1]

    def put(index: int, job: int) -> bool:
        try:
            s3.put_object(Bucket=BUCKET, Key=f"results/t/{job}.ccc", Body=str(index).encode(), IfNoneMatch="*")
        except s3.exceptions.ClientError as exc:
            assert exc.response["Error"]["Code"] == "PreconditionFailed"
            return False
        return True

    assert _race(put) == {job: 1 for job in range(JOBS)}

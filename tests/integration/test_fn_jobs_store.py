"""Job stores: the in-memory fake and the DynamoDB adapter (moto) obey the same contract."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from ccc_common.aws.jobs_dal import DynamoJobStore, item_to_job, job_to_item
from ccc_common.contracts.jobs_table import create_table_request
from ccc_common.contracts.lambda_env import JobEventsEnv, load_env
from ccc_common.domain.job_store import InvalidCursor, JobAlreadyExists, JobStore, JobStoreError, decode_cursor
from ccc_common.domain.jobs import JobEvent, JobStatus, TenantMismatch, new_job
from ccc_core.identity import JobRef
from tests.support.fake_job_store import InMemoryJobStore

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TABLE = "ccc-local-jobs"


def create_table(client) -> None:
    client.create_table(**create_table_request(TABLE))


@pytest.fixture(params=["memory", "dynamodb"])
def store(request, monkeypatch) -> Iterator[JobStore]:
    if request.param == "memory":
        yield InMemoryJobStore(ttl_days=30)
        return
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        create_table(client)
        yield DynamoJobStore(client, TABLE, ttl_days=30)


def ref(n: int, tenant: str = "tenant-a") -> JobRef:
    return JobRef(tenant=tenant, job_id=f"{n:032x}")


def test_create_get_and_duplicate_create(store: JobStore) -> None:
    job = new_job(ref(1), T0, ttl_days=30)
    store.create(job)
    assert store.get(job.job_id) == job
    with pytest.raises(JobAlreadyExists):
        store.create(job)
    assert store.get(ref(2).job_id) is None


def test_transitions_only_move_forward(store: JobStore) -> None:
    r = ref(1)
    store.create(new_job(r, T0, ttl_days=30))
    assert store.apply(JobEvent.queued(r, T0 + timedelta(seconds=1))).applied
    done = store.apply(JobEvent.done(r, T0 + timedelta(seconds=9)))
    assert done.applied and done.job.status is JobStatus.DONE and done.job.result_key == r.result_key
    late_failure = store.apply(JobEvent.failed(r, T0 + timedelta(seconds=20), "dlq", attempts=3))
    assert not late_failure.applied and late_failure.job.status is JobStatus.DONE
    duplicate = store.apply(JobEvent.queued(r, T0 + timedelta(seconds=1)))
    assert not duplicate.applied
    stored = store.get(r.job_id)
    assert stored is not None and stored.status is JobStatus.DONE and stored.error is None
    assert stored.created_at == T0 and stored.updated_at == T0 + timedelta(seconds=9)


def test_failed_then_done_supersedes_and_removes_error(store: JobStore) -> None:
    r = ref(3)
    failed = store.apply(JobEvent.failed(r, T0, "not completed after 3 attempts", attempts=3))
    assert failed.applied and failed.job.error and failed.job.attempts == 3
    done = store.apply(JobEvent.done(r, T0 + timedelta(minutes=1)))
    assert done.applied and done.job.error is None and done.job.attempts == 3


def test_event_for_unknown_job_creates_it(store: JobStore) -> None:
    r = ref(4)
    transition = store.apply(JobEvent.queued(r, T0))
    assert transition.applied and transition.job.status is JobStatus.QUEUED
    assert transition.job.ttl == int((T0 + timedelta(days=30)).timestamp())


def test_foreign_tenant_event_is_refused(store: JobStore) -> None:
    store.create(new_job(ref(5), T0, ttl_days=30))
    with pytest.raises(TenantMismatch):
        store.apply(JobEvent.done(ref(5, tenant="tenant-b"), T0))
    job = store.get(ref(5).job_id)
    assert job is not None and job.status is JobStatus.SUBMITTED and job.tenant == "tenant-a"


def test_listing_is_per_tenant_newest_first_and_paginates(store: JobStore) -> None:
    for n in range(7):
        store.create(new_job(ref(n), T0 + timedelta(seconds=n), ttl_days=30))
    store.create(new_job(ref(100, tenant="tenant-b"), T0, ttl_days=30))
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = store.list_for_tenant("tenant-a", limit=3, cursor=cursor)
        seen += [job.job_id for job in page.jobs]
        assert all(job.tenant == "tenant-a" for job in page.jobs)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [ref(n).job_id for n in reversed(range(7))]
    assert [j.job_id for j in store.list_for_tenant("tenant-b").jobs] == [ref(100, "tenant-b").job_id]
    assert store.list_for_tenant("tenant-c").jobs == []


def test_bad_cursor_and_limit(store: JobStore) -> None:
    with pytest.raises(InvalidCursor):
        store.list_for_tenant("tenant-a", cursor="not-a-cursor")
    with pytest.raises(ValueError):
        store.list_for_tenant("tenant-a", limit=0)


@given(st.text(max_size=300))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_cursor_decoding_never_crashes(text: str) -> None:
    try:
        job_id, created = decode_cursor(text)
    except InvalidCursor:
        return
    assert len(job_id) == 32 and created.endswith("Z")


def test_item_round_trip_and_malformed_items() -> None:
    job = new_job(ref(9), T0, ttl_days=30)
    assert item_to_job(job_to_item(job)) == job
    with pytest.raises(JobStoreError):
        item_to_job({"job_id": {"S": "x"}})
    bad = job_to_item(job)
    bad["status"] = {"S": "exploded"}
    with pytest.raises(JobStoreError):
        item_to_job(bad)


def test_index_and_ttl_attribute_names_follow_the_environment(monkeypatch) -> None:
    """A stack that names the GSI `by_tenant` and the TTL attribute `expires_at` (cdk/contract.py)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": n, "AttributeType": "S"} for n in ("job_id", "tenant", "created_at")
            ],
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_tenant",
                    "KeySchema": [
                        {"AttributeName": "tenant", "KeyType": "HASH"},
                        {"AttributeName": "created_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        env = load_env(
            JobEventsEnv,
            {
                "CCC_STAGE": "dev",
                "CCC_JOBS_TABLE": TABLE,
                "CCC_JOBS_TENANT_INDEX": "by_tenant",
                "CCC_JOBS_TTL_ATTRIBUTE": "expires_at",
                "CCC_INBOX_BUCKET": "inbox-bucket",
                "CCC_RESULTS_BUCKET": "results-bucket",
            },
        )
        store = DynamoJobStore.for_env(client, env)
        store.apply(JobEvent.queued(ref(1), T0))
        item = client.get_item(TableName=TABLE, Key={"job_id": {"S": ref(1).job_id}})["Item"]
        assert "expires_at" in item and "ttl" not in item
        assert [job.job_id for job in store.list_for_tenant("tenant-a").jobs] == [ref(1).job_id]
        with pytest.raises(ValueError):
            DynamoJobStore(client, TABLE, ttl_days=30, ttl_attribute="status")

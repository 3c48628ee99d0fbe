"""A tenant waiting for a job sees `running` while a worker holds its lease (issue 15 §3).

Through the real DynamoDB item (moto): the parent's lease (ccc_common.aws.job_leases) is the only
record that a job is being worked on, so the jobs API derives `running` from it — without another
write per job — and a lease that ran out (a dead worker) reads as `queued` again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ccc.local.moto_atomic import make_conditional_writes_atomic
from ccc_common.aws.job_leases import DynamoJobLeases
from ccc_common.aws.jobs_dal import DynamoJobStore
from ccc_common.contracts.jobs_table import create_table_request
from ccc_common.domain.job_leases import Lease
from ccc_common.domain.jobs import RUNNING, JobEvent, JobStatus
from ccc_core.identity import JobRef, new_job_id

TABLE = "ccc-local-jobs"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    make_conditional_writes_atomic()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**create_table_request(TABLE))
        yield client


def test_a_leased_queued_job_shows_running_until_its_lease_ends(dynamodb: Any) -> None:
    store = DynamoJobStore(dynamodb, TABLE, 30)
    now = datetime.now(UTC)
    ref = JobRef(tenant="tenant-a", job_id=new_job_id())
    store.apply(JobEvent.submitted(ref, now))
    store.apply(JobEvent.queued(ref, now))
    job = store.get(ref.job_id)
    assert job is not None and job.shown_status(now) == "queued"

    lease = DynamoJobLeases(dynamodb, TABLE, 30).claim(ref, "worker-1", now=now, until=now + timedelta(seconds=60))
    assert isinstance(lease, Lease)
    job = store.get(ref.job_id)
    assert job is not None and job.status is JobStatus.QUEUED  # stored status unchanged
    assert job.public_view(now)["status"] == RUNNING
    assert job.shown_status(now + timedelta(seconds=61)) == "queued"  # the worker died: queued again
    assert job.public_view()["status"] == "queued"  # no clock, no guess

    store.apply(JobEvent.done(ref, now + timedelta(seconds=5)))
    job = store.get(ref.job_id)
    assert job is not None and job.shown_status(now) == "done"

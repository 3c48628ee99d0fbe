"""A worker killed mid-job: its lease expires and the job ends done exactly once, verified (issue 13 §5).

Real processes (one stack for the module, see conftest): the parent agent that holds the job's
lease (found by the pid in the lease owner) is SIGKILLed after it fetched the job's input; the
supervisor restarts it under a new pid; the message comes back when its visibility lapses, and
the job runs again only once the dead holder's lease has ended. The tenant then sees one result,
which verifies, and the result object never changes afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from ccc.client import CccClient, check_image, local_target
from ccc.evaluation.chaos import LogWatch
from ccc.evaluation.chaos_tally import enclave_passes
from ccc.local.components import LOCAL_JOB_LEASE_S
from ccc_common.contracts.jobs_table import LEASE_OWNER, PARTITION_KEY

pytestmark = pytest.mark.slow


def _admin_session(stack) -> boto3.session.Session:
    admin = stack.info.identity("admin")
    return boto3.session.Session(
        aws_access_key_id=admin.access_key_id,
        aws_secret_access_key=admin.secret_access_key,
        region_name=stack.info.region,
    )


def _lease_holder_pid(stack, job_id: str, timeout_s: float = 30.0) -> int:
    """The pid of the parent agent holding the job's lease (owner = host:pid:claim id)."""
    dynamodb = _admin_session(stack).client("dynamodb", endpoint_url=stack.info.endpoint_url)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        item = (
            dynamodb.get_item(
                TableName=stack.info.jobs_table, Key={PARTITION_KEY: {"S": job_id}}, ConsistentRead=True
            ).get("Item")
            or {}
        )
        owner = item.get(LEASE_OWNER, {}).get("S")
        if owner:
            return int(owner.split(":")[-2])
        time.sleep(0.05)
    raise AssertionError("no worker claimed the job")


def _result_etag(s3, stack, key: str) -> str | None:
    try:
        return str(s3.head_object(Bucket=stack.info.results_bucket, Key=key)["ETag"])
    except ClientError:
        return None


def test_a_parent_killed_mid_job_leaves_the_job_done_once_and_verified(stack, samples) -> None:
    client = CccClient(local_target(stack.state_dir), "tenant-a", show_progress=False)
    s3 = _admin_session(stack).client("s3", endpoint_url=stack.info.endpoint_url)
    for _attempt in range(3):
        moto_log = LogWatch(stack.state_dir / "logs" / "moto.log")
        submitted = client.submit(check_image(samples[2], client.target.limits.max_image_bytes))
        fetched = f"GET /{stack.info.inbox_bucket}/{submitted.job.inbox_key}"
        assert moto_log.wait_for([fetched], timeout_s=60), "no worker fetched the job's input"
        holder = _lease_holder_pid(stack, submitted.job.job_id)
        parents = {name: pid for name, pid in stack.refresh().pids.items() if name.startswith("parent-")}
        assert holder in parents.values(), (holder, parents)
        os.kill(holder, signal.SIGKILL)
        killed_at = time.time()
        if _result_etag(s3, stack, submitted.job.result_key) is None:
            break  # killed before it committed: the case under test
        client.wait(submitted.job, timeout=60)
    else:
        pytest.fail("the parent committed every job before it could be killed (3 attempts)")

    report = client.wait(submitted.job, timeout=60 + 2 * LOCAL_JOB_LEASE_S, started=submitted.started)
    assert report.status == "done" and report.verified, report
    assert holder not in stack.refresh().pids.values(), "the supervisor did not restart the killed parent"
    logs = stack.state_dir / "logs"
    handled = [
        json.loads(line)
        for path in logs.glob("parent-*.log")
        for line in path.read_text().splitlines()
        if line.startswith("{") and submitted.job.job_id in line and '"job handled"' in line
    ]
    done = [entry for entry in handled if entry.get("outcome") == "done"]
    assert len(done) == 1, handled  # exactly one run committed a result...
    # ... and not before the dead holder's lease (claimed just before the fetch) could have ended.
    assert done[0]["ts"] >= killed_at + LOCAL_JOB_LEASE_S - 10, done[0]["ts"] - killed_at
    first = _result_etag(s3, stack, submitted.job.result_key)
    time.sleep(2)  # later deliveries (the killed run's message, duplicates) change nothing the tenant sees
    assert _result_etag(s3, stack, submitted.job.result_key) == first
    assert client.fetch(submitted.job).verified
    passes = enclave_passes(sorted(logs.glob("enclave-*.log")))[submitted.job.job_id]
    assert 1 <= passes <= 2, passes  # a pass that finished before the kill is discarded; never more

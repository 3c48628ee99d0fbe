"""Scale-to-zero fleet end to end: uploads wake an idle fleet, every job finishes, the fleet goes back to 0.

A stack of its own (autoscaling on, no workers at start, short idle timeout). The scaler, job_events
and dead_letters handlers run in the stack's local Lambda process; the fleet supervisor follows the
Auto Scaling group's desired capacity in moto.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from ccc.client import CccClient, check_image, local_target
from ccc.local.stack import LocalStack

from .conftest import make_trust_file, trusting

pytestmark = pytest.mark.slow
IDLE_TIMEOUT_S = 6
JOBS = 8


@pytest.fixture(scope="module")
def idle_stack(tmp_path_factory, model_present):
    client_dir = tmp_path_factory.mktemp("fleet-client")
    with (
        LocalStack.start(tmp_path_factory.mktemp("fleet"), workers=0, idle_timeout_s=IDLE_TIMEOUT_S) as stack,
        trusting(make_trust_file(stack.state_dir, client_dir / "trust.json"), client_dir / "state"),
    ):
        yield stack


def _status(stack) -> dict:
    shown = subprocess.run(
        [sys.executable, "-m", "ccc", "fleet", "status", "--json", "--state-dir", str(stack.state_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def _admin_client(stack, service: str):
    import boto3

    admin = stack.info.identity("admin")
    return boto3.client(
        service, endpoint_url=stack.info.endpoint_url, region_name=stack.info.region,
        aws_access_key_id=admin.access_key_id, aws_secret_access_key=admin.secret_access_key,
    )


def _group_tags(stack) -> dict[str, str]:
    group = _admin_client(stack, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[stack.info.fleet_group]
    )["AutoScalingGroups"][0]
    return {tag["Key"]: tag["Value"] for tag in group.get("Tags", [])}


def _job_status(stack, job_id: str) -> str | None:
    dynamodb = _admin_client(stack, "dynamodb")
    item = dynamodb.get_item(TableName=stack.info.jobs_table, Key={"job_id": {"S": job_id}}).get("Item")
    return item["status"]["S"] if item else None


def test_uploads_wake_an_idle_fleet_all_jobs_finish_and_it_returns_to_zero(idle_stack, tmp_path):
    from ccc.evaluation.samples import write_samples

    idle = _status(idle_stack)
    assert (idle["desired"], idle["running"]) == (0, 0), idle
    images = write_samples(tmp_path / "images")
    client = CccClient(local_target(idle_stack.state_dir), "tenant-a", show_progress=False)
    checked = [check_image(images[i % len(images)], client.target.limits.max_image_bytes) for i in range(JOBS)]
    uploaded_at = time.monotonic()
    submitted = [client.submit(image) for image in checked]

    # Woken = the scaler raised the desired capacity and the supervisor is starting workers for it.
    woke_after = None
    while time.monotonic() - uploaded_at < 10:
        status = _status(idle_stack)
        if status["desired"] >= 1 and status["starting"] + status["running"] >= 1:
            woke_after = time.monotonic() - uploaded_at
            break
        time.sleep(0.2)
    assert woke_after is not None, "the fleet did not wake within 10 s of the uploads"

    reports = [client.wait(job.job, timeout=120, image=job.image, started=job.started) for job in submitted]
    assert all(report.ok for report in reports), [r for r in reports if not r.ok]
    # The scaler (through the IAM gateway, as its role) remembered when work was last seen: without
    # that write the idle timeout never starts. It was denied on AWS until the policy allowed it.
    tags = _group_tags(idle_stack)
    assert {"ccc:last-activity", "ccc:last-full-capacity"} <= set(tags), tags

    deadline = time.monotonic() + IDLE_TIMEOUT_S + 30
    status = _status(idle_stack)
    while time.monotonic() < deadline and (status["desired"], status["running"], status["draining"]) != (0, 0, 0):
        time.sleep(0.5)
        status = _status(idle_stack)
    assert (status["desired"], status["running"], status["backlog"], status["in_flight"]) == (0, 0, 0, 0), status

    # job_events (run as the real handler) recorded every job as done.
    deadline = time.monotonic() + 15
    statuses = {job.job.job_id: _job_status(idle_stack, job.job.job_id) for job in submitted}
    while time.monotonic() < deadline and set(statuses.values()) != {"done"}:
        time.sleep(0.5)
        statuses = {job_id: _job_status(idle_stack, job_id) for job_id in statuses}
    assert set(statuses.values()) == {"done"}, statuses

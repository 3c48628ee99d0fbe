"""`ccc fleet status`: what the local fleet is asked to be, what runs, and the work waiting for it.

Desired capacity and queue depth come from moto (the same numbers the scaler sees); the running
workers from the supervisor's fleet.json (moto's instances are only bookkeeping locally).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions

from ccc.local.errors import LocalStackError
from ccc.local.state import StackStateError, StatePaths, read_stack_info


class FleetStatusError(LocalStackError, RuntimeError):
    """No running stack, or moto did not answer."""


@dataclass(frozen=True)
class FleetStatus:
    desired: int
    running: int
    starting: int
    draining: int
    backlog: int
    in_flight: int
    idle_timeout_s: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "desired": self.desired,
            "running": self.running,
            "backlog": self.backlog,
            "in_flight": self.in_flight,
            "starting": self.starting,
            "draining": self.draining,
            "idle_timeout_s": self.idle_timeout_s,
        }


def fleet_status(state_dir: Path) -> FleetStatus:
    try:
        info = read_stack_info(state_dir)
    except StackStateError as exc:
        raise FleetStatusError(str(exc)) from None
    admin = info.identity("admin")
    session = boto3.session.Session(
        aws_access_key_id=admin.access_key_id, aws_secret_access_key=admin.secret_access_key, region_name=info.region
    )
    try:
        autoscaling = session.client("autoscaling", endpoint_url=info.endpoint_url)
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[info.fleet_group])
        desired = int(group["AutoScalingGroups"][0]["DesiredCapacity"])
        sqs = session.client("sqs", endpoint_url=info.endpoint_url)
        attributes = sqs.get_queue_attributes(
            QueueUrl=info.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, IndexError, KeyError) as exc:
        raise FleetStatusError(f"cannot read the fleet from moto at {info.endpoint_url}: {exc}") from None
    try:
        counts = json.loads(StatePaths(Path(info.state_dir)).fleet_file.read_text()).get("counts", {})
    except (OSError, ValueError):
        counts = {}
    return FleetStatus(
        desired=desired,
        running=int(counts.get("serving", 0)),
        starting=int(counts.get("starting", 0)),
        draining=int(counts.get("draining", 0)),
        backlog=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        idle_timeout_s=info.idle_timeout_s,
    )

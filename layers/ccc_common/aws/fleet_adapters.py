"""AWS adapters of the scaler's ports (``ccc_common.domain.fleet_ports``): the SQS work queue
gauge, the Auto Scaling fleet group, and the Lambda wake-up. Clients are injected, never created.

Why the last-activity time lives in a tag on the Auto Scaling group: the scaler Lambda is
stateless, and the idle timeout needs "when did we last see work" (and the scale-in cooldown
"when was the whole capacity last needed", a second tag written in the same call). A group tag needs no extra
resource, is visible in the console next to the capacity it explains, and moto supports it, so
the local stack uses the same code path.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ccc_common.contracts.scaler_wake import wake_payload
from ccc_common.domain.fleet_ports import (
    LAST_ACTIVITY_TAG,
    LAST_FULL_CAPACITY_TAG,
    FleetGroup,
    GroupState,
    QueueDepth,
    ScalerWaker,
    WorkQueueGauge,
)

__all__ = ["LAST_ACTIVITY_TAG", "LAST_FULL_CAPACITY_TAG", "AsgFleetGroup", "LambdaScalerWaker", "SqsQueueGauge"]

IN_SERVICE_STATES = frozenset({"InService"})
PENDING_STATES = frozenset({"Pending", "Pending:Wait", "Pending:Proceed"})
DRAINING_STATES = frozenset({"Terminating", "Terminating:Wait", "Terminating:Proceed"})


class SqsQueueGauge(WorkQueueGauge):
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def depth(self) -> QueueDepth:
        attributes = self._client.get_queue_attributes(
            QueueUrl=self._url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return QueueDepth(
            visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
            in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )


def _parse_activity(value: Any) -> float | None:
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        return None
    return parsed if math.isfinite(parsed) and parsed >= 0 else None


class AsgFleetGroup(FleetGroup):
    def __init__(self, client: Any, group_name: str) -> None:
        self._client = client
        self._name = group_name

    def describe(self) -> GroupState:
        groups = self._client.describe_auto_scaling_groups(AutoScalingGroupNames=[self._name])["AutoScalingGroups"]
        if not groups:
            raise LookupError(f"auto scaling group {self._name!r} not found")
        group = groups[0]
        states = [instance.get("LifecycleState", "") for instance in group.get("Instances", [])]
        tags = {tag.get("Key"): tag.get("Value") for tag in group.get("Tags", [])}
        return GroupState(
            desired=int(group["DesiredCapacity"]),
            max_size=int(group["MaxSize"]),
            in_service=sum(state in IN_SERVICE_STATES for state in states),
            pending=sum(state in PENDING_STATES for state in states),
            draining=sum(state in DRAINING_STATES for state in states),
            last_activity=_parse_activity(tags.get(LAST_ACTIVITY_TAG)),
            last_full_capacity=_parse_activity(tags.get(LAST_FULL_CAPACITY_TAG)),
        )

    def set_desired(self, desired: int) -> None:
        self._client.set_desired_capacity(AutoScalingGroupName=self._name, DesiredCapacity=desired, HonorCooldown=False)

    def record_marks(self, *, last_activity: float | None, last_full_capacity: float | None) -> None:
        marks = {LAST_ACTIVITY_TAG: last_activity, LAST_FULL_CAPACITY_TAG: last_full_capacity}
        tags = [
            {
                "ResourceId": self._name,
                "ResourceType": "auto-scaling-group",
                "Key": key,
                "Value": str(int(value)),
                "PropagateAtLaunch": False,
            }
            for key, value in marks.items()
            if value is not None
        ]
        if tags:
            self._client.create_or_update_tags(Tags=tags)


class LambdaScalerWaker(ScalerWaker):
    """Asynchronous invoke (InvocationType=Event): job-events never waits for the scaler."""

    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client
        self._function = function_name

    def wake(self, job_id: str, pending_jobs: int = 1) -> None:
        self._client.invoke(
            FunctionName=self._function,
            InvocationType="Event",
            Payload=json.dumps(wake_payload(job_id, pending_jobs)).encode(),
        )

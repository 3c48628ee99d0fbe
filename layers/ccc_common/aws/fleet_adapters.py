"""The scaler's ports (work queue gauge, fleet group, wake-up) with AWS adapters, fakes, and the
one function that runs a scaling decision end to end.

Why the last-activity time lives in a tag on the Auto Scaling group: the scaler Lambda is
stateless, and the idle timeout needs "when did we last see work". A group tag needs no extra
resource, is visible in the console next to the capacity it explains, and moto supports it, so
the local stack uses the same code path.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ccc_common.domain.scaling import FleetObservation, ScalingDecision, ScalingSettings, decide

LAST_ACTIVITY_TAG = "ccc:last-activity"
WAKE_SOURCE = "ccc.job-events"
MAX_WAKE_HINT = 10_000

IN_SERVICE_STATES = frozenset({"InService"})
PENDING_STATES = frozenset({"Pending", "Pending:Wait", "Pending:Proceed"})
DRAINING_STATES = frozenset({"Terminating", "Terminating:Wait", "Terminating:Proceed"})


@dataclass(frozen=True)
class QueueDepth:
    visible: int
    in_flight: int


@dataclass(frozen=True)
class GroupState:
    desired: int
    max_size: int
    in_service: int
    pending: int
    draining: int
    last_activity: float | None


class WorkQueueGauge(ABC):
    @abstractmethod
    def depth(self) -> QueueDepth: ...


class FleetGroup(ABC):
    @abstractmethod
    def describe(self) -> GroupState: ...

    @abstractmethod
    def set_desired(self, desired: int) -> None: ...

    @abstractmethod
    def record_activity(self, epoch_s: float) -> None: ...


class ScalerWaker(ABC):
    """How job-events asks the scaler to decide now instead of at the next schedule tick."""

    @abstractmethod
    def wake(self, job_id: str, pending_jobs: int = 1) -> None: ...


# --- AWS adapters (clients injected) --------------------------------------------------------


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
        )

    def set_desired(self, desired: int) -> None:
        self._client.set_desired_capacity(AutoScalingGroupName=self._name, DesiredCapacity=desired, HonorCooldown=False)

    def record_activity(self, epoch_s: float) -> None:
        self._client.create_or_update_tags(
            Tags=[
                {
                    "ResourceId": self._name,
                    "ResourceType": "auto-scaling-group",
                    "Key": LAST_ACTIVITY_TAG,
                    "Value": str(int(epoch_s)),
                    "PropagateAtLaunch": False,
                }
            ]
        )


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


class NullWaker(ScalerWaker):
    """No scaler to wake (e.g. SCALER_FUNCTION unset): the schedule alone drives scaling."""

    def wake(self, job_id: str, pending_jobs: int = 1) -> None:
        return None


def wake_payload(job_id: str, pending_jobs: int = 1) -> dict[str, Any]:
    return {"source": WAKE_SOURCE, "detail-type": "Job Arrived", "detail": {"job_id": job_id, "pending": pending_jobs}}


def wake_hint(event: Any) -> int:
    """Arrivals announced by a wake-up event (0 for a schedule tick or anything else).

    Why a hint: the inbox event reaches job-events and the work queue in parallel, so when the
    scaler is woken the message may not be visible in SQS yet; without the hint the first job
    would wait for the next tick, which is exactly what waking is meant to avoid.
    """
    if not isinstance(event, Mapping) or event.get("source") != WAKE_SOURCE:
        return 0
    detail = event.get("detail")
    pending = detail.get("pending") if isinstance(detail, Mapping) else None
    if isinstance(pending, bool) or not isinstance(pending, int) or pending < 0:
        return 0
    return min(pending, MAX_WAKE_HINT)


# --- fakes ---------------------------------------------------------------------------------


class InMemoryQueueGauge(WorkQueueGauge):
    def __init__(self, visible: int = 0, in_flight: int = 0) -> None:
        self.visible = visible
        self.in_flight = in_flight

    def depth(self) -> QueueDepth:
        return QueueDepth(visible=self.visible, in_flight=self.in_flight)


class InMemoryFleetGroup(FleetGroup):
    """A group whose instances come up instantly (what moto does too)."""

    def __init__(self, max_size: int, desired: int = 0) -> None:
        self.state = GroupState(
            desired=desired, max_size=max_size, in_service=desired, pending=0, draining=0, last_activity=None
        )
        self.history: list[int] = []

    def describe(self) -> GroupState:
        return self.state

    def set_desired(self, desired: int) -> None:
        if not 0 <= desired <= self.state.max_size:
            raise ValueError(f"desired {desired} outside [0, {self.state.max_size}]")
        self.history.append(desired)
        self.state = replace(self.state, desired=desired, in_service=desired)

    def record_activity(self, epoch_s: float) -> None:
        self.state = replace(self.state, last_activity=float(int(epoch_s)))


class RecordingWaker(ScalerWaker):
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def wake(self, job_id: str, pending_jobs: int = 1) -> None:
        self.calls.append((job_id, pending_jobs))


# --- one scaler run ------------------------------------------------------------------------


@dataclass(frozen=True)
class ScalerRun:
    observation: FleetObservation
    decision: ScalingDecision
    previous_desired: int
    pending: int

    @property
    def changed(self) -> bool:
        return self.decision.desired != self.previous_desired

    @property
    def backlog_per_instance(self) -> float:
        """Demand per serving instance (demand itself when none serves): the classic SQS scaling metric."""
        return self.observation.demand / max(self.observation.in_service, 1)


def run_scaler(
    gauge: WorkQueueGauge,
    group: FleetGroup,
    settings: ScalingSettings,
    now: float,
    arrivals_hint: int = 0,
) -> ScalerRun:
    """Observe, decide, act: set the group's desired capacity and persist the activity time."""
    depth = gauge.depth()
    state = group.describe()
    effective = replace(settings, max_instances=min(settings.max_instances, state.max_size))
    observation = FleetObservation(
        backlog_visible=max(depth.visible, max(arrivals_hint, 0)),
        in_flight=depth.in_flight,
        current_desired=state.desired,
        in_service=state.in_service,
        draining=state.draining,
        last_activity=state.last_activity,
        now=now,
    )
    decision = decide(observation, effective)
    if decision.desired != state.desired:
        group.set_desired(decision.desired)
    if decision.last_activity is not None and (
        state.last_activity is None or int(decision.last_activity) != int(state.last_activity)
    ):
        group.record_activity(decision.last_activity)
    return ScalerRun(observation=observation, decision=decision, previous_desired=state.desired, pending=state.pending)

"""One scaler run end to end: observe the ports, decide with the pure policy, act on the group.

Why apart from ``scaling``: ``scaling.decide`` is a pure function of an observation; this module
is the use case that feeds it from the ports and writes its decision back (desired capacity and
the last-activity time the idle timeout needs), the same code in the Lambda and the local stack.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ccc_common.domain.fleet_ports import FleetGroup, WorkQueueGauge
from ccc_common.domain.scaling import FleetObservation, ScalingDecision, ScalingSettings, decide


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

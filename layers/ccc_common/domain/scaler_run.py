"""One scaler run end to end: observe the ports, decide with the pure policy, act on the group.

Why apart from ``scaling``: ``scaling.decide`` is a pure function of an observation; this module
is the use case that feeds it from the ports and writes its decision back (desired capacity and
the times the idle timeout and the scale-in cooldown need), the same code in the Lambda and the local stack.
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


def _changed(decided: float | None, stored: float | None) -> float | None:
    """The decided time if it differs from the stored one in whole seconds (what a tag holds)."""
    if decided is None or (stored is not None and int(decided) == int(stored)):
        return None
    return decided


def run_scaler(
    gauge: WorkQueueGauge,
    group: FleetGroup,
    settings: ScalingSettings,
    now: float,
    arrivals_hint: int = 0,
) -> ScalerRun:
    """Observe, decide, act: set the group's desired capacity and persist the times the next run needs."""
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
        last_full_capacity=state.last_full_capacity,
    )
    decision = decide(observation, effective)
    if decision.desired != state.desired:
        group.set_desired(decision.desired)
    activity = _changed(decision.last_activity, state.last_activity)
    full = _changed(decision.last_full_capacity, state.last_full_capacity)
    if activity is not None or full is not None:
        group.record_marks(last_activity=activity, last_full_capacity=full)
    return ScalerRun(observation=observation, decision=decision, previous_desired=state.desired, pending=state.pending)

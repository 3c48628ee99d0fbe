"""In-memory implementations of the scaler's ports: a queue gauge the test sets, a fleet group
whose instances come up instantly (what moto does too), and a waker that records its calls."""

from __future__ import annotations

from dataclasses import replace

from ccc_common.domain.fleet_ports import FleetGroup, GroupState, QueueDepth, ScalerWaker, WorkQueueGauge


class InMemoryQueueGauge(WorkQueueGauge):
    def __init__(self, visible: int = 0, in_flight: int = 0) -> None:
        self.visible = visible
        self.in_flight = in_flight

    def depth(self) -> QueueDepth:
        return QueueDepth(visible=self.visible, in_flight=self.in_flight)


class InMemoryFleetGroup(FleetGroup):
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

    def record_marks(self, *, last_activity: float | None, last_full_capacity: float | None) -> None:
        if last_activity is not None:
            self.state = replace(self.state, last_activity=float(int(last_activity)))
        if last_full_capacity is not None:
            self.state = replace(self.state, last_full_capacity=float(int(last_full_capacity)))


class RecordingWaker(ScalerWaker):
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def wake(self, job_id: str, pending_jobs: int = 1) -> None:
        self.calls.append((job_id, pending_jobs))

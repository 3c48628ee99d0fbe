"""The scaler's ports: the work queue it watches, the fleet group it sizes, and the wake-up that
job-events sends it.

Why ports: the scaling decision (``scaling.decide``, run by ``scaler_run.run_scaler``) must not
know SQS, Auto Scaling or Lambda; the adapters live in ``ccc_common.aws.fleet_adapters``, the
test fakes in ``tests/support``. ``NullWaker`` is not a fake: it is what production uses when no
scaler is configured, so it lives with its port.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

# What the stateless scaler remembers between runs, as tags on the fleet group (the adapters write
# them; the scaler's IAM policy may write these keys and no other).
LAST_ACTIVITY_TAG = "ccc:last-activity"
LAST_FULL_CAPACITY_TAG = "ccc:last-full-capacity"
SCALER_TAG_KEYS = (LAST_ACTIVITY_TAG, LAST_FULL_CAPACITY_TAG)


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
    last_full_capacity: float | None = None


class WorkQueueGauge(ABC):
    @abstractmethod
    def depth(self) -> QueueDepth: ...


class FleetGroup(ABC):
    @abstractmethod
    def describe(self) -> GroupState: ...

    @abstractmethod
    def set_desired(self, desired: int) -> None: ...

    @abstractmethod
    def record_marks(self, *, last_activity: float | None, last_full_capacity: float | None) -> None:
        """Persist the times the next run needs (whole seconds; None = leave as is), in one write."""


class ScalerWaker(ABC):
    """How job-events asks the scaler to decide now instead of at the next schedule tick."""

    @abstractmethod
    def wake(self, job_id: str, pending_jobs: int = 1) -> None: ...


class NullWaker(ScalerWaker):
    """No scaler to wake (no scaler function configured): the schedule alone drives scaling."""

    def wake(self, job_id: str, pending_jobs: int = 1) -> None:
        return None

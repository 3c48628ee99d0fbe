"""Safe scale-in, as pure decisions: the parent agent's drain state machine and the local fleet plan.

On AWS, lowering the desired capacity makes the Auto Scaling group pick instances to terminate;
a termination lifecycle hook holds each one in ``Terminating:Wait`` and the instance metadata
``autoscaling/target-lifecycle-state`` turns to ``Terminated``. The parent agent then stops taking
new messages, finishes what it holds, and completes the lifecycle action (``CONTINUE``). Locally
moto has no hooks, so the fleet supervisor picks which workers to drain (``plan_fleet``) and
drives the same state machine (``drain_step``) for each of them.

Nothing here talks to AWS or starts processes; the parent agent and the supervisor do that with
the actions returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

# IMDS autoscaling/target-lifecycle-state values that mean "this instance is going away". With a
# warm pool and reuse on scale-in, scale-in returns a serving instance to the pool instead of
# terminating it: its target turns to ``Warmed:Stopped`` (or another ``Warmed:*`` pool state) and
# the termination hook holds it in ``Warmed:Pending:Wait``, so that is a drain too. (A *new*
# instance launching into the pool also has a ``Warmed:*`` target, but its parent agent is never
# started: the host's start script parks it without starting any service.)
LEAVING_TARGET_STATES = frozenset(
    {"Terminated", "Detached", "Warmed:Stopped", "Warmed:Hibernated", "Warmed:Running", "Warmed:Terminated"}
)


class DrainPhase(StrEnum):
    SERVING = "serving"  # polling the work queue
    DRAINING = "draining"  # no new messages; finishing in-flight jobs
    RELEASED = "released"  # lifecycle action completed; the instance may go


class DrainAction(StrEnum):
    STOP_POLLING = "stop-polling"
    HEARTBEAT = "heartbeat"  # RecordLifecycleActionHeartbeat: the drain needs more than the hook timeout
    COMPLETE_LIFECYCLE = "complete-lifecycle"  # CompleteLifecycleAction(LifecycleActionResult=CONTINUE)


@dataclass(frozen=True)
class DrainSettings:
    heartbeat_interval_s: float  # below the hook's HeartbeatTimeout (e.g. half of it)
    max_drain_s: float  # give up waiting: unfinished messages reappear in the queue (nothing lost)

    def __post_init__(self) -> None:
        if self.heartbeat_interval_s <= 0 or self.max_drain_s <= 0:
            raise ValueError("drain intervals must be positive")


@dataclass(frozen=True)
class DrainState:
    phase: DrainPhase = DrainPhase.SERVING
    draining_since: float | None = None
    last_heartbeat: float | None = None

    @property
    def accepts_work(self) -> bool:
        return self.phase is DrainPhase.SERVING


def drain_step(
    state: DrainState, target_lifecycle_state: str | None, in_flight: int, now: float, settings: DrainSettings
) -> tuple[DrainState, list[DrainAction]]:
    """Advance the drain state machine by one observation. Idempotent once RELEASED.

    ``target_lifecycle_state`` is the IMDS value (None when IMDS has none, e.g. not in a group).
    """
    if in_flight < 0:
        raise ValueError("in_flight must be >= 0")
    if state.phase is DrainPhase.RELEASED:
        return state, []
    actions: list[DrainAction] = []
    if state.phase is DrainPhase.SERVING:
        if target_lifecycle_state not in LEAVING_TARGET_STATES:
            return state, []
        state = DrainState(phase=DrainPhase.DRAINING, draining_since=now, last_heartbeat=now)
        actions.append(DrainAction.STOP_POLLING)
    since = state.draining_since if state.draining_since is not None else now
    if in_flight == 0 or now - since >= settings.max_drain_s:
        return DrainState(phase=DrainPhase.RELEASED, draining_since=since, last_heartbeat=state.last_heartbeat), [
            *actions,
            DrainAction.COMPLETE_LIFECYCLE,
        ]
    last = state.last_heartbeat if state.last_heartbeat is not None else since
    if now - last >= settings.heartbeat_interval_s:
        state = DrainState(phase=DrainPhase.DRAINING, draining_since=since, last_heartbeat=now)
        actions.append(DrainAction.HEARTBEAT)
    return state, actions


class WorkerPhase(StrEnum):
    STARTING = "starting"
    SERVING = "serving"
    DRAINING = "draining"


@dataclass(frozen=True)
class WorkerView:
    worker_id: str
    phase: WorkerPhase
    in_flight: int
    started_at: float


@dataclass(frozen=True)
class FleetPlan:
    start: int  # how many new workers to launch
    drain: tuple[str, ...]  # which workers to move to draining (they stop when drained)


def plan_fleet(desired: int, workers: Sequence[WorkerView]) -> FleetPlan:
    """Match the local fleet to the group's desired capacity, as the ASG would.

    Draining workers are already leaving and do not count (the ASG does not count Terminating
    instances either); a drain is never cancelled. When shrinking, drain the workers that lose
    the least: ones still starting, then the fewest in-flight jobs, then the newest.
    """
    if desired < 0:
        raise ValueError("desired must be >= 0")
    active = [worker for worker in workers if worker.phase is not WorkerPhase.DRAINING]
    if len(active) < desired:
        return FleetPlan(start=desired - len(active), drain=())
    surplus = len(active) - desired
    if surplus == 0:
        return FleetPlan(start=0, drain=())
    order = sorted(
        active,
        key=lambda w: (w.phase is not WorkerPhase.STARTING, w.in_flight, -w.started_at, w.worker_id),
    )
    return FleetPlan(start=0, drain=tuple(worker.worker_id for worker in order[:surplus]))

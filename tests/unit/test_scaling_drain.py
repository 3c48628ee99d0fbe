"""Safe scale-in decisions: the parent's drain state machine and the local fleet plan."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ccc_common.domain.drain import (
    DrainAction,
    DrainPhase,
    DrainSettings,
    DrainState,
    WorkerPhase,
    WorkerView,
    drain_step,
    plan_fleet,
)

CFG = DrainSettings(heartbeat_interval_s=30, max_drain_s=300)


def test_serving_instance_keeps_polling() -> None:
    state, actions = drain_step(DrainState(), "InService", in_flight=2, now=0, settings=CFG)
    assert state.accepts_work and actions == []


def test_termination_stops_polling_finishes_jobs_then_completes() -> None:
    state, actions = drain_step(DrainState(), "Terminated", in_flight=2, now=100, settings=CFG)
    assert actions == [DrainAction.STOP_POLLING] and state.phase is DrainPhase.DRAINING and not state.accepts_work
    state, actions = drain_step(state, "Terminated", in_flight=1, now=110, settings=CFG)
    assert actions == []
    state, actions = drain_step(state, "Terminated", in_flight=1, now=131, settings=CFG)
    assert actions == [DrainAction.HEARTBEAT]
    state, actions = drain_step(state, "Terminated", in_flight=0, now=140, settings=CFG)
    assert actions == [DrainAction.COMPLETE_LIFECYCLE] and state.phase is DrainPhase.RELEASED
    assert drain_step(state, "Terminated", in_flight=0, now=150, settings=CFG) == (state, [])


def test_idle_instance_is_released_at_once() -> None:
    state, actions = drain_step(DrainState(), "Terminated", in_flight=0, now=0, settings=CFG)
    assert actions == [DrainAction.STOP_POLLING, DrainAction.COMPLETE_LIFECYCLE]
    assert state.phase is DrainPhase.RELEASED


def test_return_to_the_warm_pool_drains_like_a_termination() -> None:
    """Reuse on scale-in: the target turns Warmed:Stopped (hook in Warmed:Pending:Wait), not Terminated."""
    state, actions = drain_step(DrainState(), "Warmed:Stopped", in_flight=1, now=0, settings=CFG)
    assert actions == [DrainAction.STOP_POLLING] and not state.accepts_work
    state, actions = drain_step(state, "Warmed:Stopped", in_flight=0, now=5, settings=CFG)
    assert actions == [DrainAction.COMPLETE_LIFECYCLE] and state.phase is DrainPhase.RELEASED
    for pool_state in ("Warmed:Hibernated", "Warmed:Running", "Warmed:Terminated"):
        assert drain_step(DrainState(), pool_state, in_flight=0, now=0, settings=CFG)[0].phase is DrainPhase.RELEASED
    # A resumed instance's agent starts fresh and serves: its target is InService again.
    assert drain_step(DrainState(), "InService", in_flight=0, now=0, settings=CFG)[0].accepts_work


def test_drain_gives_up_after_the_deadline() -> None:
    state, _ = drain_step(DrainState(), "Terminated", in_flight=3, now=0, settings=CFG)
    state, actions = drain_step(state, "Terminated", in_flight=3, now=300, settings=CFG)
    assert DrainAction.COMPLETE_LIFECYCLE in actions and state.phase is DrainPhase.RELEASED


TARGETS = st.sampled_from(["InService", "Terminated", None, "Standby", "Warmed:Stopped"])


@given(st.lists(st.tuples(TARGETS, st.integers(0, 5)), max_size=30))
def test_drain_never_resumes_polling_and_completes_at_most_once(steps) -> None:
    state, completes, now = DrainState(), 0, 0.0
    stopped = False
    for target, in_flight in steps:
        now += 7
        state, actions = drain_step(state, target, in_flight, now, CFG)
        completes += actions.count(DrainAction.COMPLETE_LIFECYCLE)
        stopped = stopped or DrainAction.STOP_POLLING in actions
        if stopped:
            assert not state.accepts_work
    assert completes <= 1


def w(worker_id: str, phase: WorkerPhase = WorkerPhase.SERVING, in_flight: int = 0, started: float = 0) -> WorkerView:
    return WorkerView(worker_id=worker_id, phase=phase, in_flight=in_flight, started_at=started)


def test_plan_starts_missing_workers_without_counting_draining_ones() -> None:
    plan = plan_fleet(2, [w("a"), w("b", WorkerPhase.DRAINING, 3)])
    assert plan.start == 1 and plan.drain == ()


def test_plan_drains_starting_then_least_busy_then_newest() -> None:
    workers = [
        w("busy", in_flight=3, started=1),
        w("idle-old", started=1),
        w("idle-new", started=5),
        w("boot", WorkerPhase.STARTING, started=9),
    ]
    assert plan_fleet(3, workers).drain == ("boot",)
    assert plan_fleet(2, workers).drain == ("boot", "idle-new")
    assert plan_fleet(0, workers).drain == ("boot", "idle-new", "idle-old", "busy")


@given(st.integers(0, 6), st.lists(st.tuples(st.sampled_from(list(WorkerPhase)), st.integers(0, 4)), max_size=10))
def test_plan_reaches_desired_active_count(desired: int, specs) -> None:
    workers = [w(f"w{i}", phase, in_flight, started=i) for i, (phase, in_flight) in enumerate(specs)]
    plan = plan_fleet(desired, workers)
    active = [x for x in workers if x.phase is not WorkerPhase.DRAINING]
    assert len(active) + plan.start - len(plan.drain) == desired
    assert not (plan.start and plan.drain)
    assert set(plan.drain) <= {x.worker_id for x in active}

"""Scaling policy invariants (hypothesis) and the scaler loop against in-memory ports."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc_common.contracts.scaler_wake import wake_hint, wake_payload
from ccc_common.domain.scaler_run import run_scaler
from ccc_common.domain.scaling import FleetObservation, ScalingReason, ScalingSettings, decide
from ccc_common.domain.settings import stage_settings
from tests.support.fake_fleet import InMemoryFleetGroup, InMemoryQueueGauge

settings_st = st.builds(
    ScalingSettings,
    jobs_per_instance=st.integers(1, 8),
    max_instances=st.integers(0, 12),
    idle_timeout_s=st.integers(0, 1200),
    scale_in_step=st.integers(1, 3),
    scale_in_cooldown_s=st.integers(0, 600),
)
NOW = 1_700_000_000.0


@st.composite
def observations(draw) -> FleetObservation:
    last = draw(st.one_of(st.none(), st.floats(NOW - 5000, NOW, allow_nan=False)))
    return FleetObservation(
        backlog_visible=draw(st.integers(0, 200)),
        in_flight=draw(st.integers(0, 60)),
        current_desired=draw(st.integers(0, 14)),
        in_service=draw(st.integers(0, 14)),
        draining=draw(st.integers(0, 4)),
        last_activity=last,
        now=NOW,
        last_full_capacity=draw(st.one_of(st.none(), st.floats(NOW - 5000, NOW, allow_nan=False))),
    )


@given(observations(), settings_st)
def test_desired_is_within_bounds_and_covers_demand(obs: FleetObservation, cfg: ScalingSettings) -> None:
    decision = decide(obs, cfg)
    assert 0 <= decision.desired <= cfg.max_instances
    need = min(math.ceil(obs.demand / cfg.jobs_per_instance), cfg.max_instances)
    assert decision.need == need
    assert decision.desired >= need  # never under-provisioned for the work that exists
    assert decision.desired >= min(math.ceil(obs.in_flight / cfg.jobs_per_instance), cfg.max_instances)


@given(observations(), settings_st)
def test_zero_only_when_idle_long_enough(obs: FleetObservation, cfg: ScalingSettings) -> None:
    decision = decide(obs, cfg)
    if decision.desired == 0 and cfg.max_instances > 0 and obs.current_desired > 0:
        assert obs.backlog_visible == 0 and obs.in_flight == 0
        assert obs.last_activity is None or obs.now - obs.last_activity >= cfg.idle_timeout_s


@given(observations(), settings_st)
def test_scale_in_is_stepwise_and_waits_for_drains(obs: FleetObservation, cfg: ScalingSettings) -> None:
    decision = decide(obs, cfg)
    if obs.demand > 0 and decision.desired < obs.current_desired <= cfg.max_instances:
        assert obs.draining == 0
        assert obs.current_desired - decision.desired <= cfg.scale_in_step


@given(observations(), settings_st, st.integers(1, 100))
def test_more_backlog_never_means_fewer_instances(obs: FleetObservation, cfg: ScalingSettings, extra: int) -> None:
    busier = FleetObservation(
        backlog_visible=obs.backlog_visible + extra,
        in_flight=obs.in_flight,
        current_desired=obs.current_desired,
        in_service=obs.in_service,
        draining=obs.draining,
        last_activity=obs.last_activity,
        now=obs.now,
        last_full_capacity=obs.last_full_capacity,
    )
    assert decide(busier, cfg).desired >= decide(obs, cfg).desired


@given(observations(), settings_st)
def test_activity_time_is_now_when_busy(obs: FleetObservation, cfg: ScalingSettings) -> None:
    decision = decide(obs, cfg)
    assert decision.last_activity == (obs.now if obs.demand else obs.last_activity)


@given(observations(), settings_st)
def test_no_scale_in_under_load_within_the_cooldown(obs: FleetObservation, cfg: ScalingSettings) -> None:
    decision = decide(obs, cfg)
    if obs.demand > 0 and decision.desired < obs.current_desired <= cfg.max_instances:
        assert obs.last_full_capacity is None or obs.now - obs.last_full_capacity >= cfg.scale_in_cooldown_s


@given(observations(), settings_st)
def test_full_capacity_time_is_now_when_the_whole_fleet_is_needed(obs: FleetObservation, cfg: ScalingSettings) -> None:
    decision = decide(obs, cfg)
    fully_needed = obs.demand > 0 and decision.need >= obs.current_desired
    assert decision.last_full_capacity == (obs.now if fully_needed else obs.last_full_capacity)


def test_a_dip_under_steady_load_keeps_the_fleet_until_the_cooldown_passes() -> None:
    """The thrash the cost simulator found: 3 hosts busy, demand dips to what 2 can hold for a
    minute, then comes back. Without a cooldown the scaler shed a host at the dip and relaunched
    one at the peak."""
    cfg = ScalingSettings(jobs_per_instance=4, max_instances=10, idle_timeout_s=900, scale_in_cooldown_s=300)
    full = decide(FleetObservation(2, 10, 3, 3, 0, NOW - 60, NOW, NOW - 60), cfg)
    assert full.reason is ScalingReason.STEADY and full.last_full_capacity == NOW
    dip = decide(FleetObservation(0, 7, 3, 3, 0, NOW, NOW + 60, NOW), cfg)
    assert dip.desired == 3 and dip.reason is ScalingReason.SCALE_IN_COOLDOWN and dip.last_full_capacity == NOW
    later = decide(FleetObservation(0, 7, 3, 3, 0, NOW + 290, NOW + 300, NOW), cfg)
    assert later.desired == 2 and later.reason is ScalingReason.SCALE_IN
    no_cooldown = decide(FleetObservation(0, 7, 3, 3, 0, NOW, NOW + 60, NOW), replace(cfg, scale_in_cooldown_s=0))
    assert no_cooldown.desired == 2


def test_the_cooldown_persists_through_the_group_like_the_activity_time() -> None:
    group = InMemoryFleetGroup(max_size=4, desired=2)
    cfg = ScalingSettings(jobs_per_instance=4, max_instances=4, idle_timeout_s=60, scale_in_cooldown_s=300)
    run_scaler(InMemoryQueueGauge(visible=8), group, cfg, now=NOW)
    assert group.state.last_full_capacity == NOW
    assert run_scaler(InMemoryQueueGauge(in_flight=3), group, cfg, now=NOW + 60).decision.desired == 2
    assert run_scaler(InMemoryQueueGauge(in_flight=3), group, cfg, now=NOW + 301).decision.desired == 1


def test_every_stage_cools_down_for_at_least_a_warm_start() -> None:
    for stage in ("dev", "prod"):
        assert stage_settings(stage).fleet.scale_in_cooldown_s >= 60
        assert ScalingSettings.from_fleet(stage_settings(stage).fleet).scale_in_cooldown_s >= 60


def test_worked_examples() -> None:
    cfg = ScalingSettings(jobs_per_instance=4, max_instances=3, idle_timeout_s=60)

    def obs(backlog=0, in_flight=0, desired=0, draining=0, last=None, now=NOW):
        return FleetObservation(backlog, in_flight, desired, desired, draining, last, now)

    assert decide(obs(backlog=1), cfg).desired == 1
    assert decide(obs(backlog=9), cfg).reason is ScalingReason.SCALE_OUT and decide(obs(backlog=9), cfg).desired == 3
    assert decide(obs(backlog=100), cfg).desired == 3
    assert decide(obs(in_flight=1, desired=3), cfg).desired == 2  # one step
    assert decide(obs(in_flight=1, desired=3, draining=1), cfg).reason is ScalingReason.WAIT_FOR_DRAIN
    # Idle but inside the timeout: one instance stays warm, extra ones go a step at a time.
    shed = decide(obs(desired=2, last=NOW - 30), cfg)
    assert shed.desired == 1 and shed.reason is ScalingReason.SCALE_IN
    idle = decide(obs(desired=1, last=NOW - 30), cfg)
    assert idle.desired == 1 and idle.reason is ScalingReason.IDLE_WAIT
    gone = decide(obs(desired=2, last=NOW - 61), cfg)
    assert gone.desired == 0 and gone.reason is ScalingReason.IDLE_TIMEOUT
    assert decide(obs(desired=5, backlog=1), cfg).desired == 3  # max lowered


def test_settings_validation_and_stage_defaults() -> None:
    with pytest.raises(ValueError):
        ScalingSettings(jobs_per_instance=0, max_instances=1, idle_timeout_s=1)
    fleet = stage_settings("local").fleet
    cfg = ScalingSettings.from_fleet(fleet, idle_timeout_s=5)
    assert cfg.max_instances == fleet.max_instances and cfg.idle_timeout_s == 5


def test_scaler_loop_wakes_from_zero_and_returns_to_zero_after_idle() -> None:
    gauge = InMemoryQueueGauge()
    group = InMemoryFleetGroup(max_size=2)
    cfg = ScalingSettings(jobs_per_instance=4, max_instances=2, idle_timeout_s=30)
    # a job arrives: the wake hint scales out before SQS shows the message
    run = run_scaler(gauge, group, cfg, now=NOW, arrivals_hint=1)
    assert run.changed and group.state.desired == 1 and group.state.last_activity == NOW
    gauge.visible = 8
    run_scaler(gauge, group, cfg, now=NOW + 5)
    assert group.state.desired == 2
    gauge.visible, gauge.in_flight = 0, 0
    # idle: the surplus instance goes, one stays warm until the idle timeout
    assert run_scaler(gauge, group, cfg, now=NOW + 20).decision.reason is ScalingReason.SCALE_IN
    assert group.state.desired == 1
    assert run_scaler(gauge, group, cfg, now=NOW + 25).decision.reason is ScalingReason.IDLE_WAIT
    assert group.state.desired == 1
    final = run_scaler(gauge, group, cfg, now=NOW + 5 + 31)
    assert final.decision.reason is ScalingReason.IDLE_TIMEOUT and group.state.desired == 0
    assert group.history == [1, 2, 1, 0]


def test_scaler_respects_group_max_size() -> None:
    group = InMemoryFleetGroup(max_size=1)
    run_scaler(InMemoryQueueGauge(visible=50), group, ScalingSettings(4, 10, 60), now=NOW)
    assert group.state.desired == 1


def test_wake_hint_parsing() -> None:
    assert wake_hint(wake_payload("a" * 32, 3)) == 3
    assert wake_hint({"source": "aws.events", "detail-type": "Scheduled Event"}) == 0
    assert wake_hint({"source": "ccc.job-events", "detail": {"pending": True}}) == 0
    assert wake_hint({"source": "ccc.job-events", "detail": {"pending": 10**9}}) == 10_000
    assert wake_hint("nonsense") == 0

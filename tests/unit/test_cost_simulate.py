"""`ccc cost simulate`: properties of the month simulation that drives the real scaler policy."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ccc.cost import arrivals
from ccc.cost.errors import CostError
from ccc.cost.idle import price_idle
from ccc.cost.prices import US_EAST_1
from ccc.cost.scenarios import SCENARIOS, run_all, run_scenario, scaling_for
from ccc.cost.simulate import FleetModel, simulate
from ccc.cost.timing import Timing
from ccc_common.domain.settings import stage_settings
from tests.support.cost_templates import template

DAY = 86400.0
DEV = stage_settings("dev")
# Deterministic durations (median == p95): the properties below compare runs, so randomness in
# boot times must not decide them.
FIXED = Timing(
    resume_median_s=30,
    resume_p95_s=30,
    cold_median_s=165,
    cold_p95_s=165,
    enclave_start_median_s=12,
    enclave_start_p95_s=12,
    compute_median_s=0.15,
    compute_p95_s=0.15,
)
SIM = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

times_in_a_day = st.lists(st.floats(min_value=0, max_value=DAY - 1, allow_nan=False), max_size=60)
bursts = st.lists(st.tuples(st.floats(min_value=0, max_value=DAY - 120), st.integers(1, 80)), max_size=3)


def _with_bursts(times: list[float], burst_list: list[tuple[float, int]]) -> list[float]:
    out = list(times)
    for start, count in burst_list:
        out.extend(start + i * 0.05 for i in range(count))
    return out


@SIM
@given(
    endpoints=st.integers(0, 9),
    azs=st.integers(1, 3),
    pool=st.sampled_from([None, 1, 2]),
    stage=st.sampled_from(["dev", "prod"]),
)
def test_zero_arrivals_cost_exactly_the_idle_cost(endpoints: int, azs: int, pool: int | None, stage: str) -> None:
    idle = price_idle(template(interface_endpoints=endpoints, azs=azs, warm_pool=pool, public=not endpoints), US_EAST_1)
    report = run_all("none", [], idle, US_EAST_1, stage_settings(stage), Timing(), DAY)
    assert [s.name for s in report.scenarios] == list(SCENARIOS)
    for scenario in report.scenarios:
        assert scenario.jobs == 0 and scenario.requests_usd == 0
        assert scenario.monthly_usd == scenario.idle_usd
    ccc, no_pool, always_on = report.scenarios
    assert ccc.idle_usd == idle.monthly_usd and ccc.compute_usd == 0
    assert no_pool.idle_usd == idle.monthly_usd_without("warm-pool")
    assert always_on.idle_usd == round(no_pool.idle_usd + idle.host.hourly_usd * US_EAST_1.hours_per_month, 2)


@SIM
@given(base=times_in_a_day, extra=times_in_a_day, burst_list=bursts, name=st.sampled_from(SCENARIOS))
# Found by this test: 5 jobs at t=0 cost more than the same plus one at 51 s, because the idle fleet
# kept a second (cold-launching) instance warm until the idle timeout; now one stays warm.
@example(base=[0.0] * 5, extra=[51.0], burst_list=[], name="ccc")
def test_cost_is_monotone_in_traffic(base: list[float], extra: list[float], burst_list, name: str) -> None:
    idle = price_idle(template(), US_EAST_1)
    more = _with_bursts(base + extra, burst_list)
    fewer = run_scenario(name, base, idle, US_EAST_1, DEV, FIXED, DAY)
    busier = run_scenario(name, more, idle, US_EAST_1, DEV, FIXED, DAY)
    assert busier.monthly_usd >= fewer.monthly_usd
    assert busier.jobs >= fewer.jobs


@SIM
@given(
    base=times_in_a_day, burst_list=bursts, seed=st.integers(0, 2**16), pool=st.integers(0, 2), always_on=st.booleans()
)
def test_the_simulated_scaler_never_drops_a_job(base, burst_list, seed: int, pool: int, always_on: bool) -> None:
    arrivals_ = _with_bursts(base, burst_list)
    scaling = scaling_for(DEV)
    if always_on:
        scaling = scaling.__class__(scaling.jobs_per_instance, 1, scaling.idle_timeout_s)
    result = simulate(arrivals_, FleetModel(scaling, 60.0, pool, always_on=always_on), Timing(), DAY, seed=seed)
    assert result.jobs == len(arrivals_) == len(result.latencies_s)
    floor = Timing().pipeline_s + Timing().job_io_s
    assert all(math.isfinite(latency) and latency >= floor for latency in result.latencies_s)
    if arrivals_ and not always_on:
        assert result.launches + result.resumes >= 1


def test_one_job_keeps_a_host_for_the_policys_idle_timeout() -> None:
    """The host's life is decided by the real policy: scale-in comes at the first scaler tick at least
    idle_timeout_s after the scaler last *saw* work (a tick or a wake), not after the job ended."""
    lives = {}
    for timeout in (120.0, 600.0):
        scaling = scaling_for(DEV, idle_timeout_s=timeout)
        result = simulate([1000.0], FleetModel(scaling, 60.0, 1), FIXED, DAY)
        boot = FIXED.resume_median_s + FIXED.enclave_start_median_s
        assert result.resumes == 1 and result.launches == 0
        assert result.latencies_s[0] == pytest.approx(FIXED.scale_out_reaction_s + boot + 0.5 + 0.15 + 2.0)
        launched = 1000.0 + FIXED.scale_out_reaction_s
        job_end = 1000.0 + result.latencies_s[0] - FIXED.pipeline_s
        assert 1000.0 + timeout <= launched + result.host_seconds <= job_end + timeout + 60
        lives[timeout] = result.host_seconds
    assert lives[600.0] - lives[120.0] == pytest.approx(480.0)


def test_without_a_warm_pool_the_wake_is_a_cold_install() -> None:
    scaling = scaling_for(DEV)
    warm = simulate([1000.0], FleetModel(scaling, 60.0, 1), FIXED, DAY)
    cold = simulate([1000.0], FleetModel(scaling, 60.0, 0), FIXED, DAY)
    assert cold.latencies_s[0] - warm.latencies_s[0] == pytest.approx(FIXED.cold_median_s - FIXED.resume_median_s)


def test_profiles_have_the_rates_they_claim() -> None:
    month = US_EAST_1.hours_per_month * 3600
    sparse = arrivals.sparse(random.Random(3), month)
    assert 250 < len(sparse) < 360  # ~10/day
    office = arrivals.office_hours(random.Random(3), 7 * DAY)
    assert all(9 <= (t % DAY) / 3600 < 17 and (t // DAY) % 7 < 5 for t in office)
    assert 5 * 8 * 60 * 0.85 < len(office) < 5 * 8 * 60 * 1.15
    assert 10 * 3600 * 0.95 < len(arrivals.steady(random.Random(3), 3600)) < 10 * 3600 * 1.05
    with pytest.raises(CostError, match="unknown profile"):
        arrivals.profile("weekly")


def test_trace_csv(tmp_path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("arrival_s,note\n5,a\n1.5,b\n\n")
    assert arrivals.read_trace(path) == [1.5, 5.0]
    path.write_text("1\nlater\n")
    with pytest.raises(CostError, match="not a number"):
        arrivals.read_trace(path)


def test_timing_overrides_are_checked() -> None:
    assert Timing().with_overrides({"resume_median_s": 20.0}).resume.median_s == 20.0
    with pytest.raises(CostError, match="unknown timing"):
        Timing().with_overrides({"boot": 1.0})
    with pytest.raises(CostError):
        Timing().with_overrides({"resume_median_s": 90.0}).resume  # median above p95


def test_steady_load_does_not_relaunch_the_fleet_at_every_dip() -> None:
    """Half an hour at 10 jobs/s in prod, the real scaler: without the scale-in cooldown it launched
    170 instances (shedding one at each dip in demand, relaunching at the next peak), p50 33 s;
    with the stage's cooldown 14 launches, a third fewer host-hours and p50 under 3 s."""
    base = scaling_for(stage_settings("prod"), None)
    steady = arrivals.steady(random.Random(0), 1800)
    runs = {
        cooldown: simulate(steady, FleetModel(replace(base, scale_in_cooldown_s=cooldown), 60.0, 2), Timing(), 1800)
        for cooldown in (0.0, base.scale_in_cooldown_s)
    }
    thrashing, cooled = runs[0.0], runs[base.scale_in_cooldown_s]
    assert cooled.launches * 5 < thrashing.launches
    assert cooled.host_seconds < thrashing.host_seconds
    assert cooled.percentile(50) < 5.0 < thrashing.percentile(50)

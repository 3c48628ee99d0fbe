"""The three scenarios the simulator compares, priced: CCC as configured, CCC without its warm
pool, and one always-on host (the baseline scale-to-zero has to beat).

Why all three from one template's prices: the only differences are the fleet model and which idle
items exist (no warm-pool volume without a pool; an always-on host is itself an idle cost), so
the comparison isolates what the warm pool and scale-to-zero buy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from ccc.cost.idle import IdleReport
from ccc.cost.prices import PriceTable, request_cost_per_job
from ccc.cost.simulate import FleetModel, SimResult, simulate
from ccc.cost.timing import Timing
from ccc_common.domain.scaling import ScalingSettings
from ccc_common.domain.settings import StageSettings

SCENARIOS = ("ccc", "no-warm-pool", "always-on")


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    monthly_usd: float
    idle_usd: float
    compute_usd: float
    requests_usd: float
    p50_s: float
    p95_s: float
    p99_s: float
    jobs: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SimulationReport:
    profile: str
    stage: str
    simulated_hours: float
    idle_timeout_s: float
    scenarios: tuple[ScenarioResult, ...]

    def to_json(self) -> dict[str, Any]:
        """The agreed shape: ``{"profile", "scenarios": [{"name", "monthly_usd", "p50_s", "p95_s",
        "p99_s", "jobs"} + the cost breakdown (idle_usd, compute_usd, requests_usd)]}``."""
        return {"profile": self.profile, "scenarios": [s.to_json() for s in self.scenarios]}

    def scenario(self, name: str) -> ScenarioResult:
        return next(s for s in self.scenarios if s.name == name)


def scaling_for(settings: StageSettings, idle_timeout_s: float | None = None) -> ScalingSettings:
    return ScalingSettings.from_fleet(settings.fleet, idle_timeout_s=idle_timeout_s)


def _price(
    name: str, result: SimResult, idle_usd: float, idle: IdleReport, prices: PriceTable, month_factor: float
) -> ScenarioResult:
    compute = result.host_seconds / 3600 * idle.host.hourly_usd * month_factor
    requests = result.jobs * request_cost_per_job(prices, through_endpoints=idle.through_endpoints) * month_factor
    return ScenarioResult(
        name=name,
        monthly_usd=round(idle_usd + compute + requests, 2),
        idle_usd=round(idle_usd, 2),
        compute_usd=round(compute, 2),
        requests_usd=round(requests, 2),
        p50_s=round(result.percentile(50), 1),
        p95_s=round(result.percentile(95), 1),
        p99_s=round(result.percentile(99), 1),
        jobs=round(result.jobs * month_factor),
    )


def run_scenario(
    name: str,
    arrivals: Sequence[float],
    idle: IdleReport,
    prices: PriceTable,
    stage: StageSettings,
    timing: Timing,
    horizon_s: float,
    *,
    idle_timeout_s: float | None = None,
    seed: int = 0,
) -> ScenarioResult:
    """One scenario: simulate ``horizon_s`` and price it as a month (compute and requests scale up)."""
    scaling = scaling_for(stage, idle_timeout_s)
    month_s = prices.hours_per_month * 3600
    factor = month_s / horizon_s
    period = stage.fleet.scaler_rate_minutes * 60.0
    pool = idle.warm_pool_size
    if name == "ccc":
        model, idle_usd = FleetModel(scaling, period, pool), idle.monthly_usd
    elif name == "no-warm-pool":
        model, idle_usd = FleetModel(scaling, period, 0), idle.monthly_usd_without("warm-pool")
    elif name == "always-on":
        model = FleetModel(replace(scaling, max_instances=1), period, 0, always_on=True)
        # The always-on host is the idle cost of that design; billed below as host-seconds, so the
        # idle figure reported here is the stack's plus one host-month, and compute is what it adds.
        result = simulate(arrivals, model, timing, horizon_s, seed)
        stack_idle = idle.monthly_usd_without("warm-pool")
        host_month = idle.host.hourly_usd * prices.hours_per_month
        priced = _price(name, result, stack_idle, idle, prices, factor)
        extra = max(priced.compute_usd - host_month, 0.0)  # jobs running past the horizon keep it up
        return replace(
            priced,
            idle_usd=round(stack_idle + host_month, 2),
            compute_usd=round(extra, 2),
            monthly_usd=round(stack_idle + host_month + extra + priced.requests_usd, 2),
        )
    else:
        raise ValueError(f"unknown scenario {name!r}")
    return _price(name, simulate(arrivals, model, timing, horizon_s, seed), idle_usd, idle, prices, factor)


def run_all(
    profile: str,
    arrivals: Sequence[float],
    idle: IdleReport,
    prices: PriceTable,
    stage: StageSettings,
    timing: Timing,
    horizon_s: float,
    *,
    idle_timeout_s: float | None = None,
    seed: int = 0,
) -> SimulationReport:
    results = tuple(
        run_scenario(name, arrivals, idle, prices, stage, timing, horizon_s, idle_timeout_s=idle_timeout_s, seed=seed)
        for name in SCENARIOS
    )
    timeout = stage.fleet.idle_timeout_s if idle_timeout_s is None else idle_timeout_s
    return SimulationReport(profile, stage.stage, horizon_s / 3600, float(timeout), results)

"""The cost model against the synthesised stacks: the deploy guide's generated tables match what
`ccc cost idle` / `ccc cost simulate` say about the templates of every stage and network mode, and
the targets of the scale-to-zero design hold."""

from __future__ import annotations

import random
from typing import Any

import pytest

from ccc.cost import arrivals
from ccc.cost.doc_tables import BEGIN, END, SIM_BEGIN, SIM_END, idle_table, simulation_table
from ccc.cost.idle import IdleReport, load_template, price_idle
from ccc.cost.prices import US_EAST_1
from ccc.cost.scenarios import SimulationReport, run_all
from ccc.cost.timing import Timing
from ccc_common.domain.settings import stage_settings
from tests.infra.conftest import REPO_ROOT

DEPLOY_GUIDE = REPO_ROOT / "docs" / "deploy.md"
DOCS_SEED = 1  # ccc.cli.cost_cmd.DOCS_SEED: the seed `make cost-docs` simulates with
MONTH_S = US_EAST_1.hours_per_month * 3600


def _idle(synth: Any) -> IdleReport:
    return price_idle(load_template(synth.template_path), US_EAST_1, stack=synth.template_path.stem)


def _simulate(synth: Any, profile: str) -> SimulationReport:
    chosen = arrivals.profile(profile)
    horizon = (chosen.default_days or US_EAST_1.hours_per_month / 24) * 86400
    times = chosen.generate(random.Random(DOCS_SEED), horizon)
    return run_all(
        profile, times, _idle(synth), US_EAST_1, stage_settings(synth.stage), Timing(), horizon, seed=DOCS_SEED
    )


@pytest.fixture(scope="module")
def simulations(dev: Any, prod: Any) -> dict[str, SimulationReport]:
    return {f"{p} ({s.stage})": _simulate(s, p) for s in (dev, prod) for p in ("sparse", "office-hours")}


def _block(begin: str, end: str) -> str:
    text = DEPLOY_GUIDE.read_text(encoding="utf-8")
    return text.split(begin, 1)[1].split(end, 1)[0].strip()


def test_deploy_guide_idle_table_is_generated_from_the_templates(
    dev: Any, dev_endpoints: Any, prod_public: Any, prod: Any
) -> None:
    reports = {
        "dev, public": _idle(dev),
        "dev, endpoints": _idle(dev_endpoints),
        "prod, public": _idle(prod_public),
        "prod, endpoints": _idle(prod),
    }
    assert _block(BEGIN, END) == idle_table(reports), "docs/deploy.md is stale: run `make cost-docs`"


def test_deploy_guide_simulation_table_is_generated(simulations: dict[str, SimulationReport]) -> None:
    assert _block(SIM_BEGIN, SIM_END) == simulation_table(simulations), "stale: run `make cost-docs`"


def test_idle_cost_follows_the_network_mode(dev: Any, dev_endpoints: Any, prod: Any) -> None:
    public, endpoints = _idle(dev), _idle(dev_endpoints)
    assert public.monthly_usd <= 6.00  # target: dev idle <= $6/month in the zero-idle mode
    kinds = {i.kind: i for i in endpoints.items}
    endpoints_per_az = 10  # the 9 AWS APIs the hosts and Lambdas use + X-Ray (the hosts' traces)
    assert kinds["endpoints"].quantity == endpoints_per_az * dev_endpoints.stack.config.max_azs
    # prod: interface endpoints in 2 AZs, and no operator-run data key (tenants own theirs): $1 less.
    operator_key_month = 1.00
    assert _idle(prod).monthly_usd - public.monthly_usd == pytest.approx(
        endpoints_per_az * 2 * 0.01 * 730 - operator_key_month, abs=0.01
    )
    assert public.warm_pool_size == dev.stack.config.warm_pool_size == 1


def test_sparse_traffic_targets(simulations: dict[str, SimulationReport]) -> None:
    report = simulations["sparse (dev)"]
    ccc, always_on = report.scenario("ccc"), report.scenario("always-on")
    assert ccc.monthly_usd <= 0.10 * always_on.monthly_usd  # >= 90 % cheaper than an always-on host
    assert ccc.p95_s <= 90.0  # modelled p95 upload -> result with the warm pool
    assert report.scenario("no-warm-pool").p95_s > ccc.p95_s  # what the warm pool buys

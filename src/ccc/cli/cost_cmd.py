"""`ccc cost ...`: what the stack costs idle (priced from a template) and under load (simulated).

`ccc cost idle TEMPLATE` prices a synthesised template; `ccc cost simulate` runs a month against
the real scaler policy for three scenarios; `ccc cost docs` regenerates docs/deploy.md's tables.
Imports are at module level: the cost tool is pure Python over JSON and the scaling policy, with
nothing heavy to keep out of the other commands.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from ccc.cost import arrivals as arrival_profiles
from ccc.cost.doc_tables import SIM_BEGIN, SIM_END, idle_table, replace_block, simulation_table
from ccc.cost.errors import CostError
from ccc.cost.html_report import page
from ccc.cost.idle import load_template, price_idle
from ccc.cost.prices import price_table
from ccc.cost.scenarios import SimulationReport, run_all, run_scenario
from ccc.cost.timing import Timing, compute_from_bench
from ccc_common.domain.settings import stage_settings

DEFAULT_TEMPLATE = Path("cdk.out/CccDev.template.json")
SWEEP_IDLE_TIMEOUTS_S = (60.0, 120.0, 300.0, 600.0, 900.0, 1800.0)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("cost", help="idle cost of a template; month simulation of cost and latency")
    commands = parser.add_subparsers(dest="cost", metavar="COST")
    commands.required = True

    idle = commands.add_parser("idle", help="price what a synthesised stack costs with the fleet at zero")
    idle.add_argument("template", type=Path, help="a synthesised CloudFormation template (cdk.out/*.template.json)")
    idle.add_argument("--region", default="us-east-1", help="price table region (only us-east-1 is in the repo)")
    idle.add_argument(
        "--account-dashboards",
        type=int,
        default=0,
        help="dashboards the account already has (the first 3 per account are free)",
    )
    idle.add_argument("--json", action="store_true", help='print {"monthly_usd": ..., "items": [...]}')
    idle.set_defaults(func=run_idle)

    sim = commands.add_parser("simulate", help="simulate a month: cost and latency for ccc, no-warm-pool, always-on")
    source = sim.add_mutually_exclusive_group()
    source.add_argument("--profile", default="sparse", help="sparse | office-hours | bursty | steady")
    source.add_argument("--trace", type=Path, help="CSV of arrival times (seconds from the start, first column)")
    sim.add_argument(
        "--template",
        type=Path,
        default=DEFAULT_TEMPLATE,
        help=f"the synthesised template to price (default {DEFAULT_TEMPLATE}; `make synth`)",
    )
    sim.add_argument("--stage", choices=("dev", "prod"), help="scaler settings (default: from the template name)")
    sim.add_argument("--region", default="us-east-1")
    sim.add_argument("--account-dashboards", type=int, default=0)
    sim.add_argument("--days", type=float, help="days to simulate (default: the priced month; steady: 1)")
    sim.add_argument("--idle-timeout", type=float, help="override the stage's scaler idle timeout (s)")
    sim.add_argument("--bench", type=Path, help="a `ccc bench count` JSON report: per-job compute time")
    sim.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=SECONDS",
        help="override a timing assumption (ccc.cost.timing.Timing field), repeatable",
    )
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--json", action="store_true", help="print the JSON report")
    sim.add_argument("--html", type=Path, help="write a self-contained HTML page with the trade-off plot")
    sim.set_defaults(func=run_simulate)

    docs = commands.add_parser("docs", help="regenerate the idle table in docs/deploy.md from templates")
    docs.add_argument(
        "--column",
        action="append",
        required=True,
        metavar="LABEL=TEMPLATE",
        help="one table column: its label and the template priced for it (repeatable, in order)",
    )
    docs.add_argument(
        "--simulate",
        action="append",
        default=[],
        metavar="PROFILE=TEMPLATE",
        help="also tabulate a month of PROFILE on TEMPLATE (repeatable; seed 1, default timings)",
    )
    docs.add_argument("--write", type=Path, help="the markdown file whose generated blocks are replaced")
    docs.set_defaults(func=run_docs)


def _fail(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 2


def run_idle(args: argparse.Namespace) -> int:
    try:
        report = price_idle(
            load_template(args.template),
            price_table(args.region),
            stack=args.template.stem,
            account_dashboards=args.account_dashboards,
        )
    except CostError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0
    print(f"{report.stack}: idle {report.region} (prices as of {report.prices_as_of})")
    for item in report.items:
        print(f"  {item.monthly_usd:9.2f}  {item.description}")
    print(f"  {report.monthly_usd:9.2f}  USD per month with the fleet at zero")
    print(f"  one running host: ${report.host.hourly_usd:.4f}/h ({report.host.instance_type})")
    return 0


def _overrides(pairs: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise CostError(f"--set {pair!r}: expected NAME=SECONDS") from None
        if not sep:
            raise CostError(f"--set {pair!r}: expected NAME=SECONDS")
    return out


def run_simulate(args: argparse.Namespace) -> int:
    try:
        prices = price_table(args.region)
        idle = price_idle(
            load_template(args.template), prices, stack=args.template.stem, account_dashboards=args.account_dashboards
        )
        stage = args.stage or ("prod" if "prod" in args.template.name.lower() else "dev")
        settings = stage_settings(stage)
        timing = Timing().with_overrides(_overrides(args.set))
        if args.bench:
            median, p95 = compute_from_bench(args.bench)
            timing = timing.with_overrides({"compute_median_s": median, "compute_p95_s": p95})
        month_s = prices.hours_per_month * 3600
        if args.trace:
            times = arrival_profiles.read_trace(args.trace)
            name = args.trace.name
            horizon = args.days * 86400 if args.days else max(month_s, (times[-1] if times else 0.0))
        else:
            profile = arrival_profiles.profile(args.profile)
            days = args.days or profile.default_days
            horizon = days * 86400 if days else month_s
            times = profile.generate(random.Random(args.seed), horizon)
            name = profile.name
        report = run_all(
            name, times, idle, prices, settings, timing, horizon, idle_timeout_s=args.idle_timeout, seed=args.seed
        )
        if args.html:
            sweep = [
                (
                    t,
                    run_scenario(
                        "ccc", times, idle, prices, settings, timing, horizon, idle_timeout_s=t, seed=args.seed
                    ),
                )
                for t in SWEEP_IDLE_TIMEOUTS_S
            ]
            args.html.parent.mkdir(parents=True, exist_ok=True)
            args.html.write_text(page(report, sweep), encoding="utf-8")
    except CostError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0
    _print_table(report)
    return 0


def _print_table(report: SimulationReport) -> None:
    document = report.to_json()
    print(
        f"profile {report.profile} ({report.stage}, {report.simulated_hours:.1f} h simulated, "
        f"idle timeout {report.idle_timeout_s:g} s)"
    )
    print(
        f"{'scenario':<14}{'USD/month':>10}{'idle':>9}{'compute':>9}{'requests':>9}{'p50 s':>8}{'p95 s':>8}"
        f"{'p99 s':>8}{'jobs':>10}"
    )
    for s in document["scenarios"]:
        print(
            f"{s['name']:<14}{s['monthly_usd']:>10.2f}{s['idle_usd']:>9.2f}{s['compute_usd']:>9.2f}"
            f"{s['requests_usd']:>9.2f}{s['p50_s']:>8.1f}{s['p95_s']:>8.1f}{s['p99_s']:>8.1f}{s['jobs']:>10}"
        )


def run_docs(args: argparse.Namespace) -> int:
    try:
        prices = price_table("us-east-1")
        reports = {}
        for label, path in (_pair(c, "--column") for c in args.column):
            reports[label] = price_idle(load_template(path), prices, stack=path.stem)
        table = idle_table(reports)
        simulations = {}
        for name, path in (_pair(c, "--simulate") for c in args.simulate):
            profile = arrival_profiles.profile(name)
            horizon = (profile.default_days or prices.hours_per_month / 24) * 86400
            stage = stage_settings("prod" if "prod" in path.name.lower() else "dev")
            idle = price_idle(load_template(path), prices, stack=path.stem)
            times = profile.generate(random.Random(DOCS_SEED), horizon)
            simulations[f"{name} ({stage.stage})"] = run_all(
                name, times, idle, prices, stage, Timing(), horizon, seed=DOCS_SEED
            )
        if args.write:
            text = replace_block(args.write.read_text(encoding="utf-8"), table)
            if simulations:
                text = replace_block(text, simulation_table(simulations), SIM_BEGIN, SIM_END)
            args.write.write_text(text, encoding="utf-8")
        else:
            print(table)
            if simulations:
                print(simulation_table(simulations))
    except CostError as exc:
        return _fail(exc)
    return 0


DOCS_SEED = 1


def _pair(text: str, option: str) -> tuple[str, Path]:
    label, sep, path = text.partition("=")
    if not sep:
        raise CostError(f"{option} {text!r}: expected LABEL=TEMPLATE")
    return label, Path(path)

"""`ccc stats`: differentially private figures about a tenant's own results, to publish.

Exit status: 0 every requested figure was released, 1 the privacy budget refused one (what was
released is still printed: its epsilon is spent), 2 bad arguments or input.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path

EXIT_RELEASED, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stats = subparsers.add_parser(
        "stats",
        help="differentially private totals of your own verified results (to publish)",
        description="Release noisy totals (Laplace mechanism) of cats and images for one day of your "
        "verified results, spending epsilon from a privacy ledger kept on this machine. Input: the JSON "
        "lines `ccc submit --json` / `ccc result --json` print. Exit 0 released, 1 refused by the "
        "budget, 2 bad arguments or input.",
    )
    stats.add_argument("results", type=Path, metavar="RESULTS", help="JSON lines file of results; - for stdin")
    stats.add_argument("--tenant", required=True, help="the tenant the results belong to (the ledger key)")
    stats.add_argument("--day", metavar="YYYY-MM-DD", help="the UTC day of job creation to release; default: today")
    stats.add_argument("--metric", choices=("cats", "images", "both"), default="both")
    stats.add_argument("--epsilon", type=float, default=0.25, help="epsilon per released figure (default 0.25)")
    stats.add_argument(
        "--daily-budget",
        type=float,
        default=1.0,
        help="epsilon per tenant and day, over every release ever made (default 1.0)",
    )
    stats.add_argument(
        "--clip",
        type=float,
        default=6.0,
        help="at most this many cats count per image: the sensitivity of the total (default 6)",
    )
    stats.add_argument("--ledger", type=Path, help="the privacy ledger file; default $XDG_STATE_HOME/ccc/...")
    stats.add_argument("--json", action="store_true", help="print one JSON object per figure")
    stats.set_defaults(func=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    import json

    from ccc.stats.ledger import FileBudgetLedger, default_ledger_path
    from ccc.stats.mechanism import BudgetExhausted, PrivacyError, PrivacyPolicy, PrivateAggregator
    from ccc.stats.results import read_results
    from ccc_core.identity import NamingError, validate_tenant

    try:
        tenant = validate_tenant(args.tenant)
        day = date.fromisoformat(args.day) if args.day else datetime.now(UTC).date()
        policy = PrivacyPolicy(
            daily_budget=args.daily_budget, epsilon_per_release=args.epsilon, clip_cats_per_image=args.clip
        )
        counts = read_results(_lines(args.results))
    except (NamingError, ValueError, OSError) as exc:  # PrivacyError and ResultsError are ValueErrors
        print(f"ccc stats: {exc}", file=sys.stderr)
        return EXIT_USAGE
    aggregator = PrivateAggregator(FileBudgetLedger(args.ledger or default_ledger_path()), policy)
    cats = counts.cats(day)
    wanted = ("cats", "images") if args.metric == "both" else (args.metric,)
    status = EXIT_RELEASED
    for metric in wanted:
        try:
            release = (
                aggregator.cats_per_day(tenant, day, cats)
                if metric == "cats"
                else aggregator.images_per_day(tenant, day, len(cats))
            )
        except BudgetExhausted as exc:
            print(f"ccc stats: {metric}: refused: {exc}", file=sys.stderr)
            status = EXIT_REFUSED
            continue
        except PrivacyError as exc:  # the ledger file is unreadable or unwritable
            print(f"ccc stats: {exc}", file=sys.stderr)
            return EXIT_USAGE
        figure = {
            "tenant": tenant,
            "day": day.isoformat(),
            "metric": metric,
            "value": round(release.value, 3),
            "epsilon": release.epsilon,
            "scale": release.scale,
        }
        if args.json:
            print(json.dumps(figure))
        else:
            print(
                f"{day.isoformat()} {metric}: {release.value:.1f} (Laplace noise, scale {release.scale:g}, "
                f"epsilon {release.epsilon:g})"
            )
    return status


def _lines(path: Path) -> list[str]:
    if str(path) == "-":
        return sys.stdin.read().splitlines()
    return path.read_text(encoding="utf-8").splitlines()

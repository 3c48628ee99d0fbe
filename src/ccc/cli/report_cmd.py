"""`ccc report`: render a local run's telemetry as a self-contained HTML page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("report", help="render the local stack's telemetry as an HTML report")
    parser.add_argument("--state-dir", type=Path, default=Path(".ccc/local"), help="local stack state dir")
    parser.add_argument("--out", type=Path, default=Path("report.html"), help="output HTML file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ccc.report import load_telemetry, render_html
    from ccc_core.telemetry.setup import telemetry_dir

    try:
        data = load_telemetry(telemetry_dir(args.state_dir))
    except FileNotFoundError as exc:
        print(f"ccc report: {exc} (run `ccc local up` and some jobs first)", file=sys.stderr)
        return 2
    args.out.write_text(render_html(data), encoding="utf-8")
    print(f"wrote {args.out} ({len(data.spans)} spans, {len(data.metrics)} metric points)")
    return 0

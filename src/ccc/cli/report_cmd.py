"""`ccc report`: render a local run's telemetry as a self-contained HTML page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report",
        help="render the local stack's telemetry as an HTML report",
        description="Render one run's telemetry (default: the latest) as one self-contained HTML page. "
        "Each `ccc local up` keeps the previous run under <state-dir>/runs/<id>/.",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".ccc/local"), help="local stack state dir")
    parser.add_argument("--out", type=Path, default=Path("report.html"), help="output HTML file")
    parser.add_argument(
        "--run", metavar="ID", default=None, help="the run to render (see --list-runs; default: the latest, 'current')"
    )
    parser.add_argument("--list-runs", action="store_true", help="list the runs this state dir holds and exit")
    parser.set_defaults(func=run)


def _size_kib(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.jsonl")) // 1024


def run(args: argparse.Namespace) -> int:
    from ccc.report import load_telemetry, render_html
    from ccc.telemetry.runs import RunNotFound, all_runs, select_run

    if getattr(args, "list_runs", False):
        runs = all_runs(args.state_dir)
        if not runs:
            print(
                f"ccc report: no telemetry runs in {args.state_dir} (run `ccc local up` and some jobs first)",
                file=sys.stderr,
            )
            return 2
        for entry in runs:
            print(f"{entry.run_id}\t{_size_kib(entry.directory)} KiB\t{entry.directory}")
        return 0
    try:
        chosen = select_run(args.state_dir, getattr(args, "run", None))
        data = load_telemetry(chosen.directory)
    except (RunNotFound, FileNotFoundError) as exc:
        print(f"ccc report: {exc} (run `ccc local up` and some jobs first)", file=sys.stderr)
        return 2
    try:
        args.out.write_text(render_html(data, run_id=chosen.run_id), encoding="utf-8")
    except OSError as exc:
        print(f"ccc report: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} (run {chosen.run_id}: {len(data.spans)} spans, {len(data.metrics)} metric points)")
    return 0

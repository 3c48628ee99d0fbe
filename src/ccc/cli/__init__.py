"""The `ccc` command: a thin dispatcher over one module per command group.

Each module in COMMAND_MODULES exposes `register(subparsers)`, which adds its sub-command(s) and
sets `func` (a callable taking the parsed namespace and returning an exit status). Keeping each
group in its own module keeps heavy imports (onnxruntime, boto3, moto) out of unrelated commands:
modules import their dependencies inside their handlers.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ccc.cli.exit_codes import EPILOG, EXIT_INTERRUPTED

COMMAND_MODULES: tuple[str, ...] = (
    "ccc.cli.count_cmd",
    "ccc.cli.bench_cmd",
    "ccc.cli.report_cmd",
    "ccc.cli.attest_cmd",
    "ccc.cli.local_cmd",
    "ccc.cli.client_cmd",
    "ccc.cli.key_policy_cmd",
    "ccc.cli.cost_cmd",
    "ccc.cli.stats_cmd",
    "ccc.cli.trust_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccc",
        description="Confidential Cat Counter: count cats in images that only an attested enclave can see.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())

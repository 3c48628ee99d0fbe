"""`ccc local up|down|env`: the embedded local stack (moto + attested-KMS gateway + enclave workers)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import urllib.parse
from pathlib import Path

from ccc.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_REFUSED


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    local = subparsers.add_parser("local", help="run the whole pipeline on this machine (moto + simulated enclave)")
    commands = local.add_subparsers(dest="local_command", metavar="COMMAND")
    commands.required = True

    up = commands.add_parser("up", help="start the local stack in the foreground (Ctrl-C stops it)")
    _state_dir(up)
    up.add_argument("--workers", type=int, default=1, help="parent agent + enclave pairs (default 1)")
    up.add_argument("--idle-timeout", type=int, default=None, metavar="S", help="scale-to-zero idle time (seconds)")
    up.add_argument("--model", type=Path, default=None, help="ONNX model for the enclave (default models/)")
    up.add_argument("--ready-timeout", type=float, default=90.0, help=argparse.SUPPRESS)
    up.add_argument("-v", "--verbose", action="store_true", help="debug logging of the supervisor")
    up.add_argument("--otlp-endpoint", type=_otlp_endpoint, default=None, metavar="URL",
                    help="also send every process's spans and metrics over OTLP/HTTP to URL (e.g. "
                         "http://127.0.0.1:4318); the same as OTEL_EXPORTER_OTLP_ENDPOINT")
    up.set_defaults(func=run_up)

    down = commands.add_parser("down", help="stop the local stack running in a state dir")
    _state_dir(down)
    down.set_defaults(func=run_down)

    env = commands.add_parser("env", help="print the stack description or `export AWS_...` lines")
    _state_dir(env)
    env.add_argument("--json", action="store_true", help="print stack.json")
    env.add_argument("--identity", default="tenant-a", help="whose credentials to export (default tenant-a)")
    env.set_defaults(func=run_env)


    fleet = subparsers.add_parser("fleet", help="the local enclave fleet")
    fleet_commands = fleet.add_subparsers(dest="fleet_command", metavar="COMMAND")
    fleet_commands.required = True
    status = fleet_commands.add_parser("status", help="desired and running workers, backlog and in-flight jobs")
    _state_dir(status)
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.set_defaults(func=run_fleet_status)


def _otlp_endpoint(text: str) -> str:
    """An OTLP/HTTP base URL: http(s)://host[:port][/path], nothing else (one line, exit 2)."""
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s)://host[:port] URL")
    return text


def _state_dir_path(text: str) -> Path:
    """A state directory, or a place for one: an existing file there is a usage error (one line,
    exit 2), not a FileExistsError traceback from deep inside `ccc local up`."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a directory")
    return path


def _state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=_state_dir_path, default=Path(".ccc/local"),
                        help="state directory (.ccc/local)")


def run_up(args: argparse.Namespace) -> int:
    from ccc.local.stack import StackAlreadyRunning, StackOptions, run_foreground

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # botocore logs request details at DEBUG; keep it at WARNING even in verbose mode.
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        options = StackOptions(
            state_dir=args.state_dir, workers=args.workers, idle_timeout_s=args.idle_timeout,
            model_path=args.model, ready_timeout_s=args.ready_timeout,
        )
    except ValueError as exc:
        print(f"ccc local up: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    if args.otlp_endpoint:
        # Every process of the stack inherits this process's environment (without AWS_*): the
        # standard variable is how each of them (ccc_core.telemetry.otel_env) finds the backend.
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = args.otlp_endpoint
    try:
        return run_foreground(options)
    except StackAlreadyRunning as exc:
        print(f"ccc local up: {exc}", file=sys.stderr)
        return EXIT_REFUSED


def run_down(args: argparse.Namespace) -> int:
    from ccc.local.stack import stop_stack

    if stop_stack(args.state_dir):
        print(f"stopped the local stack in {args.state_dir}")
    else:
        print(f"no local stack is running in {args.state_dir}")  # nothing to stop is not a failure
    return EXIT_OK


def run_env(args: argparse.Namespace) -> int:
    from ccc.local.aws_config import environment
    from ccc.local.state import StackStateError, read_stack_info

    try:
        info = read_stack_info(args.state_dir)
        if args.json:
            print(json.dumps(info.to_json(), indent=2, sort_keys=True))
            return 0
        variables = environment(info, args.identity)
    except StackStateError as exc:
        print(f"ccc local env: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"# local stack in {info.state_dir} as {args.identity}")
    print("unset AWS_SESSION_TOKEN AWS_PROFILE")
    for name, value in variables.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def run_fleet_status(args: argparse.Namespace) -> int:
    from ccc.local.fleet_status import FleetStatusError, fleet_status
    from ccc.local.state import StackStateError, read_stack_info

    try:
        read_stack_info(args.state_dir)  # no stack: refused (2), like every command that needs one
        status = fleet_status(args.state_dir)
    except StackStateError as exc:
        print(f"ccc fleet status: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except FleetStatusError as exc:  # moto did not answer
        print(f"ccc fleet status: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(status.to_json()))
    else:
        mode = "fixed" if status.idle_timeout_s is None else f"autoscaling, idle timeout {status.idle_timeout_s}s"
        print(
            f"desired {status.desired}, running {status.running} (starting {status.starting}, draining "
            f"{status.draining}); backlog {status.backlog}, in flight {status.in_flight}; {mode}"
        )
    return 0

"""The process entry point every local gateway shares (`python -m ccc.local.kms.gateway`,
`python -m ccc.local.iam_gateway`).

Why one function: each gateway is started by the supervisor the same way — a JSON config file, a
loopback-only listener, a ready file written atomically once it listens, its URL on stdout, a clean
stop on SIGTERM/SIGINT — and the supervisor relies on exactly that contract. Two copies of it would
drift (one ready file with a different shape, one gateway that forgets the loopback check).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from ccc.atomic_files import write_json_atomic

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class GatewayConfigLike(Protocol):
    @property
    def host(self) -> str: ...


class RunningGateway(Protocol):
    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...


ConfigT = TypeVar("ConfigT", bound=GatewayConfigLike)


def serve_gateway(
    argv: Sequence[str] | None,
    *,
    module: str,
    description: str,
    name: str,
    load: Callable[[Path], ConfigT],
    start: Callable[[ConfigT], RunningGateway],
    errors: tuple[type[Exception], ...],
) -> int:
    """Load the config, start the gateway on loopback, announce it, serve until a signal.

    ``name`` ("KMS", "IAM") names it in messages and in the ``<NAME>_GATEWAY_URL=`` stdout line;
    ``errors`` are the start-up failures reported as one line with exit status 2."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--config", type=Path, required=True, help="gateway JSON config (see GatewayConfig)")
    parser.add_argument("--ready-file", type=Path, help="written atomically with {url, host, port} once listening")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load(args.config)
        if config.host not in LOOPBACK_HOSTS:
            parser.error(f"the local {name} gateway listens on loopback only")
        gateway = start(config)
    except errors as exc:
        print(f"{name.lower()} gateway: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if args.ready_file:
        parts = urlsplit(gateway.url)
        write_json_atomic(args.ready_file, {"url": gateway.url, "host": parts.hostname, "port": parts.port}, mode=0o644)
    print(f"{name}_GATEWAY_URL={gateway.url}", flush=True)
    stop.wait()
    gateway.stop()
    return 0

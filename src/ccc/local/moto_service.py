"""moto in server mode as a child process of the local stack.

Why our own entry point instead of `python -m moto.server -p PORT`: picking a free port in the
supervisor and handing it to moto races with other programs. Here moto binds port 0 itself and
reports the port it got through a ready file (written atomically once it accepts connections).

    python -m ccc.local.moto_service --host 127.0.0.1 --ready-file run/moto.json
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from ccc.atomic_files import write_json_atomic


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccc.local.moto_service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (reported in the ready file)")
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the local stack's moto listens on loopback only")

    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from ccc.local.moto_atomic import make_conditional_writes_atomic

    make_conditional_writes_atomic()  # job leases and exactly-once results rely on it, as on AWS
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    write_json_atomic(args.ready_file, {"host": host, "port": port, "endpoint_url": f"http://{host}:{port}"})
    print(f"moto listening on http://{host}:{port}", flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

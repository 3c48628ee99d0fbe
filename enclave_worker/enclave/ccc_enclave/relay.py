"""A byte relay between two transports: how the enclave reaches KMS without a network.

Inside a Nitro enclave there is no NIC. boto3 inside connects (TLS, unchanged) to
`kms.<region>.amazonaws.com:443`, which the enclave's /etc/hosts maps to 127.0.0.1; this relay
listens there and forwards each connection over vsock to the parent's `vsock-proxy` (CID 3), which
opens the TCP connection to KMS. TLS is end to end between boto3 and KMS: the relay and the parent
only ever see ciphertext.

    python -m ccc_enclave.relay --listen tcp://127.0.0.1:443 --target vsock://3:8000

Any transport URI works on either side (tests relay tcp -> unix).

Each relayed connection lives at most `max_lifetime_s` (default 300 s; one KMS call takes well under
a second): the parent's side is untrusted, and socket timeouts restart with every byte, so without
a lifetime a parent trickling KMS's answer byte by byte could hold a job (and its slot) for ever.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Sequence
from types import FrameType

from ccc_core.logs import configure_logging, log_event
from ccc_enclave.transport import Endpoint, Listener, TransportError, connect, parse_endpoint

_LOG = logging.getLogger("ccc.relay")
_CHUNK = 64 * 1024


class Relay:
    def __init__(self, listen_uri: str | Endpoint, target_uri: str | Endpoint, *, max_connections: int = 64,
                 connect_timeout_s: float = 5.0, idle_timeout_s: float = 300.0,
                 max_lifetime_s: float = 300.0) -> None:
        self.target = parse_endpoint(target_uri)
        self.listener = Listener(listen_uri)
        self._max = max_connections
        self._connect_timeout_s = connect_timeout_s
        self._idle_timeout_s = idle_timeout_s
        self._max_lifetime_s = max_lifetime_s
        self._stop = threading.Event()
        self._active = threading.BoundedSemaphore(max_connections)

    def stop(self) -> None:
        self._stop.set()

    def serve_forever(self) -> None:
        log_event(_LOG, logging.INFO, "relay listening", endpoint=self.listener.endpoint.uri, target=self.target.uri)
        try:
            while not self._stop.is_set():
                try:
                    client = self.listener.accept(0.25)
                except TransportError:
                    continue
                if client is None:
                    continue
                if not self._active.acquire(blocking=False):
                    client.close()  # over the cap: the caller's retry logic handles a refused connection
                    continue
                threading.Thread(target=self._bridge, args=(client,), daemon=True, name="relay-conn").start()
        finally:
            self.listener.close()

    def _bridge(self, client: socket.socket) -> None:
        try:
            try:
                upstream = connect(self.target, timeout=self._connect_timeout_s)
            except TransportError as exc:
                log_event(_LOG, logging.WARNING, "relay target unreachable", error=str(exc)[:200])
                return
            for sock in (client, upstream):
                sock.settimeout(self._idle_timeout_s)
            lifetime = threading.Timer(self._max_lifetime_s, _cut, args=(client, upstream))
            lifetime.daemon = True
            lifetime.start()
            pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True, name="relay-pump")
            pump.start()
            _pump(client, upstream)
            pump.join(self._idle_timeout_s)
            lifetime.cancel()
            upstream.close()
        finally:
            client.close()
            self._active.release()


def _cut(*socks: socket.socket) -> None:
    """End a relayed connection that outlived its lifetime: both pumps see EOF or an error and stop."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy until EOF or error, then half-close the sink so the other side sees the end."""
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    try:
        while True:
            count = source.recv_into(view)
            if count == 0:
                break
            sink.sendall(view[:count])
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccc_enclave.relay", description=__doc__)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--max-connections", type=int, default=64)
    args = parser.parse_args(argv)
    configure_logging("relay")
    relay = Relay(args.listen, args.target, max_connections=args.max_connections)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        relay.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    relay.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

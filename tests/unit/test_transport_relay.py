"""The byte relay the enclave uses to reach KMS (tcp -> vsock on AWS; tcp -> unix here)."""

from __future__ import annotations

import errno
import os
import socket
import tempfile
import threading
from pathlib import Path

from ccc_enclave.relay import Relay
from ccc_enclave.transport import connect, listen


def _echo_server(path: str) -> threading.Thread:
    listener = listen(f"unix://{path}")

    def run() -> None:
        with listener:
            for _ in range(2):
                conn = listener.accept(timeout=10)
                if conn is None:
                    return
                with conn:
                    data = b""
                    while chunk := conn.recv(65536):
                        data += chunk
                    conn.sendall(data[::-1])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _roundtrip(uri: str, payload: bytes) -> bytes:
    sock = connect(uri, timeout=5)
    with sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_relay_carries_both_directions_and_half_close() -> None:
    with tempfile.TemporaryDirectory(prefix="ccc-r-", dir="/tmp") as d:
        target = str(Path(d) / "t.sock")
        server = _echo_server(target)
        relay = Relay("tcp://127.0.0.1:0", f"unix://{target}")
        thread = threading.Thread(target=relay.serve_forever, daemon=True)
        thread.start()
        try:
            payload = os.urandom(300_000)
            assert _roundtrip(relay.listener.endpoint.uri, payload) == payload[::-1]
            assert _roundtrip(relay.listener.endpoint.uri, b"abc") == b"cba"
        finally:
            relay.stop()
            thread.join(5)
        server.join(5)
        assert not thread.is_alive()


def test_unreachable_target_closes_the_client_connection() -> None:
    relay = Relay("tcp://127.0.0.1:0", "unix:///tmp/ccc-no-such-target.sock", max_connections=1)
    thread = threading.Thread(target=relay.serve_forever, daemon=True)
    thread.start()
    try:
        try:
            answer = _roundtrip(relay.listener.endpoint.uri, b"hello")
        except OSError as exc:
            # Closed with our bytes unread (reset), or closed before our half-close (not connected,
            # broken pipe): each is the relay refusing, which is what this test asks for.
            assert exc.errno in (errno.ECONNRESET, errno.ENOTCONN, errno.EPIPE), exc
            answer = b""
        assert answer == b""
        assert relay._active.acquire(timeout=5)  # the connection slot is given back
        relay._active.release()
    finally:
        relay.stop()
        thread.join(5)

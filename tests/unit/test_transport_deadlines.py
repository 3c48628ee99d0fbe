"""Deadlines per frame and per connection: a peer trickling bytes cannot hold the enclave's connections.

Issue 12 §2: the enclave's timeout was per `recv`, so a byte every 20 s kept a connection open for
ever, and 32 such connections stalled every worker. These tests use a fake clock for the channel
and short real deadlines for the server and relay (no long sleeps).
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccc_enclave.pipeline import JobProcessor
from ccc_enclave.protocol.error_replies import ErrorReply
from ccc_enclave.protocol.framing import FRAME_HEADER
from ccc_enclave.protocol.health_messages import HealthReply, HealthRequest
from ccc_enclave.protocol.messages import encode_message
from ccc_enclave.relay import Relay
from ccc_enclave.server import EnclaveServer, ServerSettings
from ccc_enclave.transport import Channel, TransportError, TransportTimeout, connect, listen
from tests.unit.test_enclave_server import PCR0, SHA, FakeAttester, FakeCounter, FakeCrypto

FRAME = encode_message(HealthRequest(request_id="trickled"))
WIRE = FRAME_HEADER.pack(len(FRAME)) + FRAME


class TricklingSocket:
    """A socket whose peer sends one byte per `recv`, each after `seconds_per_byte` of a fake clock."""

    def __init__(self, data: bytes, seconds_per_byte: float) -> None:
        self.data = data
        self.now = 0.0
        self.step = seconds_per_byte
        self.timeouts: list[float | None] = []

    def clock(self) -> float:
        return self.now

    def settimeout(self, value: float | None) -> None:
        self.timeouts.append(value)

    def recv_into(self, buffer: memoryview, nbytes: int = 0, /) -> int:
        timeout = self.timeouts[-1]
        if timeout is not None and self.step > timeout:
            self.now += timeout
            raise TimeoutError("timed out")
        self.now += self.step
        if not self.data:
            return 0
        buffer[0] = self.data[0]
        self.data = self.data[1:]
        return 1


def _channel(sock: TricklingSocket) -> Channel:
    return Channel(sock, clock=sock.clock)  # type: ignore[arg-type]


def test_a_byte_every_20_seconds_does_not_outlive_a_60_second_frame_deadline() -> None:
    sock = TricklingSocket(WIRE, seconds_per_byte=20.0)
    with pytest.raises(TransportTimeout):
        _channel(sock).receive_bytes(timeout=60.0)
    assert sock.now <= 60.0 + 1e-9  # three bytes arrived, then the deadline ended the frame
    assert len(sock.data) == len(WIRE) - 3


def test_a_frame_arriving_within_its_deadline_is_read_whatever_the_pace() -> None:
    sock = TricklingSocket(WIRE, seconds_per_byte=0.01)
    assert _channel(sock).receive_bytes(timeout=len(WIRE) * 0.01 + 1) == FRAME
    # The socket timeout shrinks with every byte: it is the time left, not a fresh allowance.
    armed = [t for t in sock.timeouts if t is not None]
    assert armed == sorted(armed, reverse=True) and armed[0] > armed[-1]


def test_the_connection_deadline_cuts_a_frame_that_its_own_deadline_would_allow() -> None:
    sock = TricklingSocket(WIRE, seconds_per_byte=1.0)
    with pytest.raises(TransportTimeout):
        _channel(sock).receive_bytes(timeout=3600.0, deadline=5.0)
    assert sock.now <= 5.0 + 1e-9


def test_a_passed_deadline_fails_at_once_without_reading() -> None:
    sock = TricklingSocket(WIRE, seconds_per_byte=0.0)
    sock.now = 10.0
    with pytest.raises(TransportTimeout):
        _channel(sock).receive_bytes(timeout=60.0, deadline=9.0)
    assert sock.data == WIRE


# ------------------------------------------------------------------------------- the real server

SHORT = ServerSettings(
    concurrency=1,
    max_connections=2,
    frame_timeout_s=0.6,
    connection_timeout_s=1.5,
    accept_poll_s=0.05,
    shutdown_grace_s=5,
)


@contextlib.contextmanager
def _server(settings: ServerSettings) -> Iterator[EnclaveServer]:
    listener = listen("tcp://127.0.0.1:0")
    server = EnclaveServer(
        listener,
        JobProcessor(FakeCrypto(), FakeCounter(), FakeAttester()),
        model_name="m",
        model_sha256=SHA,
        pcr0_hex=PCR0,
        settings=settings,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(10)


class Trickler(threading.Thread):
    """Sends a frame one byte at a time every `interval_s`, forever, and records when the server hung up."""

    def __init__(self, uri: str, interval_s: float) -> None:
        super().__init__(daemon=True)
        self.sock = connect(uri, timeout=5)
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.closed_after: float | None = None

    def run(self) -> None:
        start = time.monotonic()
        data = WIRE * 1000
        try:
            for byte in data:
                if self.stop.is_set():
                    return
                self.sock.sendall(bytes([byte]))
                self.sock.settimeout(self.interval_s)
                with contextlib.suppress(TimeoutError):
                    if self.sock.recv(1) == b"":
                        break  # the server closed the connection
        except OSError:
            pass
        self.closed_after = time.monotonic() - start

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.sock.close()


def _health(uri: str) -> object:
    with Channel.connect(uri, timeout=5) as channel:
        # A server at capacity answers `busy` and hangs up without reading (server.py), so the probe's
        # send may meet a closed socket (EPIPE) on a loaded machine; the answer is already waiting.
        with contextlib.suppress(TransportError):
            channel.send(HealthRequest(request_id="probe"), timeout=5)
        return channel.receive(timeout=5)


def test_trickling_peers_are_dropped_at_the_frame_deadline_and_free_their_slots() -> None:
    with _server(SHORT) as server:
        uri = server.listener.endpoint.uri
        tricklers = [Trickler(uri, interval_s=0.05) for _ in range(SHORT.max_connections)]
        for trickler in tricklers:
            trickler.start()
        try:
            time.sleep(0.2)
            busy = _health(uri)  # every connection slot is held by a trickler now
            assert isinstance(busy, ErrorReply) and busy.error.code == "busy"
            for trickler in tricklers:
                trickler.join(5)
                assert trickler.closed_after is not None, "a trickling peer held its connection"
                assert trickler.closed_after < SHORT.frame_timeout_s + 1.0
            assert isinstance(_health(uri), HealthReply)  # the slots are free again
        finally:
            for trickler in tricklers:
                trickler.close()


def test_a_connection_ends_at_its_deadline_even_when_every_frame_is_on_time() -> None:
    with _server(SHORT) as server, Channel.connect(server.listener.endpoint.uri, timeout=5) as channel:
        start = time.monotonic()
        answered = 0
        with contextlib.suppress(Exception):
            while time.monotonic() - start < SHORT.connection_timeout_s + 2:
                channel.send(HealthRequest(request_id=f"h{answered}"), timeout=1)
                assert isinstance(channel.receive(timeout=1), HealthReply)
                answered += 1
                time.sleep(0.2)  # each frame well within frame_timeout_s
        ended = time.monotonic() - start
        assert answered >= 3  # on-time frames are served...
        assert ended < SHORT.connection_timeout_s + 1.0  # ...until the connection's own deadline


@pytest.mark.parametrize("frame, connection", [(0, 1), (2, 1), (-1, 5)])
def test_deadlines_must_be_positive_and_the_frame_within_the_connection(frame: float, connection: float) -> None:
    with pytest.raises(ValueError):
        ServerSettings(frame_timeout_s=frame, connection_timeout_s=connection)


# ------------------------------------------------------------------------------------- the relay


def test_a_relayed_connection_ends_at_its_lifetime_even_while_bytes_trickle() -> None:
    with tempfile.TemporaryDirectory(prefix="ccc-d-", dir="/tmp") as d:
        target = listen(f"unix://{Path(d) / 't.sock'}")
        held: list[socket.socket] = []
        stop = threading.Event()

        def trickle_back() -> None:  # the untrusted side answers one byte at a time, for ever
            conn = target.accept(timeout=5)
            if conn is None:
                return
            held.append(conn)
            with contextlib.suppress(OSError):
                while not stop.is_set():
                    conn.sendall(b".")
                    time.sleep(0.05)

        upstream = threading.Thread(target=trickle_back, daemon=True)
        upstream.start()
        relay = Relay("tcp://127.0.0.1:0", target.endpoint, max_connections=1, idle_timeout_s=5, max_lifetime_s=0.5)
        thread = threading.Thread(target=relay.serve_forever, daemon=True)
        thread.start()
        try:
            client = connect(relay.listener.endpoint.uri, timeout=5)
            start = time.monotonic()
            with client, contextlib.suppress(OSError):
                client.settimeout(5)
                while client.recv(1024):
                    pass
            assert time.monotonic() - start < 2.0
            assert relay._active.acquire(timeout=5)  # the slot is given back
            relay._active.release()
        finally:
            stop.set()
            relay.stop()
            thread.join(5)
            upstream.join(5)
            for conn in held:
                conn.close()
            target.close()

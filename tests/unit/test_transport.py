"""Transports by URI over real sockets: tcp and unix here, vsock parsing everywhere."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from ccc_enclave.protocol.error_replies import ErrorInfo, ErrorReply
from ccc_enclave.protocol.errors import ConnectionClosed, ProtocolError
from ccc_enclave.protocol.health_messages import HealthRequest
from ccc_enclave.transport import (
    VSOCK_CID_ANY,
    Channel,
    EndpointError,
    TransportError,
    TransportTimeout,
    connect,
    listen,
    parse_endpoint,
)


@pytest.fixture
def short_tmp(tmp_path: Path) -> Path:
    # sun_path is ~107 bytes; pytest's tmp paths can be longer, so use a short dir under /tmp.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ccc-t-", dir="/tmp") as d:
        yield Path(d)


def test_parse_endpoints() -> None:
    assert parse_endpoint("tcp://127.0.0.1:5005").port == 5005
    assert parse_endpoint("tcp://[::1]:80").host == "::1"
    assert parse_endpoint("tcp://[::1]:80").uri == "tcp://[::1]:80"
    ep = parse_endpoint("vsock://16:5005")
    assert (ep.scheme, ep.cid, ep.port, ep.uri) == ("vsock", 16, 5005, "vsock://16:5005")
    assert parse_endpoint("vsock://any:5005").cid == VSOCK_CID_ANY
    assert parse_endpoint("unix:///run/ccc/enclave.sock").path == "/run/ccc/enclave.sock"


@pytest.mark.parametrize(
    "uri",
    [
        "tcp://127.0.0.1",  # no port
        "tcp://:80",  # no host
        "tcp://h:99999",  # port out of range
        "tcp://h:80/path",
        "vsock://parent:5005",  # CID must be numeric or any
        "vsock://3",
        "unix://relative.sock",
        "unix:///" + "x" * 200,
        "http://127.0.0.1:80",
        "tcp://user:pw@h:80",
        "tcp://h:80?x=1",
        "",
        "tcp://h:80\n",
    ],
)
def test_bad_uris_are_refused(uri: str) -> None:
    with pytest.raises(EndpointError):
        parse_endpoint(uri)


def _echo_server(listener, count: int = 1) -> threading.Thread:
    """Accept `count` connections; answer each health request with an error reply naming its id."""

    def run() -> None:
        for _ in range(count):
            conn = listener.accept(timeout=5)
            assert conn is not None
            with Channel(conn) as channel:
                while True:
                    try:
                        message = channel.receive(timeout=5)
                    except ConnectionClosed:
                        break
                    reply = ErrorReply(request_id=message.request_id, error=ErrorInfo.of("busy", "echo"))
                    channel.send(reply, timeout=5)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_messages_cross_a_real_socket(kind: str, short_tmp: Path) -> None:
    uri = "tcp://127.0.0.1:0" if kind == "tcp" else f"unix://{short_tmp}/e.sock"
    with listen(uri) as listener:
        if kind == "tcp":
            assert listener.endpoint.port != 0  # the real port is reported
        thread = _echo_server(listener)
        with Channel.connect(listener.endpoint, timeout=5) as channel:
            for i in range(3):
                channel.send(HealthRequest(request_id=f"r{i}"), timeout=5)
                reply = channel.receive(timeout=5)
                assert isinstance(reply, ErrorReply) and reply.request_id == f"r{i}"
        thread.join(5)
        assert not thread.is_alive()


def test_large_frame_crosses_a_socket(short_tmp: Path) -> None:
    body = os.urandom(3 * 1024 * 1024)
    with listen(f"unix://{short_tmp}/big.sock") as listener:
        received: list[bytes] = []

        def run() -> None:
            conn = listener.accept(timeout=5)
            with Channel(conn) as channel:
                received.append(channel.receive_bytes(timeout=5))

        thread = threading.Thread(target=run)
        thread.start()
        with Channel.connect(listener.endpoint, timeout=5) as channel:
            channel.send_bytes(body, timeout=5)
        thread.join(5)
    assert received == [body]


def test_unix_socket_is_private_and_removed_on_close(short_tmp: Path) -> None:
    path = short_tmp / "p.sock"
    listener = listen(f"unix://{path}")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    listener.close()
    assert not path.exists()


def test_stale_unix_socket_is_replaced_but_live_one_and_regular_file_are_not(short_tmp: Path) -> None:
    path = short_tmp / "s.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # file remains, nobody listens
    with listen(f"unix://{path}"), pytest.raises(TransportError, match="already listening"):
        listen(f"unix://{path}")
    regular = short_tmp / "file"
    regular.write_text("keep me")
    with pytest.raises(TransportError, match="not a socket"):
        listen(f"unix://{regular}")
    assert regular.read_text() == "keep me"


def test_connect_failures_are_transport_errors(short_tmp: Path) -> None:
    with pytest.raises(TransportError):
        connect(f"unix://{short_tmp}/nobody.sock", timeout=1)
    with listen("tcp://127.0.0.1:0") as listener:
        port = listener.endpoint.port
    with pytest.raises(TransportError):
        connect(f"tcp://127.0.0.1:{port}", timeout=1)


def test_receive_times_out_when_the_peer_is_silent() -> None:
    with listen("tcp://127.0.0.1:0") as listener:
        client = Channel.connect(listener.endpoint, timeout=5)
        server_side = listener.accept(timeout=5)
        assert server_side is not None
        try:
            with pytest.raises(TransportTimeout):
                client.receive(timeout=0.2)
        finally:
            client.close()
            server_side.close()


def test_accept_returns_none_on_timeout() -> None:
    with listen("tcp://127.0.0.1:0") as listener:
        assert listener.accept(timeout=0.05) is None


def test_peer_closing_mid_frame_is_a_protocol_error() -> None:
    with listen("tcp://127.0.0.1:0") as listener:
        raw = connect(listener.endpoint, timeout=5)
        server_side = listener.accept(timeout=5)
        raw.sendall(b"\x00\x00\x00\x10abc")
        raw.close()
        with Channel(server_side) as channel, pytest.raises(ProtocolError) as info:
            channel.receive(timeout=5)
        assert not isinstance(info.value, ConnectionClosed)


def test_vsock_needs_the_platform() -> None:
    try:
        probe = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        with pytest.raises((EndpointError, TransportError)):
            listen("vsock://any:5005")
        return
    probe.close()
    # The kernel has vsock: a listener on CID any binds and reports its port.
    try:
        listener = listen("vsock://any:0")
    except TransportError as exc:
        pytest.skip(f"vsock present but not usable here: {exc}")
    with listener:
        assert listener.endpoint.scheme == "vsock"

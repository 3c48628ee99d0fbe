"""Stream transports addressed by URI: `vsock://CID:PORT`, `tcp://HOST:PORT`, `unix:///path`.

Why one interface: on AWS the parent reaches the enclave over AF_VSOCK; the local tier has no
vsock, so the same parent and enclave code runs over TCP or a UNIX socket. Nothing here knows a
CID or a port: every address comes from configuration as a URI. `Channel` carries protocol
messages over a connected socket and turns every socket failure into a `TransportError`, so
callers deal with exactly two failure types (this and `ProtocolError`).

Timeouts are deadlines for a whole frame, not for one `recv`: a socket timeout restarts with every
byte, so a peer trickling one byte every few seconds would never time out and could hold a
connection (and the enclave's connection slots) for ever. `Channel.receive_bytes` re-arms the
socket timeout before each `recv` with what is left until the frame's deadline (and an optional
absolute deadline, e.g. the connection's), on an injectable monotonic clock.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from ccc_enclave.errors import EnclaveError
from ccc_enclave.protocol.framing import MAX_FRAME_BYTES, read_frame, write_frame
from ccc_enclave.protocol.job_messages import MAX_CIPHERTEXT_BYTES
from ccc_enclave.protocol.messages import Message, decode_message, encode_message

Scheme = Literal["vsock", "tcp", "unix"]
VSOCK_CID_ANY = 0xFFFFFFFF
_MAX_UNIX_PATH_BYTES = 107  # sizeof(sun_path) - 1 on Linux


class TransportError(EnclaveError):
    """The connection could not be made, broke, or timed out."""


class TransportTimeout(TransportError):
    """No answer (or no connection) within the timeout."""


class EndpointError(EnclaveError, ValueError):
    """A transport URI that is malformed or names an unavailable transport."""


def vsock_available() -> bool:
    return hasattr(socket, "AF_VSOCK")


@dataclass(frozen=True)
class Endpoint:
    """A parsed transport address. Build with `parse_endpoint`."""

    scheme: Scheme
    host: str = ""  # tcp
    port: int = 0  # tcp, vsock
    cid: int = 0  # vsock
    path: str = ""  # unix

    @property
    def uri(self) -> str:
        if self.scheme == "tcp":
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"tcp://{host}:{self.port}"
        if self.scheme == "vsock":
            cid = "any" if self.cid == VSOCK_CID_ANY else str(self.cid)
            return f"vsock://{cid}:{self.port}"
        return f"unix://{self.path}"

    def __str__(self) -> str:
        return self.uri


def parse_endpoint(uri: str | Endpoint) -> Endpoint:
    """Parse `vsock://CID:PORT` (CID may be `any` for listening), `tcp://HOST:PORT`, `unix:///abs/path`."""
    if isinstance(uri, Endpoint):
        return uri
    if not isinstance(uri, str) or not uri.isprintable():
        raise EndpointError("transport URI must be a printable string")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise EndpointError(f"malformed transport URI {uri!r}: {exc}") from None
    if parts.query or parts.fragment or parts.username or parts.password:
        raise EndpointError(f"transport URI {uri!r} must not carry a query, fragment or user info")
    if parts.scheme == "unix":
        if parts.netloc or not parts.path.startswith("/"):
            raise EndpointError(f"unix transport needs an absolute path: unix:///path/to.sock (got {uri!r})")
        if len(os.fsencode(parts.path)) > _MAX_UNIX_PATH_BYTES:
            raise EndpointError(f"unix socket path is longer than {_MAX_UNIX_PATH_BYTES} bytes")
        return Endpoint(scheme="unix", path=parts.path)
    if parts.scheme in ("tcp", "vsock"):
        if parts.path not in ("", "/"):
            raise EndpointError(f"{parts.scheme} URI {uri!r} must not have a path")
        if port is None:
            raise EndpointError(f"{parts.scheme} URI {uri!r} needs a port")
        host = parts.hostname or ""
        if not host:
            raise EndpointError(f"{parts.scheme} URI {uri!r} needs a host")
        if parts.scheme == "tcp":
            return Endpoint(scheme="tcp", host=host, port=port)
        if host == "any":
            cid = VSOCK_CID_ANY
        elif host.isdigit() and int(host) <= 0xFFFFFFFF:
            cid = int(host)
        else:
            raise EndpointError(f"vsock CID must be a number or 'any' (got {host!r})")
        return Endpoint(scheme="vsock", cid=cid, port=port)
    raise EndpointError(f"unknown transport {parts.scheme!r} in {uri!r}; use vsock://, tcp:// or unix://")


def _new_socket(endpoint: Endpoint) -> tuple[socket.socket, object]:
    if endpoint.scheme == "vsock":
        if not vsock_available():
            raise EndpointError("AF_VSOCK is not available on this platform; use tcp:// or unix:// locally")
        return socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM), (endpoint.cid, endpoint.port)
    if endpoint.scheme == "unix":
        return socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), endpoint.path
    infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    if not infos:
        raise EndpointError(f"cannot resolve {endpoint.host!r}")
    family, socktype, proto, _, address = infos[0]
    return socket.socket(family, socktype, proto), address


def connect(endpoint: str | Endpoint, *, timeout: float) -> socket.socket:
    """A connected stream socket; its timeout is set to `timeout` for later I/O as well."""
    ep = parse_endpoint(endpoint)
    try:
        sock, address = _new_socket(ep)
    except OSError as exc:
        raise TransportError(f"cannot create a socket for {ep.uri}: {exc.strerror or exc}") from None
    try:
        sock.settimeout(timeout)
        sock.connect(address)  # type: ignore[arg-type]
    except TimeoutError:
        sock.close()
        raise TransportTimeout(f"connecting to {ep.uri} timed out after {timeout:g}s") from None
    except OSError as exc:
        sock.close()
        raise TransportError(f"cannot connect to {ep.uri}: {exc.strerror or exc}") from None
    if ep.scheme == "tcp":
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Listener:
    """A bound, listening socket; `endpoint` is the actual address (tcp port 0 becomes the real port)."""

    def __init__(self, endpoint: str | Endpoint, *, backlog: int = 64) -> None:
        ep = parse_endpoint(endpoint)
        if ep.scheme == "unix":
            _remove_stale_unix_socket(ep.path)
        sock, address = _new_socket(ep)
        try:
            if ep.scheme == "tcp":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)  # type: ignore[arg-type]
            if ep.scheme == "unix":
                os.chmod(ep.path, 0o600)  # only the owner (the parent agent's user) may connect
            sock.listen(backlog)
        except OSError as exc:
            sock.close()
            raise TransportError(f"cannot listen on {ep.uri}: {exc.strerror or exc}") from None
        self._sock = sock
        self._owns_path = ep.path if ep.scheme == "unix" else None
        if ep.scheme == "tcp":
            host, port = sock.getsockname()[:2]
            ep = Endpoint(scheme="tcp", host=host, port=port)
        elif ep.scheme == "vsock":
            cid, port = sock.getsockname()[:2]
            ep = Endpoint(scheme="vsock", cid=ep.cid if ep.cid == VSOCK_CID_ANY else cid, port=port)
        self.endpoint = ep

    def accept(self, timeout: float | None) -> socket.socket | None:
        """The next connection, or None if none arrived within `timeout` (so callers can check for shutdown)."""
        self._sock.settimeout(timeout)
        try:
            conn, _ = self._sock.accept()
        except TimeoutError:
            return None
        except OSError as exc:
            raise TransportError(f"accept on {self.endpoint.uri} failed: {exc.strerror or exc}") from None
        conn.settimeout(None)
        return conn

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
        if self._owns_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._owns_path)
            self._owns_path = None

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def listen(endpoint: str | Endpoint, *, backlog: int = 64) -> Listener:
    return Listener(endpoint, backlog=backlog)


def _remove_stale_unix_socket(path: str) -> None:
    """Remove a socket file left by a dead server; never remove a live socket or any other file."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise TransportError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody is listening: stale
        return
    finally:
        probe.close()
    raise TransportError(f"another server is already listening on unix://{path}")


class _DeadlineSocket:
    """A socket whose every `recv_into` must finish before one deadline (monotonic seconds).

    Before each call the socket timeout is set to the time left, so the deadline bounds the whole
    read however the peer spaces its bytes; once it has passed, the next read fails at once.
    """

    def __init__(self, sock: socket.socket, deadline: float | None, clock: Callable[[], float]) -> None:
        self._sock = sock
        self._deadline = deadline
        self._clock = clock

    def recv_into(self, buffer: memoryview, nbytes: int = 0, /) -> int:
        if self._deadline is not None:
            left = self._deadline - self._clock()
            if left <= 0:
                raise TimeoutError("deadline passed")
            self._sock.settimeout(left)
        return self._sock.recv_into(buffer, nbytes)


def _earliest(*deadlines: float | None) -> float | None:
    present = [d for d in deadlines if d is not None]
    return min(present) if present else None


class Channel:
    """Protocol messages over one connected socket; every send and every frame read has a deadline."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        max_ciphertext_bytes: int = MAX_CIPHERTEXT_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sock = sock
        self.max_frame_bytes = max_frame_bytes
        self.max_ciphertext_bytes = max_ciphertext_bytes
        self.clock = clock

    @classmethod
    def connect(cls, endpoint: str | Endpoint, *, timeout: float, max_frame_bytes: int = MAX_FRAME_BYTES) -> Channel:
        return cls(connect(endpoint, timeout=timeout), max_frame_bytes=max_frame_bytes)

    def send_bytes(self, body: bytes, *, timeout: float | None) -> None:
        """Send one frame; `timeout` bounds the whole send (Python's sendall applies it in total)."""
        self._sock.settimeout(timeout)
        try:
            write_frame(self._sock, body, self.max_frame_bytes)
        except TimeoutError:
            raise TransportTimeout(f"sending timed out after {timeout}s") from None
        except OSError as exc:
            raise TransportError(f"send failed: {exc.strerror or exc}") from None

    def send(self, message: Message, *, timeout: float | None) -> None:
        self.send_bytes(encode_message(message), timeout=timeout)

    def receive_bytes(self, *, timeout: float | None, deadline: float | None = None) -> bytes:
        """One frame body, complete within `timeout` seconds from now and before `deadline` (on `clock`).

        ProtocolError (incl. ConnectionClosed/FrameTooLarge) or TransportError (TransportTimeout
        when a deadline passes, however many bytes had arrived by then).
        """
        frame_deadline = None if timeout is None else self.clock() + timeout
        effective = _earliest(frame_deadline, deadline)
        if effective is None:
            self._sock.settimeout(None)
        try:
            return read_frame(_DeadlineSocket(self._sock, effective, self.clock), self.max_frame_bytes)
        except TimeoutError:
            raise TransportTimeout(f"no complete frame within {timeout}s") from None
        except OSError as exc:
            raise TransportError(f"receive failed: {exc.strerror or exc}") from None

    def receive(self, *, timeout: float | None, deadline: float | None = None) -> Message:
        body = self.receive_bytes(timeout=timeout, deadline=deadline)
        return decode_message(body, max_ciphertext_bytes=self.max_ciphertext_bytes)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

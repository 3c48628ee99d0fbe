"""The parent's enclave client reads a full enclave's `busy` answer even when its own send fails.

An enclave at its connection cap answers `busy` and hangs up without reading the request
(ccc_enclave.server.EnclaveServer._admit). A job frame is large, so the parent's send then meets
a closed socket (EPIPE / ECONNRESET) while the answer already waits in its receive buffer. Treating
that as "enclave unavailable" turned a plain "retry in a moment" into a failed attempt; the client
must read the answer and report `busy`, and still report a dead enclave as unavailable.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ccc_enclave.protocol.error_replies import ErrorInfo, ErrorReply
from ccc_enclave.protocol.errors import ErrorCode
from ccc_enclave.protocol.job_messages import Credentials, JobFailure, JobRequest, JobSpec, KmsTarget
from ccc_enclave.transport import Channel, listen
from enclave_worker.parent.enclave_client import EnclaveUnavailable, SocketEnclaveClient

# Far more than a socket buffer holds, so the send cannot complete before the peer has hung up.
CIPHERTEXT = b"\x02" * (8 * 1024 * 1024)


def _job() -> JobRequest:
    return JobRequest(
        request_id="req-busy", job=JobSpec(job_id="0" * 32, tenant="tenant-a"), ciphertext=CIPHERTEXT,
        credentials=Credentials(access_key_id="AKIDEXAMPLE", secret_access_key="secret"),
        kms=KmsTarget(region="us-east-1"),
    )  # fmt: skip


@contextmanager
def _full_enclave(uri: str, *, answer: bool) -> Iterator[tuple[str, threading.Event]]:
    """Accepts one connection, answers `busy` (or nothing) and hangs up without reading, as at the cap."""
    listener = listen(uri)
    hung_up = threading.Event()

    def serve() -> None:
        sock = listener.accept(10)
        if sock is None:
            return
        channel = Channel(sock)
        if answer:
            channel.send(ErrorReply(request_id=None, error=ErrorInfo.of(ErrorCode.BUSY, "too many connections")),
                         timeout=5)  # fmt: skip
        channel.close()
        hung_up.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.endpoint.uri, hung_up
    finally:
        thread.join(10)
        listener.close()


class _SendAfterHangUp(SocketEnclaveClient):
    """Sends only once the enclave has hung up, so every run takes the failing-send path."""

    def __init__(self, uri: str, hung_up: threading.Event) -> None:
        super().__init__(uri)
        self._hung_up = hung_up

    def _send(self, channel: Channel, request: object, timeout_s: float) -> None:
        assert self._hung_up.wait(10)
        super()._send(channel, request, timeout_s)  # type: ignore[arg-type]


@pytest.fixture(params=["unix", "tcp"])
def endpoint(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"unix://{tmp_path / 'enclave.sock'}" if request.param == "unix" else "tcp://127.0.0.1:0"


def test_a_full_enclave_that_hangs_up_before_reading_the_job_is_busy_not_unavailable(endpoint: str) -> None:
    with _full_enclave(endpoint, answer=True) as (uri, hung_up):
        reply = _SendAfterHangUp(uri, hung_up).run_job(_job(), timeout_s=10)
    assert isinstance(reply, JobFailure)
    assert reply.request_id == "req-busy"
    assert reply.error.code == ErrorCode.BUSY and reply.error.retryable


def test_an_enclave_that_hangs_up_without_an_answer_is_still_unavailable(endpoint: str) -> None:
    with _full_enclave(endpoint, answer=False) as (uri, hung_up), pytest.raises(EnclaveUnavailable):
        _SendAfterHangUp(uri, hung_up).run_job(_job(), timeout_s=10)


def test_a_refused_connection_is_unavailable(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(EnclaveUnavailable):
            SocketEnclaveClient(f"tcp://127.0.0.1:{port}", connect_timeout_s=2).run_job(_job(), timeout_s=5)

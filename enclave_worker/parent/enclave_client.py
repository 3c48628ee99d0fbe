"""The parent's side of the enclave protocol: one connection per call, replies matched by request id.

Why a connection per call: the enclave may be restarted at any time (crash, upgrade); a fresh
connection per job needs no reconnect logic, and a broken job cannot poison the next one. Every
transport or protocol failure becomes `EnclaveUnavailable`, which the agent treats as retryable.

One failure is not a failure: an enclave at its connection cap answers `busy` and hangs up
without reading the request (`ccc_enclave.server`), so sending a job (a large frame) can fail with
EPIPE/ECONNRESET while the answer already waits in this socket's receive buffer. The client then
reads that answer: `busy` means "retry in a moment" (the agent keeps the message and retries),
not "the enclave is gone" (a failed attempt). Only an error reply is accepted that way; the
enclave cannot have produced a job result for a request it never read.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from ccc_enclave.protocol.error_replies import ErrorReply
from ccc_enclave.protocol.errors import ProtocolError
from ccc_enclave.protocol.health_messages import EnclaveStatus, HealthReply, HealthRequest
from ccc_enclave.protocol.job_messages import JobFailure, JobReply, JobRequest, JobSuccess
from ccc_enclave.protocol.messages import Message
from ccc_enclave.transport import Channel, Endpoint, TransportError, TransportTimeout, parse_endpoint
from enclave_worker.parent.errors import ParentError


class EnclaveUnavailable(ParentError):
    """The enclave could not be reached, hung up, timed out, or answered nonsense."""


class EnclaveClient(Protocol):
    def run_job(self, request: JobRequest, *, timeout_s: float) -> JobReply: ...

    def health(self, *, timeout_s: float) -> EnclaveStatus: ...


# How long to wait for an answer already on its way after our send failed (it is normally in the
# receive buffer before the send even fails).
ANSWER_AFTER_FAILED_SEND_S = 2.0


class SocketEnclaveClient:
    def __init__(self, endpoint: str | Endpoint, *, connect_timeout_s: float = 5.0,
                 max_frame_bytes: int | None = None) -> None:
        self.endpoint = parse_endpoint(endpoint)
        self._connect_timeout_s = connect_timeout_s
        self._max_frame_bytes = max_frame_bytes

    def _call(self, request: Message, timeout_s: float) -> Message:
        try:
            kwargs = {"max_frame_bytes": self._max_frame_bytes} if self._max_frame_bytes else {}
            with Channel.connect(self.endpoint, timeout=self._connect_timeout_s, **kwargs) as channel:
                try:
                    self._send(channel, request, timeout_s)
                except TransportTimeout:
                    raise
                except TransportError as exc:
                    reply = self._answer_after_failed_send(channel, timeout_s, exc)
                else:
                    reply = channel.receive(timeout=timeout_s)
        except (TransportError, ProtocolError) as exc:
            raise EnclaveUnavailable(f"enclave at {self.endpoint.uri}: {exc}") from None
        if reply.request_id is not None and reply.request_id != request.request_id:
            raise EnclaveUnavailable(f"enclave answered request {reply.request_id!r}, expected {request.request_id!r}")
        return reply

    def _send(self, channel: Channel, request: Message, timeout_s: float) -> None:
        channel.send(request, timeout=timeout_s)

    @staticmethod
    def _answer_after_failed_send(channel: Channel, timeout_s: float, send_error: TransportError) -> Message:
        """The error reply the enclave sent before hanging up on us (module docstring), else the send error."""
        try:
            reply = channel.receive(timeout=min(timeout_s, ANSWER_AFTER_FAILED_SEND_S))
        except (TransportError, ProtocolError):
            raise send_error from None
        if not isinstance(reply, ErrorReply):
            raise send_error
        return reply

    def run_job(self, request: JobRequest, *, timeout_s: float) -> JobReply:
        reply = self._call(request, timeout_s)
        if isinstance(reply, JobSuccess | JobFailure):
            return reply
        if isinstance(reply, ErrorReply):  # e.g. busy (connection cap) or a refused frame
            return JobFailure(request_id=request.request_id, error=reply.error)
        raise EnclaveUnavailable(f"enclave answered a job with {type(reply).__name__}")

    def health(self, *, timeout_s: float) -> EnclaveStatus:
        request = HealthRequest(request_id=f"health-{uuid.uuid4().hex[:16]}")
        reply = self._call(request, timeout_s)
        if isinstance(reply, HealthReply):
            return reply.status
        raise EnclaveUnavailable(f"enclave answered a health request with {type(reply).__name__}")

"""The enclave's socket server: one thread per connection, bounded job concurrency, clean shutdown.

Why this structure: the parent is untrusted and may send anything, so each connection is handled
in its own thread inside a catch-all; a broken frame, a hostile message or a crashing job ends at
most that connection, never the server. Jobs take a slot from a semaphore without waiting: over
capacity the answer is an immediate retryable `busy`, so the parent backs off instead of piling up
blocked requests. Health requests never take a slot (a busy enclave is still healthy). Connections
themselves are capped too, and each has two deadlines: every request frame must arrive complete
within `frame_timeout_s` of the server starting to wait for it, and the connection may read frames
for at most `connection_timeout_s` in all. They are deadlines, not idle timeouts: a peer trickling
a byte every few seconds is dropped on time instead of holding a connection slot for ever (with
per-`recv` timeouts, 32 such connections once stalled every worker indefinitely).

On stop (SIGTERM), the listener closes, idle connections are shut down, and running jobs finish
and are answered before `serve_forever` returns.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import socket
import threading
import time
from dataclasses import dataclass

from ccc_core.limits import LIMITS
from ccc_core.logs import log_event
from ccc_enclave.pipeline import JobProcessor
from ccc_enclave.protocol.codec import peek_request_id
from ccc_enclave.protocol.error_replies import ErrorInfo, ErrorReply
from ccc_enclave.protocol.errors import ConnectionClosed, ErrorCode, FrameTooLarge, ProtocolError
from ccc_enclave.protocol.health_messages import EnclaveStatus, HealthReply, HealthRequest
from ccc_enclave.protocol.job_messages import JobFailure, JobRequest, JobSuccess
from ccc_enclave.protocol.messages import Message, decode_message
from ccc_enclave.stats import EnclaveStats
from ccc_enclave.transport import Channel, Listener, TransportError

_LOG = logging.getLogger("ccc.enclave.server")


@dataclass(frozen=True)
class ServerSettings:
    concurrency: int = 2
    max_connections: int = 32
    # A request frame (from the wait for its first byte to its last byte) must arrive within this;
    # the largest frame crosses vsock in well under a second, so 60 s only ever cuts off stalls.
    frame_timeout_s: float = 60.0
    # A connection reads frames for at most this long in all (the parent uses one connection per
    # call: a job is one frame in, at most job_timeout_s of work, one frame out).
    connection_timeout_s: float = 2 * 60.0 + float(LIMITS.job_timeout_s)
    reply_timeout_s: float = 30.0  # sending one reply
    accept_poll_s: float = 0.25  # how quickly the accept loop notices a stop request
    shutdown_grace_s: float = float(LIMITS.job_timeout_s)
    max_frame_bytes: int = LIMITS.max_frame_bytes
    max_ciphertext_bytes: int = LIMITS.max_ciphertext_bytes

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= 256:
            raise ValueError("concurrency must be 1..256")
        if self.max_connections < self.concurrency:
            raise ValueError("max_connections must be at least the concurrency")
        if not 0 < self.frame_timeout_s <= self.connection_timeout_s:
            raise ValueError("need 0 < frame_timeout_s <= connection_timeout_s")


class _Connection:
    """One accepted connection; `busy` while a request is being handled (so shutdown spares it)."""

    def __init__(self, sock: socket.socket, settings: ServerSettings) -> None:
        self.sock = sock
        self.channel = Channel(sock, max_frame_bytes=settings.max_frame_bytes,
                               max_ciphertext_bytes=settings.max_ciphertext_bytes)
        self.deadline = self.channel.clock() + settings.connection_timeout_s
        self.busy = False
        self.lock = threading.Lock()

    def interrupt_if_idle(self) -> None:
        with self.lock:
            if not self.busy:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)


class EnclaveServer:
    """Serves health and job requests on a listener until `stop()`."""

    def __init__(
        self, listener: Listener, processor: JobProcessor, *, model_name: str, model_sha256: str, pcr0_hex: str,
        settings: ServerSettings | None = None,
        stats: EnclaveStats | None = None,
    ) -> None:
        self.listener = listener
        self.processor = processor
        self.settings = settings or ServerSettings()
        self.stats = stats or EnclaveStats()
        self._model_name = model_name
        self._model_sha256 = model_sha256
        self._pcr0_hex = pcr0_hex
        self._slots = threading.BoundedSemaphore(self.settings.concurrency)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[_Connection] = set()
        self._threads: set[threading.Thread] = set()
        self._started = time.monotonic()
        self._jobs_served = 0
        self._jobs_failed = 0
        self._in_flight = 0

    # ----------------------------------------------------------------------------------- lifecycle

    def stop(self) -> None:
        """Ask the server to stop (safe from a signal handler: it only sets an event)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def serve_forever(self) -> None:
        log_event(_LOG, logging.INFO, "enclave server listening", endpoint=self.listener.endpoint.uri,
                  concurrency=self.settings.concurrency, model_sha256=self._model_sha256, pcr0=self._pcr0_hex)
        try:
            while not self._stop.is_set():
                try:
                    sock = self.listener.accept(self.settings.accept_poll_s)
                except TransportError as exc:
                    log_event(_LOG, logging.WARNING, "accept failed", error=str(exc)[:200])
                    time.sleep(self.settings.accept_poll_s)
                    continue
                if sock is not None:
                    self._admit(sock)
        finally:
            self.listener.close()
            self._drain()
            log_event(_LOG, logging.INFO, "enclave server stopped", jobs_served=self._jobs_served,
                      jobs_failed=self._jobs_failed)

    def _drain(self) -> None:
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
        for conn in connections:
            conn.interrupt_if_idle()
        deadline = time.monotonic() + self.settings.shutdown_grace_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _admit(self, sock: socket.socket) -> None:
        conn = _Connection(sock, self.settings)
        with self._lock:
            full = len(self._connections) >= self.settings.max_connections
            if not full:
                self._connections.add(conn)
        if full:
            self.stats.busy_refused()
            # Answer and hang up at once: the parent sees `busy` and retries later.
            with contextlib.suppress(Exception):
                busy = ErrorReply(request_id=None, error=ErrorInfo.of(ErrorCode.BUSY, "too many connections"))
                conn.channel.send(busy, timeout=1.0)
            conn.channel.close()
            return
        thread = threading.Thread(target=self._serve_connection, args=(conn,), name="enclave-conn", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    # ------------------------------------------------------------------------------------ requests

    def _serve_connection(self, conn: _Connection) -> None:
        try:
            while not self._stop.is_set():
                try:
                    body = conn.channel.receive_bytes(timeout=self.settings.frame_timeout_s, deadline=conn.deadline)
                except ConnectionClosed:
                    return
                except FrameTooLarge as exc:
                    # The body is still in the stream, so the connection cannot resynchronise: answer, close.
                    self._reply(conn, ErrorReply(request_id=None, error=ErrorInfo.of(ErrorCode.TOO_LARGE, exc.reason)))
                    return
                except (ProtocolError, TransportError) as exc:
                    log_event(_LOG, logging.INFO, "connection dropped", error=str(exc)[:200])
                    return
                with conn.lock:
                    conn.busy = True
                try:
                    self._reply(conn, self._answer(body))
                finally:
                    with conn.lock:
                        conn.busy = False
        except Exception as exc:  # last line of defence: this connection ends, the server lives on
            log_event(_LOG, logging.ERROR, "connection handler crashed", error_type=type(exc).__name__)
        finally:
            conn.channel.close()
            with self._lock:
                self._connections.discard(conn)
                self._threads.discard(threading.current_thread())

    def _reply(self, conn: _Connection, message: Message) -> None:
        try:
            conn.channel.send(message, timeout=self.settings.reply_timeout_s)
        except (TransportError, ProtocolError) as exc:
            log_event(_LOG, logging.WARNING, "reply not delivered", request_id=message.request_id,
                      error=str(exc)[:200])

    def _answer(self, body: bytes) -> Message:
        try:
            request = decode_message(body, max_ciphertext_bytes=self.settings.max_ciphertext_bytes)
        except ProtocolError as exc:
            log_event(_LOG, logging.WARNING, "bad request", code=exc.code, frame_bytes=len(body),
                      reason=exc.reason[:200])
            return ErrorReply(request_id=peek_request_id(body),
                              error=ErrorInfo.of(exc.code, exc.reason, retryable=False))
        if isinstance(request, HealthRequest):
            return HealthReply(request_id=request.request_id, status=self.status())
        if isinstance(request, JobRequest):
            return self._run_job(request)
        return ErrorReply(request_id=request.request_id,
                          error=ErrorInfo.of(ErrorCode.BAD_REQUEST, "not a request message kind", retryable=False))

    def _run_job(self, request: JobRequest) -> Message:
        if self._stop.is_set():
            return JobFailure(request_id=request.request_id,
                              error=ErrorInfo.of(ErrorCode.BUSY, "enclave is shutting down"))
        if not self._slots.acquire(blocking=False):
            self.stats.busy_refused()
            log_event(_LOG, logging.INFO, "job refused: busy", job_id=request.job.job_id,
                      concurrency=self.settings.concurrency)
            return JobFailure(request_id=request.request_id,
                              error=ErrorInfo.of(ErrorCode.BUSY, "enclave at its concurrency limit"))
        with self._lock:
            self._in_flight += 1
        try:
            reply = self.processor.process(request)
        finally:
            self._slots.release()
            with self._lock:
                self._in_flight -= 1
        with self._lock:
            if isinstance(reply, JobSuccess):
                self._jobs_served += 1
            else:
                self._jobs_failed += 1
        self.stats.job_finished(reply)
        return reply

    def status(self) -> EnclaveStatus:
        with self._lock:
            served, failed, in_flight = self._jobs_served, self._jobs_failed, self._in_flight
        return EnclaveStatus(
            uptime_s=round(time.monotonic() - self._started, 3),
            jobs_served=served,
            jobs_failed=failed,
            in_flight=in_flight,
            concurrency=self.settings.concurrency,
            model_name=self._model_name,
            model_sha256=self._model_sha256,
            pcr0_hex=self._pcr0_hex,
            cpu_count=os.cpu_count() or 0,
            rss_bytes=_rss_bytes(),
            metrics=self.stats.snapshot(),
        )


def _rss_bytes() -> int:
    """Current resident set size (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

"""The parent agent: SQS work queue -> inbox ciphertext -> enclave -> results bucket, never plaintext.

Per message (in a small worker pool):

1. Parse the body (`ccc_common.contracts.work_message.parse_work_message`). A test event or other non-work event is
   deleted. A body that can never become a job is *not* deleted: it is made visible again at once,
   so the queue's `maxReceiveCount` redrives it to the dead-letter queue within a few receives,
   where the dead-letters function archives it for a human. Deleting it would lose the evidence.
2. For each job: claim its lease in the jobs table (`ccc_common.domain.job_leases`; when leases are
   configured): if another worker holds it, the message comes back when that lease ends. Then, if
   the result (or a failure record) already exists, the job is done (a duplicate, or redelivery
   after a crash between write and delete): skip. HEAD the inbox object (larger than the limit ->
   permanent failure; missing -> see below), GET it, send `{job, ciphertext, credentials, kms}` to
   the enclave while a heartbeat thread keeps extending the message's visibility.
   A missing input is "not yet" until the job's upload window closes
   (`ccc_common.domain.upload_window`, the rule the jobs API applies too): the message comes back
   when the window closes (an upload in between brings its own message and completes the job; this
   one then finds the result). After the window the job fails in the jobs table only, never with a
   failure record, so an upload that still arrives completes it. A message naming no job of its
   tenant is deleted. Without a jobs table the message is retried with backoff and ends in the DLQ.
3. Success: PUT the attestation document under the result's digest, then the result ciphertext
   only if no result exists (`If-None-Match: *`; `ccc_common.contracts.result_objects`): the result
   object is the "done" signal the job-events function and the client wait for, so it goes last, and
   a duplicate run that finishes second is refused by S3 and discards its result, so a job's result
   never changes once visible and never sits beside another run's attestation. Then delete the
   message. Permanent failure: PUT the failure record (also only if none exists), then delete. Retryable failure
   (busy, KMS throttled, enclave unreachable, S3 error): leave the message and set its visibility
   to an exponential backoff; after `maxReceiveCount` receives SQS moves it to the DLQ.

The agent never decrypts anything and logs metadata only (ids, sizes, codes, timings).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from ccc_common.contracts.failure_record import FailureRecord, encode_failure_record
from ccc_common.contracts.result_objects import RESULT_SHA256_METADATA, attestation_key, result_sha256
from ccc_common.contracts.work_message import Ignored, parse_work_message
from ccc_common.domain.job_leases import JobLeases, Lease, LeaseHeld
from ccc_common.domain.job_store import JobStore
from ccc_common.domain.jobs import JobEvent
from ccc_common.domain.upload_window import (
    DEFAULT_UPLOAD_URL_EXPIRY_S,
    FailMissingInput,
    NothingToWaitFor,
    WaitForUpload,
    judge_missing_input,
)
from ccc_core.aws_errors import client_error_code
from ccc_core.identity import JobRef
from ccc_core.limits import LIMITS
from ccc_core.logs import elapsed_ms, log_event
from ccc_core.redaction import safe_attributes
from ccc_core.telemetry.names import SPAN_PARENT_JOB
from ccc_core.telemetry.propagation import extract, inject
from ccc_enclave.protocol.error_replies import ErrorInfo
from ccc_enclave.protocol.errors import ErrorCode, ProtocolError
from ccc_enclave.protocol.job_messages import Credentials, JobFailure, JobRequest, JobSpec, JobSuccess, KmsTarget
from enclave_worker.parent.agent_metrics import ParentMetrics
from enclave_worker.parent.enclave_client import EnclaveClient, EnclaveUnavailable
from enclave_worker.parent.enclave_spans import EnclaveSpanRelay
from enclave_worker.parent.errors import ParentError
from enclave_worker.parent.heartbeat import VisibilityHeartbeat
from enclave_worker.parent.imds import AwsCredentials

_LOG = logging.getLogger("ccc.parent")
# Pause after an empty receive when long polling is off (wait_time_s = 0).
EMPTY_SHORT_POLL_PAUSE_S = 0.05
_TRACER = trace.get_tracer("ccc.parent")
SQS_MAX_BATCH = 10
SQS_MAX_VISIBILITY_S = 43200


class MessageOutcome(StrEnum):
    DONE = "done"  # result written
    ALREADY_DONE = "already_done"  # result or failure record existed (redelivery)
    LEASED = "leased"  # another worker holds the job's lease: back to the queue until it ends
    WAITING = "waiting"  # the input is not uploaded yet: back to the queue until the upload window closes
    FAILED = "failed"  # failure record written (permanent)
    RETRY = "retry"  # left in the queue with backoff
    IGNORED = "ignored"  # not work (test event): deleted
    UNPARSEABLE = "unparseable"  # left for the DLQ


# Outcomes whose job span is an error: the job failed for good, or this attempt failed and is retried.
_ERROR_OUTCOMES = frozenset({MessageOutcome.FAILED, MessageOutcome.RETRY})


class CredentialsProvider(Protocol):
    """Credentials for the enclave's KMS calls (static locally, IMDSv2 role credentials on AWS)."""

    def get(self) -> AwsCredentials: ...


@dataclass(frozen=True)
class AgentSettings:
    queue_url: str
    inbox_bucket: str
    results_bucket: str
    kms: KmsTarget
    workers: int = 2
    wait_time_s: int = 20
    visibility_timeout_s: int = 360
    enclave_timeout_s: float = 150.0
    max_ciphertext_bytes: int = LIMITS.max_ciphertext_bytes
    backoff_base_s: int = 5
    backoff_max_s: int = 300
    max_jobs: int | None = None  # stop after receiving this many messages (tests, --once style runs)
    health_interval_s: float = 15.0
    busy_retry_for_s: float = 20.0  # keep retrying a busy enclave this long before giving the message back
    busy_pause_s: float = 0.25
    unavailable_pause_s: float = 1.0
    heartbeat_interval_s: float | None = None  # default visibility/3
    lease_s: float | None = None  # job lease length; default: one enclave pass with its busy retries + 60 s
    upload_url_expiry_s: int = DEFAULT_UPLOAD_URL_EXPIRY_S  # the jobs API's upload URL lifetime (upload window)

    @property
    def effective_lease_s(self) -> float:
        """Long enough for one bounded enclave pass, so only a dead (or stalled) holder loses it."""
        if self.lease_s is not None:
            return self.lease_s
        return self.enclave_timeout_s + self.busy_retry_for_s + 60.0

    def backoff_s(self, receive_count: int) -> int:
        """Visibility for a retry: base * 2^(n-1), capped (and never above SQS's 12 h maximum)."""
        exponent = min(max(receive_count, 1) - 1, 20)
        return int(min(self.backoff_base_s * (2**exponent), self.backoff_max_s, SQS_MAX_VISIBILITY_S))


@dataclass(frozen=True)
class JobOutcome:
    outcome: MessageOutcome
    code: str | None = None
    retry_in_s: int | None = None  # LEASED: when the holder's lease ends; WAITING: when the upload window closes


def _is_not_found(exc: Exception) -> bool:
    return client_error_code(exc) in ("404", "NoSuchKey", "NotFound")


def _is_precondition_failed(exc: Exception) -> bool:
    """S3's answer to a conditional write whose condition failed: the object already exists (412),
    or another conditional write to the same key is in progress (409)."""
    return client_error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


class _Permanent(ParentError):
    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _InputMissing(ParentError):
    """The inbox object does not exist (now): not the job's failure until its upload window closes."""


@dataclass(frozen=True)
class _Claimed:
    """A job this attempt may run: its lease (None without leases) and its input's size and trace
    carrier as the HEAD before the claim saw them."""

    lease: Lease | None
    size: int
    carrier: dict[str, str]


class ParentAgent:
    def __init__(
        self,
        *,
        sqs: Any,
        s3: Any,
        enclave: EnclaveClient,
        credentials: CredentialsProvider,
        settings: AgentSettings,
        parse: Callable[..., Any] = parse_work_message,
        on_ready: Callable[[], None] | None = None,
        metrics: ParentMetrics | None = None,
        leases: JobLeases | None = None,
        jobs: JobStore | None = None,
        enclave_spans: EnclaveSpanRelay | None = None,
    ) -> None:
        self._sqs = sqs
        self._enclave_spans = enclave_spans or EnclaveSpanRelay(None)
        self._leases = leases
        self._jobs = jobs
        self._owner = f"{socket.gethostname()[:64]}:{os.getpid()}"
        self._s3 = s3
        self._enclave = enclave
        self._credentials = credentials
        self.settings = settings
        self._parse = parse
        self._on_ready = on_ready
        self._metrics = metrics or ParentMetrics()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._received = 0
        self._enclave_ok = False
        self._last_health = -1e18
        self.stats: Counter[str] = Counter()

    # ------------------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Stop polling; in-flight messages are finished before `run` returns (signal-safe)."""
        self._stop.set()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def run(self, *, once: bool = False) -> Counter[str]:
        """Poll until stopped (or `max_jobs` messages / one receive with `once`), then drain."""
        s = self.settings
        slots = threading.Semaphore(s.workers)
        ready_signalled = False
        log_event(_LOG, logging.INFO, "parent agent starting", workers=s.workers, queue_url=s.queue_url,
                  wait_time_s=s.wait_time_s, visibility_timeout_s=s.visibility_timeout_s)
        with ThreadPoolExecutor(max_workers=s.workers, thread_name_prefix="parent-job") as pool:
            while not self._stop.is_set():
                remaining = None if s.max_jobs is None else s.max_jobs - self._received
                if remaining is not None and remaining <= 0:
                    break
                if not self._enclave_ready():
                    self._stop.wait(s.unavailable_pause_s)
                    continue
                if not ready_signalled:
                    ready_signalled = True
                    if self._on_ready is not None:
                        self._on_ready()
                if not slots.acquire(timeout=1.0):
                    continue
                taken = 1
                limit = min(SQS_MAX_BATCH, remaining if remaining is not None else SQS_MAX_BATCH)
                while taken < limit and slots.acquire(blocking=False):
                    taken += 1
                messages = self._receive(taken)
                for _ in range(taken - len(messages)):
                    slots.release()
                if not messages and s.wait_time_s == 0:
                    # Without long polling an empty queue would be hammered in a tight loop (and, in
                    # one process, starve the job threads); pause briefly instead.
                    self._stop.wait(EMPTY_SHORT_POLL_PAUSE_S)
                for message in messages:
                    with self._lock:
                        self._received += 1
                        self._in_flight += 1
                    pool.submit(self._handle_and_release, message, slots)
                if once:
                    break
            log_event(_LOG, logging.INFO, "parent agent draining", in_flight=self.in_flight)
        outcome_counts: dict[str, Any] = {f"outcome_{k}": v for k, v in sorted(self.stats.items())}
        log_event(_LOG, logging.INFO, "parent agent stopped", received=self._received, **outcome_counts)
        return self.stats

    def _enclave_ready(self) -> bool:
        """Poll only while the enclave answers health checks: jobs sent to a dead enclave would only
        burn receive counts and push good jobs into the DLQ."""
        now = time.monotonic()
        if self._enclave_ok and now - self._last_health < self.settings.health_interval_s:
            return True
        try:
            status = self._enclave.health(timeout_s=5.0)
        except EnclaveUnavailable as exc:
            if self._enclave_ok or self._last_health < 0:
                log_event(_LOG, logging.WARNING, "enclave unavailable; not polling", error=str(exc)[:200])
            self._enclave_ok = False
            self._last_health = now
            return False
        if not self._enclave_ok:
            log_event(_LOG, logging.INFO, "enclave healthy", pcr0=status.pcr0_hex, model_sha256=status.model_sha256,
                      concurrency=status.concurrency)
        self._enclave_ok = True
        self._last_health = now
        return True

    def _receive(self, count: int) -> list[dict[str, Any]]:
        s = self.settings
        try:
            response = self._sqs.receive_message(
                QueueUrl=s.queue_url,
                MaxNumberOfMessages=count,
                WaitTimeSeconds=s.wait_time_s,
                VisibilityTimeout=s.visibility_timeout_s,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except Exception as exc:  # throttling, network, credentials rotation: pause and poll again
            log_event(_LOG, logging.WARNING, "receive failed", error_type=type(exc).__name__,
                      code=client_error_code(exc))
            self._stop.wait(s.unavailable_pause_s)
            return []
        messages = response.get("Messages") or []
        return [m for m in messages if isinstance(m, dict)]

    def _handle_and_release(self, message: dict[str, Any], slots: threading.Semaphore) -> None:
        try:
            outcome = self.handle_message(message)
        except Exception as exc:  # never lose the worker thread; the message reappears after its timeout
            log_event(_LOG, logging.ERROR, "message handler crashed", message_id=message.get("MessageId"),
                      error_type=type(exc).__name__)
            outcome = MessageOutcome.RETRY
        finally:
            slots.release()
            with self._lock:
                self._in_flight -= 1
        with self._lock:
            self.stats[outcome.value] += 1

    # -------------------------------------------------------------------------------- messages

    def handle_message(self, message: dict[str, Any]) -> MessageOutcome:
        s = self.settings
        receipt = str(message["ReceiptHandle"])
        message_id = str(message.get("MessageId", ""))[:128]
        receive_count = _receive_count(message)
        try:
            parsed = self._parse(message.get("Body"), inbox_bucket=s.inbox_bucket)
        except ValueError as exc:  # EventError/WorkMessageError: this message can never become a job
            log_event(_LOG, logging.WARNING, "unparseable message left for the DLQ", message_id=message_id,
                      receive_count=receive_count, reason=str(getattr(exc, "reason", type(exc).__name__))[:64])
            self._change_visibility(receipt, 0, message_id)
            return MessageOutcome.UNPARSEABLE
        if isinstance(parsed, Ignored):
            log_event(_LOG, logging.INFO, "message ignored", message_id=message_id, reason=parsed.reason[:200])
            self._delete(receipt, message_id)
            return MessageOutcome.IGNORED

        refs: list[JobRef] = list(parsed)
        with VisibilityHeartbeat(self._sqs, s.queue_url, receipt, visibility_timeout_s=s.visibility_timeout_s,
                                 interval_s=s.heartbeat_interval_s, message_id=message_id):
            outcomes = [self.process_job(ref, receive_count=receive_count) for ref in refs]
        if any(o.outcome is MessageOutcome.RETRY for o in outcomes):
            delay = s.backoff_s(receive_count)
        elif any(o.outcome in _COME_BACK_LATER for o in outcomes):
            # Not a failure of this job: look again when the holder's lease ends (then it is either
            # done, and this duplicate is deleted, or its holder died and this message runs it), or
            # when the upload window of a job whose input has not arrived closes.
            delay = min(SQS_MAX_VISIBILITY_S, max(o.retry_in_s or 1 for o in outcomes))
        else:
            delay = None
        if delay is not None:
            self._change_visibility(receipt, delay, message_id)
            log_event(_LOG, logging.INFO, "message returned for retry", message_id=message_id,
                      receive_count=receive_count, retry_in_s=delay)
            if all(o.outcome in (*_COME_BACK_LATER, MessageOutcome.ALREADY_DONE) for o in outcomes):
                waiting = any(o.outcome is MessageOutcome.WAITING for o in outcomes)
                return MessageOutcome.WAITING if waiting else MessageOutcome.LEASED
            return MessageOutcome.RETRY
        self._delete(receipt, message_id)
        if len(outcomes) == 1:
            return outcomes[0].outcome
        if all(o.outcome is MessageOutcome.IGNORED for o in outcomes):
            return MessageOutcome.IGNORED
        failed = any(o.outcome is MessageOutcome.FAILED for o in outcomes)
        return MessageOutcome.FAILED if failed else MessageOutcome.DONE

    def _delete(self, receipt: str, message_id: str) -> None:
        try:
            self._sqs.delete_message(QueueUrl=self.settings.queue_url, ReceiptHandle=receipt)
        except Exception as exc:  # it will be redelivered; idempotency makes that harmless
            log_event(_LOG, logging.WARNING, "delete failed", message_id=message_id, error_type=type(exc).__name__)

    def _change_visibility(self, receipt: str, seconds: int, message_id: str) -> None:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.settings.queue_url, ReceiptHandle=receipt, VisibilityTimeout=seconds
            )
        except Exception as exc:
            log_event(_LOG, logging.WARNING, "visibility change failed", message_id=message_id,
                      error_type=type(exc).__name__)

    # ------------------------------------------------------------------------------------ jobs

    def process_job(self, ref: JobRef, *, receive_count: int = 1) -> JobOutcome:
        start = time.perf_counter()
        lease: Lease | None = None
        try:
            try:
                claimed = self._claim(ref)
                if isinstance(claimed, JobOutcome):
                    outcome = claimed
                else:
                    lease = claimed.lease
                    outcome = self._process_claimed_job(ref, claimed)
            except _Permanent as failure:
                outcome = self._record_failure(ref, ErrorInfo.of(failure.code, failure.reason, retryable=False))
            except _InputMissing:
                outcome = self._input_missing(ref)
        except Exception as exc:  # S3/credentials/unknown: retry later, the DLQ ends hopeless cases
            log_event(_LOG, logging.WARNING, "job will be retried", job_id=ref.job_id, tenant=ref.tenant,
                      error_type=type(exc).__name__, code=client_error_code(exc))
            outcome = JobOutcome(MessageOutcome.RETRY, client_error_code(exc) or type(exc).__name__)
        if lease is not None:
            # A retried attempt leaves its error code on the job: if the message ends in the
            # dead-letter queue, the failure reason names it (ccc_common.domain.dead_letters).
            self._release(lease, outcome.code if outcome.outcome is MessageOutcome.RETRY else None)
        elapsed = elapsed_ms(start)
        log_event(_LOG, logging.INFO, "job handled", job_id=ref.job_id, tenant=ref.tenant,
                  outcome=outcome.outcome.value, code=outcome.code, receive_count=receive_count,
                  elapsed_ms=elapsed)
        self._metrics.job_handled(outcome.outcome.value, outcome.code, elapsed)
        return outcome

    def _claim(self, ref: JobRef) -> _Claimed | JobOutcome:
        """The job's lease (None without leases) and its input's HEAD, or the outcome that ends this
        attempt at once."""
        # A duplicate that arrives after the job finished is a no-op: it never touches the lease,
        # which would make the other duplicates arriving at the same moment wait for it.
        if self._finished(ref):
            return JobOutcome(MessageOutcome.ALREADY_DONE)
        # Before the claim: a claim records a job that has no item yet, and a message whose object
        # does not exist must not create one (nor hold a lease while it waits for the upload).
        size, carrier = self._head_input(ref)
        if self._leases is None:
            return _Claimed(None, size, carrier)
        now = datetime.now(UTC)
        claim = self._leases.claim(ref, f"{self._owner}:{uuid.uuid4().hex[:12]}", now=now,
                                   until=now + timedelta(seconds=self.settings.effective_lease_s))
        if isinstance(claim, LeaseHeld):
            wait_s = max(1, math.ceil((claim.until - now).total_seconds()) + 1)
            log_event(_LOG, logging.INFO, "job leased by another worker", job_id=ref.job_id, tenant=ref.tenant,
                      retry_in_s=wait_s)
            return JobOutcome(MessageOutcome.LEASED, "job_leased", retry_in_s=wait_s)
        return _Claimed(claim, size, carrier)

    def _input_missing(self, ref: JobRef) -> JobOutcome:
        """The inbox object does not exist: wait for the upload, fail the job, or drop the message,
        by the job's upload window (``ccc_common.domain.upload_window``)."""
        code = str(ErrorCode.INPUT_MISSING)
        if self._jobs is None:  # nothing to judge the window by: retried, and the DLQ ends it
            return JobOutcome(MessageOutcome.RETRY, code)
        now = datetime.now(UTC)
        verdict = judge_missing_input(self._jobs.get(ref.job_id), ref, now=now,
                                      url_expiry_s=self.settings.upload_url_expiry_s)
        if isinstance(verdict, WaitForUpload):
            wait_s = max(1, math.ceil((verdict.until - now).total_seconds()) + 1)
            log_event(_LOG, logging.INFO, "input not uploaded yet", job_id=ref.job_id, tenant=ref.tenant,
                      retry_in_s=wait_s)
            return JobOutcome(MessageOutcome.WAITING, code, retry_in_s=wait_s)
        if isinstance(verdict, NothingToWaitFor):
            log_event(_LOG, logging.INFO, "message for a missing input dropped", job_id=ref.job_id,
                      tenant=ref.tenant, why=verdict.why)
            return JobOutcome(MessageOutcome.IGNORED, code)
        assert isinstance(verdict, FailMissingInput)
        self._jobs.apply(JobEvent.failed(ref, now, verdict.reason))
        log_event(_LOG, logging.WARNING, "job failed: upload window closed without an input", job_id=ref.job_id,
                  tenant=ref.tenant)
        return JobOutcome(MessageOutcome.FAILED, code)

    def _release(self, lease: Lease, last_error: str | None) -> None:
        """Best effort: an unreleased lease only delays a retry until it ends."""
        assert self._leases is not None
        try:
            self._leases.release(lease, last_error=last_error)
        except Exception as exc:
            log_event(_LOG, logging.WARNING, "lease release failed", job_id=lease.job.job_id,
                      error_type=type(exc).__name__, code=client_error_code(exc))

    def _process_claimed_job(self, ref: JobRef, claimed: _Claimed) -> JobOutcome:
        # Checked again under the lease: a run that committed and released just before it is seen here.
        if self._leases is not None and self._finished(ref):
            return JobOutcome(MessageOutcome.ALREADY_DONE)
        # No second HEAD under the lease: the GET in `_run_job` reads the object as it is now and
        # applies the same checks (missing, empty, over the limit) to what it reads. The trace
        # carrier comes from the HEAD before the claim (trace linkage only; metadata is untrusted).
        # Continue the client's trace: its context on the object, else the job's derived trace context.
        with _TRACER.start_as_current_span(
            SPAN_PARENT_JOB, context=extract(claimed.carrier, job_id=ref.job_id), record_exception=False,
            attributes=safe_attributes(
                {"ccc.job_id": ref.job_id, "ccc.tenant": ref.tenant, "ccc.input_bytes": claimed.size}
            ),
        ) as span:
            outcome = self._run_job(ref)
            span.set_attributes(safe_attributes({"ccc.outcome": outcome.outcome.value, "ccc.code": outcome.code or ""}))
            if outcome.outcome in _ERROR_OUTCOMES:
                # A failed job is an error in every trace view, not only in the enclave's span; the
                # description is the fixed failure code, never a message (messages can quote data).
                span.set_status(Status(StatusCode.ERROR, outcome.code or outcome.outcome.value))
            return outcome

    def _run_job(self, ref: JobRef) -> JobOutcome:
        s = self.settings
        ciphertext = self._get_input(ref)
        credentials = self._credentials.get()
        try:
            request = JobRequest(
                request_id=uuid.uuid4().hex,
                job=JobSpec(job_id=ref.job_id, tenant=ref.tenant),
                ciphertext=ciphertext,
                credentials=Credentials(access_key_id=credentials.access_key_id,
                                        secret_access_key=credentials.secret_access_key,
                                        session_token=credentials.session_token),
                kms=s.kms,
                trace=inject(),
            )
        except ProtocolError as exc:  # e.g. malformed role credentials: not the job's fault
            raise RuntimeError(f"cannot build the job request: {exc.reason}") from None
        sent_ns = time.time_ns()
        reply = self._run_on_enclave(request)
        if isinstance(reply, JobSuccess):
            self._metrics.enclave_timings(reply.metrics)
            self._enclave_spans.emit(trace.get_current_span(), job_id=ref.job_id, tenant=ref.tenant, sent_ns=sent_ns,
                                     received_ns=time.time_ns(), timings=reply.metrics)
            if not self._write_result(ref, reply):
                return JobOutcome(MessageOutcome.ALREADY_DONE, "duplicate_run")
            return JobOutcome(MessageOutcome.DONE)
        if reply.error.code != ErrorCode.ENCLAVE_UNAVAILABLE:  # the enclave itself answered
            self._enclave_spans.emit_failure(trace.get_current_span(), job_id=ref.job_id, tenant=ref.tenant,
                                             sent_ns=sent_ns, received_ns=time.time_ns(), code=str(reply.error.code))
        if reply.error.retryable:
            return JobOutcome(MessageOutcome.RETRY, reply.error.code)
        return self._record_failure(ref, reply.error)

    def _run_on_enclave(self, request: JobRequest) -> JobSuccess | JobFailure:
        """Send the job; a `busy` enclave is retried for a while without giving the message back."""
        s = self.settings
        deadline = time.monotonic() + s.busy_retry_for_s
        while True:
            try:
                reply = self._enclave.run_job(request, timeout_s=s.enclave_timeout_s)
            except EnclaveUnavailable as exc:
                self._enclave_ok = False  # stop polling until it answers health checks again
                log_event(_LOG, logging.WARNING, "enclave call failed", job_id=request.job.job_id,
                          error=str(exc)[:200])
                unreachable = ErrorInfo.of(ErrorCode.ENCLAVE_UNAVAILABLE, "enclave unreachable")
                return JobFailure(request_id=request.request_id, error=unreachable)
            busy = isinstance(reply, JobFailure) and reply.error.code == ErrorCode.BUSY
            if busy and time.monotonic() < deadline and not self._stop.is_set():
                self._stop.wait(s.busy_pause_s)
                continue
            return reply

    def _finished(self, ref: JobRef) -> bool:
        s = self.settings
        return self._exists(s.results_bucket, ref.result_key) or self._exists(s.results_bucket, ref.failure_key)

    def _exists(self, bucket: str, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if _is_not_found(exc):
                return False
            raise
        return True

    def _head_input(self, ref: JobRef) -> tuple[int, dict[str, str]]:
        """Size and trace carrier of the inbox object; missing or oversize objects fail for good."""
        s = self.settings
        try:
            head = self._s3.head_object(Bucket=s.inbox_bucket, Key=ref.inbox_key)
        except Exception as exc:
            if _is_not_found(exc):
                # "Not yet", not "never" (`_input_missing`): no failure record, which would make
                # the real upload that follows be ignored.
                raise _InputMissing("the input object does not exist (yet)") from None
            raise
        size = int(head.get("ContentLength", 0))
        if size > s.max_ciphertext_bytes:
            raise _Permanent(ErrorCode.TOO_LARGE, f"input is {size} bytes, the limit is {s.max_ciphertext_bytes}")
        if size == 0:
            raise _Permanent(ErrorCode.DECRYPT_FAILED, "input object is empty")
        metadata = head.get("Metadata") or {}
        carrier = {k: v for k, v in metadata.items() if k in ("traceparent", "tracestate") and isinstance(v, str)}
        return size, carrier

    def _get_input(self, ref: JobRef) -> bytes:
        s = self.settings
        try:
            response = self._s3.get_object(Bucket=s.inbox_bucket, Key=ref.inbox_key)
        except Exception as exc:
            if _is_not_found(exc):  # gone since the HEAD before the claim: as if that HEAD had missed it
                raise _InputMissing("the input object does not exist (any more)") from None
            raise
        body = response["Body"]
        if int(response.get("ContentLength") or 0) > s.max_ciphertext_bytes:  # replaced since the HEAD
            body.close()
            raise _Permanent(ErrorCode.TOO_LARGE, f"input is larger than the limit of {s.max_ciphertext_bytes} bytes")
        try:
            data: bytes = body.read(s.max_ciphertext_bytes + 1)
        finally:
            body.close()
        if len(data) > s.max_ciphertext_bytes:  # replaced by a bigger object since the HEAD
            raise _Permanent(ErrorCode.TOO_LARGE, f"input is larger than the limit of {s.max_ciphertext_bytes} bytes")
        if not data:
            raise _Permanent(ErrorCode.DECRYPT_FAILED, "input object is empty")
        return data

    def _write_result(self, ref: JobRef, reply: JobSuccess) -> bool:
        """Attestation (addressed by the result's digest), then the result if none exists yet.

        False when another run of the same job committed its result first: this run's result is
        discarded (its attestation stays behind under its own digest, bound to nothing stored)."""
        s = self.settings
        digest = result_sha256(reply.result_ciphertext)
        metadata = {
            "ccc-job": ref.job_id,
            "ccc-tenant": ref.tenant,
            "ccc-model-sha256": reply.model_sha256,
            "ccc-pcr0": reply.pcr0_hex,
            **inject(),  # traceparent of the job span: job_events links its span to this trace
        }
        # Attestation first: the result object is the completion signal, so when it exists the
        # document that proves it is already there.
        self._s3.put_object(Bucket=s.results_bucket, Key=attestation_key(ref, digest), Body=reply.attestation_document,
                            ContentType="application/cbor", Metadata={**metadata, "ccc-kind": "attestation"})
        try:
            self._s3.put_object(Bucket=s.results_bucket, Key=ref.result_key, Body=reply.result_ciphertext,
                                ContentType="application/octet-stream", IfNoneMatch="*",
                                Metadata={**metadata, "ccc-kind": "result", RESULT_SHA256_METADATA: digest})
        except Exception as exc:
            if not _is_precondition_failed(exc):
                raise
            log_event(_LOG, logging.WARNING, "duplicate run discarded: the job already has a result",
                      job_id=ref.job_id, tenant=ref.tenant, code=client_error_code(exc))
            return False
        log_event(_LOG, logging.INFO, "result written", job_id=ref.job_id, tenant=ref.tenant,
                  output_bytes=len(reply.result_ciphertext), decrypt_ms=reply.metrics.decrypt_ms,
                  infer_ms=reply.metrics.infer_ms, encrypt_ms=reply.metrics.encrypt_ms,
                  attest_ms=reply.metrics.attest_ms)
        return True

    def _record_failure(self, ref: JobRef, error: ErrorInfo) -> JobOutcome:
        record = FailureRecord.for_job(ref, str(error.code), error.reason)
        try:  # the first record of a job stands: a duplicate run never rewrites why it failed
            self._s3.put_object(Bucket=self.settings.results_bucket, Key=ref.failure_key,
                                Body=encode_failure_record(record), ContentType="application/json", IfNoneMatch="*",
                                Metadata={"ccc-job": ref.job_id, "ccc-tenant": ref.tenant, "ccc-kind": "failure",
                                          **inject()})
        except Exception as exc:
            if not _is_precondition_failed(exc):
                raise
            return JobOutcome(MessageOutcome.ALREADY_DONE, "duplicate_run")
        log_event(_LOG, logging.WARNING, "job failed permanently", job_id=ref.job_id, tenant=ref.tenant,
                  code=error.code, reason=error.reason[:200])
        return JobOutcome(MessageOutcome.FAILED, error.code)


# Outcomes that are no failure of the job: the message comes back at the time the outcome names.
_COME_BACK_LATER = (MessageOutcome.LEASED, MessageOutcome.WAITING)


def _receive_count(message: dict[str, Any]) -> int:
    try:
        return max(1, int((message.get("Attributes") or {}).get("ApproximateReceiveCount", 1)))
    except (TypeError, ValueError):
        return 1

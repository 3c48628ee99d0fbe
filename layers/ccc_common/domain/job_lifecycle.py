"""Job lifecycle from S3 events: what the job-events Lambda does, without the Lambda.

inbox ``jobs/<t>/<j>.ccc`` created          -> queued (and wake the scaler)
results ``results/<t>/<j>.ccc`` created     -> done (the parent writes the ``.att`` first)
results ``results/<t>/<j>.failed.json``     -> failed, with the reason the record gives

Every transition goes through ``JobStore.apply`` (rank rule), so duplicate and out-of-order
deliveries are harmless. A tenant mismatch is refused and reported, never merged; the failure
record is read as metadata only (bounded size, JSON, a reason string).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from ccc_common.contracts.failure_record import MAX_FAILURE_RECORD_BYTES, DocumentError, decode_failure_record
from ccc_common.contracts.work_message import EventError, Ignored, S3ObjectCreated, parse_eventbridge_s3
from ccc_common.domain.events import JobObject, ObjectKind, classify_object
from ccc_common.domain.fleet_ports import ScalerWaker
from ccc_common.domain.job_store import JobStore
from ccc_common.domain.jobs import JobEvent, JobStatus, TenantMismatch, clip_error
from ccc_common.domain.storage_ports import FailureRecordReader
from ccc_core.identity import JobRef

UNREADABLE_FAILURE = "the enclave rejected the job (failure record unreadable)"


def reason_from_failure_record(raw: bytes, job: JobRef | None = None) -> str:
    """``<code>: <reason>`` from a failure record (`ccc_common.contracts.failure_record`, the format
    the parent agent writes). A record that does not decode still fails the job, with a reason
    that says why the record was not used (too large, not JSON, unknown format, another job...)."""
    try:
        record = decode_failure_record(raw, job=job)
    except DocumentError as exc:
        return clip_error(f"the enclave rejected the job (failure record unusable: {exc.reason})")
    return clip_error(record.summary())


class EventOutcome(StrEnum):
    APPLIED = "applied"  # the job moved forward
    STALE = "stale"  # duplicate or out of order: the job already had this or a later status
    IGNORED = "ignored"  # not a job object (attestation doc, other prefix, other bucket...)
    REFUSED = "refused"  # tenant in the key does not own the job id


@dataclass(frozen=True)
class LifecycleResult:
    outcome: EventOutcome
    detail: str
    ref: JobRef | None = None
    kind: ObjectKind | None = None
    status: JobStatus | None = None
    woke_scaler: bool = False
    wake_error: str | None = None


class JobLifecycle:
    def __init__(
        self,
        store: JobStore,
        *,
        inbox_bucket: str,
        results_bucket: str,
        failure_reader: FailureRecordReader,
        waker: ScalerWaker,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._inbox = inbox_bucket
        self._results = results_bucket
        self._reader = failure_reader
        self._waker = waker
        self._clock = clock

    def handle_eventbridge(self, event: Any) -> LifecycleResult:
        """Raises EventError for an event that is not a well-formed EventBridge S3 event."""
        parsed = parse_eventbridge_s3(event)
        if isinstance(parsed, Ignored):
            return LifecycleResult(outcome=EventOutcome.IGNORED, detail=parsed.reason)
        return self.on_object_created(parsed)

    def on_object_created(self, obj: S3ObjectCreated) -> LifecycleResult:
        classified = classify_object(obj, inbox_bucket=self._inbox, results_bucket=self._results)
        if isinstance(classified, Ignored):
            return LifecycleResult(outcome=EventOutcome.IGNORED, detail=classified.reason)
        event = self._event_for(classified)
        try:
            transition = self._store.apply(event)
        except TenantMismatch as exc:
            return LifecycleResult(
                outcome=EventOutcome.REFUSED, detail=str(exc), ref=classified.ref, kind=classified.kind
            )
        result = LifecycleResult(
            outcome=EventOutcome.APPLIED if transition.applied else EventOutcome.STALE,
            detail=f"{classified.kind.value} -> {transition.job.status.value}",
            ref=classified.ref,
            kind=classified.kind,
            status=transition.job.status,
        )
        if classified.kind is ObjectKind.INPUT and transition.applied:
            try:
                self._waker.wake(classified.ref.job_id)
            except Exception as exc:  # the job is recorded; the schedule still scales the fleet
                return _with(result, wake_error=f"{exc.__class__.__name__}: {str(exc)[:200]}")
            return _with(result, woke_scaler=True)
        return result

    def _event_for(self, classified: JobObject) -> JobEvent:
        at = classified.obj.event_time or self._clock()
        ref = classified.ref
        if classified.kind is ObjectKind.INPUT:
            return JobEvent.queued(ref, at)
        if classified.kind is ObjectKind.RESULT:
            return JobEvent.done(ref, at)
        try:
            raw = self._reader.read(classified.obj.bucket, classified.obj.key)
        except Exception:  # missing/denied: still a failure, with a generic reason
            return JobEvent.failed(ref, at, UNREADABLE_FAILURE)
        return JobEvent.failed(ref, at, reason_from_failure_record(raw, ref))


def _with(result: LifecycleResult, **changes: Any) -> LifecycleResult:
    return replace(result, **changes)


__all__ = [
    "MAX_FAILURE_RECORD_BYTES",
    "EventError",
    "EventOutcome",
    "JobLifecycle",
    "LifecycleResult",
    "reason_from_failure_record",
]

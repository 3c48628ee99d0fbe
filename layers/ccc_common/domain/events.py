"""What an S3 object means for its job: the classification the job-events Lambda applies.

The envelopes the events arrive in (EventBridge, S3 notification, SNS), their versions and their
parsing are the work-message contract's (`ccc_common.contracts.work_message`); this module only
decides, for a created object, whether it queues, completes or fails a job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ccc_common.contracts.work_message import Ignored, S3ObjectCreated
from ccc_core.identity import (
    ATTESTATION_SUFFIX,
    FAILURE_SUFFIX,
    JobRef,
    NamingError,
    parse_failure_key,
    parse_inbox_key,
    parse_result_key,
)


class ObjectKind(StrEnum):
    INPUT = "input"  # inbox: jobs/<tenant>/<job>.ccc -> queued
    RESULT = "result"  # results: results/<tenant>/<job>.ccc -> done
    FAILURE_RECORD = "failure-record"  # results: results/<tenant>/<job>.failed.json -> failed


@dataclass(frozen=True)
class JobObject:
    kind: ObjectKind
    ref: JobRef
    obj: S3ObjectCreated = field(repr=False)


def classify_object(obj: S3ObjectCreated, *, inbox_bucket: str, results_bucket: str) -> JobObject | Ignored:
    """What a created object means for its job. Keys outside the scheme are ignored, not errors:
    the buckets may legitimately hold other objects (e.g. attestation documents)."""
    if not obj.canonical:  # a job key that arrived escaped was not written by S3: never a job's
        return Ignored(f"object key {obj.key[:200]!r} arrived escaped; S3 escapes no job key")
    if obj.bucket == inbox_bucket:
        try:
            return JobObject(kind=ObjectKind.INPUT, ref=parse_inbox_key(obj.key), obj=obj)
        except NamingError as exc:
            return Ignored(f"inbox object outside the key scheme: {exc}")
    if obj.bucket == results_bucket:
        if obj.key.endswith(ATTESTATION_SUFFIX):
            return Ignored("attestation document (the job completes with its result object)")
        if obj.key.endswith(FAILURE_SUFFIX):
            try:
                return JobObject(kind=ObjectKind.FAILURE_RECORD, ref=parse_failure_key(obj.key), obj=obj)
            except NamingError as exc:
                return Ignored(f"results object outside the key scheme: {exc}")
        try:
            return JobObject(kind=ObjectKind.RESULT, ref=parse_result_key(obj.key), obj=obj)
        except NamingError as exc:
            return Ignored(f"results object outside the key scheme: {exc}")
    return Ignored(f"object in unrelated bucket {obj.bucket[:63]!r}")

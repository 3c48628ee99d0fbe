"""Dead letters: archive the message, then mark its jobs failed. Nothing is dropped silently.

A message reaches the dead-letter queue after ``max_receive_count`` deliveries that never ended in
a delete: the parent agent crashed, timed out, or could not understand it. This module:
  1. archives the message (body + SQS attributes) as JSON to
     ``s3://<ARCHIVE_BUCKET>/dead-letters/<yyyy>/<mm>/<dd>/<message id>.json``. The archive bucket is
     the stage's *artifacts* bucket by default (``ResourceNames.artifacts_bucket``): it is private,
     encrypted and retained, and the body of a work message is S3 event metadata (bucket, key,
     size), never image data, so it may live there. The CDK helper may point ARCHIVE_BUCKET elsewhere.
  2. marks each job the message names ``failed`` with a reason (rank rule: a job that meanwhile
     got its result stays ``done``).
Only after both succeed may the message be deleted (the Lambda's SQS batch reports the others as
failures, so they stay in the queue and are retried). A body that cannot be parsed is archived
and reported, not retried forever.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ccc_common.contracts.work_message import Ignored, WorkMessageError, parse_work_message
from ccc_common.domain.job_store import JobStore
from ccc_common.domain.jobs import JobEvent, TenantMismatch, format_timestamp
from ccc_common.domain.storage_ports import Archive
from ccc_common.errors import CommonError
from ccc_core.identity import JobRef

ARCHIVE_PREFIX = "dead-letters/"
REASON_ATTRIBUTE = "ccc-failure-reason"  # optional message attribute a producer may set
_SAFE_ID = re.compile(r"^[A-Za-z0-9-]{1,128}$")
_INT = re.compile(r"^\d{1,9}$")


class DeadLetterError(CommonError, ValueError):
    """A record that is not an SQS message at all (no id or no body)."""


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    body: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    message_attributes: Mapping[str, str] = field(default_factory=dict)
    source_arn: str | None = None

    @classmethod
    def from_lambda_record(cls, record: Mapping[str, Any]) -> DeadLetter:
        """A record of a Lambda SQS event (``Records[i]``)."""
        message_id, body = record.get("messageId"), record.get("body")
        if not isinstance(message_id, str) or not message_id or not isinstance(body, str):
            raise DeadLetterError("SQS record without messageId or body")
        attributes = record.get("attributes") if isinstance(record.get("attributes"), Mapping) else {}
        raw_message_attributes = record.get("messageAttributes")
        message_attributes: dict[str, str] = {}
        if isinstance(raw_message_attributes, Mapping):
            for name, value in raw_message_attributes.items():
                if isinstance(value, Mapping) and isinstance(value.get("stringValue"), str):
                    message_attributes[str(name)] = value["stringValue"]
        source = record.get("eventSourceARN")
        return cls(
            message_id=message_id,
            body=body,
            attributes={str(k): str(v) for k, v in (attributes or {}).items()},
            message_attributes=message_attributes,
            source_arn=source if isinstance(source, str) else None,
        )

    @property
    def receive_count(self) -> int | None:
        raw = self.attributes.get("ApproximateReceiveCount", "")
        return int(raw) if _INT.fullmatch(raw) else None


@dataclass(frozen=True)
class DeadLetterResult:
    archive_key: str
    failed: tuple[JobRef, ...] = ()  # jobs moved to failed by this message
    unchanged: tuple[JobRef, ...] = ()  # already failed/done
    refused: tuple[JobRef, ...] = ()  # tenant in the key does not own the job id
    unparsable: str | None = None  # why the body names no job (it is archived anyway)


def archive_key(message_id: str, at: datetime) -> str:
    safe = message_id if _SAFE_ID.fullmatch(message_id) else _digest(message_id)
    return f"{ARCHIVE_PREFIX}{at:%Y/%m/%d}/{safe}.json"


def _digest(text: str) -> str:
    return "sha256-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def failure_reason(letter: DeadLetter, max_receive_count: int) -> str:
    reason = f"not completed after {max_receive_count} delivery attempts (moved to the dead-letter queue)"
    extra = letter.message_attributes.get(REASON_ATTRIBUTE)
    if extra:
        reason += f": {extra}"
    return reason


class DeadLetterHandler:
    def __init__(
        self,
        store: JobStore,
        archive: Archive,
        *,
        inbox_bucket: str | None,
        max_receive_count: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._archive = archive
        self._inbox = inbox_bucket
        self._max_receive = max_receive_count
        self._clock = clock

    def handle(self, letter: DeadLetter) -> DeadLetterResult:
        """Archive, then fail the jobs. Raises on storage errors so the message is retried."""
        now = self._clock()
        key = archive_key(letter.message_id, now)
        document = {
            "message_id": letter.message_id,
            "archived_at": format_timestamp(now),
            "source_arn": letter.source_arn,
            "receive_count": letter.receive_count,
            "attributes": dict(letter.attributes),
            "message_attributes": dict(letter.message_attributes),
            "body": letter.body,
        }
        self._archive.put(key, json.dumps(document, sort_keys=True).encode())
        try:
            parsed = parse_work_message(letter.body, inbox_bucket=self._inbox)
        except WorkMessageError as exc:
            return DeadLetterResult(archive_key=key, unparsable=str(exc))
        if isinstance(parsed, Ignored):
            return DeadLetterResult(archive_key=key, unparsable=f"ignored: {parsed.reason}")
        reason = failure_reason(letter, self._max_receive)
        failed: list[JobRef] = []
        unchanged: list[JobRef] = []
        refused: list[JobRef] = []
        for ref in parsed:
            try:
                transition = self._store.apply(
                    JobEvent.failed(ref, now, self._with_last_error(ref, reason), attempts=self._max_receive)
                )
            except TenantMismatch:
                refused.append(ref)
                continue
            (failed if transition.applied else unchanged).append(ref)
        return DeadLetterResult(
            archive_key=key, failed=tuple(failed), unchanged=tuple(unchanged), refused=tuple(refused)
        )

    def _with_last_error(self, ref: JobRef, reason: str) -> str:
        """The reason, naming the last attempt's error code when a worker recorded one: "moved to the
        dead-letter queue" alone does not tell a tenant that KMS denied the key or that nothing was
        ever uploaded."""
        job = self._store.get(ref.job_id)
        if job is None or job.tenant != ref.tenant or not job.last_error:
            return reason
        return f"{reason}; last error: {job.last_error}"

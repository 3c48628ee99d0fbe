"""The failure record: ``results/<tenant>/<job>.failed.json``, why a job ended for good.

Writer: the parent agent (`enclave_worker.parent.agent`), when the enclave rejects a job
permanently or the input is missing or too large. Readers: the job-events Lambda
(`ccc_common.domain.job_lifecycle`, which copies the reason into the jobs table) and the client
without a jobs API (`ccc.client.job_runner`, which shows it to the tenant). The record is metadata
only (ids, an error code, a reason that never quotes plaintext), which is why the parent, outside
the enclave, may write it.

Wire shape (``ccc-failure-record/1``), JSON with sorted keys::

    {"code": "context_mismatch", "format": "ccc-failure-record/1", "job_id": "<32 hex>",
     "reason": "...", "status": "failed", "tenant": "<tenant>"}

Readers refuse an unknown ``format``, unknown fields, wrong types, and a record that names another
job than its key; each then still treats the job as failed, with a generic reason.
"""

from __future__ import annotations

import json
from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints

from ccc_core.identity import JobRef
from ccc_core.versioned import DocumentError, JobId, StrictModel, TenantId, decode_versioned

FAILURE_RECORD_FORMAT: Final = "ccc-failure-record/1"
MAX_FAILURE_RECORD_BYTES = 64 * 1024
MAX_REASON_CHARS = 1024  # the enclave's own reasons are at most 512 (ccc_enclave.protocol)

# The enclave's error codes (ccc_enclave.protocol.ErrorCode: snake_case) and the parent's own.
ErrorCodeText = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


class FailureRecord(StrictModel):
    format: Literal["ccc-failure-record/1"] = FAILURE_RECORD_FORMAT
    job_id: JobId
    tenant: TenantId
    status: Literal["failed"] = "failed"
    code: ErrorCodeText
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)

    @classmethod
    def for_job(cls, job: JobRef, code: str, reason: str) -> FailureRecord:
        """The record of ``job``; the reason is normalised and clipped so writing never fails on it."""
        text = " ".join(reason.split()) or "no reason given"
        if len(text) > MAX_REASON_CHARS:
            text = text[: MAX_REASON_CHARS - 3] + "..."
        return cls(job_id=job.job_id, tenant=job.tenant, code=code, reason=text)

    @property
    def job(self) -> JobRef:
        return JobRef(tenant=self.tenant, job_id=self.job_id)

    def summary(self) -> str:
        """What a person is shown: ``<code>: <reason>``."""
        return f"{self.code}: {self.reason}"


def encode_failure_record(record: FailureRecord) -> bytes:
    return json.dumps(record.model_dump(mode="json"), sort_keys=True).encode()


def decode_failure_record(raw: bytes, *, job: JobRef | None = None) -> FailureRecord:
    """The record in ``raw``; with ``job`` (the job its key names), it must be that job's record.

    Raises DocumentError (``too-large``, ``invalid-json``, ``unknown-format``, ``malformed``,
    ``wrong-job``).
    """
    record = decode_versioned(
        FailureRecord, raw, what="failure record", tag_field="format", known_tag=FAILURE_RECORD_FORMAT,
        max_bytes=MAX_FAILURE_RECORD_BYTES,
    )
    if job is not None and record.job != job:
        raise DocumentError("wrong-job", "the failure record names another job than its object key")
    return record


__all__ = [
    "FAILURE_RECORD_FORMAT",
    "MAX_FAILURE_RECORD_BYTES",
    "DocumentError",
    "FailureRecord",
    "decode_failure_record",
    "encode_failure_record",
]

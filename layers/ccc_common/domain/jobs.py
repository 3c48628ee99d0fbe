"""The job model and its one transition function.

Why a rank and a pure fold: S3 -> EventBridge delivers at least once and in no particular order,
and the jobs table is written by several Lambdas (jobs API, job events, dead letters). If every
writer only ever moves a job to a *higher* rank, the final state does not depend on the order or
the number of deliveries, and a late duplicate can never resurrect a finished job. The DynamoDB
adapter implements exactly this function with a ConditionExpression on ``status_rank``.

Ranks: ``submitted(0) < queued(1) < failed(2) < done(3)``. ``done`` and ``failed`` are terminal for
the lifecycle (no queued/submitted event revives them). ``done`` outranks ``failed`` because a
result object is hard evidence: a job can reach the dead-letter queue (failed) after an attempt
that did write its attested result (e.g. its visibility timeout expired just before the delete),
and then the result is the truth. Without a total order the end state would depend on arrival order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ccc_common.errors import CommonError
from ccc_core.identity import JobRef, validate_job_id, validate_tenant

MAX_ERROR_CHARS = 1024
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


# Shown, never stored: a queued job a worker is running under its lease (Job.shown_status).
RUNNING = "running"


class JobStatus(StrEnum):
    SUBMITTED = "submitted"
    QUEUED = "queued"
    FAILED = "failed"
    DONE = "done"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED)


_RANK: Mapping[JobStatus, int] = {
    JobStatus.SUBMITTED: 0,
    JobStatus.QUEUED: 1,
    JobStatus.FAILED: 2,
    JobStatus.DONE: 3,
}


class JobModelError(CommonError, ValueError):
    """An event or stored item that cannot describe a valid job."""


class TenantMismatch(JobModelError):
    """An event claims a job that is recorded under another tenant: refused, never merged."""


def format_timestamp(moment: datetime) -> str:
    """Fixed-width UTC text: sorts lexicographically in time order (the GSI sort key relies on it)."""
    if moment.tzinfo is None:
        raise JobModelError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime(_TS_FORMAT)


def parse_timestamp(text: str) -> datetime:
    try:
        return datetime.strptime(text, _TS_FORMAT).replace(tzinfo=UTC)
    except (TypeError, ValueError) as exc:
        raise JobModelError(f"invalid timestamp {text!r}: expected {_TS_FORMAT}") from exc


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC)


def clip_error(reason: str) -> str:
    """Reasons are metadata shown to the tenant; cap them so an item never grows unbounded."""
    text = " ".join(str(reason).split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


MAX_ERROR_CODE_CHARS = 64
_ERROR_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def clip_error_code(code: str) -> str:
    """An error code (``kms_access_denied``, an S3 error code...) as kept on a job: a short token,
    or ``unknown`` for anything else, since it ends up in a reason shown to the tenant."""
    return code if _ERROR_CODE.fullmatch(code) else "unknown"


class _JobIdentity(BaseModel):
    """The (tenant, job id) pair every job record and event carries, validated by the naming rules.

    Why a base class: rows and events must accept exactly the same names (the rules in
    ``ccc_common.domain.naming``), so both take them from this one definition.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str
    tenant: str

    @field_validator("job_id")
    @classmethod
    def _job_id(cls, value: str) -> str:
        return validate_job_id(value)

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        return validate_tenant(value)

    @property
    def ref(self) -> JobRef:
        return JobRef(tenant=self.tenant, job_id=self.job_id)


class Job(_JobIdentity):
    """One row of the jobs table."""

    status: JobStatus
    created_at: datetime
    updated_at: datetime
    attempts: int = Field(default=0, ge=0)
    result_key: str | None = None
    error: str | None = Field(default=None, max_length=MAX_ERROR_CHARS)
    # The error code of the last attempt a worker will retry (written with the job lease,
    # ccc_common.domain.job_leases); the dead-letter handler puts it into the failure reason.
    last_error: str | None = Field(default=None, max_length=MAX_ERROR_CODE_CHARS)
    ttl: int = Field(ge=0, description="epoch seconds; DynamoDB TTL deletes the item after it")
    # Until when a worker's lease on the job runs (epoch ms; ccc_common.domain.job_leases), read-only
    # here: a queued job under an unexpired lease is shown as `running`.
    lease_until_ms: int | None = Field(default=None, ge=0)

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _aware(value)

    def shown_status(self, now: datetime | None = None) -> str:
        """The status a tenant sees: the stored one, except `running` for a queued job a worker
        holds an unexpired lease on (what a tenant waiting for a fleet to wake wants to know)."""
        if (
            self.status is JobStatus.QUEUED
            and now is not None
            and self.lease_until_ms is not None
            and self.lease_until_ms > int(_aware(now).timestamp() * 1000)
        ):
            return RUNNING
        return self.status.value

    def public_view(self, now: datetime | None = None) -> dict[str, Any]:
        """What the jobs API shows the owning tenant (metadata only)."""
        return {
            "job_id": self.job_id,
            "tenant": self.tenant,
            "status": self.shown_status(now),
            "created_at": format_timestamp(self.created_at),
            "updated_at": format_timestamp(self.updated_at),
            "attempts": self.attempts,
            "error": self.error,
        }


class JobEvent(_JobIdentity):
    """One observation about a job: "it reached status X at time T" (plus what X carries)."""

    status: JobStatus
    at: datetime
    attempts: int | None = Field(default=None, ge=0)
    error: str | None = None

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _aware(value)

    @field_validator("error")
    @classmethod
    def _clip(cls, value: str | None) -> str | None:
        return None if value is None else clip_error(value)

    @classmethod
    def submitted(cls, ref: JobRef, at: datetime) -> JobEvent:
        return cls(job_id=ref.job_id, tenant=ref.tenant, status=JobStatus.SUBMITTED, at=at)

    @classmethod
    def queued(cls, ref: JobRef, at: datetime) -> JobEvent:
        return cls(job_id=ref.job_id, tenant=ref.tenant, status=JobStatus.QUEUED, at=at)

    @classmethod
    def done(cls, ref: JobRef, at: datetime) -> JobEvent:
        return cls(job_id=ref.job_id, tenant=ref.tenant, status=JobStatus.DONE, at=at)

    @classmethod
    def failed(cls, ref: JobRef, at: datetime, reason: str, attempts: int | None = None) -> JobEvent:
        return cls(
            job_id=ref.job_id, tenant=ref.tenant, status=JobStatus.FAILED, at=at, error=reason, attempts=attempts
        )


@dataclass(frozen=True)
class Transition:
    """The job after an event, and whether the event changed it (False: duplicate or stale)."""

    job: Job
    applied: bool


def ttl_for(created_at: datetime, ttl_days: int) -> int:
    return int((created_at + timedelta(days=ttl_days)).timestamp())


def new_job(ref: JobRef, at: datetime, ttl_days: int) -> Job:
    """The record POST /jobs writes before the client uploads anything."""
    return Job(
        job_id=ref.job_id,
        tenant=ref.tenant,
        status=JobStatus.SUBMITTED,
        created_at=at,
        updated_at=at,
        ttl=ttl_for(at, ttl_days),
    )


def apply_event(job: Job | None, event: JobEvent, ttl_days: int) -> Transition:
    """The one transition function: move to a strictly higher rank, or change nothing.

    ``job`` is None when no record exists yet (the first event creates it, whatever its status:
    e.g. a result can be observed before the inbox event was processed). Fields that belong to
    the new status are set (result/attestation keys for done, reason and attempts for failed);
    everything else is kept. Equal or lower ranks are no-ops, so duplicates are harmless.
    """
    if job is None:
        base = Job(
            job_id=event.job_id,
            tenant=event.tenant,
            status=JobStatus.SUBMITTED,
            created_at=event.at,
            updated_at=event.at,
            ttl=ttl_for(event.at, ttl_days),
        )
        if event.status is JobStatus.SUBMITTED:
            return Transition(job=base, applied=True)
        return Transition(job=_advance(base, event), applied=True)
    if job.job_id != event.job_id:
        raise JobModelError(f"event for job {event.job_id} applied to job {job.job_id}")
    if job.tenant != event.tenant:
        raise TenantMismatch(f"job {job.job_id} belongs to another tenant; event from tenant {event.tenant!r} refused")
    if event.status.rank <= job.status.rank:
        return Transition(job=job, applied=False)
    return Transition(job=_advance(job, event), applied=True)


def _advance(job: Job, event: JobEvent) -> Job:
    # updated_at is the time of the event that set the current status (what the DynamoDB adapter
    # writes too), not the wall clock of whichever Lambda happened to process it.
    changes: dict[str, Any] = {"status": event.status, "updated_at": event.at}
    if event.status is JobStatus.DONE:
        ref = event.ref
        changes.update(result_key=ref.result_key, error=None)
    elif event.status is JobStatus.FAILED:
        changes["error"] = event.error or "failed (no reason recorded)"
        if event.attempts is not None:
            changes["attempts"] = event.attempts
    return job.model_copy(update=changes)

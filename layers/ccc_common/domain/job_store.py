"""The job store port: what the job lifecycle, the dead-letter handler and the jobs API need from
wherever jobs are kept, and the paging contract every implementation honours.

Why a port in the domain: the rules (rank rule, tenant isolation, newest-first listing) are the
domain's; DynamoDB is one way to keep them (``ccc_common.aws.jobs_dal``), an in-memory fake
(``tests/support``) another. Both encode listing cursors with the functions below, so a cursor
means the same thing whichever store issued it, and the tenant is never taken from a cursor.
"""

from __future__ import annotations

import base64
import binascii
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass

from ccc_common.domain.jobs import Job, JobEvent, JobModelError, Transition, format_timestamp, parse_timestamp
from ccc_common.errors import CommonError
from ccc_core.identity import NamingError, validate_job_id

MAX_PAGE = 100


class JobStoreError(CommonError, RuntimeError):
    """The store could not complete an operation (not a stale event: those are not errors)."""


class JobAlreadyExists(JobStoreError):
    """A create for a job id that is already recorded (a uuid4 collision or a replayed request)."""


class InvalidCursor(CommonError, ValueError):
    """A pagination cursor that was not issued for this tenant's listing."""


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None


class JobStore(ABC):
    """Port for the jobs table; every writer goes through ``apply`` so the rank rule holds."""

    @abstractmethod
    def create(self, job: Job) -> None:
        """Record a new job; raises JobAlreadyExists if the id is taken."""

    @abstractmethod
    def get(self, job_id: str) -> Job | None: ...

    @abstractmethod
    def apply(self, event: JobEvent) -> Transition:
        """Apply one event with the rank rule; raises TenantMismatch for a foreign tenant."""

    @abstractmethod
    def list_for_tenant(self, tenant: str, limit: int = 50, cursor: str | None = None) -> JobPage:
        """The tenant's jobs, newest first."""


def encode_cursor(job: Job) -> str:
    """The cursor after ``job``: its id and creation time, opaque to the caller."""
    raw = json.dumps({"j": job.job_id, "c": format_timestamp(job.created_at)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """-> (job_id, created_at text). The tenant is never taken from the cursor: it is the caller's."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 256:
        raise InvalidCursor("invalid cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        job_id, created = data["j"], data["c"]
        validate_job_id(job_id)
        parse_timestamp(created)
    except (binascii.Error, ValueError, KeyError, TypeError, NamingError, JobModelError) as exc:
        raise InvalidCursor("invalid cursor") from exc
    return job_id, created


def check_limit(limit: int) -> int:
    """A page size every store accepts (1..MAX_PAGE); ValueError otherwise."""
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be an integer between 1 and {MAX_PAGE}")
    return limit

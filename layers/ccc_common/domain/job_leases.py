"""The job lease: at most one worker runs a job's enclave pass at a time, and a dead worker's claim ends.

Why: SQS delivers at least once, and a visibility timeout can lapse while a job runs, so two
workers can hold messages for the same job at once. Before running the enclave a worker claims the
job with a conditional write in the jobs table (``ccc_common.aws.job_leases``): the claim succeeds
only if nobody holds an unexpired lease. A lease has a fixed end rather than a heartbeat, long
enough for one bounded enclave pass; if its holder dies, the next delivery claims it once it ends.
A holder that was merely slow (a "zombie" whose lease ran out) may still finish: its result write
is conditional too (``ccc_common.contracts.result_objects``), so the job's first result stands.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

from ccc_core.identity import JobRef


@dataclass(frozen=True)
class Lease:
    """A granted claim: ``owner`` is unique per claim (not per process: two threads of one worker
    holding duplicates of a job must not share a lease)."""

    job: JobRef
    owner: str
    until: datetime


@dataclass(frozen=True)
class LeaseHeld:
    """A refused claim: another owner holds the job until ``until``."""

    job: JobRef
    until: datetime


class JobLeases(ABC):
    @abstractmethod
    def claim(self, job: JobRef, owner: str, *, now: datetime, until: datetime) -> Lease | LeaseHeld:
        """Take the job's lease if it is free or expired at ``now`` (or already ``owner``'s)."""

    @abstractmethod
    def release(self, lease: Lease, *, last_error: str | None = None) -> None:
        """Give the lease back (only if still held by its owner), so a retry need not wait for it.

        ``last_error``: the error code of an attempt that will be retried, kept on the job so that a
        job which ends in the dead-letter queue says why (``Job.last_error``)."""

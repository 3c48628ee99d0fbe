"""The upload window: until when a job may still receive its input, and what a missing input means.

Why one module: the jobs API (a job read while still ``submitted``) and the parent agent (a work
message whose inbox object does not exist) must agree on when "not uploaded yet" becomes "never
uploaded". Before the window closes a missing input is *not yet*: a work message can precede or
outlive its object (a spurious or duplicated event, an alias), and failing the job then made the
real upload that followed useless. After it closes the job fails in the jobs table only, never
with a failure record in the results bucket, so an upload that still arrives (the tenant role may
PUT directly) completes the job: ``done`` outranks ``failed`` (``ccc_common.domain.jobs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ccc_common.domain.jobs import Job, JobStatus
from ccc_core.identity import JobRef

# The upload URL's lifetime when the stage sets none (``CCC_URL_EXPIRY_S``'s default).
DEFAULT_UPLOAD_URL_EXPIRY_S = 900
# How long after its upload URL expires a job may still receive its upload (one in flight).
UPLOAD_GRACE_S = 300
NEVER_UPLOADED = "never uploaded (the upload window closed)"
INPUT_GONE = "input_missing: the uploaded input was no longer in the inbox when the upload window closed"


def upload_window_closes(created_at: datetime, url_expiry_s: int = DEFAULT_UPLOAD_URL_EXPIRY_S) -> datetime:
    """The moment after which a job created at ``created_at`` is no longer expected to be uploaded."""
    return created_at + timedelta(seconds=url_expiry_s + UPLOAD_GRACE_S)


@dataclass(frozen=True)
class WaitForUpload:
    """Not yet: look again when the window closes (the upload, if it comes, brings its own message)."""

    until: datetime


@dataclass(frozen=True)
class FailMissingInput:
    """The window closed without an input: fail the job (jobs table only) with this reason."""

    reason: str


@dataclass(frozen=True)
class NothingToWaitFor:
    """No job of this tenant with this id (a spurious message), or a job that already ended."""

    why: str


MissingInputVerdict = WaitForUpload | FailMissingInput | NothingToWaitFor


def judge_missing_input(
    job: Job | None, ref: JobRef, *, now: datetime, url_expiry_s: int = DEFAULT_UPLOAD_URL_EXPIRY_S
) -> MissingInputVerdict:
    """What a worker does with a work message whose inbox object does not exist at ``now``.

    ``job`` is the jobs table's record for ``ref.job_id`` (None: no record). A record of another
    tenant is treated as no record: a message naming tenant B's key never touches tenant A's job.
    """
    if job is None or job.tenant != ref.tenant:
        return NothingToWaitFor("no such job")
    if job.status.terminal:
        return NothingToWaitFor(f"the job already ended ({job.status.value})")
    closes = upload_window_closes(job.created_at, url_expiry_s)
    if now < closes:
        return WaitForUpload(until=closes)
    if job.status is JobStatus.SUBMITTED:
        return FailMissingInput(NEVER_UPLOADED)
    return FailMissingInput(INPUT_GONE)

"""The upload window decides when a missing input stops being "not yet" (issue 13 §2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ccc_common.domain.jobs import Job, JobEvent, JobStatus, apply_event, new_job
from ccc_common.domain.upload_window import (
    INPUT_GONE,
    NEVER_UPLOADED,
    UPLOAD_GRACE_S,
    FailMissingInput,
    NothingToWaitFor,
    WaitForUpload,
    judge_missing_input,
    upload_window_closes,
)
from ccc_core.identity import JobRef

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
REF = JobRef("acme", "c" * 32)
EXPIRY = 900


def job(status: JobStatus = JobStatus.SUBMITTED) -> Job:
    base = new_job(REF, CREATED, ttl_days=30)
    if status is JobStatus.SUBMITTED:
        return base
    event = JobEvent(job_id=REF.job_id, tenant=REF.tenant, status=status, at=CREATED, error="x")
    return apply_event(base, event, ttl_days=30).job


@given(
    offset_s=st.integers(min_value=0, max_value=EXPIRY + UPLOAD_GRACE_S - 1),
    status=st.sampled_from([JobStatus.SUBMITTED, JobStatus.QUEUED]),
)
def test_a_missing_input_inside_the_window_is_not_yet(offset_s: int, status: JobStatus) -> None:
    verdict = judge_missing_input(job(status), REF, now=CREATED + timedelta(seconds=offset_s), url_expiry_s=EXPIRY)
    assert verdict == WaitForUpload(until=CREATED + timedelta(seconds=EXPIRY + UPLOAD_GRACE_S))


@given(offset_s=st.integers(min_value=EXPIRY + UPLOAD_GRACE_S, max_value=10**8))
def test_after_the_window_the_job_fails_saying_why(offset_s: int) -> None:
    now = CREATED + timedelta(seconds=offset_s)
    assert judge_missing_input(job(), REF, now=now, url_expiry_s=EXPIRY) == FailMissingInput(NEVER_UPLOADED)
    # Uploaded once (queued) and gone: not "never uploaded".
    assert judge_missing_input(job(JobStatus.QUEUED), REF, now=now, url_expiry_s=EXPIRY) == FailMissingInput(INPUT_GONE)


def test_no_job_another_tenants_job_and_ended_jobs_have_nothing_to_wait_for() -> None:
    assert isinstance(judge_missing_input(None, REF, now=CREATED), NothingToWaitFor)
    other = JobRef("other", REF.job_id)
    assert isinstance(judge_missing_input(job(), other, now=CREATED), NothingToWaitFor)
    for status in (JobStatus.DONE, JobStatus.FAILED):
        assert isinstance(judge_missing_input(job(status), REF, now=CREATED), NothingToWaitFor)


def test_the_window_is_the_url_lifetime_plus_the_grace() -> None:
    assert upload_window_closes(CREATED, 60) == CREATED + timedelta(seconds=60 + UPLOAD_GRACE_S)

"""The job transition rule: order- and duplicate-independent, never backwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc_common.domain.jobs import (
    Job,
    JobEvent,
    JobModelError,
    JobStatus,
    TenantMismatch,
    apply_event,
    format_timestamp,
    new_job,
    parse_timestamp,
)
from ccc_core.identity import JobRef

REF = JobRef(tenant="tenant-a", job_id="0123456789abcdef0123456789abcdef")
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def event(status: JobStatus, minute: int = 0, reason: str = "boom") -> JobEvent:
    at = T0 + timedelta(minutes=minute)
    if status is JobStatus.SUBMITTED:
        return JobEvent.submitted(REF, at)
    if status is JobStatus.QUEUED:
        return JobEvent.queued(REF, at)
    if status is JobStatus.DONE:
        return JobEvent.done(REF, at)
    return JobEvent.failed(REF, at, reason, attempts=3)


def fold(events: list[JobEvent], start: Job | None = None) -> tuple[Job | None, list[JobStatus]]:
    job, seen = start, []
    for item in events:
        job = apply_event(job, item, ttl_days=30).job
        seen.append(job.status)
    return job, seen


events_st = st.lists(
    st.builds(event, st.sampled_from(list(JobStatus)), st.integers(min_value=0, max_value=600)), min_size=1, max_size=12
)


@given(events_st, st.randoms(use_true_random=False))
def test_any_order_and_duplicates_reach_the_same_final_state(events: list[JobEvent], rnd) -> None:
    ordered = sorted(events, key=lambda e: e.status.rank)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    duplicated = shuffled + shuffled[: len(shuffled) // 2]
    final_ordered, _ = fold(ordered)
    final_shuffled, _ = fold(duplicated)
    assert final_ordered is not None and final_shuffled is not None
    assert final_shuffled.status == final_ordered.status == max((e.status for e in events), key=lambda s: s.rank)
    assert final_shuffled.result_key == final_ordered.result_key
    assert (final_shuffled.error is None) == (final_ordered.error is None)


@given(events_st)
def test_status_never_moves_backwards(events: list[JobEvent]) -> None:
    _, seen = fold(events)
    ranks = [status.rank for status in seen]
    assert ranks == sorted(ranks)


@given(events_st)
def test_terminal_states_are_not_revived_by_lifecycle_events(events: list[JobEvent]) -> None:
    job, _ = fold(events)
    assert job is not None
    if job.status.terminal:
        for status in (JobStatus.SUBMITTED, JobStatus.QUEUED):
            transition = apply_event(job, event(status, 999), ttl_days=30)
            assert not transition.applied and transition.job == job


def test_done_outranks_failed_and_clears_the_error() -> None:
    job, _ = fold([event(JobStatus.QUEUED), event(JobStatus.FAILED, 5, "timed out")])
    assert job is not None and job.status is JobStatus.FAILED and job.error == "timed out" and job.attempts == 3
    done = apply_event(job, event(JobStatus.DONE, 6), ttl_days=30)
    assert done.applied and done.job.status is JobStatus.DONE and done.job.error is None
    assert done.job.result_key == REF.result_key
    assert "attestation_key" not in done.job.model_dump()  # addressed by the result's digest, not stored
    assert not apply_event(done.job, event(JobStatus.FAILED, 7), ttl_days=30).applied


def test_first_event_creates_the_record_with_ttl() -> None:
    transition = apply_event(None, event(JobStatus.DONE, 10), ttl_days=30)
    job = transition.job
    assert transition.applied and job.status is JobStatus.DONE
    assert job.created_at == T0 + timedelta(minutes=10)
    assert job.ttl == int((job.created_at + timedelta(days=30)).timestamp())


def test_new_job_is_submitted() -> None:
    job = new_job(REF, T0, ttl_days=90)
    assert job.status is JobStatus.SUBMITTED and job.ref == REF and job.attempts == 0
    assert job.public_view()["created_at"] == "2025-03-01T12:00:00.000000Z"


def test_foreign_tenant_is_refused() -> None:
    job = new_job(REF, T0, ttl_days=30)
    intruder = JobEvent.done(JobRef(tenant="tenant-b", job_id=REF.job_id), T0)
    with pytest.raises(TenantMismatch):
        apply_event(job, intruder, ttl_days=30)


def test_event_validation() -> None:
    with pytest.raises(ValueError):
        JobEvent(job_id="not-hex", tenant="tenant-a", status=JobStatus.QUEUED, at=T0)
    with pytest.raises(ValueError):
        JobEvent(job_id=REF.job_id, tenant="Tenant_A", status=JobStatus.QUEUED, at=T0)
    with pytest.raises(ValueError):
        JobEvent(job_id=REF.job_id, tenant="tenant-a", status=JobStatus.QUEUED, at=datetime(2025, 1, 1))  # naive
    long = JobEvent.failed(REF, T0, "x" * 5000)
    assert long.error is not None and len(long.error) == 1024


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))
def test_timestamps_round_trip_and_sort_like_time(moment: datetime) -> None:
    text = format_timestamp(moment)
    assert parse_timestamp(text) == moment
    later = format_timestamp(moment + timedelta(microseconds=1))
    assert later > text


def test_bad_timestamp_is_a_model_error() -> None:
    with pytest.raises(JobModelError):
        parse_timestamp("yesterday")

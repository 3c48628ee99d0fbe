"""An in-memory job store with the DynamoDB adapter's semantics (``tests/integration/test_fn_jobs_store.py``
runs the same contract against both)."""

from __future__ import annotations

import threading

from ccc_common.domain.job_store import (
    JobAlreadyExists,
    JobPage,
    JobStore,
    check_limit,
    decode_cursor,
    encode_cursor,
)
from ccc_common.domain.jobs import Job, JobEvent, Transition, apply_event, format_timestamp
from ccc_core.identity import validate_tenant


class InMemoryJobStore(JobStore):
    def __init__(self, ttl_days: int = 30) -> None:
        self._ttl_days = ttl_days
        self._items: dict[str, Job] = {}
        self._lock = threading.Lock()

    def create(self, job: Job) -> None:
        with self._lock:
            if job.job_id in self._items:
                raise JobAlreadyExists(f"job {job.job_id} already exists")
            self._items[job.job_id] = job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._items.get(job_id)

    def apply(self, event: JobEvent) -> Transition:
        with self._lock:
            transition = apply_event(self._items.get(event.job_id), event, self._ttl_days)
            if transition.applied:
                self._items[event.job_id] = transition.job
            return transition

    def list_for_tenant(self, tenant: str, limit: int = 50, cursor: str | None = None) -> JobPage:
        validate_tenant(tenant)
        check_limit(limit)
        with self._lock:
            mine = [job for job in self._items.values() if job.tenant == tenant]
        mine.sort(key=lambda job: (format_timestamp(job.created_at), job.job_id), reverse=True)
        if cursor is not None:
            job_id, created = decode_cursor(cursor)
            mine = [job for job in mine if (format_timestamp(job.created_at), job.job_id) < (created, job_id)]
        page = mine[:limit]
        next_cursor = encode_cursor(page[-1]) if len(mine) > limit else None
        return JobPage(jobs=page, next_cursor=next_cursor)

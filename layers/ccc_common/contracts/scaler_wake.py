"""The wake-up event job-events sends the scaler (and the local stack imitates).

Why a contract: the sender (``ccc_common.aws.fleet_adapters.LambdaScalerWaker``, the local
lambdas runner) and the reader (the scaler handler, through ``wake_hint``) are different
processes; the event shape is defined here once, next to the code that reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WAKE_SOURCE = "ccc.job-events"
MAX_WAKE_HINT = 10_000


def wake_payload(job_id: str, pending_jobs: int = 1) -> dict[str, Any]:
    return {"source": WAKE_SOURCE, "detail-type": "Job Arrived", "detail": {"job_id": job_id, "pending": pending_jobs}}


def wake_hint(event: Any) -> int:
    """Arrivals announced by a wake-up event (0 for a schedule tick or anything else).

    Why a hint: the inbox event reaches job-events and the work queue in parallel, so when the
    scaler is woken the message may not be visible in SQS yet; without the hint the first job
    would wait for the next tick, which is exactly what waking is meant to avoid.
    """
    if not isinstance(event, Mapping) or event.get("source") != WAKE_SOURCE:
        return 0
    detail = event.get("detail")
    pending = detail.get("pending") if isinstance(detail, Mapping) else None
    if isinstance(pending, bool) or not isinstance(pending, int) or pending < 0:
        return 0
    return min(pending, MAX_WAKE_HINT)

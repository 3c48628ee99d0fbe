"""What happened to every job of a chaos run: the counts `make chaos` reports and judges.

Why apart from the runner: the verdict (which outcomes fail the run) is the contract of the chaos
suite and is tested without a stack (tests/unit/test_chaos_tally.py); the runner only observes.

Per job the runner records what the tenant's client finally saw (done and verified, done and not
verified, failed, or nothing), the result digest it saw first and the one stored at the end, and
how many enclave passes ran it (from the enclaves' logs). From these:

* lost: no result and no failure by the deadline (nothing was ever reported: the worst outcome);
* torn: done, but the client cannot verify the result against its attestation;
* double-visible: the stored result changed after the client had seen one (two runs both visible);
* unexpected: a good image that failed or a bad image that counted cats: a failure that outlived
  its cause, or a check that let something through;
* run-twice: more than one completed enclave pass (allowed, never visible: the first result stands;
  it measures how often leases and the first-result-wins write had to act).

The run fails on any lost, torn, double-visible or unexpected job.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ccc_core.identity import JobRef

# Enclave log events (ccc_enclave.pipeline) of a pass that produced the job's outcome: a result, or
# a permanent failure. A retryable failure (KMS unreachable, say) or "job refused: busy" is no pass.
JOB_DONE_EVENT = "job done"
JOB_FAILED_EVENT = "job failed"


@dataclass
class TrackedJob:
    ref: JobRef
    scenario: str
    bad_image: bool
    status: str = "pending"  # pending | done | failed: what the tenant's client last saw
    verified: bool = False
    error: str | None = None
    first_digest: str | None = None  # the result's SHA-256 when the client first saw it done
    final_digest: str | None = None  # the stored result's SHA-256 at the end of the run
    enclave_passes: int = 0

    @property
    def lost(self) -> bool:
        return self.status == "pending"

    @property
    def torn(self) -> bool:
        return self.status == "done" and not self.verified

    @property
    def double_visible(self) -> bool:
        return self.first_digest is not None and self.final_digest != self.first_digest

    @property
    def unexpected(self) -> bool:
        return (self.status == "failed" and not self.bad_image) or (self.status == "done" and self.bad_image)


@dataclass(frozen=True)
class Tally:
    submitted: int
    done: int
    failed: int
    failed_bad_images: int
    lost: int
    run_twice: int
    torn: int
    double_visible: int
    unexpected: int
    examples: tuple[str, ...] = field(default=())  # a few "<scenario> <job>: <what>" lines for a human
    # Work-queue messages (visible + in flight) when the run ended: with lost jobs, tells "the budget
    # ran out while the stack still had work" (slow, perhaps not lost) from "nothing left to do them".
    backlog_at_end: int = 0

    @property
    def ok(self) -> bool:
        return self.lost == self.torn == self.double_visible == self.unexpected == 0

    def line(self, label: str = "chaos") -> str:
        backlog = (
            f" (the work queue still held {self.backlog_at_end} messages: the budget ran out, perhaps not lost)"
            if self.lost and self.backlog_at_end
            else ""
        )
        return (
            f"{label}: submitted {self.submitted}, done {self.done}, failed {self.failed} "
            f"({self.failed_bad_images} bad images), lost {self.lost}{backlog}, run-twice {self.run_twice}, "
            f"torn {self.torn}, double-visible {self.double_visible}, unexpected {self.unexpected}"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "submitted": self.submitted,
            "done": self.done,
            "failed": self.failed,
            "failed_bad_images": self.failed_bad_images,
            "lost": self.lost,
            "run_twice": self.run_twice,
            "torn": self.torn,
            "double_visible": self.double_visible,
            "unexpected": self.unexpected,
            "backlog_at_end": self.backlog_at_end,
            "ok": self.ok,
            "examples": list(self.examples),
        }


def tally(jobs: Iterable[TrackedJob], *, max_examples: int = 5, backlog_at_end: int = 0) -> Tally:
    jobs = list(jobs)
    examples: list[str] = []
    for job in jobs:
        problem = next((name for name in ("lost", "torn", "double_visible", "unexpected") if getattr(job, name)), None)
        if problem is not None and len(examples) < max_examples:
            detail = f" ({job.error})" if job.error else ""
            examples.append(f"{job.scenario} {job.ref.job_id}: {problem.replace('_', '-')}, {job.status}{detail}")
    return Tally(
        submitted=len(jobs),
        done=sum(job.status == "done" for job in jobs),
        failed=sum(job.status == "failed" for job in jobs),
        failed_bad_images=sum(job.status == "failed" and job.bad_image for job in jobs),
        lost=sum(job.lost for job in jobs),
        run_twice=sum(job.enclave_passes > 1 for job in jobs),
        torn=sum(job.torn for job in jobs),
        double_visible=sum(job.double_visible for job in jobs),
        unexpected=sum(job.unexpected for job in jobs),
        examples=tuple(examples),
        backlog_at_end=backlog_at_end,
    )


def enclave_passes(logs: Iterable[Path]) -> Counter[str]:
    """job id -> enclave passes that produced an outcome, from the enclaves' JSON Lines logs."""
    passes: Counter[str] = Counter()
    for path in logs:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("job_id"), str):
                continue
            event = entry.get("event")
            if event == JOB_DONE_EVENT or (event == JOB_FAILED_EVENT and entry.get("retryable") is False):
                passes[entry["job_id"]] += 1
    return passes

"""The chaos suite's verdict: which outcomes fail `make chaos` (issue 13 §5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccc.evaluation.chaos import killable
from ccc.evaluation.chaos_tally import TrackedJob, enclave_passes, tally
from ccc_core.identity import JobRef


def job(
    index: int,
    status: str,
    *,
    bad: bool = False,
    verified: bool = True,
    first: str | None = "d1",
    final: str | None = "d1",
    passes: int = 1,
) -> TrackedJob:
    tracked = TrackedJob(
        ref=JobRef("tenant-a", f"{index:032x}"),
        scenario="s",
        bad_image=bad,
        status=status,
        verified=verified and status == "done",
        enclave_passes=passes,
    )
    if status == "done":
        tracked.first_digest, tracked.final_digest = first, final
    return tracked


def test_a_clean_run_passes_and_counts_every_outcome() -> None:
    result = tally([job(1, "done"), job(2, "done", passes=2), job(3, "failed", bad=True)])
    assert result.ok
    assert (result.submitted, result.done, result.failed, result.failed_bad_images, result.run_twice) == (3, 2, 1, 1, 1)
    assert result.line() == (
        "chaos: submitted 3, done 2, failed 1 (1 bad images), lost 0, run-twice 1, torn 0, "
        "double-visible 0, unexpected 0"
    )


@pytest.mark.parametrize(
    ("tracked", "counter"),
    [
        (job(1, "pending"), "lost"),
        (job(1, "done", verified=False), "torn"),
        (job(1, "done", final="d2"), "double_visible"),
        (job(1, "done", final=None), "double_visible"),  # the result vanished after it was seen
        (job(1, "failed"), "unexpected"),  # a good image failed: a failure outlived its cause
        (job(1, "done", bad=True), "unexpected"),  # a bad image counted cats
    ],
)
def test_each_fatal_outcome_fails_the_run(tracked: TrackedJob, counter: str) -> None:
    result = tally([job(0, "done"), tracked])
    assert getattr(result, counter) == 1 and not result.ok
    assert result.examples and tracked.ref.job_id in result.examples[0]


def test_running_twice_alone_does_not_fail_the_run() -> None:
    assert tally([job(1, "done", passes=3)]).ok


def test_enclave_passes_count_outcomes_not_retries(tmp_path: Path) -> None:
    log = tmp_path / "enclave-1.log"
    lines = [
        {"event": "job done", "job_id": "a"},
        {"event": "job failed", "job_id": "a", "retryable": True},  # KMS unreachable: retried, no pass
        {"event": "job failed", "job_id": "b", "retryable": False},
        {"event": "job refused: busy", "job_id": "b"},
        {"event": "job done", "job_id": "a"},
    ]
    log.write_text("--- starting enclave-1\n" + "\n".join(json.dumps(line) for line in lines) + "\n{torn")
    assert enclave_passes([log, tmp_path / "missing.log"]) == {"a": 2, "b": 1}


def test_one_process_of_each_kind_is_killed_and_moto_never() -> None:
    pids = {"moto": 1, "kms-gateway": 2, "lambdas": 3, "enclave-1": 4, "enclave-2": 5, "parent-1": 6, "parent-2": 7}
    assert killable(pids) == ["enclave-1", "kms-gateway", "lambdas", "parent-1"]


def test_lost_jobs_at_the_budget_say_whether_the_queue_still_held_work() -> None:
    pending = [job(1, "pending"), job(2, "done")]
    assert "still held 7 messages" in tally(pending, backlog_at_end=7).line()
    assert not tally(pending, backlog_at_end=7).ok  # still a failure: the suite is bounded
    assert "still held" not in tally(pending).line()
    assert "still held" not in tally([job(2, "done")], backlog_at_end=7).line()

"""Per-job views from span timestamps: status, failure codes, stage times and the waterfall."""

from __future__ import annotations

import pytest

from ccc.report.jobs import build_jobs, median_breakdown, median_job, percentile

from .report_fixtures import job_trace

JOB_A, JOB_B, JOB_C = "a" * 32, "b" * 32, "c" * 32


def test_a_done_job_has_its_latencies_stages_and_attempts() -> None:
    (job,) = build_jobs(job_trace(JOB_A, "t-a"))
    assert (job.job_id, job.trace_id, job.status, job.attempts) == (JOB_A, "t-a", "done", 2)
    assert job.end_to_end_ms == pytest.approx(1500.0)  # job created (submit - create_ms) to result end
    assert job.parent_ms == pytest.approx(300.0)  # the attempt that finished the job
    assert job.stages_ms == pytest.approx({"decrypt": 20, "infer": 150, "encrypt": 20, "attest": 10})
    assert job.verified is True


def test_the_waterfall_accounts_for_the_client_parent_gap() -> None:
    (job,) = build_jobs(job_trace(JOB_A, "t-a"))
    rows = [(s.label, round(s.start_ms, 3), round(s.duration_ms, 3), s.component) for s in job.segments]
    assert rows == [
        ("client: create job", 0, 20, "client"),
        ("client: encrypt + upload", 20, 80, "client"),
        ("S3 event delivery", 100, 0, "queue"),
        ("Lambda job_events (inbox)", 100, 30, "queue"),
        ("SQS queue wait", 130, 270, "queue"),
        ("earlier attempts (1)", 400, 600, "retry"),
        ("parent: fetch input, lease", 1000, 50, "parent"),
        ("enclave: decrypt", 1050, 20, "enclave"),
        ("enclave: infer", 1070, 150, "enclave"),
        ("enclave: encrypt", 1220, 20, "enclave"),
        ("enclave: attest", 1240, 10, "enclave"),
        ("parent: store result or failure", 1250, 50, "parent"),
        ("client: notice, fetch + verify", 1300, 200, "client"),
    ]
    # Consecutive, non-overlapping: the rows add up to the end-to-end latency.
    assert sum(s.duration_ms for s in job.segments) == pytest.approx(job.end_to_end_ms)


def test_the_clients_own_steps_split_encrypt_upload_and_fetch_verify() -> None:
    (job,) = build_jobs(job_trace(JOB_A, "t-a", client_steps=True))
    rows = {s.label: (round(s.start_ms, 3), round(s.duration_ms, 3)) for s in job.segments}
    assert "client: encrypt + upload" not in rows and "client: notice, fetch + verify" not in rows
    assert rows["client: encrypt"] == (20, 40)
    assert rows["client: upload"] == (60, 40)
    assert rows["client: notice (polling)"] == (1300, 80)
    assert rows["client: fetch result"] == (1380, 40)
    assert rows["client: verify + decrypt"] == (1420, 80)
    assert sum(s.duration_ms for s in job.segments) == pytest.approx(job.end_to_end_ms)


def test_a_failed_job_carries_its_failure_code() -> None:
    spans = job_trace(
        JOB_B, "t-b", outcome="failed", code="bad_image", retried=False, client_status="failed", verified=None
    )
    (job,) = build_jobs(spans)
    assert (job.status, job.code, job.failed, job.status_text) == ("failed", "bad_image", True, "failed (bad_image)")
    assert job.attempts == 1


def test_a_result_that_did_not_verify_is_a_failure_not_a_success() -> None:
    (job,) = build_jobs(job_trace(JOB_C, "t-c", verified=False))
    assert (job.status, job.code) == ("failed", "not verified")


def test_a_job_seen_only_by_the_parent_is_still_shown() -> None:
    spans = [s for s in job_trace(JOB_A, "t-a") if s["service.name"] in ("parent", "enclave")]
    (job,) = build_jobs(spans)
    assert job.status == "done" and job.end_to_end_ms is None and job.parent_ms == pytest.approx(300)
    assert [s.label for s in job.segments][0] == "earlier attempts (1)"


def test_a_job_still_being_retried_is_pending_with_the_retry_code() -> None:
    spans = [
        s
        for s in job_trace(JOB_A, "t-a")
        if s.get("attributes", {}).get("ccc.outcome") != "done" and s["name"] != "ccc.client.result"
    ]
    (job,) = build_jobs(spans)
    assert (job.status, job.code) == ("pending", "kms_unavailable")


def test_median_job_and_breakdown_use_done_jobs() -> None:
    spans = (
        job_trace(JOB_A, "t-a")
        + job_trace(JOB_B, "t-b", shift_ms=5000, retried=False)
        + job_trace(JOB_C, "t-c", shift_ms=9000, outcome="failed", code="bad_image", client_status="failed")
    )
    jobs = build_jobs(spans)
    assert [j.job_id for j in jobs] == [JOB_A, JOB_B, JOB_C]  # in order of start
    assert median_job(jobs) is not None
    breakdown = {label: (ms, n) for label, ms, n in median_breakdown(jobs)}
    assert breakdown["enclave: infer"] == (pytest.approx(150), 2)
    assert breakdown["earlier attempts (1)"][1] == 1  # only job A was retried; the failed job is left out
    assert median_job([]) is None
    # Without client spans: the done job at the parent's p50, never a failed one (A 300, C 400 failed, B 500 ms).
    parent_only = [dict(s) for s in spans if s["service.name"] in ("parent", "enclave")]
    for record in parent_only:
        if record["name"] == "ccc.parent.job" and record["span_id"] in (f"p2-{JOB_B}", f"p2-{JOB_C}"):
            record["end_ns"] += (200 if record["span_id"] == f"p2-{JOB_B}" else 100) * 10**6
    chosen = median_job(build_jobs(parent_only))
    assert chosen is not None and chosen.job_id == JOB_A


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0], 0.5) == 3.0
    assert percentile([1.0, 2.0], 0.95) == 2.0

"""The bench commands' bookkeeping: stage tables from job waterfalls, /proc usage, test images, text.

Timings are never asserted here (benchmarks measure, tests check behaviour): these check that
the numbers a report prints come from the right rows and that the report renders.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from ccc.evaluation import bench_pipeline, cold_start
from ccc.report.jobs import JobView
from ccc.report.svg import Segment


def _job(job_id: str, status: str, stages: dict[str, float]) -> JobView:
    view = JobView(job_id=job_id, trace_id=job_id, status=status)
    view.stages_ms = dict(stages)
    view.segments = [Segment("client: encrypt", 0, 10, "client")] + [
        Segment(f"enclave: {name}", 10, value, "enclave") for name, value in stages.items()
    ]
    return view


def test_stage_table_uses_done_jobs_and_sums_enclave_work() -> None:
    stages = {"decrypt": 30.0, "infer": 100.0, "encrypt": 20.0, "attest": 1.0}
    jobs = [_job("a", "done", stages), _job("b", "done", {**stages, "infer": 200.0}), _job("c", "failed", stages)]
    table = bench_pipeline.stage_table(jobs)
    assert table["client: encrypt"] == {"median_ms": 10.0, "p95_ms": 10.0, "jobs": 2}
    assert table["enclave: infer"]["median_ms"] == 150.0
    assert table["enclave work (decrypt+infer+encrypt+attest)"]["median_ms"] == 201.0
    assert list(table)[0] == "client: encrypt"  # pipeline order, as the waterfall has it


def test_proc_usage_reads_this_process() -> None:
    usage = bench_pipeline._proc_usage(os.getpid())
    assert usage is not None and usage["cpu_s"] >= 0 and usage["peak_rss_mib"] > 10
    assert bench_pipeline._proc_usage(2**22 + 12345) is None  # no such pid: skipped, not an error


def test_test_images_are_jpegs_with_their_cat_count_in_the_name(tmp_path: Path) -> None:
    paths = bench_pipeline.write_images(tmp_path, 8)
    assert [p.name.split("-")[1] for p in paths] == [f"{i % 7}cats.jpg" for i in range(8)]
    with Image.open(paths[3]) as image:
        assert image.format == "JPEG"
    again = bench_pipeline.write_images(tmp_path / "again", 8)
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]


def test_reports_render() -> None:
    stats = {"median_ms": 1.0, "p95_ms": 2.0, "jobs": 3}
    pipeline = {
        "jobs": 3, "cpus": 2, "pipeline_vs_bare": 0.5, "enclave_vs_bare_inference": 1.2,
        "enclave_infer_vs_bare_inference": 1.1, "enclave_cpu_vs_bare_cpu": 1.05, "enclave_cpu_ms_per_job": 150.0,
        "bare": {"images_per_s": 10.0, "count_bytes": stats, "cpu_ms_per_image": 140.0},
        "pipeline": {"workers": 1, "jobs_per_s": 5.0, "jobs": 3, "elapsed_s": 0.6, "submit_s": 0.2,
                     "stages": {"enclave: infer": stats}, "processes": {"moto": {"cpu_s": 1.0, "peak_rss_mib": 90.0}},
                     "cpu_s_during_run": {"moto": 0.5}},
    }  # fmt: skip
    text = bench_pipeline.render_text(pipeline)
    assert "pipeline / bare (shared) = 0.5" in text and "enclave: infer" in text and "moto" in text
    steps = {"interpreter_and_imports": 200.0, "model": 90.0}
    cold = {"runs": 1, "interpreter_ms": 30.0, "budget_ms": 2000.0, "server_ready_ms": 600.0,
            "server_ready_ms_all": [600.0], "within_budget": True,
            "reference": {"total_ms": 400.0, "steps_ms": steps, "model_ms": {"create": 40.0}},
            "optimised": {"total_ms": 420.0, "steps_ms": steps, "model_ms": {"create": 40.0}}}  # fmt: skip
    assert "within" in cold_start.render_text(cold) and "model: create" in cold_start.render_text(cold)


def _enclave_span(job_id: str, start_ms: float, end_ms: float) -> dict[str, object]:
    return {"name": "ccc.enclave.job", "start_ns": int(start_ms * 1e6), "end_ns": int(end_ms * 1e6),
            "attributes": {"ccc.job_id": job_id}}  # fmt: skip


def test_enclave_busy_time_counts_overlapping_jobs_once_and_idle_gaps_not_at_all() -> None:
    spans = [
        _enclave_span("a", 0, 100),
        _enclave_span("b", 50, 180),  # overlaps a: 0..180 busy once
        _enclave_span("c", 300, 350),  # after an idle gap
        _enclave_span("other", 400, 900),  # not one of this run's jobs
        {"name": "ccc.parent.job", "start_ns": 0, "end_ns": 10**12, "attributes": {"ccc.job_id": "a"}},
    ]
    assert bench_pipeline.enclave_busy_ms(spans, {"a", "b", "c"}) == 230.0
    assert bench_pipeline.enclave_busy_ms(spans, set()) == 0.0


def test_the_report_names_the_cpu_mode_next_to_its_ratios() -> None:
    stats = {"median_ms": 100.0, "p95_ms": 120.0, "jobs": 4}
    bare = {"images": 4, "elapsed_s": 0.4, "images_per_s": 10.0, "count_bytes": stats, "cpu_ms_per_image": 100.0,
            "cpus": "1", "onnxruntime_threads": 1}
    pipeline = {"jobs": 4, "workers": 1, "jobs_per_s": 8.0, "elapsed_s": 0.5, "submit_s": 0.1, "enclave_busy_ms": 440.0,
                "stages": {"enclave work (decrypt+infer+encrypt+attest)": stats, "enclave: infer": stats},
                "cpus_by_process": {"enclave-1": "1", "moto": "0"},
                "processes": {"enclave-1": {"cpu_s": 1.0, "peak_rss_mib": 300.0}},
                "cpu_s_during_run": {"enclave-1": 0.44}}  # fmt: skip
    split = bench_pipeline.plan_split(1, frozenset({0, 1}))
    report = bench_pipeline.summarise(4, bare, pipeline, split)
    assert report["pipeline_vs_bare"] == 0.8
    assert report["enclave_vs_bare_inference"] == 1.1  # 110 ms busy per job / 100 ms per bare image
    assert report["enclave_cpu_vs_bare_cpu"] == 1.1 and report["enclave_span_vs_bare_inference"] == 1.0
    assert report["cpu_mode"] == {"mode": "pinned", "enclave_cpus": "1", "other_cpus": "0", "onnxruntime_threads": 1}
    text = bench_pipeline.render_text(report)
    assert "CPU mode: PINNED" in text and "pipeline / bare (pinned) = 0.8" in text
    assert "enclave work / bare inference (pinned) = 1.1" in text
    shared = bench_pipeline.summarise(4, bare, pipeline, None)
    assert shared["cpu_mode"]["mode"] == "shared"
    assert "pipeline / bare (shared) = 0.8" in bench_pipeline.render_text(shared)


def test_the_bare_figure_pools_the_runs_before_and_after_the_pipeline() -> None:
    def run(images_per_s: float, cpu_ms: float) -> dict[str, object]:
        return {"images": 10, "elapsed_s": 10 / images_per_s, "images_per_s": images_per_s, "cpu_ms_per_image": cpu_ms,
                "count_bytes": {"median_ms": 1000 / images_per_s, "p95_ms": 2000 / images_per_s, "jobs": 10},
                "cpus": "1", "onnxruntime_threads": 1}  # fmt: skip

    bare = bench_pipeline.combine_bare_runs(run(5.0, 180.0), run(4.0, 200.0))
    assert bare["images"] == 20 and bare["elapsed_s"] == 4.5 and bare["images_per_s"] == 4.444  # 20 images in 4.5 s
    assert bare["cpu_ms_per_image"] == 190.0 and bare["count_bytes"]["median_ms"] == 225.0
    assert bare["runs"]["after_pipeline"] == {"images_per_s": 4.0, "cpu_ms_per_image": 200.0}
    assert "after 4.00/s" in bench_pipeline._bare_runs(bare)

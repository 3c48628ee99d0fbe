"""`ccc bench pipeline`: the confidential pipeline against the bare counter, on the same images and cores.

Steps: write N test images (JPEG composites, 0-6 cats) -> count them in this process with the
counter the enclave runs (`CatCounter().count_bytes`, decode included: that is what the enclave's
infer span covers) -> start a local stack, make tenant-a's trust file the way a tenant does
(`ccc trust init --local-stack`), submit every image with the client library, wait for every
verified result -> read the stack's own telemetry (JSON-lines spans under `<state>/telemetry`)
and build each job's waterfall with `ccc.report.jobs.build_jobs`, the same rows `ccc report`
draws: client encrypt, upload, S3 event, queue wait, parent fetch, enclave
decrypt/infer/encrypt/attest, result write, client fetch + verify.

Ratios: `pipeline_vs_bare` = pipeline jobs/s / bare images/s; `enclave_vs_bare_inference` =
median enclave work (decrypt + infer + encrypt + attest of one job) / median bare `count_bytes`.
CPU seconds and peak RSS (VmHWM) of every stack process are read from /proc at the end (they
are children of the stack supervisor, so their counters cover the run and the stack's start).
"""

from __future__ import annotations

import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from PIL import Image

from ccc.client import CccClient, InputRecord, check_images, local_target
from ccc.errors import CccError
from ccc.evaluation.samples import composite
from ccc.local.stack import LocalStack
from ccc.report.jobs import JobView, build_jobs
from ccc.report.render import load_telemetry
from ccc.trust import load_trust
from ccc_core.telemetry.setup import setup_telemetry, telemetry_dir
from ccc_enclave.counting import CatCounter, resolve_spec

TENANT = "tenant-a"
JOB_TIMEOUT_S = 600.0
ENCLAVE_STAGES = ("enclave: decrypt", "enclave: infer", "enclave: encrypt", "enclave: attest")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class PipelineBenchError(CccError):
    """The stack, the trust file or a job failed (the message says which)."""


def write_images(directory: Path, count: int) -> list[Path]:
    """`count` JPEG composites with 0..6 cats (deterministic seeds), like photos a tenant uploads."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        sample = composite(index % 7, 9000 + index)
        path = directory / f"{index:04d}-{sample.cats}cats.jpg"
        buffer = io.BytesIO()
        Image.fromarray(sample.image).save(buffer, format="JPEG", quality=90)
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def _stats(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * (len(ordered) - 1))))]
    return {"median_ms": round(statistics.median(ordered), 2), "p95_ms": round(p95, 2), "jobs": len(ordered)}


def bare_run(paths: Sequence[Path]) -> dict[str, Any]:
    """Count every image in this process (warm counter), one after another: images/s and per-image ms."""
    counter = CatCounter(resolve_spec())
    blobs = [path.read_bytes() for path in paths]
    counter.count_bytes(blobs[0])  # warm-up beyond the session's own
    per_image = []
    cpu_before = _own_cpu_s()
    started = time.perf_counter()
    for blob in blobs:
        t0 = time.perf_counter()
        counter.count_bytes(blob)
        per_image.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - started
    cpu_ms = (_own_cpu_s() - cpu_before) * 1000 / len(blobs)
    return {
        "images": len(blobs),
        "elapsed_s": round(elapsed, 3),
        "images_per_s": round(len(blobs) / elapsed, 3),
        "count_bytes": _stats(per_image),
        "cpu_ms_per_image": round(cpu_ms, 1),
    }


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _trust_file(state_dir: Path, out: Path) -> Path:
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "ccc",
            "trust",
            "init",
            "--out",
            str(out),
            "--local-stack",
            str(state_dir),
            "--tenant",
            TENANT,
            "--yes",
            "--force",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if made.returncode != 0:
        raise PipelineBenchError(f"`ccc trust init` failed: {(made.stderr or made.stdout).strip()[-300:]}")
    return out


def _proc_usage(pid: int) -> dict[str, float] | None:
    """CPU seconds (user + system, this process and its reaped children) and peak RSS of a live pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime
    peak_kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return {"cpu_s": round(cpu, 2), "peak_rss_mib": round(peak_kib / 1024, 1)}


def _stack_usage(stack: LocalStack) -> dict[str, dict[str, float]]:
    usage: dict[str, dict[str, float]] = {}
    for name, pid in sorted(stack.refresh().pids.items()):
        found = _proc_usage(pid)
        if found is not None:
            usage[name] = found
    own = _proc_usage(os.getpid())
    if own is not None:
        usage["bench (client + bare counter)"] = own
    return usage


def stage_table(jobs: Sequence[JobView]) -> dict[str, dict[str, float]]:
    """Median and p95 per waterfall row over the done jobs, in pipeline order; plus enclave work."""
    durations: dict[str, list[float]] = defaultdict(list)
    enclave_work: list[float] = []
    for job in jobs:
        if job.status != "done":
            continue
        for segment in job.segments:
            durations[segment.label].append(segment.duration_ms)
        stages = [job.stages_ms.get(label.split(": ")[1]) for label in ENCLAVE_STAGES]
        if all(value is not None for value in stages):
            enclave_work.append(sum(value for value in stages if value is not None))
    table = {label: _stats(values) for label, values in durations.items()}
    if enclave_work:
        table["enclave work (decrypt+infer+encrypt+attest)"] = _stats(enclave_work)
    return table


def pipeline_run(paths: Sequence[Path], work: Path, workers: int) -> dict[str, Any]:
    """Start a stack, run every image through it as tenant-a, and read its telemetry."""
    with ExitStack() as cleanup:
        started_stack = time.perf_counter()
        stack = cleanup.enter_context(LocalStack.start(work / "stack", workers=workers))
        ready_s = time.perf_counter() - started_stack
        trust = load_trust(_trust_file(stack.state_dir, work / "trust-tenant-a.json"))
        telemetry = setup_telemetry("client", state_dir=stack.state_dir, set_global=True)
        cleanup.callback(telemetry.shutdown)
        target = local_target(stack.state_dir)
        client = CccClient(target, TENANT, trust=trust, inputs=InputRecord(work / "client-state"), show_progress=False)
        checked = check_images(list(paths), target.limits.max_image_bytes)
        before = _stack_usage(stack)
        began = time.perf_counter()
        submitted = [client.submit(image) for image in checked]
        submitted_s = time.perf_counter() - began
        reports = [
            client.wait(job.job, timeout=JOB_TIMEOUT_S, image=job.image, started=job.started) for job in submitted
        ]
        elapsed = time.perf_counter() - began
        failed = [report for report in reports if not report.ok]
        if failed:
            raise PipelineBenchError(f"{len(failed)}/{len(reports)} jobs failed, e.g. {failed[0].error}")
        usage = _stack_usage(stack)
        telemetry.tracer_provider.force_flush()
        time.sleep(2.5)  # the stack's processes export spans every 2 s
        spans = load_telemetry(telemetry_dir(stack.state_dir)).spans
    jobs = [job for job in build_jobs(spans) if job.job_id in {item.job.job_id for item in submitted}]
    return {
        "jobs": len(reports),
        "workers": workers,
        "stack_ready_s": round(ready_s, 1),
        "submit_s": round(submitted_s, 2),
        "elapsed_s": round(elapsed, 2),
        "jobs_per_s": round(len(reports) / elapsed, 3),
        "traced_jobs": len(jobs),
        "stages": stage_table(jobs),
        "processes": usage,
        "cpu_s_during_run": {
            name: round(usage[name]["cpu_s"] - before[name]["cpu_s"], 2) for name in usage if name in before
        },
    }


def run_pipeline_bench(jobs: int, workers: int = 1) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ccc-bench-pipeline-") as tmp:
        work = Path(tmp)
        paths = write_images(work / "images", jobs)
        bare = bare_run(paths)
        pipeline = pipeline_run(paths, work, workers)
    enclave = pipeline["stages"].get("enclave work (decrypt+infer+encrypt+attest)")
    enclave_cpu_s = sum(value for name, value in pipeline["cpu_s_during_run"].items() if name.startswith("enclave"))
    enclave_cpu_ms_per_job = enclave_cpu_s * 1000 / jobs
    infer = pipeline["stages"].get("enclave: infer")
    bare_ms = bare["count_bytes"]["median_ms"]
    return {
        "jobs": jobs,
        "cpus": os.cpu_count(),
        "pipeline_vs_bare": round(pipeline["jobs_per_s"] / bare["images_per_s"], 3),
        "enclave_vs_bare_inference": round(enclave["median_ms"] / bare_ms, 3) if enclave else None,
        "enclave_infer_vs_bare_inference": round(infer["median_ms"] / bare_ms, 3) if infer else None,
        # CPU time, not latency: two jobs share the enclave's CPUs, so each job's spans stretch while
        # the work per job does not. Enclave CPU per job / this process's CPU per bare image.
        "enclave_cpu_vs_bare_cpu": round(enclave_cpu_ms_per_job / bare["cpu_ms_per_image"], 3),
        "enclave_cpu_ms_per_job": round(enclave_cpu_ms_per_job, 1),
        "bare": bare,
        "pipeline": pipeline,
    }


def render_text(report: dict[str, Any]) -> str:
    bare, pipe = report["bare"], report["pipeline"]
    lines = [
        f"ccc bench pipeline: {report['jobs']} jobs, {pipe['workers']} worker(s), {report['cpus']} CPUs",
        f"bare counter:   {bare['images_per_s']:.2f} images/s "
        f"(count_bytes median {bare['count_bytes']['median_ms']} ms)",
        f"local pipeline: {pipe['jobs_per_s']:.2f} jobs/s ({pipe['jobs']} jobs in {pipe['elapsed_s']} s; "
        f"submitting took {pipe['submit_s']} s)",
        f"pipeline / bare = {report['pipeline_vs_bare']}; enclave work / bare inference = "
        f"{report['enclave_vs_bare_inference']} "
        f"(enclave infer span alone: {report['enclave_infer_vs_bare_inference']})",
        f"enclave CPU per job / bare CPU per image = {report['enclave_cpu_vs_bare_cpu']} "
        f"({report['enclave_cpu_ms_per_job']} ms vs {bare['cpu_ms_per_image']} ms)",
        "",
        f"{'stage':<46} {'median ms':>10} {'p95 ms':>10} {'jobs':>5}",
    ]
    for label, row in pipe["stages"].items():
        lines.append(f"{label:<46} {row['median_ms']:>10.2f} {row['p95_ms']:>10.2f} {row['jobs']:>5}")
    lines += ["", f"{'process':<34} {'CPU s (run)':>11} {'CPU s (all)':>11} {'peak RSS MiB':>13}"]
    for name, usage in pipe["processes"].items():
        during = pipe["cpu_s_during_run"].get(name, 0.0)
        lines.append(f"{name:<34} {during:>11.2f} {usage['cpu_s']:>11.2f} {usage['peak_rss_mib']:>13.1f}")
    return "\n".join(lines)

"""`ccc bench pipeline`: the confidential pipeline against the bare counter, on the same images and cores.

Steps: write N test images (JPEG composites, 0-6 cats) -> count them in this process with the
counter the enclave runs (`CatCounter().count_bytes`, decode included: that is what the enclave's
infer span covers), once before and once after the pipeline run (the box's other load drifts; the
bare figure pools both) -> start a local stack, make tenant-a's trust file the way a tenant does
(`ccc trust init --local-stack`), submit every image with the client library, wait for every
verified result -> read the stack's own telemetry (JSON-lines spans under `<state>/telemetry`)
and build each job's waterfall with `ccc.report.jobs.build_jobs`, the same rows `ccc report`
draws: client encrypt, upload, S3 event, queue wait, parent fetch, enclave
decrypt/infer/encrypt/attest, result write, client fetch + verify.

Two CPU modes (`cpu_split.py`): *shared* (default) lets every process run anywhere, as a developer
box does; *pinned* (`--enclave-cpus N`) models AWS: the bare counter and the enclave on the same N
CPUs, moto, the gateways, the Lambdas, the parent and the client on the others. The report names
the mode next to every ratio it produced.

Ratios: `pipeline_vs_bare` = pipeline jobs/s / bare images/s. `enclave_vs_bare_inference` = the
enclave's wall time per job on its cores / the bare counter's wall time per image: the enclave's
busy time (the union of its job spans: time it had at least one job) divided by the jobs, over the
bare run's elapsed time per image. A span-median ratio would count two overlapping jobs twice (the
enclave runs two at once, so each job's span stretches while the work per job does not); the
union counts every moment once, and still counts a KMS wait that no other job's work overlapped.
Next to it `enclave_cpu_vs_bare_cpu` (enclave process CPU per job / bare CPU per image) and
`enclave_span_vs_bare_inference` (the old median-span ratio). CPU seconds and peak RSS (VmHWM) of
every stack process are read from /proc at the end (they are children of the stack supervisor,
so their counters cover the run and the stack's start).
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
from ccc.evaluation.cpu_split import CpuSplit, check_split, pin_process, plan_split, process_cpus
from ccc.evaluation.samples import composite
from ccc.local.stack import LocalStack
from ccc.report.jobs import JobView, build_jobs
from ccc.report.render import load_telemetry
from ccc.trust import load_trust
from ccc_core.telemetry import names
from ccc_core.telemetry.setup import setup_telemetry, telemetry_dir
from ccc_enclave.counting import CatCounter, resolve_spec
from ccc_enclave.cpus import ENCLAVE_CPUS_ENV, format_cpu_list

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


def bare_run(paths: Sequence[Path], threads: int | None = None) -> dict[str, Any]:
    """Count every image in this process (warm counter), one after another: images/s and per-image ms.

    `threads`: onnxruntime intra-op threads (None: one per CPU this process may use, as the enclave).
    """
    counter = CatCounter(resolve_spec(), threads=threads)
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
        "cpus": format_cpu_list(os.sched_getaffinity(0)),
        "onnxruntime_threads": threads or len(os.sched_getaffinity(0)),
    }


def combine_bare_runs(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """One bare figure from a run before and a run after the pipeline (this box's other load drifts).

    Images/s over both runs' images and time, CPU per image averaged, per-image latencies pooled by
    their medians; both runs are kept, so a report shows the drift it averaged over.
    """
    images = before["images"] + after["images"]
    elapsed = before["elapsed_s"] + after["elapsed_s"]
    return {
        **before,
        "images": images,
        "elapsed_s": round(elapsed, 3),
        "images_per_s": round(images / elapsed, 3),
        "count_bytes": {
            key: round((before["count_bytes"][key] + after["count_bytes"][key]) / 2, 2)
            for key in ("median_ms", "p95_ms")
        }
        | {"jobs": before["count_bytes"]["jobs"] + after["count_bytes"]["jobs"]},
        "cpu_ms_per_image": round((before["cpu_ms_per_image"] + after["cpu_ms_per_image"]) / 2, 1),
        "runs": {
            "before_pipeline": {key: before[key] for key in ("images_per_s", "cpu_ms_per_image")},
            "after_pipeline": {key: after[key] for key in ("images_per_s", "cpu_ms_per_image")},
        },
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


def enclave_busy_ms(spans: Sequence[Any], job_ids: set[str]) -> float:
    """Wall time the enclave had at least one of these jobs in hand: the union of their enclave job spans."""
    intervals = sorted(
        (int(span["start_ns"]), int(span["end_ns"]))
        for span in spans
        if span.get("name") == names.SPAN_ENCLAVE_JOB
        and isinstance(span.get("attributes"), dict)
        and span["attributes"].get(names.ATTR_JOB_ID) in job_ids
        and isinstance(span.get("start_ns"), int)
        and isinstance(span.get("end_ns"), int)
    )
    busy_ns, open_start, open_end = 0, None, None
    for start, end in intervals:
        if open_end is None or start > open_end:
            if open_start is not None and open_end is not None:
                busy_ns += open_end - open_start
            open_start, open_end = start, end
        else:
            open_end = max(open_end, end)
    if open_start is not None and open_end is not None:
        busy_ns += open_end - open_start
    return busy_ns / 1e6


def _placement(stack: LocalStack, split: CpuSplit | None) -> dict[str, str]:
    """Where each process may run (the kernel's view); in pinned mode also checks the split held."""
    pids = {**stack.refresh().pids, "supervisor": stack.process.pid, "bench (client + bare counter)": os.getpid()}
    if split is not None:
        return check_split(split, pids)
    return {name: format_cpu_list(cpus) for name, pid in sorted(pids.items()) if (cpus := process_cpus(pid))}


def pipeline_run(paths: Sequence[Path], work: Path, workers: int, split: CpuSplit | None = None) -> dict[str, Any]:
    """Start a stack, run every image through it as tenant-a, and read its telemetry.

    With a `split`, the caller has already moved this process to `split.rest` and set the enclave's
    CPU variable, so the stack's processes start where they belong; placement is checked before and
    after the run (a restarted enclave pins itself again from the same variable).
    """
    with ExitStack() as cleanup:
        started_stack = time.perf_counter()
        stack = cleanup.enter_context(LocalStack.start(work / "stack", workers=workers))
        ready_s = time.perf_counter() - started_stack
        placement = _placement(stack, split)
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
        placement_after = _placement(stack, split)
        telemetry.tracer_provider.force_flush()
        time.sleep(2.5)  # the stack's processes export spans every 2 s
        spans = load_telemetry(telemetry_dir(stack.state_dir)).spans
    job_ids = {item.job.job_id for item in submitted}
    jobs = [job for job in build_jobs(spans) if job.job_id in job_ids]
    return {
        "jobs": len(reports),
        "workers": workers,
        "stack_ready_s": round(ready_s, 1),
        "submit_s": round(submitted_s, 2),
        "elapsed_s": round(elapsed, 2),
        "jobs_per_s": round(len(reports) / elapsed, 3),
        "traced_jobs": len(jobs),
        "stages": stage_table(jobs),
        "enclave_busy_ms": round(enclave_busy_ms(spans, job_ids), 1),
        "cpus_by_process": placement_after
        if placement_after == placement
        else {"start": placement, "end": placement_after},
        "processes": usage,
        "cpu_s_during_run": {
            name: round(usage[name]["cpu_s"] - before[name]["cpu_s"], 2) for name in usage if name in before
        },
    }


def run_pipeline_bench(jobs: int, workers: int = 1, enclave_cpus: int | None = None) -> dict[str, Any]:
    """The whole bench; `enclave_cpus` None: shared CPUs; N: the pinned split (module docstring)."""
    split = plan_split(enclave_cpus) if enclave_cpus is not None else None
    original_cpus = frozenset(os.sched_getaffinity(0))
    saved_env = os.environ.get(ENCLAVE_CPUS_ENV)
    try:
        with tempfile.TemporaryDirectory(prefix="ccc-bench-pipeline-") as tmp:
            work = Path(tmp)
            paths = write_images(work / "images", jobs)
            if split is not None:
                pin_process(os.getpid(), split.enclave)
                os.environ[ENCLAVE_CPUS_ENV] = format_cpu_list(split.enclave)
            else:
                os.environ.pop(ENCLAVE_CPUS_ENV, None)
            threads = len(split.enclave) if split is not None else None
            bare_before = bare_run(paths, threads=threads)
            if split is not None:
                pin_process(os.getpid(), split.rest)  # the client, and every process of the stack (inherited)
            pipeline = pipeline_run(paths, work, workers, split)
            if split is not None:
                pin_process(os.getpid(), split.enclave)
            bare = combine_bare_runs(bare_before, bare_run(paths, threads=threads))
    finally:
        pin_process(os.getpid(), original_cpus)
        if saved_env is None:
            os.environ.pop(ENCLAVE_CPUS_ENV, None)
        else:
            os.environ[ENCLAVE_CPUS_ENV] = saved_env
    return summarise(jobs, bare, pipeline, split)


def summarise(jobs: int, bare: dict[str, Any], pipeline: dict[str, Any], split: CpuSplit | None) -> dict[str, Any]:
    """The top-level ratios (module docstring) from the bare run and the pipeline run."""
    enclave = pipeline["stages"].get("enclave work (decrypt+infer+encrypt+attest)")
    enclave_cpu_s = sum(value for name, value in pipeline["cpu_s_during_run"].items() if name.startswith("enclave"))
    enclave_cpu_ms_per_job = enclave_cpu_s * 1000 / jobs
    infer = pipeline["stages"].get("enclave: infer")
    bare_ms = bare["count_bytes"]["median_ms"]
    bare_wall_ms_per_image = bare["elapsed_s"] * 1000 / bare["images"]
    enclave_busy_ms_per_job = pipeline["enclave_busy_ms"] / jobs
    cpu_mode: dict[str, Any] = (
        split.describe()
        if split is not None
        else {
            "mode": "shared",
            "enclave_cpus": "any",
            "other_cpus": "any",
            "onnxruntime_threads": bare["onnxruntime_threads"],
        }
    )
    return {
        "jobs": jobs,
        "cpus": os.cpu_count(),
        "cpu_mode": cpu_mode,
        "pipeline_vs_bare": round(pipeline["jobs_per_s"] / bare["images_per_s"], 3),
        # Per job on the enclave's cores: its busy wall time per job / the bare run's wall time per image.
        "enclave_vs_bare_inference": round(enclave_busy_ms_per_job / bare_wall_ms_per_image, 3),
        "enclave_busy_ms_per_job": round(enclave_busy_ms_per_job, 1),
        "bare_wall_ms_per_image": round(bare_wall_ms_per_image, 1),
        # CPU time: enclave process CPU per job / this process's CPU per bare image.
        "enclave_cpu_vs_bare_cpu": round(enclave_cpu_ms_per_job / bare["cpu_ms_per_image"], 3),
        "enclave_cpu_ms_per_job": round(enclave_cpu_ms_per_job, 1),
        # The median job's enclave spans / the median bare image (two overlapping jobs stretch each span).
        "enclave_span_vs_bare_inference": round(enclave["median_ms"] / bare_ms, 3) if enclave else None,
        "enclave_infer_vs_bare_inference": round(infer["median_ms"] / bare_ms, 3) if infer else None,
        "bare": bare,
        "pipeline": pipeline,
    }


def _mode_line(report: dict[str, Any]) -> str:
    mode = report["cpu_mode"]
    if mode["mode"] == "pinned":
        return (
            f"CPU mode: PINNED - bare counter and enclave on CPU(s) {mode['enclave_cpus']} "
            f"({mode['onnxruntime_threads']} onnxruntime thread(s) each); moto, gateways, Lambdas, parent and "
            f"client on CPU(s) {mode['other_cpus']} (AWS: the enclave's dedicated vCPUs)"
        )
    return (
        f"CPU mode: SHARED - every process on any of the {report['cpus']} CPUs "
        f"({mode['onnxruntime_threads']} onnxruntime thread(s)); the enclave competes with the whole stack"
    )


def _bare_runs(bare: dict[str, Any]) -> str:
    runs = bare.get("runs")
    if not runs:
        return ""
    first, second = runs["before_pipeline"], runs["after_pipeline"]
    return (
        f"; before the pipeline {first['images_per_s']:.2f}/s {first['cpu_ms_per_image']} ms CPU, "
        f"after {second['images_per_s']:.2f}/s {second['cpu_ms_per_image']} ms CPU"
    )


def render_text(report: dict[str, Any]) -> str:
    bare, pipe = report["bare"], report["pipeline"]
    mode = report.get("cpu_mode", {}).get("mode", "shared")
    lines = [
        f"ccc bench pipeline: {report['jobs']} jobs, {pipe['workers']} worker(s), {report['cpus']} CPUs",
        _mode_line(report) if "cpu_mode" in report else "CPU mode: SHARED",
        f"bare counter:   {bare['images_per_s']:.2f} images/s "
        f"(count_bytes median {bare['count_bytes']['median_ms']} ms){_bare_runs(bare)}",
        f"local pipeline: {pipe['jobs_per_s']:.2f} jobs/s ({pipe['jobs']} jobs in {pipe['elapsed_s']} s; "
        f"submitting took {pipe['submit_s']} s)",
        f"pipeline / bare ({mode}) = {report['pipeline_vs_bare']}",
        f"enclave work / bare inference ({mode}) = {report['enclave_vs_bare_inference']} "
        f"(enclave busy {report.get('enclave_busy_ms_per_job')} ms per job vs bare "
        f"{report.get('bare_wall_ms_per_image')} ms per image; "
        f"median spans: {report.get('enclave_span_vs_bare_inference')}, "
        f"infer span alone: {report['enclave_infer_vs_bare_inference']})",
        f"enclave CPU per job / bare CPU per image ({mode}) = {report['enclave_cpu_vs_bare_cpu']} "
        f"({report['enclave_cpu_ms_per_job']} ms vs {bare['cpu_ms_per_image']} ms)",
        "",
        f"{'stage':<46} {'median ms':>10} {'p95 ms':>10} {'jobs':>5}",
    ]
    for label, row in pipe["stages"].items():
        lines.append(f"{label:<46} {row['median_ms']:>10.2f} {row['p95_ms']:>10.2f} {row['jobs']:>5}")
    placement = pipe.get("cpus_by_process", {})
    placement = placement.get("end", placement) if isinstance(placement.get("end"), dict) else placement
    lines += ["", f"{'process':<34} {'CPU s (run)':>11} {'CPU s (all)':>11} {'peak RSS MiB':>13} {'CPUs':>6}"]
    for name, usage in pipe["processes"].items():
        during = pipe["cpu_s_during_run"].get(name, 0.0)
        lines.append(
            f"{name:<34} {during:>11.2f} {usage['cpu_s']:>11.2f} {usage['peak_rss_mib']:>13.1f} "
            f"{placement.get(name, '?'):>6}"
        )
    return "\n".join(lines)

"""Benchmark the counter: the reference path against the optimised one, and int8 quantisation.

Everything runs in one process on the same images so the numbers are comparable:

* `reference` — the earlier path: `onnxruntime.SessionOptions()` untouched, one `letterbox.preprocess`
  and one onnxruntime call per view, every class decoded (`CatCounter(pipeline="reference")`);
* `optimised` — the enclave's counting path: the tuned session with one intra-op thread per CPU,
  all views of an image written into one batch tensor and run in one call, only the classes the
  counter reads decoded, counting one image at a time (`CatCounter()`, `concurrent_jobs=1`: its
  threads spin-wait, as `ccc count`'s do);
* `optimised-2jobs` — the same path with the session the enclave creates, which counts two jobs at
  once (`concurrent_jobs=2`: no spin-waiting), timed one image at a time like the others. Only the
  threads' waiting differs from `optimised`, never the arithmetic, so the identity check runs once.

The two are timed interleaved (image by image, alternating which goes first), so load from other
processes on a shared machine hits both alike. The speed-up counts only if the two give identical
counts (and boxes within 0.5 px) on the bench images *and* the accuracy sets (`bench_identity`).
`int8-dynamic` / `int8-static` (opt-in) quantise the model with `onnxruntime.quantization` and are
compared count-for-count with fp32.

Per image we record the wall time of `count()` (end to end) and its pre-processing, inference
(all views) and post-processing parts; the report gives median and p95 and images per second.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

from ccc.evaluation.bench_identity import IdentityReport, compare
from ccc.evaluation.samples import SampleImage, chelsea, composite, negatives
from ccc_enclave.counting.counter import CatCounter, Pipeline
from ccc_enclave.counting.letterbox import preprocess
from ccc_enclave.counting.session import SessionProfile, available_cpus, clear_cache, views_per_image
from ccc_enclave.counting.spec import DetectorSpec


def bench_images() -> list[SampleImage]:
    """A fixed, varied set: the cat photo, two negatives, composites with 2, 4 and 6 cats."""
    found = negatives()
    items = [SampleImage("chelsea", chelsea(), 1, "photo")]
    items += [SampleImage(name, found[name], 0, "negative") for name in ("coffee", "astronaut")]
    items += [composite(cats, seed) for cats, seed in ((2, 31), (4, 32), (6, 33))]
    return items


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass
class ProfileResult:
    label: str
    threads: int | None
    views_per_image: int
    total_ms: list[float] = field(default_factory=list)  # wall time of count(), end to end
    pre_ms: list[float] = field(default_factory=list)
    infer_ms: list[float] = field(default_factory=list)
    post_ms: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def record(self, counter: CatCounter, image: np.ndarray) -> None:
        started = time.perf_counter()
        result = counter.count(image)
        self.total_ms.append((time.perf_counter() - started) * 1000)
        self.pre_ms.append(result.timings.pre_ms)
        self.infer_ms.append(result.timings.infer_ms)
        self.post_ms.append(result.timings.post_ms)
        self.counts.append(result.cats)

    def summary(self) -> dict[str, Any]:
        infer_per_view = [value / self.views_per_image for value in self.infer_ms]
        total_median = statistics.median(self.total_ms)
        return {
            "label": self.label,
            "threads": self.threads,
            "views_per_image": self.views_per_image,
            "samples": len(self.total_ms),
            "infer_ms_median": round(statistics.median(self.infer_ms), 2),
            "infer_ms_p95": round(_percentile(self.infer_ms, 95), 2),
            "infer_ms_per_view_median": round(statistics.median(infer_per_view), 2),
            "pre_ms_median": round(statistics.median(self.pre_ms), 2),
            "post_ms_median": round(statistics.median(self.post_ms), 2),
            "total_ms_median": round(total_median, 2),
            "total_ms_p95": round(_percentile(self.total_ms, 95), 2),
            "images_per_s": round(1000.0 / total_median, 2) if total_median > 0 else None,
        }


@dataclass(frozen=True)
class Contender:
    label: str
    counter: CatCounter
    threads: int | None


def make_counter(
    spec: DetectorSpec, profile: SessionProfile, pipeline: Pipeline, threads: int | None, concurrent_jobs: int = 1
) -> CatCounter:
    return CatCounter(spec, threads=threads, profile=profile, pipeline=pipeline, concurrent_jobs=concurrent_jobs)


def time_interleaved(
    contenders: Sequence[Contender], images: Sequence[SampleImage], rounds: int, spec: DetectorSpec
) -> list[ProfileResult]:
    """Time each contender on each image, alternating the order per round (shared-machine noise hits all)."""
    results = [ProfileResult(item.label, item.threads, views_per_image(spec)) for item in contenders]
    for item in images:  # warm-up beyond the session's own: every image size once
        for contender in contenders:
            contender.counter.count(item.image)
    for round_index in range(rounds):
        order = list(range(len(contenders)))
        if round_index % 2:
            order.reverse()
        for item in images:
            for index in order:
                results[index].record(contenders[index].counter, item.image)
    return results


def run_profile(
    spec: DetectorSpec,
    images: Sequence[SampleImage],
    *,
    label: str,
    profile: SessionProfile,
    threads: int | None,
    rounds: int,
    pipeline: Pipeline = "optimised",
) -> ProfileResult:
    counter = make_counter(spec, profile, pipeline, threads)
    return time_interleaved([Contender(label, counter, threads)], images, rounds, spec)[0]


class _Calibration:
    """Feeds letterboxed sample images to the static quantiser's calibrator."""

    def __init__(self, spec: DetectorSpec, input_name: str, images: Sequence[np.ndarray]) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            [{input_name: preprocess(image, spec)[0]} for image in images]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # pragma: no cover - not used by the MinMax calibrator in one pass
        pass


def quantise(spec: DetectorSpec, kind: str, out_dir: Path, calibration: Sequence[np.ndarray]) -> Path:
    """Write an int8 copy of the spec's model (dynamic or static QDQ) and return its path."""

    source = Path(spec.model_path)
    target = out_dir / f"{source.stem}.int8-{kind}.onnx"
    if kind == "dynamic":
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
        return target
    input_name = spec.input_name or "input_1"

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._inner = _Calibration(spec, input_name, calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return self._inner.get_next()

    quantize_static(
        str(source),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return target


def count_agreement(spec: DetectorSpec, candidate: DetectorSpec, images: Sequence[SampleImage]) -> dict[str, Any]:
    reference = CatCounter(spec)
    other = CatCounter(candidate)
    rows = []
    for item in images:
        ref, got = reference.count(item.image), other.count(item.image)
        rows.append(
            {
                "image": item.name,
                "truth": item.cats,
                "fp32": ref.cats,
                "candidate": got.cats,
                "fp32_best": round(ref.best_score or 0.0, 3),
                "candidate_best": round(got.best_score or 0.0, 3),
            }
        )
    changed = [row for row in rows if row["fp32"] != row["candidate"]]
    return {"images": len(rows), "changed": len(changed), "rows": rows}


def run_bench(
    spec: DetectorSpec,
    *,
    rounds: int = 5,
    threads: int | None = None,
    quantisation: bool = False,
    accuracy_sets: dict[str, Sequence[SampleImage]] | None = None,
    int8_images: Sequence[SampleImage] | None = None,
) -> dict[str, Any]:
    """The whole benchmark as a JSON-ready dict (see module docstring)."""
    images = bench_images()
    started = time.perf_counter()
    clear_cache()
    optimised_threads = threads or available_cpus()
    reference = Contender("reference", make_counter(spec, "default", "reference", None), None)
    optimised = Contender("optimised", make_counter(spec, "tuned", "optimised", optimised_threads), optimised_threads)
    two_jobs = Contender(
        "optimised-2jobs", make_counter(spec, "tuned", "optimised", optimised_threads, 2), optimised_threads
    )
    ref_result, opt_result, two_result = time_interleaved([reference, optimised, two_jobs], images, rounds, spec)
    identity = compare(
        reference.counter, optimised.counter, {"bench": images, **(accuracy_sets or {})}, IdentityReport()
    )
    speedup = statistics.median(ref_result.total_ms) / statistics.median(opt_result.total_ms)
    report: dict[str, Any] = {
        "model": {
            "name": spec.name,
            "path": str(spec.model_path),
            "sha256": optimised.counter.model.sha256,
            "batched": optimised.counter.batched,
        },
        "images": [item.name for item in images],
        "rounds": rounds,
        "speedup": round(speedup, 3),
        "identical_counts": identity.identical,
        "speedup_infer_median": round(
            statistics.median(ref_result.infer_ms) / statistics.median(opt_result.infer_ms), 3
        ),
        "speedup_enclave_settings": round(
            statistics.median(ref_result.total_ms) / statistics.median(two_result.total_ms), 3
        ),
        "reference": ref_result.summary(),
        "optimised": opt_result.summary(),
        "optimised_2jobs": two_result.summary(),
        # `ccc cost` reads the profile the enclave runs under this name.
        "tuned": two_result.summary(),
        "identity": identity.to_dict(),
        "cpus": available_cpus(),
    }
    if quantisation:
        report["int8"] = _bench_int8(spec, images, rounds, optimised_threads, int8_images or images, opt_result)
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    return report


def _bench_int8(
    spec: DetectorSpec,
    images: Sequence[SampleImage],
    rounds: int,
    threads: int | None,
    accuracy_images: Sequence[SampleImage],
    fp32: ProfileResult,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ccc-int8-") as tmp:
        for kind in ("dynamic", "static"):
            try:
                path = quantise(spec, kind, Path(tmp), [item.image for item in images])
                candidate = spec.with_overrides(model_path=str(path), sha256=None)
                timing = run_profile(
                    candidate,
                    images,
                    label=f"int8-{kind}",
                    profile="tuned",
                    threads=threads,
                    rounds=rounds,
                    pipeline="reference",
                )
                agreement = count_agreement(spec, candidate, accuracy_images)
            except Exception as exc:  # a quantiser or runtime failure is a result to report, not a crash
                results[kind] = {"error": f"{type(exc).__name__}: {exc}", "verdict": "rejected (failed)"}
                continue
            speedup = statistics.median(fp32.total_ms) / statistics.median(timing.total_ms)
            keep = agreement["changed"] == 0 and speedup > 1.0
            results[kind] = {
                "timing": timing.summary(),
                "size_bytes": path.stat().st_size,
                "speedup_total_vs_optimised_fp32": round(speedup, 3),
                "count_agreement": {k: v for k, v in agreement.items() if k != "rows"},
                "changed_images": [row for row in agreement["rows"] if row["fp32"] != row["candidate"]],
                "verdict": "keep"
                if keep
                else "rejected (" + ("counts changed" if agreement["changed"] else "not faster") + ")",
            }
            clear_cache()
    return results


def render_text(report: dict[str, Any]) -> str:
    name, images, rounds = report["model"]["name"], len(report["images"]), report["rounds"]
    lines = [f"ccc bench count: {name} on {images} images x {rounds} rounds (interleaved), {report['cpus']} CPUs"]
    header = (
        f"{'profile':<16} {'threads':>7} {'infer med':>10} {'infer p95':>10} {'per view':>9} {'pre':>7} "
        f"{'post':>7} {'total med':>10} {'total p95':>10} {'img/s':>7}"
    )
    lines.append(header)
    rows = [
        report["reference"],
        report["optimised"],
        *([report["optimised_2jobs"]] if "optimised_2jobs" in report else []),
    ]
    for kind, result in report.get("int8", {}).items():
        if "timing" in result:
            rows.append(result["timing"])
        else:
            lines.append(f"int8-{kind}: {result.get('error')}")
    for row in rows:
        lines.append(
            f"{row['label']:<16} {row['threads'] if row['threads'] is not None else 'auto':>7} "
            f"{row['infer_ms_median']:>10.2f} {row['infer_ms_p95']:>10.2f} {row['infer_ms_per_view_median']:>9.2f} "
            f"{row['pre_ms_median']:>7.2f} {row['post_ms_median']:>7.2f} {row['total_ms_median']:>10.2f} "
            f"{row['total_ms_p95']:>10.2f} {row['images_per_s']:>7.2f}"
        )
    identity = report["identity"]
    lines.append(
        f"optimised vs reference: x{report['speedup']} end to end, x{report['speedup_infer_median']} "
        f"inference (medians; >1 means optimised is faster)"
    )
    if "speedup_enclave_settings" in report:
        lines.append(
            f"optimised-2jobs (the enclave's session: no spin-waiting) vs reference: "
            f"x{report['speedup_enclave_settings']} end to end"
        )
    lines.append(
        f"identical counts and boxes (<= {identity['box_tolerance_px']} px): {report['identical_counts']} "
        f"on {identity['images']} images ({', '.join(identity['sets'])}); largest box difference "
        f"{identity['max_box_diff_px']} px; {len(identity['count_mismatches'])} count and "
        f"{len(identity['box_mismatches'])} box mismatches"
    )
    for kind, result in report.get("int8", {}).items():
        if "timing" in result:
            agreement = result["count_agreement"]
            lines.append(
                f"int8-{kind}: x{result['speedup_total_vs_optimised_fp32']} vs optimised fp32, counts "
                f"changed on {agreement['changed']}/{agreement['images']} images -> {result['verdict']}"
            )
    return "\n".join(lines)

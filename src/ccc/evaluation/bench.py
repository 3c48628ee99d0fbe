"""Benchmark the counter: default vs tuned onnxruntime sessions, and int8 quantisation.

Everything runs in one process on the same images so the numbers are comparable:

* `default` — `onnxruntime.SessionOptions()` untouched (the baseline);
* `tuned`   — what `CatCounter` uses (see `session.session_options`), with the thread count given;
* `int8-dynamic` / `int8-static` — the model quantised with `onnxruntime.quantization`, timed with
  the tuned options, and kept only if every count on the sample set equals the fp32 count.

Per image we record pre-processing, inference (summed over the views the spec asks for) and
post-processing time; the report gives median and p95 and images per second (1000 / median total).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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

from ccc.evaluation.samples import SampleImage, chelsea, composite, negatives
from ccc_enclave.counting.counter import CatCounter
from ccc_enclave.counting.letterbox import preprocess
from ccc_enclave.counting.session import SessionProfile, clear_cache
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


@dataclass(frozen=True)
class ProfileResult:
    label: str
    threads: int | None
    views_per_image: int
    pre_ms: list[float]
    infer_ms: list[float]
    post_ms: list[float]
    counts: list[int]

    @property
    def total_ms(self) -> list[float]:
        return [a + b + c for a, b, c in zip(self.pre_ms, self.infer_ms, self.post_ms, strict=True)]

    def summary(self) -> dict[str, Any]:
        infer_per_view = [value / self.views_per_image for value in self.infer_ms]
        total_median = statistics.median(self.total_ms)
        return {
            "label": self.label,
            "threads": self.threads,
            "views_per_image": self.views_per_image,
            "samples": len(self.infer_ms),
            "infer_ms_median": round(statistics.median(self.infer_ms), 2),
            "infer_ms_p95": round(_percentile(self.infer_ms, 95), 2),
            "infer_ms_per_view_median": round(statistics.median(infer_per_view), 2),
            "pre_ms_median": round(statistics.median(self.pre_ms), 2),
            "post_ms_median": round(statistics.median(self.post_ms), 2),
            "total_ms_median": round(total_median, 2),
            "total_ms_p95": round(_percentile(self.total_ms, 95), 2),
            "images_per_s": round(1000.0 / total_median, 2) if total_median > 0 else None,
        }


def run_profile(
    spec: DetectorSpec, images: Sequence[SampleImage], *, label: str, profile: SessionProfile,
    threads: int | None, rounds: int,
) -> ProfileResult:
    counter = CatCounter(spec, threads=threads, profile=profile)
    for item in images:  # warm-up beyond the session's own: every image size once
        counter.count(item.image)
    pre, infer, post, counts = [], [], [], []
    for _ in range(rounds):
        for item in images:
            result = counter.count(item.image)
            pre.append(result.timings.pre_ms)
            infer.append(result.timings.infer_ms)
            post.append(result.timings.post_ms)
            counts.append(result.cats)
    views = 1 + (spec.tile_grid**2 if spec.tile_grid > 1 else 0)
    return ProfileResult(label, threads, views, pre, infer, post, counts[: len(images)])


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
        str(source), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
    )
    return target


def count_agreement(spec: DetectorSpec, candidate: DetectorSpec, images: Sequence[SampleImage]) -> dict[str, Any]:
    reference = CatCounter(spec)
    other = CatCounter(candidate)
    rows = []
    for item in images:
        ref, got = reference.count(item.image), other.count(item.image)
        rows.append({"image": item.name, "truth": item.cats, "fp32": ref.cats, "candidate": got.cats,
                     "fp32_best": round(ref.best_score or 0.0, 3), "candidate_best": round(got.best_score or 0.0, 3)})
    changed = [row for row in rows if row["fp32"] != row["candidate"]]
    return {"images": len(rows), "changed": len(changed), "rows": rows}


def run_bench(
    spec: DetectorSpec, *, rounds: int = 5, threads: int | None = None, quantisation: bool = True,
    accuracy_images: Sequence[SampleImage] | None = None,
) -> dict[str, Any]:
    """The whole benchmark as a JSON-ready dict (see module docstring)."""
    images = bench_images()
    started = time.perf_counter()
    clear_cache()
    default = run_profile(spec, images, label="default", profile="default", threads=None, rounds=rounds)
    tuned = run_profile(spec, images, label="tuned", profile="tuned", threads=threads, rounds=rounds)
    report: dict[str, Any] = {
        "model": {"name": spec.name, "path": str(spec.model_path)},
        "images": [item.name for item in images],
        "rounds": rounds,
        "default": default.summary(),
        "tuned": tuned.summary(),
        "speedup_infer_median": round(statistics.median(default.infer_ms) / statistics.median(tuned.infer_ms), 3),
        "speedup_total_median": round(statistics.median(default.total_ms) / statistics.median(tuned.total_ms), 3),
        "counts_identical_default_vs_tuned": default.counts == tuned.counts,
    }
    if quantisation:
        report["int8"] = _bench_int8(spec, images, rounds, threads, accuracy_images or images, tuned)
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    return report


def _bench_int8(
    spec: DetectorSpec, images: Sequence[SampleImage], rounds: int, threads: int | None,
    accuracy_images: Sequence[SampleImage], tuned: ProfileResult,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ccc-int8-") as tmp:
        for kind in ("dynamic", "static"):
            try:
                path = quantise(spec, kind, Path(tmp), [item.image for item in images])
                candidate = spec.with_overrides(model_path=str(path), sha256=None)
                timing = run_profile(candidate, images, label=f"int8-{kind}", profile="tuned", threads=threads,
                                     rounds=rounds)
                agreement = count_agreement(spec, candidate, accuracy_images)
            except Exception as exc:  # a quantiser or runtime failure is a result to report, not a crash
                results[kind] = {"error": f"{type(exc).__name__}: {exc}", "verdict": "rejected (failed)"}
                continue
            speedup = statistics.median(tuned.total_ms) / statistics.median(timing.total_ms)
            keep = agreement["changed"] == 0 and speedup > 1.0
            results[kind] = {
                "timing": timing.summary(),
                "size_bytes": path.stat().st_size,
                "speedup_total_vs_tuned_fp32": round(speedup, 3),
                "count_agreement": {k: v for k, v in agreement.items() if k != "rows"},
                "changed_images": [row for row in agreement["rows"] if row["fp32"] != row["candidate"]],
                "verdict": "keep" if keep else "rejected (" + (
                    "counts changed" if agreement["changed"] else "not faster") + ")",
            }
            clear_cache()
    return results


def render_text(report: dict[str, Any]) -> str:
    name, images, rounds = report["model"]["name"], len(report["images"]), report["rounds"]
    lines = [f"ccc bench count: {name} on {images} images x {rounds} rounds"]
    header = f"{'profile':<14} {'threads':>7} {'infer med':>10} {'infer p95':>10} {'per view':>9} {'pre':>7} " \
             f"{'post':>7} {'total med':>10} {'img/s':>7}"
    lines.append(header)
    rows = [report["default"], report["tuned"]]
    for kind, result in report.get("int8", {}).items():
        if "timing" in result:
            rows.append(result["timing"])
        else:
            lines.append(f"int8-{kind}: {result.get('error')}")
    for row in rows:
        lines.append(
            f"{row['label']:<14} {row['threads'] if row['threads'] is not None else 'auto':>7} "
            f"{row['infer_ms_median']:>10.2f} {row['infer_ms_p95']:>10.2f} {row['infer_ms_per_view_median']:>9.2f} "
            f"{row['pre_ms_median']:>7.2f} {row['post_ms_median']:>7.2f} {row['total_ms_median']:>10.2f} "
            f"{row['images_per_s']:>7.2f}"
        )
    lines.append(f"tuned vs default: inference x{report['speedup_infer_median']}, "
                 f"end to end x{report['speedup_total_median']} (median; >1 means tuned is faster)")
    for kind, result in report.get("int8", {}).items():
        if "timing" in result:
            agreement = result["count_agreement"]
            lines.append(f"int8-{kind}: x{result['speedup_total_vs_tuned_fp32']} vs tuned fp32, counts changed on "
                         f"{agreement['changed']}/{agreement['images']} images -> {result['verdict']}")
    return "\n".join(lines)

"""Measure the count-changing option: OpenVINO at reduced precision behind the counter's own pipeline.

`ccc bench count` keeps only changes that leave every count and box as they were; fp32 inference is
at this CPU's floor, so the fastest option found changes the arithmetic: OpenVINO's CPU plugin at
`bf16` (AMX on Sapphire Rapids). This tool puts an OpenVINO session behind the optimised counter
(the same pre-processing, batch, decoding and post-processing), times it interleaved with the
`reference` and `optimised` counters, and runs the identity check of `ccc bench count` on the bench
and accuracy sets, so the decision "may counts change for this speed?" rests on a reproducible run:

    pip install --target /tmp/ov --no-deps openvino==2026.4.1 openvino-telemetry==2025.2.0
    PYTHONPATH=/tmp/ov python -m ccc.evaluation.bench_openvino --precision bf16 --out bench-results/openvino.json

OpenVINO is not a dependency of the project or of the enclave (docs/counting.md says why); it is
loaded by name only here.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ccc.evaluation.bench import bench_images
from ccc.evaluation.bench_identity import IdentityReport, compare
from ccc.evaluation.samples import sample_set
from ccc_enclave.counting import CatCounter, resolve_spec
from ccc_enclave.counting.spec import DetectorSpec


class OpenVinoSession:
    """The slice of an onnxruntime session the counter calls (`run(None, {input: batch})`), on OpenVINO."""

    def __init__(self, compiled: Any, output_names: Sequence[str]) -> None:
        self._request = compiled.create_infer_request()
        self._output_names = tuple(output_names)

    def run(self, _names: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        (batch,) = feeds.values()
        result = self._request.infer({0: batch})
        by_name = {port.get_any_name(): value for port, value in result.items()}
        return [np.array(by_name[name]) for name in self._output_names]


def openvino_counter(spec: DetectorSpec, precision: str, threads: int) -> CatCounter:
    """The optimised counter with its onnxruntime session replaced by OpenVINO at `precision`."""
    ov = importlib.import_module("openvino")
    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(str(spec.model_path)),
        "CPU",
        {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": str(threads), "PERFORMANCE_HINT": "LATENCY"},
    )
    counter = CatCounter(spec, concurrent_jobs=1)
    # Evaluation only: everything but the runtime stays the optimised counter's.
    counter._model = replace(counter._model, session=OpenVinoSession(compiled, counter._model.output_names))
    return counter


def run(precision: str, rounds: int, per_count: int, threads: int) -> dict[str, Any]:
    spec = resolve_spec()
    counters = {
        "reference": CatCounter(spec, profile="default", pipeline="reference"),
        "optimised": CatCounter(spec),
        f"openvino-{precision}": openvino_counter(spec, precision, threads),
    }
    images = bench_images()
    total: dict[str, list[float]] = {name: [] for name in counters}
    infer: dict[str, list[float]] = {name: [] for name in counters}
    for item in images:  # warm-up: every image size once
        for counter in counters.values():
            counter.count(item.image)
    for round_index in range(rounds):
        order = list(counters.items())[:: -1 if round_index % 2 else 1]
        for item in images:
            for name, counter in order:
                started = time.perf_counter()
                result = counter.count(item.image)
                total[name].append((time.perf_counter() - started) * 1000)
                infer[name].append(result.timings.infer_ms)
    sets = {"bench": images, **{split: sample_set(split, per_count=per_count) for split in ("tune", "validate")}}
    identity = compare(counters["reference"], counters[f"openvino-{precision}"], sets, IdentityReport()).to_dict()
    reference_ms = statistics.median(total["reference"])
    return {
        "precision": precision,
        "rounds": rounds,
        "profiles": {
            name: {
                "total_ms_median": round(statistics.median(total[name]), 2),
                "infer_ms_median": round(statistics.median(infer[name]), 2),
                "speedup_vs_reference": round(reference_ms / statistics.median(total[name]), 3),
            }
            for name in counters
        },
        "identity": identity,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--precision", default="bf16", choices=("bf16", "f16", "f32"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accuracy-per-count", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench-results/openvino.json"))
    args = parser.parse_args(argv)
    if importlib.util.find_spec("openvino") is None:
        print("bench_openvino: openvino is not importable (see this module's docstring)", file=sys.stderr)
        return 2
    report = run(args.precision, args.rounds, args.accuracy_per_count, args.threads)
    for name, row in report["profiles"].items():
        print(f"{name:<16} total {row['total_ms_median']:>8.2f} ms  infer {row['infer_ms_median']:>8.2f} ms  "
              f"x{row['speedup_vs_reference']}")  # fmt: skip
    identity = report["identity"]
    print(
        f"vs reference on {identity['images']} images: {len(identity['count_mismatches'])} counts changed, "
        f"{len(identity['box_mismatches'])} box mismatches, largest box difference {identity['max_box_diff_px']} px"
    )
    for item in identity["count_mismatches"]:
        print(f"  {item['set']}/{item['image']}: {item['reference']} -> {item['candidate']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

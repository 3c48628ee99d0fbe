"""``python -m ccc.model.build``: build ``models/nanodet-g.onnx`` and its card, reproducibly.

Steps: ``npm pack`` the pinned package into a cache (skipped when cached) -> read the two model
files out of the tarball and check their SHA-256 -> convert with the project's converter ->
smoke-test the ONNX in onnxruntime (names and shapes) -> write model and card atomically.
Re-running is a no-op when the card matches the model on disk and the requested build.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnx

from ccc.atomic_files import write_bytes_atomic
from ccc.model import nanodet
from ccc.model.batch_axis import make_batch_dynamic
from ccc.model.converter import convert_to_ir
from ccc.model.errors import ConversionError, GraphFormatError, ModelBuildError, PackageFetchError
from ccc.model.npm_package import NpmSource, fetch_tarball, npm_integrity, read_members, sha256_file, sha256_hex
from ccc.model.onnx_ir import PRODUCER_VERSION, WeightsDtype
from ccc.model.optimize import optimize_graph
from ccc.model.tfjs_format import load_graph_model

DEFAULT_WEIGHTS_DTYPE: WeightsDtype = "float32"  # chosen by measurement: see docs/model.md


@dataclass(frozen=True)
class BuildResult:
    onnx_path: Path
    card_path: Path
    sha256: str
    rebuilt: bool


def convert_nanodet(
    model_json: bytes, weights: bytes, *, weights_dtype: WeightsDtype, source: NpmSource
) -> onnx.ModelProto:
    """The tfjs files -> the ONNX model with the counter's input/output names."""
    shard_name = Path(nanodet.WEIGHTS_MEMBER).name

    def read_shard(name: str) -> bytes:
        if name != shard_name:
            raise GraphFormatError(f"model.json refers to an unexpected weight shard {name!r}")
        return weights

    graph = load_graph_model(model_json, read_shard)
    if graph.input_names != (nanodet.INPUT_NAME,):
        raise ConversionError(nanodet.MODEL_NAME, "input", f"expected one input 'input_1', got {graph.input_names}")
    ir = convert_to_ir(graph)
    ir.set_outputs(nanodet.output_renames({o.name: o.shape for o in ir.outputs}))
    optimize_graph(ir)
    model = ir.to_model(
        weights_dtype=weights_dtype,
        graph_name=nanodet.MODEL_NAME,
        doc_string="NanoDet-g (COCO, 80 classes), converted from the TensorFlow.js graph model "
        f"in npm {source.spec} by the CCC project's converter. Weights: Apache-2.0, RangiLyu/nanodet.",
        metadata={
            "name": nanodet.MODEL_NAME,
            "weights_sha256": sha256_hex(weights),
            "licence": "weights Apache-2.0 (RangiLyu/nanodet); package MIT (@vladmandic/human)",
        },
    )
    make_batch_dynamic(model)  # all views of an image in one onnxruntime call (docs/model.md)
    onnx.checker.check_model(model)
    return model


def smoke_test(model_bytes: bytes) -> None:
    """Load in onnxruntime and run: names, shapes and score range must be as the card says, and a
    batch of two must give what two single runs give (the batch axis mixes no samples)."""
    import onnxruntime as ort

    size = nanodet.INPUT_SIZE
    feed = np.random.default_rng(0).uniform(-2.0, 2.0, (2, 3, size, size)).astype(np.float32)
    try:
        session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
        inputs = [i.name for i in session.get_inputs()]
        if inputs != [nanodet.INPUT_NAME]:
            raise ConversionError(nanodet.MODEL_NAME, "smoke test", f"inputs are {inputs}")
        names = [o.name for o in session.get_outputs()]
        outputs = dict(zip(names, session.run(None, {nanodet.INPUT_NAME: feed}), strict=True))
        singles = [session.run(None, {nanodet.INPUT_NAME: feed[i : i + 1]}) for i in range(2)]
    except ConversionError:
        raise
    except Exception as exc:  # onnxruntime raises its own (pybind) exception types
        raise ConversionError(nanodet.MODEL_NAME, "smoke test", f"onnxruntime rejected the model: {exc}") from exc
    for name, spec in nanodet.output_spec().items():
        got = outputs.get(name)
        if got is None or list(got.shape) != [2, *spec["shape"][1:]] or not np.isfinite(got).all():
            raise ConversionError(nanodet.MODEL_NAME, "smoke test", f"output {name} is missing or malformed")
        if name.startswith("cls") and (got.min() < 0 or got.max() > 1):
            raise ConversionError(nanodet.MODEL_NAME, "smoke test", f"{name} scores outside 0..1")
        for sample, single in enumerate(singles):
            if not np.allclose(got[sample], single[names.index(name)][0], rtol=1e-4, atol=1e-4):
                raise ConversionError(nanodet.MODEL_NAME, "smoke test", f"{name}: batch item {sample} != single run")


def _up_to_date(onnx_path: Path, card_path: Path, source: NpmSource, weights_dtype: str) -> str | None:
    """The model's sha256 when model and card on disk are exactly what this build would write."""
    try:
        card = json.loads(card_path.read_text())
        sha = sha256_file(onnx_path)
    except (OSError, ValueError):
        return None
    expected = {
        "sha256": sha,
        "weights_dtype": weights_dtype,
        "source_files": dict(source.files),
        "package": (source.package, source.version),
        "converter": PRODUCER_VERSION,
    }
    try:
        actual = {
            "sha256": card["sha256"],
            "weights_dtype": card["weights_dtype"],
            "source_files": card["source"]["files"],
            "package": (card["source"]["package"], card["source"]["version"]),
            "converter": card["converter"]["version"],
        }
    except (KeyError, TypeError):
        return None
    return sha if actual == expected else None


def build(
    out_dir: Path,
    cache_dir: Path,
    *,
    source: NpmSource,
    weights_dtype: WeightsDtype = DEFAULT_WEIGHTS_DTYPE,
    force: bool = False,
    npm: str = "npm",
    log: Any = None,
) -> BuildResult:
    say = log or (lambda message: None)
    onnx_path = out_dir / f"{nanodet.MODEL_NAME}.onnx"
    card_path = out_dir / f"{nanodet.MODEL_NAME}.json"
    if not force:
        sha = _up_to_date(onnx_path, card_path, source, weights_dtype)
        if sha is not None:
            onnx_path.touch()  # newer than its prerequisites, so make does not ask again
            say(f"{onnx_path} is up to date (sha256 {sha})")
            return BuildResult(onnx_path, card_path, sha, rebuilt=False)

    started = time.monotonic()
    tarball = fetch_tarball(source, cache_dir, npm=npm)
    say(f"package: {tarball} ({time.monotonic() - started:.1f} s)")
    try:
        files = read_members(tarball, source)
    except PackageFetchError:
        # A damaged cached tarball (e.g. a disk error): fetch it once more before giving up.
        say(f"cached {tarball.name} is unreadable; fetching it again")
        tarball.unlink(missing_ok=True)
        tarball = fetch_tarball(source, cache_dir, npm=npm)
        files = read_members(tarball, source)
    integrity = npm_integrity(tarball)

    model = convert_nanodet(
        files[nanodet.MODEL_JSON_MEMBER], files[nanodet.WEIGHTS_MEMBER], weights_dtype=weights_dtype, source=source
    )
    data = model.SerializeToString()
    smoke_test(data)
    sha = sha256_hex(data)
    card = nanodet.model_card(
        source, onnx_sha256=sha, onnx_bytes=len(data), weights_dtype=weights_dtype, tarball_integrity=integrity
    )
    write_bytes_atomic(onnx_path, data, mode=0o644)
    write_bytes_atomic(card_path, (json.dumps(card, indent=2) + "\n").encode(), mode=0o644)
    say(f"wrote {onnx_path} ({len(data)} bytes, sha256 {sha}) in {time.monotonic() - started:.1f} s")
    return BuildResult(onnx_path, card_path, sha, rebuilt=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ccc.model.build",
        description="Build the NanoDet-g ONNX model from its npm package with the project's converter.",
    )
    parser.add_argument("--out-dir", type=Path, default=Path("models"))
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/npm"))
    parser.add_argument("--source", choices=sorted(nanodet.SOURCES), default=nanodet.DEFAULT_SOURCE)
    parser.add_argument("--weights-dtype", choices=["float32", "float16"], default=DEFAULT_WEIGHTS_DTYPE)
    parser.add_argument("--npm", default="npm", help="npm executable (default: npm on PATH)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the model is up to date")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        build(
            args.out_dir,
            args.cache_dir,
            source=nanodet.SOURCES[args.source],
            weights_dtype=cast(WeightsDtype, args.weights_dtype),
            force=args.force,
            npm=args.npm,
            log=lambda message: print(f"model: {message}", file=sys.stderr),
        )
    except ModelBuildError as exc:
        print(f"model build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

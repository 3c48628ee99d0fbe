"""The real NanoDet-g build (``make model`` runs before the tests; skipped when it has not)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnxruntime as ort
import pytest

from ccc.model import nanodet
from ccc.model.build import DEFAULT_WEIGHTS_DTYPE, convert_nanodet
from ccc.model.converter import convert_to_ir
from ccc.model.npm_package import read_members
from ccc.model.precision_report import best_cat_score, chelsea_input
from ccc.model.tfjs_format import load_graph_model
from ccc_enclave.counting.spec import DEFAULT_IOU_THRESHOLD, DEFAULT_SCORE_THRESHOLD
from tests.conftest import REPO_ROOT

MODEL = REPO_ROOT / "models" / "nanodet-g.onnx"
CARD = REPO_ROOT / "models" / "nanodet-g.json"
SOURCE = nanodet.SOURCES[nanodet.DEFAULT_SOURCE]
TARBALL = REPO_ROOT / ".cache" / "npm" / SOURCE.tarball_name

needs_model = pytest.mark.skipif(not (MODEL.is_file() and CARD.is_file()), reason="run `make model` first")
needs_tarball = pytest.mark.skipif(not TARBALL.is_file(), reason="npm tarball not cached; run `make model`")


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    return ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def source_files() -> dict[str, bytes]:
    return read_members(TARBALL, SOURCE)


@needs_model
def test_built_model_has_the_counter_contract(session):
    expected_input = [("input_1", ["batch", 3, 416, 416], "tensor(float)")]
    assert [(i.name, i.shape, i.type) for i in session.get_inputs()] == expected_input
    outputs = [(o.name, o.shape) for o in session.get_outputs()]
    assert outputs == [
        ("cls_8", ["batch", 2704, 80]), ("box_8", ["batch", 2704, 44]),
        ("cls_16", ["batch", 676, 80]), ("box_16", ["batch", 676, 44]),
        ("cls_32", ["batch", 169, 80]), ("box_32", ["batch", 169, 44]),
    ]  # fmt: skip


@needs_model
def test_card_describes_the_file_on_disk():
    card = json.loads(CARD.read_text())
    data = MODEL.read_bytes()
    assert card["sha256"] == hashlib.sha256(data).hexdigest()
    assert card["size_bytes"] == len(data)
    assert card["name"] == "nanodet-g"
    assert card["source"]["package"] == "@vladmandic/human" and card["source"]["version"] == "1.5.1"
    assert card["source"]["files"]["package/models/nanodet.bin"] == (
        "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9"
    )
    assert card["detector"] == {
        "input_name": "input_1", "input_size": 416, "layout": "NCHW", "channel_order": "BGR",
        "mean": [103.53, 116.28, 123.675], "std": [57.375, 57.12, 58.395], "decoder": "nanodet",
        "strides": [8, 16, 32], "reg_max": 10, "num_classes": 80, "cat_class": 15,
        "score_threshold": DEFAULT_SCORE_THRESHOLD, "iou_threshold": DEFAULT_IOU_THRESHOLD,
    }  # fmt: skip
    assert set(card["outputs"]) == {"cls_8", "box_8", "cls_16", "box_16", "cls_32", "box_32"}
    assert "Apache-2.0" in card["licence"]["weights"] and "MIT" in card["licence"]["package"]


@needs_model
def test_chelsea_is_a_cat(session):
    """The conversion is numerically right: the one cat in scikit-image's photo scores ~0.58."""
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {"input_1": chelsea_input()}), strict=True))
    assert 0.5 < best_cat_score(outputs) < 0.66
    top_class = max(range(80), key=lambda c: max(float(outputs[f"cls_{s}"][0, :, c].max()) for s in (8, 16, 32)))
    assert top_class == nanodet.CAT_CLASS
    for s in nanodet.STRIDES:
        assert outputs[f"cls_{s}"].min() >= 0.0 and outputs[f"cls_{s}"].max() <= 1.0
    # The best cat cell is on the cat (the photo is centred at 416 x 277 after letterboxing).
    best_stride = max(nanodet.STRIDES, key=lambda s: outputs[f"cls_{s}"][0, :, 15].max())
    cell = int(outputs[f"cls_{best_stride}"][0, :, 15].argmax())
    grid = 416 // best_stride
    cx, cy = (cell % grid + 0.5) * best_stride, (cell // grid + 0.5) * best_stride
    assert 70 < cy < 346 and 0 < cx < 416


@needs_tarball
def test_real_conversion_is_deterministic_and_reproduces_the_built_file(source_files):
    json_bytes, weights = source_files[nanodet.MODEL_JSON_MEMBER], source_files[nanodet.WEIGHTS_MEMBER]
    first = convert_nanodet(json_bytes, weights, weights_dtype="float32", source=SOURCE).SerializeToString()
    second = convert_nanodet(json_bytes, weights, weights_dtype="float32", source=SOURCE).SerializeToString()
    assert first == second
    if MODEL.is_file() and json.loads(CARD.read_text())["weights_dtype"] == DEFAULT_WEIGHTS_DTYPE == "float32":
        assert hashlib.sha256(first).hexdigest() == hashlib.sha256(MODEL.read_bytes()).hexdigest()


@needs_tarball
def test_optimised_graph_computes_what_the_literal_translation_computes(source_files):
    """The layout rewrites (transpose cancelling, pad and bias folding) change no number."""
    json_bytes, weights = source_files[nanodet.MODEL_JSON_MEMBER], source_files[nanodet.WEIGHTS_MEMBER]
    optimised = convert_nanodet(json_bytes, weights, weights_dtype="float32", source=SOURCE)
    graph = load_graph_model(json_bytes, lambda name: weights)
    literal_ir = convert_to_ir(graph)
    literal_ir.set_outputs(nanodet.output_renames({o.name: o.shape for o in literal_ir.outputs}))
    literal = literal_ir.to_model()
    assert len(optimised.graph.node) < len(literal.graph.node) // 2
    feed = {"input_1": chelsea_input()}
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # compare our graphs, not ORT's
    results = [
        ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(None, feed)
        for m in (optimised, literal)
    ]
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def _numpy_tf_interpreter(graph, feeds):
    """Evaluate the TensorFlow graph itself in numpy with the reference ops of the converter tests.

    Independent of the converter's translation and of onnxruntime: if both agree on a real
    photo, the 489-node conversion is right, not just each op in isolation.
    """
    from tests.unit import test_model_converter as ref

    by_name = {n.name: n for n in graph.nodes}
    cache: dict[str, list[np.ndarray]] = {}

    def value(reference: str) -> np.ndarray:
        name, _, index = reference.partition(":")
        if name not in cache:
            cache[name] = evaluate(by_name[name])
        return cache[name][int(index or 0)]

    def evaluate(node) -> list[np.ndarray]:
        args = [value(i) for i in node.inputs]
        op = node.op
        if op == "Placeholder":
            return [feeds[node.name]]
        if op == "Const":
            return [graph.constants[node.name]]
        if op == "Identity":
            return [args[0]]
        if op in ("Add", "AddV2"):
            return [args[0] + args[1]]
        if op == "Transpose":
            return [np.transpose(args[0], args[1])]
        if op == "Reshape":
            return [args[0].reshape(args[1])]
        if op == "ConcatV2":
            return [np.concatenate(args[:-1], axis=int(args[-1]))]
        if op in ("Pad", "PadV2"):
            return [np.pad(args[0], args[1].tolist(), constant_values=args[2] if op == "PadV2" else 0)]
        if op == "LeakyRelu":
            return [ref.leaky_relu(args[0], node.attr_float("alpha"))]
        if op == "Sigmoid":
            return [ref.sigmoid(args[0])]
        if op == "SplitV":
            return np.split(args[0], np.cumsum(args[1])[:-1], axis=int(args[2]))
        if op == "SparseToDense":
            dense = np.full(args[1], args[3], dtype=args[2].dtype)
            dense[tuple(args[0].T)] = args[2]
            return [dense]
        if op == "Conv2D":
            assert node.attr_str("data_format") == "NHWC" and node.attr_str("padding") == "VALID"
            strides = node.attr_ints("strides")[1:3]
            return [ref.conv2d_nhwc(args[0], args[1], strides)]
        if op == "MaxPool":
            k, s = node.attr_ints("ksize")[1:3], node.attr_ints("strides")[1:3]
            return [ref.max_pool_nhwc(args[0], k, s, node.attr_str("padding"))]
        if op == "ResizeBilinear":
            align, half = node.attr_bool("align_corners"), node.attr_bool("half_pixel_centers")
            return [ref.resize_bilinear_nhwc(args[0], tuple(args[1]), align, half)]
        raise AssertionError(f"no reference for {op}")

    return {name: value(name) for name in graph.output_names}


@needs_model
@needs_tarball
def test_onnx_model_agrees_with_a_numpy_evaluation_of_the_tensorflow_graph(session, source_files):
    """Measured: max |difference| ~3e-7 on scores and ~6e-6 on box logits."""
    json_bytes, weights = source_files[nanodet.MODEL_JSON_MEMBER], source_files[nanodet.WEIGHTS_MEMBER]
    graph = load_graph_model(json_bytes, lambda name: weights)
    feed = chelsea_input()
    expected = _numpy_tf_interpreter(graph, {"input_1": feed})
    renames = dict(nanodet.output_renames({name: value.shape for name, value in expected.items()}))
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, {"input_1": feed}), strict=True))
    for tf_name, onnx_name in renames.items():
        np.testing.assert_allclose(got[onnx_name], expected[tf_name], rtol=1e-4, atol=1e-4)
    assert abs(best_cat_score(got) - best_cat_score({renames[k]: v for k, v in expected.items()})) < 1e-5

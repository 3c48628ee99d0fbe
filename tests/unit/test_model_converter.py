"""The tfjs -> ONNX converter, op by op, against numpy references of TensorFlow's semantics.

Each test builds a tiny TensorFlow.js graph model (json + weight bytes, the real file format),
converts it, runs the ONNX in onnxruntime and compares with an independent numpy reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ccc.model.converter import tfjs_to_onnx
from ccc.model.errors import ConversionError, GraphFormatError, ModelBuildError, UnsupportedOpError
from ccc.model.ops import SUPPORTED_OPS
from ccc.model.tfjs_format import TfNode, attr_value, dump_graph_model, load_graph_model, make_node, placeholder

RNG = np.random.default_rng(20240601)


def convert(
    nodes: Sequence[TfNode],
    consts: Mapping[str, np.ndarray],
    outputs: Sequence[str],
    *,
    optimize: bool = True,
    float16_weights: bool = False,
    **kwargs,
):
    model_json, weights = dump_graph_model(nodes, consts, outputs=outputs, float16_weights=float16_weights)
    graph = load_graph_model(model_json, lambda name: weights)
    return tfjs_to_onnx(graph, optimize=optimize, **kwargs)


def run(nodes, consts, feeds: Mapping[str, np.ndarray], outputs: Sequence[str], **kwargs) -> list[np.ndarray]:
    model = convert(nodes, consts, outputs, **kwargs)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, dict(feeds))


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


# --- numpy references (TensorFlow semantics) ----------------------------------------------------


def same_pads(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    effective = (k - 1) * d + 1
    out = -(-size // s)
    total = max(0, (out - 1) * s + effective - size)
    return total // 2, total - total // 2


def conv2d_nhwc(x, filt, strides=(1, 1), dilations=(1, 1), padding="VALID", explicit=None):
    """Direct convolution: filter HWIO, groups inferred from the filter's input channels."""
    kh, kw, cin_g, cout = filt.shape
    n, h, w, c = x.shape
    if padding == "SAME":
        (pt, pb), (pl, pr) = same_pads(h, kh, strides[0], dilations[0]), same_pads(w, kw, strides[1], dilations[1])
    elif padding == "EXPLICIT":
        (pt, pb), (pl, pr) = explicit
    else:
        pt = pb = pl = pr = 0
    xp = np.pad(x, [(0, 0), (pt, pb), (pl, pr), (0, 0)])
    oh = (h + pt + pb - (kh - 1) * dilations[0] - 1) // strides[0] + 1
    ow = (w + pl + pr - (kw - 1) * dilations[1] - 1) // strides[1] + 1
    groups = c // cin_g
    cout_g = cout // groups
    out = np.zeros((n, oh, ow, cout), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[
                :,
                i * dilations[0] : i * dilations[0] + strides[0] * (oh - 1) + 1 : strides[0],
                j * dilations[1] : j * dilations[1] + strides[1] * (ow - 1) + 1 : strides[1],
                :,
            ]
            for g in range(groups):
                out[..., g * cout_g : (g + 1) * cout_g] += (
                    patch[..., g * cin_g : (g + 1) * cin_g] @ filt[i, j, :, g * cout_g : (g + 1) * cout_g]
                )
    return out.astype(np.float32)


def depthwise_nhwc(x, filt, strides, padding):
    kh, kw, c, mult = filt.shape
    grouped = np.zeros((kh, kw, 1, c * mult), np.float32)
    for ch in range(c):
        for m in range(mult):
            grouped[:, :, 0, ch * mult + m] = filt[:, :, ch, m]
    return conv2d_nhwc(x, grouped, strides, padding=padding)


def max_pool_nhwc(x, k, s, padding):
    n, h, w, c = x.shape
    if padding == "SAME":
        (pt, pb), (pl, pr) = same_pads(h, k[0], s[0], 1), same_pads(w, k[1], s[1], 1)
    else:
        pt = pb = pl = pr = 0
    xp = np.pad(x, [(0, 0), (pt, pb), (pl, pr), (0, 0)], constant_values=-np.inf)
    oh, ow = (h + pt + pb - k[0]) // s[0] + 1, (w + pl + pr - k[1]) // s[1] + 1
    out = np.full((n, oh, ow, c), -np.inf, np.float32)
    for i in range(k[0]):
        for j in range(k[1]):
            out = np.maximum(out, xp[:, i : i + s[0] * (oh - 1) + 1 : s[0], j : j + s[1] * (ow - 1) + 1 : s[1], :])
    return out


def _interp(in_size: int, out_size: int, align: bool, half: bool):
    """TensorFlow's compute_interpolation_weights (resize_bilinear_op.cc)."""
    scale = (in_size - 1) / (out_size - 1) if align and out_size > 1 else in_size / out_size
    lower, upper, lerp = [], [], []
    for i in range(out_size):
        pos = (i + 0.5) * scale - 0.5 if half else i * scale
        floor = math.floor(pos)
        lower.append(max(floor, 0))
        upper.append(min(math.ceil(pos), in_size - 1))
        lerp.append(pos - floor)
    return np.array(lower), np.array(upper), np.array(lerp, np.float32)


def resize_bilinear_nhwc(x, size, align=False, half=False):
    ylo, yhi, yl = _interp(x.shape[1], size[0], align, half)
    xlo, xhi, xl = _interp(x.shape[2], size[1], align, half)
    top = x[:, ylo][:, :, xlo] * (1 - xl)[None, None, :, None] + x[:, ylo][:, :, xhi] * xl[None, None, :, None]
    bottom = x[:, yhi][:, :, xlo] * (1 - xl)[None, None, :, None] + x[:, yhi][:, :, xhi] * xl[None, None, :, None]
    return top * (1 - yl)[None, :, None, None] + bottom * yl[None, :, None, None]


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def leaky_relu(x, alpha):
    return np.where(x >= 0, x, alpha * x)


# --- op tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strides", "dilations", "padding", "explicit"),
    [
        ((1, 1), (1, 1), "VALID", None),
        ((2, 2), (1, 1), "SAME", None),
        ((1, 2), (1, 1), "SAME", None),
        ((1, 1), (2, 2), "SAME", None),
        ((2, 1), (1, 1), "EXPLICIT", ((1, 2), (0, 1))),
    ],
)
@pytest.mark.parametrize("optimize", [True, False])
def test_conv2d_nhwc_matches_numpy(strides, dilations, padding, explicit, optimize):
    x, filt = rand(1, 9, 8, 4), rand(3, 3, 4, 5)
    attrs = {"strides": [1, *strides, 1], "dilations": [1, *dilations, 1], "padding": padding, "data_format": "NHWC"}
    if explicit:
        attrs["explicit_paddings"] = [0, 0, *explicit[0], *explicit[1], 0, 0]
    nodes = [placeholder("x", x.shape), make_node("conv", "Conv2D", ["x", "w"], **attrs)]
    (got,) = run(nodes, {"w": filt}, {"x": x}, ["conv"], optimize=optimize)
    np.testing.assert_allclose(got, conv2d_nhwc(x, filt, strides, dilations, padding, explicit), rtol=1e-4, atol=1e-4)


def test_conv2d_grouped_and_nchw_data_format():
    x, filt = rand(1, 6, 7, 7), rand(3, 3, 2, 9)  # NCHW input, 6 channels, 3 groups of 2
    nodes = [
        placeholder("x", x.shape),
        make_node("conv", "Conv2D", ["x", "w"], strides=[1, 1, 2, 2], padding="SAME", data_format="NCHW"),
    ]
    (got,) = run(nodes, {"w": filt}, {"x": x}, ["conv"])
    want = conv2d_nhwc(x.transpose(0, 2, 3, 1), filt, (2, 2), padding="SAME").transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_depthwise_conv2d_matches_numpy():
    x, filt = rand(1, 8, 8, 3), rand(3, 3, 3, 2)
    nodes = [
        placeholder("x", x.shape),
        make_node("dw", "DepthwiseConv2dNative", ["x", "w"], strides=[1, 2, 2, 1], padding="SAME"),
    ]
    (got,) = run(nodes, {"w": filt}, {"x": x}, ["dw"])
    np.testing.assert_allclose(got, depthwise_nhwc(x, filt, (2, 2), "SAME"), rtol=1e-4, atol=1e-4)


def test_float16_weights_are_dequantised():
    x, filt = rand(1, 5, 5, 2), rand(1, 1, 2, 3) * 7
    nodes = [placeholder("x", x.shape), make_node("conv", "Conv2D", ["x", "w"], strides=[1, 1, 1, 1], padding="VALID")]
    (got,) = run(nodes, {"w": filt}, {"x": x}, ["conv"], float16_weights=True)
    halved = filt.astype(np.float16).astype(np.float32)
    np.testing.assert_allclose(got, conv2d_nhwc(x, halved), rtol=1e-5, atol=1e-5)
    assert not np.allclose(got, conv2d_nhwc(x, filt), rtol=1e-6, atol=1e-6)  # the fp16 rounding is visible


@pytest.mark.parametrize(("ksize", "stride", "padding"), [((3, 3), (2, 2), "VALID"), ((3, 2), (2, 1), "SAME")])
def test_max_pool_matches_numpy(ksize, stride, padding):
    x = rand(1, 9, 8, 3)
    nodes = [
        placeholder("x", x.shape),
        make_node("pool", "MaxPool", ["x"], ksize=[1, *ksize, 1], strides=[1, *stride, 1], padding=padding),
    ]
    (got,) = run(nodes, {}, {"x": x}, ["pool"])
    np.testing.assert_allclose(got, max_pool_nhwc(x, ksize, stride, padding))


def test_padv2_with_minus_inf_then_max_pool_is_fused_and_exact():
    """The graph's stem: PadV2(-inf) on NCHW, transpose, MaxPool VALID, transpose back."""
    x = rand(1, 3, 8, 8)
    paddings = np.array([[0, 0], [0, 0], [1, 1], [1, 1]], np.int32)
    nodes = [
        placeholder("x", x.shape),
        make_node("pad", "PadV2", ["x", "paddings", "value"]),
        make_node("t1", "Transpose", ["pad", "to_nhwc"]),
        make_node("pool", "MaxPool", ["t1"], ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding="VALID"),
        make_node("t2", "Transpose", ["pool", "to_nchw"]),
    ]
    consts = {
        "paddings": paddings,
        "value": np.array(-np.inf, np.float32),
        "to_nhwc": np.array([0, 2, 3, 1], np.int32),
        "to_nchw": np.array([0, 3, 1, 2], np.int32),
    }
    model = convert(nodes, consts, ["t2"])
    assert [n.op_type for n in model.graph.node] == ["MaxPool"]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x})
    padded = np.pad(x, paddings.tolist(), constant_values=-np.inf).transpose(0, 2, 3, 1)
    want = max_pool_nhwc(padded, (3, 3), (2, 2), "VALID").transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, want)


@pytest.mark.parametrize(
    ("size", "align", "half"),
    [((10, 12), False, True), ((10, 12), False, False), ((9, 4), True, False), ((3, 5), False, True)],
)
def test_resize_bilinear_matches_tensorflow_coordinates(size, align, half):
    x = rand(1, 5, 6, 2)
    nodes = [
        placeholder("x", x.shape),
        make_node("resize", "ResizeBilinear", ["x", "size"], align_corners=align, half_pixel_centers=half),
    ]
    (got,) = run(nodes, {"size": np.array(size, np.int32)}, {"x": x}, ["resize"])
    np.testing.assert_allclose(got, resize_bilinear_nhwc(x, size, align, half), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["Add", "AddV2"])
def test_add_broadcasts_like_numpy(op):
    x, bias = rand(1, 4, 3, 5), rand(5)
    nodes = [placeholder("x", x.shape), make_node("add", op, ["x", "bias"])]
    (got,) = run(nodes, {"bias": bias}, {"x": x}, ["add"])
    np.testing.assert_allclose(got, x + bias, rtol=1e-6)


def test_add_of_two_inputs():
    a, b = rand(2, 3), rand(1, 3)
    nodes = [placeholder("a", a.shape), placeholder("b", b.shape), make_node("add", "AddV2", ["a", "b"])]
    (got,) = run(nodes, {}, {"a": a, "b": b}, ["add"])
    np.testing.assert_allclose(got, a + b, rtol=1e-6)


def test_leaky_relu_and_sigmoid():
    x = rand(2, 7)
    nodes = [
        placeholder("x", x.shape),
        make_node("leaky", "LeakyRelu", ["x"], alpha=0.1),
        make_node("sig", "Sigmoid", ["x"]),
    ]
    leaky, sig = run(nodes, {}, {"x": x}, ["leaky", "sig"])
    np.testing.assert_allclose(leaky, leaky_relu(x, 0.1), rtol=1e-6)
    np.testing.assert_allclose(sig, sigmoid(x), rtol=1e-5)


def test_pad_concat_transpose_reshape_split_identity():
    x = rand(1, 2, 3, 4)
    nodes = [
        placeholder("x", x.shape),
        make_node("pad", "Pad", ["x", "paddings"]),
        make_node("cat", "ConcatV2", ["pad", "pad", "axis"], N=2),
        make_node("t", "Transpose", ["cat", "perm"]),
        make_node("r", "Reshape", ["t", "shape"]),
        make_node("split", "SplitV", ["r", "sizes", "split_dim"], num_split=3),
        make_node("out0", "Identity", ["split"]),
        make_node("out2", "Identity", ["split:2"]),
    ]
    consts = {
        "paddings": np.array([[0, 0], [1, 0], [0, 2], [1, 1]], np.int32),
        "axis": np.array(-1, np.int32),
        "perm": np.array([0, 3, 1, 2], np.int32),
        "shape": np.array([1, -1, 5], np.int64),
        "sizes": np.array([1, -1, 2], np.int32),
        "split_dim": np.array(1, np.int32),
    }
    out0, out2 = run(nodes, consts, {"x": x}, ["out0", "out2"])
    padded = np.pad(x, consts["paddings"].tolist())
    reshaped = np.concatenate([padded, padded], axis=-1).transpose(0, 3, 1, 2).reshape(1, -1, 5)
    parts = np.split(reshaped, [1, reshaped.shape[1] - 2], axis=1)
    np.testing.assert_array_equal(out0, parts[0])
    np.testing.assert_array_equal(out2, parts[2])


def test_sparse_to_dense_shape_arithmetic_is_folded_into_reshape():
    """The graph's pattern: Reshape(x, AddV2(const, SparseToDense(...))) with constant inputs."""
    x = rand(1, 6, 2, 2)
    nodes = [
        placeholder("x", x.shape),
        make_node("dense", "SparseToDense", ["indices", "out_shape", "values", "default"]),
        make_node("shape", "AddV2", ["base", "dense"]),
        make_node("r", "Reshape", ["x", "shape"]),
    ]
    consts = {
        "indices": np.array([[2]], np.int64),
        "out_shape": np.array([3], np.int64),
        "values": np.array([1], np.int64),
        "default": np.array(0, np.int64),
        "base": np.array([1, 6, -2], np.int64),  # + [0, 0, 1] -> [1, 6, -1]
    }
    model = convert(nodes, consts, ["r"])
    assert [n.op_type for n in model.graph.node] == ["Reshape"]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], x.reshape(1, 6, 4))


def test_sparse_to_dense_constant_output():
    nodes = [make_node("dense", "SparseToDense", ["indices", "shape", "values", "default"])]
    consts = {
        "indices": np.array([[0, 1], [2, 0]], np.int32),
        "shape": np.array([3, 2], np.int32),
        "values": np.array([5.0, -1.0], np.float32),
        "default": np.array(0.5, np.float32),
    }
    (got,) = run(nodes, consts, {}, ["dense"])
    np.testing.assert_array_equal(got, np.array([[0.5, 5.0], [0.5, 0.5], [-1.0, 0.5]], np.float32))


def test_sparse_to_dense_with_a_runtime_input_is_refused():
    nodes = [
        placeholder("v", (1,)),
        make_node("dense", "SparseToDense", ["indices", "shape", "v", "default"]),
    ]
    consts = {
        "indices": np.array([[0]], np.int32),
        "shape": np.array([2], np.int32),
        "default": np.array(0, np.float32),
    }
    with pytest.raises(ConversionError, match="SparseToDense.*constant"):
        convert(nodes, consts, ["dense"])


def test_nhwc_conv_block_optimises_to_plain_nchw_and_agrees():
    """Pad -> Transpose -> Conv2D(NHWC) -> Add(bias) -> Transpose -> LeakyRelu, as in the real graph."""
    x, filt, bias = rand(1, 4, 10, 10), rand(3, 3, 4, 6), rand(6)
    nodes = [
        placeholder("x", x.shape),
        make_node("pad", "Pad", ["x", "paddings"]),
        make_node("t1", "Transpose", ["pad", "to_nhwc"]),
        make_node("conv", "Conv2D", ["t1", "w"], strides=[1, 2, 2, 1], padding="VALID", data_format="NHWC"),
        make_node("add", "Add", ["conv", "bias"]),
        make_node("t2", "Transpose", ["add", "to_nchw"]),
        make_node("act", "LeakyRelu", ["t2"], alpha=0.1),
    ]
    consts = {
        "paddings": np.array([[0, 0], [0, 0], [1, 1], [1, 1]], np.int32),
        "to_nhwc": np.array([0, 2, 3, 1], np.int32),
        "w": filt,
        "bias": bias,
        "to_nchw": np.array([0, 3, 1, 2], np.int32),
    }
    optimised = convert(nodes, consts, ["act"])
    assert [n.op_type for n in optimised.graph.node] == ["Conv", "LeakyRelu"]
    results = []
    for model in (optimised, convert(nodes, consts, ["act"], optimize=False)):
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        results.append(session.run(None, {"x": x})[0])
    padded = np.pad(x, consts["paddings"].tolist()).transpose(0, 2, 3, 1)
    want = leaky_relu(conv2d_nhwc(padded, filt, (2, 2)) + bias, 0.1).transpose(0, 3, 1, 2)
    for got in results:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


# --- failures ------------------------------------------------------------------------------------


def test_unsupported_op_is_named():
    nodes = [placeholder("x", (2, 2)), make_node("y", "Softplus", ["x"]), make_node("z", "Erf", ["y"])]
    with pytest.raises(UnsupportedOpError) as info:
        convert(nodes, {}, ["z"])
    assert info.value.ops == ("Erf", "Softplus")
    assert "'Softplus'" in str(info.value) and "'Erf'" in str(info.value)
    assert "Conv2D" in str(info.value)  # the message lists what is supported


def test_supported_op_list_covers_the_nanodet_graph():
    nanodet_ops = {
        "Placeholder", "Const", "Conv2D", "Pad", "PadV2", "LeakyRelu", "Add", "AddV2", "ConcatV2",
        "Transpose", "Reshape", "ResizeBilinear", "SplitV", "SparseToDense", "Sigmoid", "MaxPool", "Identity",
    }  # fmt: skip
    assert nanodet_ops <= set(SUPPORTED_OPS)


def test_dynamic_input_shape_needs_an_override():
    nodes = [placeholder("x", (-1, 3)), make_node("s", "Sigmoid", ["x"])]
    with pytest.raises(ConversionError, match="static"):
        convert(nodes, {}, ["s"])
    model = convert(nodes, {}, ["s"], input_shapes={"x": (2, 3)})
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [2, 3]


_STRIDES_1 = [1, 1, 1, 1]
MALFORMED = [
    (make_node("c", "Conv2D", ["x", "x"], strides=_STRIDES_1, padding="VALID"), {}, "filter must be a constant"),
    (make_node("c", "Conv2D", ["x", "w"], strides=_STRIDES_1, padding="ODD"), {"w": rand(1, 1, 3, 2)}, "padding"),
    (make_node("c", "Conv2D", ["x", "w"], strides=_STRIDES_1, padding="VALID"), {"w": rand(1, 1, 2, 2)}, "channels"),
    (make_node("r", "Reshape", ["x", "s"]), {"s": np.array([7, -1], np.int32)}, "cannot reshape"),
    (make_node("t", "Transpose", ["x", "p"]), {"p": np.array([0, 0, 1, 2], np.int32)}, "permutation"),
    (
        make_node("s", "SplitV", ["x", "n", "d"], num_split=2),
        {"n": np.array([1, 1], np.int32), "d": np.array(3, np.int32)},
        "add up",
    ),
]


@pytest.mark.parametrize(("node", "consts", "message"), MALFORMED)
def test_malformed_uses_of_supported_ops_fail_clearly(node, consts, message):
    nodes = [placeholder("x", (1, 4, 4, 3)), node]
    with pytest.raises(ConversionError, match=message):
        convert(nodes, consts, [node.name])


def test_missing_input_tensor_is_a_format_error():
    nodes = [placeholder("x", (2,)), make_node("s", "Sigmoid", ["nowhere"])]
    with pytest.raises(GraphFormatError, match="nowhere"):
        convert(nodes, {}, ["s"])


def test_cycle_is_a_format_error():
    nodes = [make_node("a", "Sigmoid", ["b"]), make_node("b", "Sigmoid", ["a"])]
    with pytest.raises(GraphFormatError, match="cycle"):
        convert(nodes, {}, ["a"])


# --- determinism ---------------------------------------------------------------------------------


def test_same_graph_converts_to_identical_bytes():
    x_shape, filt, bias = (1, 4, 8, 8), rand(3, 3, 4, 4), rand(4)
    nodes = [
        placeholder("x", x_shape),
        make_node("t1", "Transpose", ["x", "to_nhwc"]),
        make_node("conv", "Conv2D", ["t1", "w"], strides=[1, 1, 1, 1], padding="SAME"),
        make_node("add", "Add", ["conv", "bias"]),
        make_node("t2", "Transpose", ["add", "to_nchw"]),
        make_node("sig", "Sigmoid", ["t2"]),
    ]
    consts = {
        "to_nhwc": np.array([0, 2, 3, 1], np.int32),
        "w": filt,
        "bias": bias,
        "to_nchw": np.array([0, 3, 1, 2], np.int32),
    }
    first = convert(nodes, consts, ["sig"], output_names=[("sig", "scores")]).SerializeToString()
    second = convert(nodes, consts, ["sig"], output_names=[("sig", "scores")]).SerializeToString()
    assert first == second
    for dtype in ("float32", "float16"):
        a = convert(nodes, consts, ["sig"], weights_dtype=dtype).SerializeToString()
        assert a == convert(nodes, consts, ["sig"], weights_dtype=dtype).SerializeToString()


def test_float16_storage_gives_identical_outputs_for_float16_weights():
    """Weights that came from float16 survive float16 storage bit for bit."""
    x, filt = rand(1, 4, 6, 6), rand(3, 3, 4, 8).astype(np.float16).astype(np.float32)
    nodes = [
        placeholder("x", x.shape),
        make_node("conv", "Conv2D", ["x", "w"], strides=[1, 1, 1, 1], padding="SAME", data_format="NCHW"),
    ]
    outputs = []
    for dtype in ("float32", "float16"):
        model = convert(nodes, {"w": filt}, ["conv"], weights_dtype=dtype)
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {"x": x})[0])
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_outputs_can_be_renamed_and_reordered():
    x = rand(3)
    nodes = [placeholder("x", x.shape), make_node("a", "Sigmoid", ["x"]), make_node("b", "LeakyRelu", ["x"])]
    model = convert(nodes, {}, ["a", "b"], output_names=[("b", "second"), ("a", "first")])
    assert [o.name for o in model.graph.output] == ["second", "first"]
    assert not any(n.op_type == "Identity" for n in model.graph.node)  # renamed at the producer
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    second, first = session.run(None, {"x": x})
    np.testing.assert_allclose(first, sigmoid(x), rtol=1e-6)
    np.testing.assert_allclose(second, leaky_relu(x, 0.2), rtol=1e-6)


_ATTR_VALUES = st.one_of(
    st.builds(lambda v: {"i": str(v)}, st.integers(-3, 5)),
    st.builds(lambda v: {"f": v}, st.floats(allow_nan=False, width=32)),
    st.builds(lambda v: {"b": v}, st.booleans()),
    st.builds(lambda v: attr_value(v), st.sampled_from(["SAME", "VALID", "EXPLICIT", "NHWC", "NCHW", "??"])),
    st.builds(lambda v: {"list": {"i": [str(i) for i in v]}}, st.lists(st.integers(-1, 3), max_size=9)),
    st.builds(lambda h, w: {"list": {"i": ["1", str(h), str(w), "1"]}}, st.integers(1, 3), st.integers(1, 3)),
    st.just({"type": "DT_FLOAT"}),
    st.just("junk"),
)
_ATTR_KEYS = ["strides", "dilations", "padding", "explicit_paddings", "data_format", "ksize", "alpha",
              "align_corners", "half_pixel_centers", "num_split"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    op=st.sampled_from(sorted(set(SUPPORTED_OPS) - {"Placeholder", "Const"})),
    attrs=st.dictionaries(st.sampled_from(_ATTR_KEYS), _ATTR_VALUES, max_size=6),
    const=hnp.arrays(np.int32, hnp.array_shapes(min_dims=0, max_dims=2, max_side=4), elements=st.integers(-2, 4)),
    weight=hnp.arrays(
        np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=3), elements=st.floats(-2, 2, width=32)
    ),
    inputs=st.lists(st.sampled_from(["x", "c", "f"]), min_size=1, max_size=4),
)
def test_fuzzed_nodes_fail_only_with_model_build_errors(op, attrs, const, weight, inputs):
    """Whatever the attributes and constant operands, conversion succeeds or raises a clear error."""
    nodes = [placeholder("x", (1, 4, 5, 3)), TfNode(name="n", op=op, inputs=("x", *inputs[1:]), attrs=attrs)]
    try:
        model = convert(nodes, {"c": const, "f": weight}, ["n"])
    except ModelBuildError:
        return
    # What converts must run, and produce the shape the converter declared.
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.ones((1, 4, 5, 3), np.float32) for i in session.get_inputs()}
    declared = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output]
    assert [list(r.shape) for r in session.run(None, feeds)] == declared

"""TensorFlow op -> ONNX translations, one function per op, plus numpy folding for constants.

Every handler receives the node and its input values (``Const`` or ``Tensor``) and returns the
node's output values. When all inputs of an op are constants and the op has a numpy
implementation in ``FOLDERS``, the converter folds it instead of emitting ONNX.

Layout: TensorFlow convolutions/pooling here are NHWC (or NCHW via ``data_format``); ONNX is
NCHW, so NHWC ops are wrapped in Transposes, which the optimiser then cancels against the
Transposes the graph itself already contains (it was exported from an NCHW PyTorch model).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ccc.model.errors import ConversionError
from ccc.model.graph_builder import Const, GraphBuilder, Tensor, Value
from ccc.model.tfjs_format import TfNode

Handler = Callable[[GraphBuilder, TfNode, list[Value]], list[Value]]
Folder = Callable[[TfNode, list[np.ndarray]], list[np.ndarray]]

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)


# --- helpers -----------------------------------------------------------------------------------


def _arity(node: TfNode, args: Sequence[Value], count: int) -> None:
    if len(args) != count:
        raise ConversionError(node.name, node.op, f"expected {count} inputs, got {len(args)}")


def _const(node: TfNode, value: Value, what: str) -> np.ndarray:
    if not isinstance(value, Const):
        raise ConversionError(node.name, node.op, f"{what} must be a constant")
    return value.value


def _const_ints(node: TfNode, value: Value, what: str) -> list[int]:
    array = _const(node, value, what)
    if array.dtype.kind not in "iu":
        raise ConversionError(node.name, node.op, f"{what} must be integers")
    return [int(v) for v in array.reshape(-1)]


def _axis(node: TfNode, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ConversionError(node.name, node.op, f"axis {axis} out of range for rank {rank}")
    return axis % rank


def _data_format(node: TfNode) -> str:
    fmt = node.attr_str("data_format", "NHWC")
    if fmt not in ("NHWC", "NCHW"):
        raise ConversionError(node.name, node.op, f"data_format {fmt!r} is not supported")
    return fmt


def _spatial(node: TfNode, values: Sequence[int], fmt: str, what: str) -> tuple[int, int]:
    """Pick the H, W entries of a 4-element NHWC/NCHW attribute; N and C must be 1."""
    if len(values) != 4:
        raise ConversionError(node.name, node.op, f"{what} must have 4 entries, got {list(values)}")
    h, w, n, c = (1, 2, 0, 3) if fmt == "NHWC" else (2, 3, 0, 1)
    if values[n] != 1 or values[c] != 1:
        raise ConversionError(node.name, node.op, f"{what} on batch/channel axes is not supported")
    return values[h], values[w]


def _padding(
    node: TfNode,
    fmt: str,
    in_hw: tuple[int, int],
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilations: tuple[int, int],
) -> list[int]:
    """ONNX ``pads`` [top, left, bottom, right] for TF padding VALID / SAME / EXPLICIT."""
    mode = node.attr_str("padding")
    if mode == "VALID":
        return [0, 0, 0, 0]
    if mode == "SAME":
        before, after = [], []
        for size, k, s, d in zip(in_hw, kernel, strides, dilations, strict=True):
            out = math.ceil(size / s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            before.append(total // 2)
            after.append(total - total // 2)
        return before + after
    if mode == "EXPLICIT":
        flat = node.attr_ints("explicit_paddings")
        if len(flat) != 8:
            raise ConversionError(node.name, node.op, "explicit_paddings must have 8 entries")
        pairs = [flat[i : i + 2] for i in range(0, 8, 2)]
        hi, wi, ni, ci = (1, 2, 0, 3) if fmt == "NHWC" else (2, 3, 0, 1)
        if any(pairs[ni]) or any(pairs[ci]):
            raise ConversionError(node.name, node.op, "explicit padding of batch/channel axes")
        if min(flat) < 0:
            raise ConversionError(node.name, node.op, "negative explicit padding")
        return [pairs[hi][0], pairs[wi][0], pairs[hi][1], pairs[wi][1]]
    raise ConversionError(node.name, node.op, f"padding {mode!r} is not supported")


def _window_out(size: int, k: int, s: int, d: int, pad: int) -> int:
    out = (size + pad - d * (k - 1) - 1) // s + 1
    return out


def _to_nchw(b: GraphBuilder, x: Value, fmt: str, name: str) -> Tensor:
    if isinstance(x, Const):
        x = Tensor(b.name_of(x, f"{name}/input"), x.shape, x.dtype)
    if len(x.shape) != 4:
        raise ConversionError(name, "?", f"expected a 4-D input, got shape {x.shape}")
    out = b.transpose(x, NHWC_TO_NCHW, f"{name}/to_nchw") if fmt == "NHWC" else x
    assert isinstance(out, Tensor)
    return out


def _from_nchw(b: GraphBuilder, y: Tensor, fmt: str, name: str) -> Value:
    """Back to the op's layout; the last node emitted for a TF node carries the TF node's name."""
    return b.transpose(y, NCHW_TO_NHWC, name) if fmt == "NHWC" else y


def _core_name(node: TfNode, fmt: str) -> str:
    return f"{node.name}/nchw" if fmt == "NHWC" else node.name


# --- convolution and pooling -------------------------------------------------------------------


def _conv(b: GraphBuilder, node: TfNode, x_value: Value, weight_oihw: np.ndarray, group: int) -> list[Value]:
    fmt = _data_format(node)
    x = _to_nchw(b, x_value, fmt, node.name)
    strides = _spatial(node, node.attr_ints("strides"), fmt, "strides")
    dilations = _spatial(node, node.attr_ints("dilations", (1, 1, 1, 1)), fmt, "dilations")
    kernel = (int(weight_oihw.shape[2]), int(weight_oihw.shape[3]))
    in_hw = (x.shape[2], x.shape[3])
    pads = _padding(node, fmt, in_hw, kernel, strides, dilations)
    out_hw = [_window_out(in_hw[i], kernel[i], strides[i], dilations[i], pads[i] + pads[i + 2]) for i in range(2)]
    if min(out_hw) <= 0:
        raise ConversionError(node.name, node.op, f"kernel larger than padded input {in_hw}")
    w_name = b.initializer(weight_oihw.astype(np.float32), f"{node.name}/weight")
    y = b.emit1(
        "Conv",
        [x.name, w_name],
        name=_core_name(node, fmt),
        shape=(x.shape[0], int(weight_oihw.shape[0]), out_hw[0], out_hw[1]),
        dtype=x.dtype,
        kernel_shape=list(kernel),
        strides=list(strides),
        dilations=list(dilations),
        pads=pads,
        group=group,
    )
    return [_from_nchw(b, y, fmt, node.name)]


def _channels(node: TfNode, x: Value) -> int:
    if len(x.shape) != 4:
        raise ConversionError(node.name, node.op, f"expected a 4-D input, got shape {x.shape}")
    return x.shape[3] if _data_format(node) == "NHWC" else x.shape[1]


def conv2d(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    """Conv2D, filter HWIO; a filter with fewer input channels than x is a grouped convolution."""
    _arity(node, args, 2)
    filt = _const(node, args[1], "filter")
    if filt.ndim != 4:
        raise ConversionError(node.name, node.op, f"filter must be 4-D, got {filt.shape}")
    channels, per_group, out_ch = _channels(node, args[0]), int(filt.shape[2]), int(filt.shape[3])
    if per_group == 0 or channels % per_group or out_ch % (channels // per_group):
        raise ConversionError(node.name, node.op, f"input channels {channels} incompatible with filter {filt.shape}")
    return _conv(b, node, args[0], np.transpose(filt, (3, 2, 0, 1)), channels // per_group)


def depthwise_conv2d(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    """DepthwiseConv2dNative, filter [kh, kw, C, multiplier]; output channel c*mult + m."""
    _arity(node, args, 2)
    filt = _const(node, args[1], "filter")
    channels = _channels(node, args[0])
    if filt.ndim != 4 or filt.shape[2] != channels:
        raise ConversionError(node.name, node.op, f"filter {filt.shape} does not match {channels} channels")
    kh, kw, c, mult = filt.shape
    weight = np.transpose(filt, (2, 3, 0, 1)).reshape(c * mult, 1, kh, kw)
    return _conv(b, node, args[0], weight, channels)


def max_pool(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    _arity(node, args, 1)
    fmt = _data_format(node)
    x = _to_nchw(b, args[0], fmt, node.name)
    kernel = _spatial(node, node.attr_ints("ksize"), fmt, "ksize")
    strides = _spatial(node, node.attr_ints("strides"), fmt, "strides")
    in_hw = (x.shape[2], x.shape[3])
    pads = _padding(node, fmt, in_hw, kernel, strides, (1, 1))
    out_hw = [_window_out(in_hw[i], kernel[i], strides[i], 1, pads[i] + pads[i + 2]) for i in range(2)]
    if min(out_hw) <= 0:
        raise ConversionError(node.name, node.op, f"window larger than input {in_hw}")
    y = b.emit1(
        "MaxPool",
        [x.name],
        name=_core_name(node, fmt),
        shape=(x.shape[0], x.shape[1], out_hw[0], out_hw[1]),
        dtype=x.dtype,
        kernel_shape=list(kernel),
        strides=list(strides),
        pads=pads,
    )
    return [_from_nchw(b, y, fmt, node.name)]


def resize_bilinear(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    """ResizeBilinear (always NHWC in TF) -> ONNX Resize(linear) with the matching coordinates."""
    _arity(node, args, 2)
    size = _const_ints(node, args[1], "size")
    if len(size) != 2 or min(size) <= 0:
        raise ConversionError(node.name, node.op, f"size must be two positive ints, got {size}")
    align = node.attr_bool("align_corners", False)
    half = node.attr_bool("half_pixel_centers", False)
    if align and half:
        raise ConversionError(node.name, node.op, "align_corners and half_pixel_centers together")
    mode = "align_corners" if align else "half_pixel" if half else "asymmetric"
    x = _to_nchw(b, args[0], "NHWC", node.name)
    sizes = b.initializer(np.array([x.shape[0], x.shape[1], *size], dtype=np.int64), f"{node.name}/sizes")
    y = b.emit1(
        "Resize",
        [x.name, "", "", sizes],
        name=_core_name(node, "NHWC"),
        shape=(x.shape[0], x.shape[1], size[0], size[1]),
        dtype=x.dtype,
        mode="linear",
        coordinate_transformation_mode=mode,
    )
    return [_from_nchw(b, y, "NHWC", node.name)]


# --- element-wise ------------------------------------------------------------------------------


def add(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    _arity(node, args, 2)
    if args[0].dtype != args[1].dtype:
        raise ConversionError(node.name, node.op, f"mixed dtypes {args[0].dtype} and {args[1].dtype}")
    try:
        shape = np.broadcast_shapes(args[0].shape, args[1].shape)
    except ValueError as exc:
        raise ConversionError(
            node.name, node.op, f"shapes {args[0].shape} and {args[1].shape} do not broadcast"
        ) from exc
    names = [b.name_of(a, f"{node.name}/operand{i}") for i, a in enumerate(args)]
    return [b.emit1("Add", names, name=node.name, shape=shape, dtype=args[0].dtype)]


def _unary(onnx_op: str, **attrs_from_node: Callable[[TfNode], Any]) -> Handler:
    def handler(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        _arity(node, args, 1)
        x = args[0]
        if x.dtype.kind != "f":
            raise ConversionError(node.name, node.op, f"needs a float input, got {x.dtype}")
        attrs = {key: get(node) for key, get in attrs_from_node.items()}
        name = b.name_of(x, f"{node.name}/input")
        return [b.emit1(onnx_op, [name], name=node.name, shape=x.shape, dtype=x.dtype, **attrs)]

    return handler


def _leaky_alpha(node: TfNode) -> float:
    return node.attr_float("alpha", 0.2)


# --- shape and layout --------------------------------------------------------------------------


def pad(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    """Pad (zeros) and PadV2 (a constant value) with a constant [rank, 2] paddings tensor."""
    _arity(node, args, 3 if node.op == "PadV2" else 2)
    x = args[0]
    paddings = _const(node, args[1], "paddings")
    if paddings.shape != (len(x.shape), 2) or paddings.dtype.kind not in "iu":
        raise ConversionError(node.name, node.op, f"paddings must be int [{len(x.shape)}, 2], got {paddings.shape}")
    if paddings.min(initial=0) < 0:
        raise ConversionError(node.name, node.op, "negative paddings")
    value = np.zeros((), dtype=x.dtype)
    if node.op == "PadV2":
        value = _const(node, args[2], "constant_values").astype(x.dtype).reshape(())
    shape = tuple(int(d + p0 + p1) for d, (p0, p1) in zip(x.shape, paddings.tolist(), strict=True))
    pads = np.array(list(paddings[:, 0]) + list(paddings[:, 1]), dtype=np.int64)
    inputs = [
        b.name_of(x, f"{node.name}/input"),
        b.initializer(pads, f"{node.name}/pads"),
        b.initializer(value, f"{node.name}/value"),
    ]
    return [b.emit1("Pad", inputs, name=node.name, shape=shape, dtype=x.dtype, mode="constant")]


def transpose(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    _arity(node, args, 2)
    perm = _const_ints(node, args[1], "perm")
    if sorted(perm) != list(range(len(args[0].shape))):
        raise ConversionError(node.name, node.op, f"perm {perm} is not a permutation of rank {len(args[0].shape)}")
    return [b.transpose(args[0], perm, node.name)]


def _resolve_shape(node: TfNode, requested: list[int], size: int) -> tuple[int, ...]:
    unknown = [i for i, d in enumerate(requested) if d == -1]
    if len(unknown) > 1 or any(d < -1 for d in requested):
        raise ConversionError(node.name, node.op, f"invalid target shape {requested}")
    known = int(np.prod([d for d in requested if d != -1], dtype=np.int64))
    shape = list(requested)
    if unknown:
        if known == 0 or size % known:
            raise ConversionError(node.name, node.op, f"cannot reshape {size} elements to {requested}")
        shape[unknown[0]] = size // known
    if int(np.prod(shape, dtype=np.int64)) != size:
        raise ConversionError(node.name, node.op, f"cannot reshape {size} elements to {requested}")
    return tuple(shape)


def reshape(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    _arity(node, args, 2)
    x = args[0]
    size = int(np.prod(x.shape, dtype=np.int64))
    shape = _resolve_shape(node, _const_ints(node, args[1], "shape"), size)
    target = b.initializer(np.array(shape, dtype=np.int64), f"{node.name}/shape")
    attrs = {"allowzero": 1} if 0 in shape else {}
    return [
        b.emit1(
            "Reshape", [b.name_of(x, f"{node.name}/input"), target], name=node.name, shape=shape, dtype=x.dtype, **attrs
        )
    ]


def concat(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    if len(args) < 2:
        raise ConversionError(node.name, node.op, "needs at least one value and the axis")
    values, rank = args[:-1], len(args[0].shape)
    axis = _axis(node, _const_ints(node, args[-1], "axis")[0], rank)
    for v in values:
        if (
            len(v.shape) != rank
            or v.dtype != values[0].dtype
            or any(d != e for i, (d, e) in enumerate(zip(v.shape, values[0].shape, strict=True)) if i != axis)
        ):
            raise ConversionError(node.name, node.op, f"incompatible inputs {[a.shape for a in values]}")
    shape = list(values[0].shape)
    shape[axis] = sum(v.shape[axis] for v in values)
    names = [b.name_of(v, f"{node.name}/input{i}") for i, v in enumerate(values)]
    return [b.emit1("Concat", names, name=node.name, shape=tuple(shape), dtype=values[0].dtype, axis=axis)]


def _split_sizes(node: TfNode, sizes: list[int], total: int) -> list[int]:
    if sizes.count(-1) > 1 or any(s < -1 for s in sizes):
        raise ConversionError(node.name, node.op, f"invalid size_splits {sizes}")
    if -1 in sizes:
        sizes = [total - (sum(sizes) + 1) if s == -1 else s for s in sizes]
    if sum(sizes) != total or min(sizes) < 0:
        raise ConversionError(node.name, node.op, f"size_splits {sizes} do not add up to {total}")
    return sizes


def split_v(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    _arity(node, args, 3)
    x = args[0]
    axis = _axis(node, _const_ints(node, args[2], "split_dim")[0], len(x.shape))
    sizes = _split_sizes(node, _const_ints(node, args[1], "size_splits"), x.shape[axis])
    if node.attr_int("num_split", len(sizes)) != len(sizes):
        raise ConversionError(node.name, node.op, "num_split differs from len(size_splits)")
    shapes = [tuple(s if i == axis else d for i, d in enumerate(x.shape)) for s in sizes]
    split = b.initializer(np.array(sizes, dtype=np.int64), f"{node.name}/split")
    return list(
        b.emit(
            "Split",
            [b.name_of(x, f"{node.name}/input"), split],
            name=node.name,
            out_shapes=shapes,
            out_dtype=x.dtype,
            axis=axis,
        )
    )


def identity(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    _arity(node, args, 1)
    return [args[0]]


def constants_only(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    """Ops this converter only evaluates at conversion time (all inputs must be constants)."""
    raise ConversionError(node.name, node.op, "supported only with constant inputs (folded in numpy)")


# --- numpy folding -----------------------------------------------------------------------------


def _fold_sparse_to_dense(node: TfNode, args: list[np.ndarray]) -> list[np.ndarray]:
    if len(args) != 4:
        raise ConversionError(node.name, node.op, f"expected 4 inputs, got {len(args)}")
    indices, shape_arr, values, default = args
    shape = [int(d) for d in shape_arr.reshape(-1)]
    if any(d < 0 for d in shape):
        raise ConversionError(node.name, node.op, f"negative output_shape {shape}")
    if default.size != 1:
        raise ConversionError(node.name, node.op, "default_value must be a scalar")
    dense = np.full(shape, default.reshape(()), dtype=values.dtype)
    rows = indices.reshape(-1, 1) if indices.ndim < 2 else indices
    if rows.shape[1] != len(shape):
        raise ConversionError(node.name, node.op, f"indices of width {rows.shape[1]} for rank {len(shape)}")
    flat_values = np.broadcast_to(values.reshape(-1), (rows.shape[0],)) if values.size == 1 else values.reshape(-1)
    if flat_values.shape[0] != rows.shape[0]:
        raise ConversionError(node.name, node.op, "sparse_values and sparse_indices differ in length")
    seen: set[tuple[int, ...]] = set()
    for row, value in zip(rows.tolist(), flat_values.tolist(), strict=True):
        index = tuple(int(i) for i in row)
        if any(not 0 <= i < d for i, d in zip(index, shape, strict=True)) or index in seen:
            raise ConversionError(node.name, node.op, f"index {index} out of bounds or repeated")
        seen.add(index)
        dense[index] = value
    return [dense]


def _fold_add(node: TfNode, args: list[np.ndarray]) -> list[np.ndarray]:
    if args[0].dtype != args[1].dtype:
        raise ConversionError(node.name, node.op, f"mixed dtypes {args[0].dtype} and {args[1].dtype}")
    return [np.add(args[0], args[1]).astype(args[0].dtype)]


def _fold_reshape(node: TfNode, args: list[np.ndarray]) -> list[np.ndarray]:
    shape = _resolve_shape(node, [int(v) for v in args[1].reshape(-1)], args[0].size)
    return [args[0].reshape(shape)]


def _fold_concat(node: TfNode, args: list[np.ndarray]) -> list[np.ndarray]:
    axis = _axis(node, int(args[-1].reshape(-1)[0]), args[0].ndim)
    return [np.concatenate(args[:-1], axis=axis)]


def _fold_transpose(node: TfNode, args: list[np.ndarray]) -> list[np.ndarray]:
    return [np.transpose(args[0], [int(p) for p in args[1].reshape(-1)])]


def _fold_pad(node: TfNode, args: list[np.ndarray]) -> list[np.ndarray]:
    value = args[2].reshape(()) if node.op == "PadV2" else 0
    return [np.pad(args[0], args[1].tolist(), constant_values=value)]


def _fold_split(node: TfNode, args: list[np.ndarray]) -> list[np.ndarray]:
    x = args[0]
    axis = _axis(node, int(args[2].reshape(-1)[0]), x.ndim)
    sizes = _split_sizes(node, [int(s) for s in args[1].reshape(-1)], x.shape[axis])
    return list(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


def _fold_sigmoid(node: TfNode, args: list[np.ndarray]) -> list[np.ndarray]:
    x = args[0]
    return [(1.0 / (1.0 + np.exp(-x))).astype(x.dtype)]


def _fold_leaky_relu(node: TfNode, args: list[np.ndarray]) -> list[np.ndarray]:
    x = args[0]
    return [np.where(x >= 0, x, x * x.dtype.type(_leaky_alpha(node))).astype(x.dtype)]


HANDLERS: dict[str, Handler] = {
    "Add": add,
    "AddV2": add,
    "ConcatV2": concat,
    "Conv2D": conv2d,
    "DepthwiseConv2dNative": depthwise_conv2d,
    "Identity": identity,
    "LeakyRelu": _unary("LeakyRelu", alpha=_leaky_alpha),
    "MaxPool": max_pool,
    "Pad": pad,
    "PadV2": pad,
    "Reshape": reshape,
    "ResizeBilinear": resize_bilinear,
    "Sigmoid": _unary("Sigmoid"),
    "SparseToDense": constants_only,
    "SplitV": split_v,
    "Transpose": transpose,
}
FOLDERS: dict[str, Folder] = {
    "Add": _fold_add,
    "AddV2": _fold_add,
    "ConcatV2": _fold_concat,
    "LeakyRelu": _fold_leaky_relu,
    "Pad": _fold_pad,
    "PadV2": _fold_pad,
    "Reshape": _fold_reshape,
    "Sigmoid": _fold_sigmoid,
    "SparseToDense": _fold_sparse_to_dense,
    "SplitV": _fold_split,
    "Transpose": _fold_transpose,
}
# Placeholder and Const are handled by the converter itself (graph inputs and weights).
SUPPORTED_OPS: tuple[str, ...] = tuple(sorted({*HANDLERS, "Placeholder", "Const"}))

"""Give a converted model a dynamic batch axis, so the counter runs all views of an image in one call.

The tfjs graph is traced with batch 1, and two kinds of node bake that 1 in: ``Reshape`` targets
(``[1, 80, N]``) and bilinear ``Resize`` nodes that name their output ``sizes`` (``[1, C, H, W]``).
This pass turns the leading 1 of each Reshape target into 0 ("copy the input's dimension"; the
nodes have ``allowzero`` unset, so 0 means copy), replaces each Resize ``sizes`` by the equivalent
``scales`` (output = input x scale; the factors here are exactly 2 and 1/2, so every output pixel
is computed from the same coordinates as before), and names dimension 0 of the input and outputs
``batch``. Everything else in the graph is per-sample already (Conv, Concat/Split on the channel
axis, Transposes that keep axis 0 first).

A node it does not understand fails the build (`ConversionError`) instead of producing a model that
silently mixes samples; `build.smoke_test` then checks that a batch of two equals two single runs.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ccc.model.errors import ConversionError

BATCH_DIM = "batch"
# Ops whose behaviour does not depend on the batch size as long as their attributes keep axis 0 apart.
_PER_SAMPLE_OPS = {"Conv", "LeakyRelu", "Relu", "Sigmoid", "Add", "Mul", "MaxPool", "Identity", "Cast"}


def _initializers(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    return {item.name: item for item in graph.initializer}


def _static_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    inferred = onnx.shape_inference.infer_shapes(model)
    values = list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    return {value.name: [dim.dim_value for dim in value.type.tensor_type.shape.dim] for value in values}


def _check_axis_attr(node: onnx.NodeProto) -> None:
    for attr in node.attribute:
        if attr.name == "axis" and onnx.helper.get_attribute_value(attr) == 0:
            raise ConversionError(node.name, "batch axis", f"{node.op_type} works along axis 0")
        if attr.name == "perm" and list(onnx.helper.get_attribute_value(attr))[:1] != [0]:
            raise ConversionError(node.name, "batch axis", "Transpose moves axis 0")


def make_batch_dynamic(model: onnx.ModelProto) -> None:
    """Rewrite `model` in place so its input and outputs take any batch size (see module docstring)."""
    graph = model.graph
    shapes = _static_shapes(model)
    inits = _initializers(graph)
    rewritten: set[str] = set()
    scales_for: dict[str, str] = {}  # sizes initialiser -> the scales initialiser that replaced it
    for node in graph.node:
        if node.op_type == "Reshape":
            target = inits.get(node.input[1])
            if target is None:
                raise ConversionError(node.name, "batch axis", "Reshape target is not a constant")
            if any(attr.name == "allowzero" and attr.i for attr in node.attribute):
                raise ConversionError(node.name, "batch axis", "Reshape has allowzero=1")
            if target.name not in rewritten:
                values = numpy_helper.to_array(target).copy()
                if values.ndim != 1 or values.size == 0 or values[0] != 1:
                    raise ConversionError(node.name, "batch axis", f"Reshape target {values.tolist()} is not [1, ...]")
                values[0] = 0
                target.CopyFrom(numpy_helper.from_array(values, target.name))
                rewritten.add(target.name)
        elif node.op_type == "Resize":
            _sizes_to_scales(node, inits, shapes, scales_for)
        elif node.op_type in ("Concat", "Split", "Transpose"):
            _check_axis_attr(node)
        elif node.op_type not in _PER_SAMPLE_OPS:
            raise ConversionError(node.name, "batch axis", f"no rule for {node.op_type} with a dynamic batch")
    for value in list(graph.input) + list(graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        if dim.dim_value != 1:
            raise ConversionError(value.name, "batch axis", f"dimension 0 is {dim.dim_value}, expected 1")
        dim.ClearField("dim_value")
        dim.dim_param = BATCH_DIM
    del graph.value_info[:]


def _sizes_to_scales(
    node: onnx.NodeProto, inits: dict[str, onnx.TensorProto], shapes: dict[str, list[int]], scales_for: dict[str, str]
) -> None:
    if len(node.input) != 4 or node.input[2]:
        return  # already uses scales (or no sizes): batch-independent
    if node.input[3] in scales_for:  # a sizes constant shared with a Resize rewritten before
        node.input[2] = scales_for[node.input[3]]
        del node.input[3]
        return
    sizes = inits.get(node.input[3])
    source_shape = shapes.get(node.input[0])
    if sizes is None or not source_shape or 0 in source_shape:
        raise ConversionError(node.name, "batch axis", "Resize sizes or input shape is not static")
    wanted = numpy_helper.to_array(sizes).astype(np.int64)
    scales = (wanted / np.asarray(source_shape, dtype=np.int64)).astype(np.float32)
    if wanted[0] != source_shape[0] or wanted[1] != source_shape[1]:
        raise ConversionError(node.name, "batch axis", "Resize changes the batch or channel axis")
    if not np.array_equal(np.floor(np.asarray(source_shape) * scales.astype(np.float64)).astype(np.int64), wanted):
        raise ConversionError(node.name, "batch axis", f"sizes {wanted.tolist()} are no exact scale of {source_shape}")
    name = node.input[3].removesuffix("/sizes") + "/scales"
    scales_for[node.input[3]] = name
    sizes.CopyFrom(numpy_helper.from_array(scales, name))  # same position in the initialiser list
    node.input[2] = name
    del node.input[3]

"""Tiny synthetic ONNX detectors for tests and for trying a spec without real weights.

`constant_detector` builds a real ONNX graph (run by onnxruntime like any model) whose outputs are
fixed tensors you choose, regardless of the image. Encoding known boxes into those tensors in a
decoder's layout lets tests check decode + NMS + letterbox undo end to end with exact answers.
The input still feeds the graph (multiplied by zero and added), so the model has a real data path
and a wrong input name or shape fails as it would for a real detector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def constant_detector(
    outputs: Mapping[str, np.ndarray], *, input_name: str = "images",
    input_shape: Sequence[int | str] = (1, 3, 64, 64),
) -> bytes:
    """Serialized ONNX model: input `input_name` float32 `input_shape`; each output is its constant.

    A named first dimension (e.g. "batch") makes the batch axis dynamic: each of the B inputs then
    gets the same constant outputs, [B, ...].
    """
    batched = isinstance(input_shape[0], str)
    if batched:  # [B, 1, 1] zeros that broadcast the constants over the batch
        nodes = [
            helper.make_node("ReduceSum", [input_name, "inner_axes"], ["input_sum"], keepdims=1),
            helper.make_node("Reshape", ["input_sum", "batch_shape"], ["input_sum3"]),
            helper.make_node("Mul", ["input_sum3", "zero"], ["input_zero"]),
        ]
        initializers = [
            numpy_helper.from_array(np.zeros((), dtype=np.float32), "zero"),
            numpy_helper.from_array(np.asarray([1, 2, 3], dtype=np.int64), "inner_axes"),
            numpy_helper.from_array(np.asarray([-1, 1, 1], dtype=np.int64), "batch_shape"),
        ]
    else:
        nodes = [
            helper.make_node("ReduceSum", [input_name], ["input_sum"], keepdims=0),
            helper.make_node("Mul", ["input_sum", "zero"], ["input_zero"]),
        ]
        initializers = [numpy_helper.from_array(np.zeros((), dtype=np.float32), "zero")]
    graph_outputs = []
    for name, value in outputs.items():
        array = np.asarray(value, dtype=np.float32)
        initializers.append(numpy_helper.from_array(array, f"{name}_value"))
        nodes.append(helper.make_node("Add", [f"{name}_value", "input_zero"], [name]))
        shape: list[int | str] = list(array.shape)
        if batched and array.ndim == 3:
            shape[0] = input_shape[0]
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    graph = helper.make_graph(
        nodes,
        "constant_detector",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))],
        graph_outputs,
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="ccc-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def nanodet_outputs(
    boxes: Sequence[tuple[float, float, float, float, int, float]],
    *,
    input_size: tuple[int, int],
    strides: Sequence[int] = (8, 16, 32),
    reg_max: int = 10,
    num_classes: int = 80,
) -> dict[str, np.ndarray]:
    """NanoDet-layout outputs encoding `boxes` = (x1, y1, x2, y2, class_id, score) in input pixels.

    Each box is placed in the cell of the first stride whose grid contains its centre and whose
    bins can express its side distances as whole multiples of the stride; side logits are one-hot
    (a large logit on the exact bin) so the softmax expectation returns the exact distance.
    """
    width, height = input_size
    out: dict[str, np.ndarray] = {}
    for stride in strides:
        cells = (width // stride) * (height // stride)
        out[f"cls_{stride}"] = np.zeros((1, cells, num_classes), np.float32)
        out[f"box_{stride}"] = np.full((1, cells, 4 * (reg_max + 1)), -30.0, np.float32)
        out[f"box_{stride}"][0, :, 0 :: reg_max + 1] = 30.0  # unused cells: zero distances
    for x1, y1, x2, y2, class_id, score in boxes:
        for stride in strides:
            grid_w = width // stride
            col, row = int(((x1 + x2) / 2) // stride), int(((y1 + y2) / 2) // stride)
            cx, cy = (col + 0.5) * stride, (row + 0.5) * stride
            sides = [(cx - x1) / stride, (cy - y1) / stride, (x2 - cx) / stride, (y2 - cy) / stride]
            if all(float(side).is_integer() and 0 <= side <= reg_max for side in sides):
                cell = row * grid_w + col
                out[f"cls_{stride}"][0, cell, class_id] = score
                logits = np.full((4, reg_max + 1), -30.0, np.float32)
                for side_index, side in enumerate(sides):
                    logits[side_index, int(side)] = 30.0
                out[f"box_{stride}"][0, cell] = logits.reshape(-1)
                break
        else:
            raise ValueError(f"box {(x1, y1, x2, y2)} is not expressible on the given strides/reg_max")
    return out

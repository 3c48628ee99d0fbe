"""TensorFlow.js graph model -> ONNX, with numpy and onnx only.

Walks the graph from its outputs in a deterministic topological order, folds constant
sub-graphs in numpy, translates every other node with ``ops.HANDLERS``, then (optionally) cleans
up the layout with ``optimize``. Unknown ops fail with ``UnsupportedOpError`` naming the op.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx

from ccc.model.errors import ConversionError, GraphFormatError, UnsupportedOpError
from ccc.model.graph_builder import Const, GraphBuilder, Tensor, Value
from ccc.model.onnx_ir import IrGraph, IrNode, IrValue, WeightsDtype
from ccc.model.ops import FOLDERS, HANDLERS, SUPPORTED_OPS
from ccc.model.optimize import optimize_graph
from ccc.model.tfjs_format import TfjsGraphModel, TfNode


def _split_ref(ref: str) -> tuple[str, int]:
    """``"node:1"`` -> ("node", 1); ``"node"`` -> ("node", 0)."""
    name, sep, index = ref.rpartition(":")
    if sep and index.isdigit():
        return name, int(index)
    return ref, 0


def _topological_order(graph: TfjsGraphModel, outputs: Sequence[str]) -> list[TfNode]:
    """Nodes needed for ``outputs``, inputs before users, ties broken by file order."""
    by_name = {n.name: n for n in graph.nodes}
    order: list[TfNode] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done
    for root in outputs:
        stack: list[tuple[str, int]] = [(_split_ref(root)[0], 0)]
        while stack:
            name, next_input = stack.pop()
            if name not in by_name:
                raise GraphFormatError(f"tensor {name!r} is used but no node produces it")
            if next_input == 0:
                if state.get(name) == 2:
                    continue
                if state.get(name) == 1:
                    raise GraphFormatError(f"the graph has a cycle through {name!r}")
                state[name] = 1
            node = by_name[name]
            if next_input < len(node.inputs):
                stack.append((name, next_input + 1))
                child = _split_ref(node.inputs[next_input])[0]
                if state.get(child) != 2:
                    if state.get(child) == 1:
                        raise GraphFormatError(f"the graph has a cycle through {child!r}")
                    stack.append((child, 0))
            else:
                state[name] = 2
                order.append(node)
    return order


def _placeholder(b: GraphBuilder, node: TfNode, shape_override: Sequence[int] | None) -> Tensor:
    dtype = node.attr_dtype("dtype")
    if dtype != np.float32:
        raise ConversionError(node.name, node.op, f"only float32 inputs are supported, got {dtype}")
    shape = tuple(shape_override) if shape_override is not None else node.attr_shape("shape")
    if shape is None or any(d < 0 for d in shape):
        raise ConversionError(node.name, node.op, f"input shape must be static, got {shape}; pass input_shapes")
    b.reserve(node.name)
    b.graph.inputs.append(IrValue(node.name, tuple(shape), dtype))
    return Tensor(node.name, tuple(shape), dtype)


def _fold(node: TfNode, args: list[Value]) -> list[Value] | None:
    folder = FOLDERS.get(node.op)
    if folder is None or not all(isinstance(a, Const) for a in args):
        return None
    arrays = [a.value for a in args if isinstance(a, Const)]
    try:
        return [Const(np.asarray(r)) for r in folder(node, arrays)]
    except ConversionError:
        raise
    except (IndexError, ValueError, TypeError) as exc:
        raise ConversionError(node.name, node.op, f"cannot fold constant inputs: {exc}") from exc


def convert_to_ir(graph: TfjsGraphModel, *, input_shapes: Mapping[str, Sequence[int]] | None = None) -> IrGraph:
    """Translate the graph; outputs are named after the TF output nodes (signature order)."""
    outputs = list(graph.output_names) or _sinks(graph)
    if not outputs:
        raise GraphFormatError("the graph has no outputs")
    order = _topological_order(graph, outputs)
    unsupported = [n for n in order if n.op not in SUPPORTED_OPS]
    if unsupported:
        ops = sorted({n.op for n in unsupported})
        raise UnsupportedOpError(unsupported[0].name, ops, SUPPORTED_OPS)
    b = GraphBuilder()
    values: dict[str, list[Value]] = {}
    for node in order:
        if node.op == "Placeholder":
            values[node.name] = [_placeholder(b, node, (input_shapes or {}).get(node.name))]
            continue
        if node.op == "Const":
            values[node.name] = [Const(graph.constants[node.name])]
            continue
        args = [_lookup(values, node, ref) for ref in node.inputs]
        folded = _fold(node, args)
        values[node.name] = folded if folded is not None else HANDLERS[node.op](b, node, args)

    for ref in outputs:
        value = _lookup(values, None, ref)
        name = _split_ref(ref)[0] if _split_ref(ref)[1] == 0 else ref
        source = b.initializer(value.value, f"{name}/value") if isinstance(value, Const) else value.name
        if source != name:
            b.reserve(name)
            b.graph.nodes.append(IrNode("Identity", [source], [name], name=f"output/{name}"))
        b.graph.outputs.append(IrValue(name, value.shape, value.dtype))
    return b.graph


def _lookup(values: Mapping[str, list[Value]], node: TfNode | None, ref: str) -> Value:
    name, index = _split_ref(ref)
    produced = values.get(name)
    if produced is None or index >= len(produced):
        where = f" (input of {node.name!r})" if node else ""
        raise GraphFormatError(f"tensor {ref!r}{where} does not exist")
    return produced[index]


def _sinks(graph: TfjsGraphModel) -> list[str]:
    used = {_split_ref(i)[0] for n in graph.nodes for i in n.inputs}
    return [n.name for n in graph.nodes if n.name not in used and n.op not in ("Const", "Placeholder")]


def tfjs_to_onnx(
    graph: TfjsGraphModel,
    *,
    output_names: Sequence[tuple[str, str]] | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    optimize: bool = True,
    weights_dtype: WeightsDtype = "float32",
    graph_name: str = "graph",
    metadata: Mapping[str, str] | None = None,
) -> onnx.ModelProto:
    """Convert a parsed graph model; ``output_names`` selects/orders/renames outputs."""
    ir = convert_to_ir(graph, input_shapes=input_shapes)
    if output_names is not None:
        ir.set_outputs(output_names)
    if optimize:
        optimize_graph(ir)
    model = ir.to_model(weights_dtype=weights_dtype, graph_name=graph_name, metadata=metadata)
    onnx.checker.check_model(model)
    return model

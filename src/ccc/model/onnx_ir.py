"""A tiny mutable ONNX graph and its deterministic serialisation.

Why not edit ``onnx.GraphProto`` directly: the optimiser rewires tensors and drops nodes, which is
simpler on plain lists and dicts. Serialisation is deterministic by construction: nodes keep their
order, initialisers are emitted in order of first use, and the producer name/version are fixed,
so the same input graph yields the same bytes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # widely supported (onnxruntime >= 1.13); everything this converter emits exists in 17
IR_VERSION = 8  # the IR version that goes with opset 17
PRODUCER_NAME = "ccc.model.converter"
PRODUCER_VERSION = "2"  # 2: dynamic batch axis; bump when the converter's output changes for the same input
WeightsDtype = Literal["float32", "float16"]
FP16_MIN_ELEMENTS = 16  # only real weight tensors are stored as float16, not small shape constants

_ONNX_TYPES = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float16): TensorProto.FLOAT16,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.bool_): TensorProto.BOOL,
}


def onnx_type(dtype: np.dtype[Any]) -> int:
    return _ONNX_TYPES[np.dtype(dtype)]


@dataclass
class IrNode:
    op_type: str
    inputs: list[str]
    outputs: list[str]
    name: str
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IrValue:
    """A graph input or output with its static shape."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]


@dataclass
class IrGraph:
    nodes: list[IrNode] = field(default_factory=list)
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    inputs: list[IrValue] = field(default_factory=list)
    outputs: list[IrValue] = field(default_factory=list)

    # --- queries -------------------------------------------------------------------------------
    def producer_of(self) -> dict[str, IrNode]:
        return {out: node for node in self.nodes for out in node.outputs}

    def consumers_of(self) -> dict[str, list[IrNode]]:
        consumers: dict[str, list[IrNode]] = defaultdict(list)
        for node in self.nodes:
            for name in node.inputs:
                if name:
                    consumers[name].append(node)
        return consumers

    def output_names(self) -> set[str]:
        return {o.name for o in self.outputs}

    def iter_used_initializers(self) -> Iterator[str]:
        """Initialiser names in order of first use (the serialisation order)."""
        seen: set[str] = set()
        for node in self.nodes:
            for name in node.inputs:
                if name in self.initializers and name not in seen:
                    seen.add(name)
                    yield name
        for out in self.outputs:
            if out.name in self.initializers and out.name not in seen:
                seen.add(out.name)
                yield out.name

    # --- edits ---------------------------------------------------------------------------------
    def rename_tensor(self, old: str, new: str) -> None:
        """Rename a tensor everywhere (producer, consumers, graph outputs)."""
        for node in self.nodes:
            node.inputs = [new if n == old else n for n in node.inputs]
            node.outputs = [new if n == old else n for n in node.outputs]
        self.outputs = [IrValue(new, o.shape, o.dtype) if o.name == old else o for o in self.outputs]

    def set_outputs(self, names: Sequence[tuple[str, str]]) -> None:
        """Choose and order the graph outputs: ``[(current name, new name), ...]``.

        Each selected output is routed through an Identity named after the new name; the
        optimiser later folds the Identity away so the producing node writes it directly.
        """
        current = {o.name: o for o in self.outputs}
        new_outputs = []
        for old, new in names:
            if old not in current:
                raise KeyError(f"{old!r} is not a graph output (outputs: {sorted(current)})")
            if new != old:
                self.nodes.append(IrNode("Identity", [old], [new], name=f"output/{new}"))
            new_outputs.append(IrValue(new, current[old].shape, current[old].dtype))
        self.outputs = new_outputs

    # --- serialisation -------------------------------------------------------------------------
    def to_model(
        self,
        *,
        weights_dtype: WeightsDtype = "float32",
        graph_name: str = "graph",
        doc_string: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> onnx.ModelProto:
        nodes = [helper.make_node(n.op_type, n.inputs, n.outputs, name=n.name, **n.attrs) for n in self.nodes]
        initializers = []
        casts = []
        for name in self.iter_used_initializers():
            array = self.initializers[name]
            if weights_dtype == "float16" and array.dtype == np.float32 and array.size >= FP16_MIN_ELEMENTS:
                # Stored half-size; a Cast restores float32 once, when onnxruntime folds constants.
                half = f"{name}/fp16"
                initializers.append(numpy_helper.from_array(array.astype(np.float16), half))
                casts.append(helper.make_node("Cast", [half], [name], name=f"{name}/cast", to=TensorProto.FLOAT))
            else:
                initializers.append(numpy_helper.from_array(array, name))
        graph = helper.make_graph(
            casts + nodes,
            graph_name,
            [helper.make_tensor_value_info(v.name, onnx_type(v.dtype), list(v.shape)) for v in self.inputs],
            [helper.make_tensor_value_info(v.name, onnx_type(v.dtype), list(v.shape)) for v in self.outputs],
            initializer=initializers,
            doc_string=doc_string,
        )
        model = helper.make_model(
            graph,
            producer_name=PRODUCER_NAME,
            producer_version=PRODUCER_VERSION,
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
        )
        for key, value in sorted((metadata or {}).items()):
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        return model

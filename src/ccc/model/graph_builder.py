"""Values flowing through the conversion, and the builder that emits ONNX nodes for them.

A TensorFlow tensor becomes either a ``Const`` (a numpy array known at conversion time, so ops
on it are folded in numpy: this is how the graph's shape arithmetic, e.g. SparseToDense feeding
Reshape, disappears) or a ``Tensor`` (a named ONNX value with a static shape). Static shapes are
tracked for every tensor because TensorFlow's SAME padding, grouped convolutions and ``-1`` in
shapes all need them, and because outputs are identified by shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ccc.model.errors import ConversionError
from ccc.model.onnx_ir import IrGraph, IrNode


@dataclass(frozen=True)
class Const:
    value: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.value.dtype


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]


Value = Const | Tensor


class GraphBuilder:
    """Appends ONNX nodes and initialisers to an ``IrGraph`` with unique, stable names."""

    def __init__(self) -> None:
        self.graph = IrGraph()
        self._taken: set[str] = set()

    def unique(self, base: str) -> str:
        name, n = base, 1
        while name in self._taken:
            name = f"{base}_{n}"
            n += 1
        self._taken.add(name)
        return name

    def reserve(self, name: str) -> None:
        if name in self._taken:
            raise ConversionError(name, "?", "duplicate tensor name")
        self._taken.add(name)

    def initializer(self, array: np.ndarray, hint: str) -> str:
        name = self.unique(hint)
        self.graph.initializers[name] = np.ascontiguousarray(array)
        return name

    def name_of(self, value: Value, hint: str) -> str:
        """The ONNX tensor name for a value; constants become initialisers."""
        if isinstance(value, Tensor):
            return value.name
        return self.initializer(value.value, hint)

    def emit(
        self,
        op_type: str,
        inputs: Sequence[str],
        *,
        name: str,
        out_shapes: Sequence[tuple[int, ...]],
        out_dtype: np.dtype[Any],
        **attrs: Any,
    ) -> list[Tensor]:
        node_name = self.unique(name)
        outputs = [node_name if i == 0 else self.unique(f"{node_name}:{i}") for i in range(len(out_shapes))]
        self.graph.nodes.append(IrNode(op_type, list(inputs), outputs, name=node_name, attrs=attrs))
        return [
            Tensor(o, tuple(int(d) for d in s), np.dtype(out_dtype)) for o, s in zip(outputs, out_shapes, strict=True)
        ]

    def emit1(
        self,
        op_type: str,
        inputs: Sequence[str],
        *,
        name: str,
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
        **attrs: Any,
    ) -> Tensor:
        return self.emit(op_type, inputs, name=name, out_shapes=[shape], out_dtype=dtype, **attrs)[0]

    def transpose(self, value: Value, perm: Sequence[int], name: str) -> Value:
        if isinstance(value, Const):
            return Const(np.transpose(value.value, perm))
        shape = tuple(value.shape[p] for p in perm)
        return self.emit1("Transpose", [value.name], name=name, shape=shape, dtype=value.dtype, perm=list(perm))

"""The TensorFlow.js *graph model* format: ``model.json`` plus binary weight shards.

Why our own reader: the only COCO detector the registries ship is a tfjs graph model, and the
official readers need TensorFlow. The format is small: a GraphDef rendered as JSON
(``modelTopology.node``) and a ``weightsManifest`` that says how the concatenated shards are cut
into named tensors, optionally quantised (``float16``, or affine ``uint8``/``uint16``).

The writer (``dump_graph_model``) exists so tests can build small graphs in exactly the format
the reader accepts, without TensorFlow.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ccc.model.errors import GraphFormatError

# TensorFlow DataType enum names <-> numpy, for the types this converter handles.
TF_DTYPES: dict[str, np.dtype[Any]] = {
    "DT_FLOAT": np.dtype(np.float32),
    "DT_HALF": np.dtype(np.float16),
    "DT_INT32": np.dtype(np.int32),
    "DT_INT64": np.dtype(np.int64),
    "DT_BOOL": np.dtype(np.bool_),
}
# Storage dtypes in weightsManifest entries (tfjs stores int64 tensors as int32).
_MANIFEST_DTYPES: dict[str, np.dtype[Any]] = {
    "float32": np.dtype(np.float32),
    "int32": np.dtype(np.int32),
    "bool": np.dtype(np.bool_),
}
_QUANTISED_DTYPES: dict[str, np.dtype[Any]] = {
    "float16": np.dtype("<f2"),
    "uint8": np.dtype(np.uint8),
    "uint16": np.dtype("<u2"),
}
MAX_WEIGHT_ELEMENTS = 1 << 28  # 256 M elements: far above any detector, far below a memory bomb


@dataclass(frozen=True)
class TfNode:
    """One GraphDef node. ``inputs`` excludes control dependencies (``^name``)."""

    name: str
    op: str
    inputs: tuple[str, ...] = ()
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def attr(self, key: str) -> Any:
        """The raw JSON AttrValue, or None when absent."""
        return self.attrs.get(key)

    def _field(self, key: str, kind: str) -> Any:
        """``attrs[key][kind]`` or None; anything that is not an AttrValue object is an error."""
        value = self.attrs.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise GraphFormatError(f"node {self.name!r}: attribute {key!r} is not an AttrValue object")
        return value.get(kind)

    def attr_int(self, key: str, default: int | None = None) -> int:
        raw = self._field(key, "i")
        if raw is None:
            return _require_default(self, key, default)
        return _to_int(self, key, raw)

    def attr_float(self, key: str, default: float | None = None) -> float:
        raw = self._field(key, "f")
        if raw is None:
            return _require_default(self, key, default)
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise GraphFormatError(f"node {self.name!r}: attribute {key!r} is not a number")
        try:
            return float(raw)
        except ValueError as exc:
            raise GraphFormatError(f"node {self.name!r}: attribute {key!r} is not a number") from exc

    def attr_bool(self, key: str, default: bool | None = None) -> bool:
        raw = self._field(key, "b")
        if raw is None:
            return _require_default(self, key, default)
        if not isinstance(raw, bool):
            raise GraphFormatError(f"node {self.name!r}: attribute {key!r} is not a boolean")
        return raw

    def attr_str(self, key: str, default: str | None = None) -> str:
        raw = self._field(key, "s")
        if raw is None:
            return _require_default(self, key, default)
        try:
            return base64.b64decode(raw, validate=True).decode("utf-8")
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise GraphFormatError(f"node {self.name!r}: attribute {key!r} is not base64 text") from exc

    def attr_ints(self, key: str, default: Sequence[int] | None = None) -> tuple[int, ...]:
        raw = self._field(key, "list")
        if raw is None:
            return tuple(_require_default(self, key, default))
        items = raw.get("i", []) if isinstance(raw, dict) else None
        if not isinstance(items, list):
            raise GraphFormatError(f"node {self.name!r}: attribute {key!r} is not a list of ints")
        return tuple(_to_int(self, key, v) for v in items)

    def attr_dtype(self, key: str, default: str | None = None) -> np.dtype[Any]:
        name = self._field(key, "type")
        if name is None:
            name = _require_default(self, key, default)
        if not isinstance(name, str) or name not in TF_DTYPES:
            raise GraphFormatError(f"node {self.name!r}: unsupported data type {name!r} in {key!r}")
        return TF_DTYPES[name]

    def attr_shape(self, key: str) -> tuple[int, ...] | None:
        """A TensorShapeProto attribute as a tuple (-1 for unknown dims); None when unknown rank."""
        shape = self._field(key, "shape")
        if shape is None or (isinstance(shape, dict) and shape.get("unknownRank")):
            return None
        dims = shape.get("dim", []) if isinstance(shape, dict) else None
        if not isinstance(dims, list) or not all(isinstance(d, dict) for d in dims):
            raise GraphFormatError(f"node {self.name!r}: attribute {key!r} is not a shape")
        return tuple(_to_int(self, key, d.get("size", -1)) for d in dims)


def _to_int(node: TfNode, key: str, raw: Any) -> int:
    """tfjs writes int64 attributes as decimal strings; accept those and plain ints only."""
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise GraphFormatError(f"node {node.name!r}: attribute {key!r} holds a non-integer {raw!r}")
    try:
        return int(raw)
    except ValueError as exc:
        raise GraphFormatError(f"node {node.name!r}: attribute {key!r} holds a non-integer {raw!r}") from exc


def _require_default(node: TfNode, key: str, default: Any) -> Any:
    if default is None:
        raise GraphFormatError(f"node {node.name!r} ({node.op}): missing attribute {key!r}")
    return default


@dataclass(frozen=True)
class TfjsGraphModel:
    """A parsed graph model: nodes in file order, dequantised constants, signature names."""

    nodes: tuple[TfNode, ...]
    constants: Mapping[str, np.ndarray]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    weights_quantization: tuple[str, ...]  # distinct quantisation dtypes found ("float16", ...)


def _load_json(model_json: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(model_json)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GraphFormatError(f"model.json is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise GraphFormatError("model.json must be a JSON object")
    if doc.get("format", "graph-model") != "graph-model":
        raise GraphFormatError(f"not a tfjs graph model (format={doc.get('format')!r})")
    topology = doc.get("modelTopology")
    if not isinstance(topology, dict) or not isinstance(topology.get("node"), list):
        raise GraphFormatError("model.json has no modelTopology.node list")
    if not isinstance(doc.get("weightsManifest", []), list):
        raise GraphFormatError("weightsManifest must be a list")
    return doc


def _parse_node(raw: Any) -> TfNode:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not isinstance(raw.get("op"), str):
        raise GraphFormatError(f"malformed node entry: {str(raw)[:120]}")
    inputs = raw.get("input", [])
    attrs = raw.get("attr", {})
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise GraphFormatError(f"node {raw['name']!r}: 'input' must be a list of strings")
    if not isinstance(attrs, dict):
        raise GraphFormatError(f"node {raw['name']!r}: 'attr' must be an object")
    data_inputs = tuple(i for i in inputs if not i.startswith("^"))
    return TfNode(name=raw["name"], op=raw["op"], inputs=data_inputs, attrs=attrs)


def _check_shard_name(path: Any) -> str:
    """Shard paths are plain file names next to model.json: nothing else may be read."""
    if not isinstance(path, str) or not path or "/" in path or "\\" in path or path in (".", ".."):
        raise GraphFormatError(f"weight shard path must be a plain file name, got {path!r}")
    return path


def _decode_weight(entry: Any, buffer: memoryview, offset: int) -> tuple[str, np.ndarray, int, str | None]:
    """Cut one tensor out of a weight group; returns (name, array, bytes used, quantisation)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise GraphFormatError(f"malformed weightsManifest entry: {str(entry)[:120]}")
    name = entry["name"]
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise GraphFormatError(f"weight {name!r}: shape must be a list of non-negative ints")
    count = int(np.prod(shape, dtype=np.int64))
    if count > MAX_WEIGHT_ELEMENTS:
        raise GraphFormatError(f"weight {name!r}: {count} elements exceeds the limit")
    dtype_name = entry.get("dtype")
    if dtype_name not in _MANIFEST_DTYPES:
        raise GraphFormatError(f"weight {name!r}: unsupported dtype {dtype_name!r}")
    target = _MANIFEST_DTYPES[dtype_name]
    quant = entry.get("quantization")
    if quant is None:
        stored, quant_name = target, None
    else:
        quant_name = quant.get("dtype") if isinstance(quant, dict) else None
        if quant_name not in _QUANTISED_DTYPES:
            raise GraphFormatError(f"weight {name!r}: unsupported quantization {quant!r}")
        stored = _QUANTISED_DTYPES[quant_name]
    nbytes = count * stored.itemsize
    if offset + nbytes > len(buffer):
        raise GraphFormatError(f"weight {name!r} runs past the end of its shards")
    raw = np.frombuffer(buffer, dtype=stored.newbyteorder("<"), count=count, offset=offset)
    if quant is None:
        array = raw.astype(target)
    elif quant_name == "float16":
        array = raw.astype(np.float32).astype(target)
    else:
        try:
            scale, minimum = float(quant["scale"]), float(quant["min"])
        except (KeyError, TypeError, ValueError) as exc:
            raise GraphFormatError(f"weight {name!r}: affine quantization needs scale and min") from exc
        values = raw.astype(np.float32) * np.float32(scale) + np.float32(minimum)
        array = np.rint(values).astype(target) if target.kind in "iub" else values.astype(target)
    return name, array.reshape(shape), nbytes, quant_name


def load_graph_model(model_json: bytes, read_shard: Callable[[str], bytes]) -> TfjsGraphModel:
    """Parse ``model.json`` bytes; ``read_shard(name)`` returns one weight shard's bytes."""
    doc = _load_json(model_json)
    nodes = tuple(_parse_node(raw) for raw in doc["modelTopology"]["node"])
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise GraphFormatError("duplicate node names in modelTopology")

    stored: dict[str, np.ndarray] = {}
    quantizations: set[str] = set()
    for group in doc.get("weightsManifest", []):
        if not isinstance(group, dict) or not isinstance(group.get("paths"), list):
            raise GraphFormatError("each weightsManifest group needs a 'paths' list")
        data = b"".join(read_shard(_check_shard_name(p)) for p in group["paths"])
        view, offset = memoryview(data), 0
        for entry in group.get("weights", []):
            name, array, used, quant = _decode_weight(entry, view, offset)
            if name in stored:
                raise GraphFormatError(f"weight {name!r} appears twice in weightsManifest")
            stored[name], offset = array, offset + used
            if quant:
                quantizations.add(quant)
        if offset != len(data):
            raise GraphFormatError(f"weight shards {group['paths']} hold {len(data) - offset} unused bytes")

    constants: dict[str, np.ndarray] = {}
    for node in nodes:
        if node.op != "Const":
            continue
        if node.name not in stored:
            raise GraphFormatError(f"Const node {node.name!r} has no entry in weightsManifest")
        constants[node.name] = stored[node.name].astype(node.attr_dtype("dtype"), copy=False)

    signature = doc.get("signature") or doc["modelTopology"].get("signature") or {}
    if not isinstance(signature, dict):
        raise GraphFormatError("signature must be an object")
    inputs = _signature_names(signature.get("inputs"))
    outputs = _signature_names(signature.get("outputs"))
    return TfjsGraphModel(
        nodes=nodes,
        constants=constants,
        input_names=inputs or tuple(n.name for n in nodes if n.op == "Placeholder"),
        output_names=outputs,
        weights_quantization=tuple(sorted(quantizations)),
    )


def _signature_names(section: Any) -> tuple[str, ...]:
    """Tensor names from a signature section, in key order (``"Identity_2:0"`` -> ``"Identity_2"``)."""
    if not isinstance(section, dict):
        return ()
    names: list[str] = []
    for key, spec in section.items():
        full = spec.get("name", key) if isinstance(spec, dict) else key
        if not isinstance(full, str):
            raise GraphFormatError(f"signature entry {key!r} has no tensor name")
        names.append(full[:-2] if full.endswith(":0") else full)
    return tuple(names)


# --- writing (tests build small graphs with these) ---------------------------------------------

_NP_TO_TF = {v: k for k, v in TF_DTYPES.items()}


def attr_value(value: Any) -> dict[str, Any]:
    """Encode a Python value as a JSON AttrValue (bool, int, float, str, list of ints, dtype)."""
    if isinstance(value, bool):
        return {"b": value}
    if isinstance(value, int):
        return {"i": str(value)}
    if isinstance(value, float):
        return {"f": value}
    if isinstance(value, str):
        return {"s": base64.b64encode(value.encode()).decode()}
    if isinstance(value, np.dtype):
        return {"type": _NP_TO_TF[value]}
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
        return {"list": {"i": [str(v) for v in value]}}
    raise TypeError(f"cannot encode attribute value {value!r}")


def make_node(name: str, op: str, inputs: Sequence[str] = (), **attrs: Any) -> TfNode:
    return TfNode(name=name, op=op, inputs=tuple(inputs), attrs={k: attr_value(v) for k, v in attrs.items()})


def placeholder(name: str, shape: Sequence[int], dtype: Any = np.float32) -> TfNode:
    return TfNode(
        name=name,
        op="Placeholder",
        attrs={
            "shape": {"shape": {"dim": [{"size": str(d)} for d in shape]}},
            "dtype": attr_value(np.dtype(dtype)),
        },
    )


def dump_graph_model(
    nodes: Sequence[TfNode],
    constants: Mapping[str, np.ndarray],
    *,
    outputs: Sequence[str] = (),
    float16_weights: bool = False,
    shard_name: str = "group1-shard1of1.bin",
) -> tuple[bytes, bytes]:
    """Serialise a graph model; Const nodes are generated for every entry of ``constants``.

    Mirrors the tfjs converter: int64 constants are stored as int32, float32 constants
    optionally as float16 (``quantization: {dtype: float16}``).
    """
    const_nodes, manifest, chunks = [], [], []
    for name, array in constants.items():
        array = np.asarray(array)
        tf_type = _NP_TO_TF[array.dtype]
        const_nodes.append(
            {
                "name": name,
                "op": "Const",
                "attr": {
                    "value": {
                        "tensor": {"dtype": tf_type, "tensorShape": {"dim": [{"size": str(d)} for d in array.shape]}}
                    },
                    "dtype": {"type": tf_type},
                },
            }
        )
        entry: dict[str, Any] = {"name": name, "shape": list(array.shape)}
        if array.dtype.kind == "f":
            entry["dtype"] = "float32"
            if float16_weights:
                entry["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
                chunks.append(array.astype("<f2").tobytes())
            else:
                chunks.append(array.astype("<f4").tobytes())
        elif array.dtype == np.bool_:
            entry["dtype"] = "bool"
            chunks.append(array.astype(np.bool_).tobytes())
        else:
            entry["dtype"] = "int32"
            chunks.append(array.astype("<i4").tobytes())
        manifest.append(entry)
    graph_nodes = const_nodes + [
        {"name": n.name, "op": n.op, "input": list(n.inputs), "attr": dict(n.attrs)} for n in nodes
    ]
    doc = {
        "format": "graph-model",
        "signature": {"outputs": {f"{o}:0": {"name": f"{o}:0"} for o in outputs}} if outputs else {},
        "modelTopology": {"node": graph_nodes, "library": {}, "versions": {}},
        "weightsManifest": [{"paths": [shard_name], "weights": manifest}],
    }
    return json.dumps(doc).encode(), b"".join(chunks)

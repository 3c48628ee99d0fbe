"""Layout clean-up of a converted graph: fewer nodes, same numbers.

The tfjs graph was itself converted from an NCHW PyTorch model into NHWC TensorFlow, so it is
full of Transpose pairs; translating its NHWC convolutions back to NCHW ONNX adds more. These
rewrites remove them and fold explicit Pad / bias Add nodes into Conv and MaxPool. Each rewrite
is exact (no numeric change beyond float reassociation in the bias), so the optimised and plain
graphs agree, which the tests check. The result also reads like a normal NCHW detector.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ccc.model.onnx_ir import IrGraph, IrNode

Pass = Callable[[IrGraph], bool]


def _replace_uses(g: IrGraph, old: str, new: str) -> None:
    for node in g.nodes:
        node.inputs = [new if n == old else n for n in node.inputs]


def _single_consumer(g: IrGraph, tensor: str) -> IrNode | None:
    """The only node reading ``tensor``, if exactly one does and it is not a graph output."""
    users = g.consumers_of().get(tensor, [])
    if len(users) != 1 or tensor in g.output_names():
        return None
    return users[0]


def _perm(node: IrNode) -> list[int]:
    return [int(p) for p in node.attrs["perm"]]


def eliminate_identity(g: IrGraph) -> bool:
    """Drop Identity nodes; a graph output is renamed onto the producing node instead."""
    outputs, inputs = g.output_names(), {v.name for v in g.inputs}
    for node in list(g.nodes):
        if node.op_type != "Identity":
            continue
        src, dst = node.inputs[0], node.outputs[0]
        if dst not in outputs:
            g.nodes.remove(node)
            _replace_uses(g, dst, src)
            return True
        if src not in outputs and src not in inputs and src not in g.initializers:
            g.nodes.remove(node)
            g.rename_tensor(src, dst)
            return True
    return False


def cancel_transposes(g: IrGraph) -> bool:
    """Transpose(Transpose(x, p1), p2) -> x when p1 then p2 is the identity, else one Transpose."""
    producers = g.producer_of()
    for node in g.nodes:
        if node.op_type != "Transpose":
            continue
        inner = producers.get(node.inputs[0])
        if inner is None or inner.op_type != "Transpose":
            continue
        p1, p2 = _perm(inner), _perm(node)
        composed = [p1[i] for i in p2]
        if composed == list(range(len(composed))):
            node.op_type, node.attrs = "Identity", {}
        else:
            node.attrs = {"perm": composed}
        node.inputs = [inner.inputs[0]]
        return True
    return False


def sink_transpose_through_add(g: IrGraph) -> bool:
    """Add(Transpose(y, p), const) -> Transpose(Add(y, const'), p), so transposes can meet and cancel."""
    producers = g.producer_of()
    for add in g.nodes:
        if add.op_type != "Add":
            continue
        for slot in (0, 1):
            t = producers.get(add.inputs[slot])
            const_name = add.inputs[1 - slot]
            if t is None or t.op_type != "Transpose" or const_name not in g.initializers:
                continue
            if _single_consumer(g, t.outputs[0]) is not add:
                continue
            perm = _perm(t)
            const = g.initializers[const_name]
            if const.ndim > len(perm):
                continue
            expanded = const.reshape((1,) * (len(perm) - const.ndim) + const.shape)
            moved = np.ascontiguousarray(np.transpose(expanded, np.argsort(perm)))
            new_const = _fresh(g, f"{const_name}/permuted")
            g.initializers[new_const] = moved
            final, inner_out = add.outputs[0], _fresh(g, f"{add.outputs[0]}/pre_transpose")
            add.inputs[slot], add.inputs[1 - slot] = t.inputs[0], new_const
            add.outputs = [inner_out]
            t.inputs, t.outputs = [inner_out], [final]
            g.nodes.remove(t)
            g.nodes.insert(g.nodes.index(add) + 1, t)
            return True
    return False


def fuse_pad(g: IrGraph) -> bool:
    """Pad(zeros) -> Conv and Pad(-inf) -> MaxPool become the consumer's own ``pads``."""
    for pad in g.nodes:
        if pad.op_type != "Pad" or pad.attrs.get("mode", "constant") != "constant":
            continue
        if len(pad.inputs) < 2 or pad.inputs[1] not in g.initializers:
            continue
        user = _single_consumer(g, pad.outputs[0])
        if user is None or user.op_type not in ("Conv", "MaxPool") or user.inputs[0] != pad.outputs[0]:
            continue
        pads = [int(p) for p in g.initializers[pad.inputs[1]]]
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
            continue
        value = 0.0
        if len(pad.inputs) > 2 and pad.inputs[2]:
            if pad.inputs[2] not in g.initializers:
                continue
            value = float(g.initializers[pad.inputs[2]].reshape(()))
        if user.op_type == "Conv" and value != 0.0:
            continue
        if user.op_type == "MaxPool":
            kernel = user.attrs["kernel_shape"]
            if value != float("-inf") or pads[2] >= kernel[0] or pads[3] >= kernel[1]:
                continue
        old = list(user.attrs.get("pads", [0, 0, 0, 0]))
        user.attrs["pads"] = [old[0] + pads[2], old[1] + pads[3], old[2] + pads[6], old[3] + pads[7]]
        user.inputs[0] = pad.inputs[0]
        return True
    return False


def fuse_conv_bias(g: IrGraph) -> bool:
    """Add(Conv(x, w), per-channel const) -> Conv(x, w, bias)."""
    producers = g.producer_of()
    for add in g.nodes:
        if add.op_type != "Add":
            continue
        for slot in (0, 1):
            conv = producers.get(add.inputs[slot])
            const_name = add.inputs[1 - slot]
            if conv is None or conv.op_type != "Conv" or const_name not in g.initializers:
                continue
            if _single_consumer(g, conv.outputs[0]) is not add or conv.inputs[1] not in g.initializers:
                continue
            channels = g.initializers[conv.inputs[1]].shape[0]
            const = g.initializers[const_name]
            if const.ndim > 4 or const.dtype != np.float32:
                continue
            expanded = const.reshape((1,) * (4 - const.ndim) + const.shape)
            if expanded.shape not in ((1, channels, 1, 1), (1, 1, 1, 1)):
                continue
            bias = np.broadcast_to(expanded.reshape(-1), (channels,)).astype(np.float32)
            if len(conv.inputs) > 2 and conv.inputs[2]:
                bias = bias + g.initializers[conv.inputs[2]]
            bias_name = _fresh(g, f"{conv.name}/bias")
            g.initializers[bias_name] = np.ascontiguousarray(bias)
            conv.inputs = [*conv.inputs[:2], bias_name]
            conv.outputs = list(add.outputs)
            g.nodes.remove(add)
            return True
    return False


def remove_dead(g: IrGraph) -> bool:
    """Drop nodes nobody reads and initialisers no node uses."""
    changed = False
    needed = g.output_names()
    for node in reversed(list(g.nodes)):
        if any(o in needed for o in node.outputs):
            needed.update(i for i in node.inputs if i)
        else:
            g.nodes.remove(node)
            changed = True
    for name in [n for n in g.initializers if n not in needed]:
        del g.initializers[name]
        changed = True
    return changed


def _fresh(g: IrGraph, base: str) -> str:
    taken = set(g.initializers) | {o for n in g.nodes for o in n.outputs} | {v.name for v in g.inputs}
    name, n = base, 1
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


PASSES: tuple[Pass, ...] = (
    eliminate_identity,
    cancel_transposes,
    sink_transpose_through_add,
    fuse_pad,
    fuse_conv_bias,
    remove_dead,
)


def optimize_graph(g: IrGraph, passes: tuple[Pass, ...] = PASSES) -> None:
    """Apply the rewrites until none applies (each one strictly shrinks or settles the graph)."""
    changed = True
    while changed:
        changed = False
        for rewrite in passes:
            while rewrite(g):
                changed = True

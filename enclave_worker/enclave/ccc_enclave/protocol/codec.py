"""Strict CBOR, and the declarative machinery that turns message models into CBOR maps and back.

Why declarative: each message is one strict pydantic model, and its field declarations are the
only place a field is spelled. From them this module derives the encoder, the decoder and the
exact key sets, so a new field cannot be encoded but forgotten by the key check (or the reverse).
Where a field's place on the wire differs from its Python name (`model_name` travels as
`model.name`) or its key may be absent, the field says so with a `Wire` annotation.

Why strict: everything the enclave reads from the socket is hostile until validated. The CBOR
decoder refuses every semantic tag (dates, bignums, shared references), indefinite lengths,
duplicate keys, deep nesting and trailing bytes; the key sets are exact; the models never coerce.
Every failure is a `ProtocolError`, never another exception type.

Messages are found by their tag (`kind`, plus a literal field such as `ok` where two message
types share a kind) in a `MessageRegistry`, not by a chain of isinstance checks.
"""

from __future__ import annotations

import io
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self, Union

import cbor2
from pydantic import BaseModel, ConfigDict, ValidationError

from ccc_enclave.protocol.errors import ErrorCode, ProtocolError
from ccc_enclave.protocol.fields import REQUEST_ID_RE

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = frozenset({PROTOCOL_VERSION})
MAX_NESTING = 6
# The envelope every message map carries besides its own fields (`request_id` is a model field).
_ENVELOPE = ("version", "kind")


# ---------------------------------------------------------------------------------------- strict CBOR


class _NoSemanticTags(Mapping[int, Callable[[Any], Any]]):
    """Passed as cbor2's `semantic_decoders`: every tag (dates, bignums, regexes, shared refs) refused."""

    def __getitem__(self, tag: int) -> Callable[[Any], Any]:
        def refuse(_decoder: Any) -> Any:
            raise cbor2.CBORDecodeError(f"CBOR tag {tag} is not allowed")

        return refuse

    def __contains__(self, tag: object) -> bool:
        return True

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _refuse_tag(_decoder: Any, tag: Any) -> Any:
    raise cbor2.CBORDecodeError("CBOR tags are not allowed")


def decode_cbor(data: bytes) -> Any:
    """Exactly one untagged CBOR item spanning all of `data`; any decoder failure -> ProtocolError."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError("message body must be bytes")
    stream = io.BytesIO(bytes(data))
    try:
        decoder = cbor2.CBORDecoder(
            stream,
            tag_hook=_refuse_tag,
            semantic_decoders=_NoSemanticTags(),
            max_depth=MAX_NESTING,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            strict_hashable_types=True,
        )
        value = decoder.decode()
    except Exception as exc:  # cbor2 raises decode/value/overflow/recursion/memory errors on junk
        raise ProtocolError(f"message is not valid CBOR ({type(exc).__name__})") from None
    if stream.tell() != len(data):
        raise ProtocolError(f"{len(data) - stream.tell()} trailing byte(s) after the CBOR message")
    return value


def peek_request_id(data: bytes) -> str | None:
    """Best effort: the request id of a message that failed validation, for the error reply."""
    try:
        value = decode_cbor(data)
    except ProtocolError:
        return None
    if isinstance(value, dict):
        rid = value.get("request_id")
        if isinstance(rid, str) and REQUEST_ID_RE.fullmatch(rid):
            return rid
    return None


# -------------------------------------------------------------------------------------- wire models


@dataclass(frozen=True)
class Wire:
    """Where a field travels, when that is not simply under its own name.

    `path`: the keys leading to it (`("model", "name")` nests it in a `model` map shared with the
    other fields whose path starts with `model`). `optional`: the key may be absent, meaning the
    field's default; it is then never null on the wire, and a None value is not sent at all.
    """

    path: tuple[str, ...] = ()
    optional: bool = False


@dataclass(frozen=True)
class _Slot:
    """One field's wire placement and value shape, derived once per model class."""

    field: str
    optional: bool
    model: type[WireModel] | None = None  # the field holds a model (or None) ...
    container: Literal["tuple", "map"] | None = None  # ... or a tuple / str-keyed map of models
    max_items: int | None = None  # refused before decoding the items (a frame may hold 500k of them)

    def require_models(self, value: object, owner: str) -> None:
        """Nested values must already be models: pydantic would build one from a dict, and these never coerce."""
        if value is None or self.model is None:
            return
        items: tuple[object, ...] = (value,)
        if self.container == "tuple":
            items = value if isinstance(value, tuple) else ()  # not a tuple: the model refuses it
        elif self.container == "map":
            items = tuple(value.values()) if isinstance(value, Mapping) else ()
        if not all(isinstance(item, self.model) for item in items):
            raise ProtocolError(f"{owner}.{self.field}: must hold {self.model.__name__} values")


# A CBOR map layout: key -> a field, or -> the layout of a nested map.
_Layout = dict[str, "_Slot | _Layout"]


def _slot(name: str, annotation: Any, optional: bool, max_items: int | None) -> _Slot:
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (Union, types.UnionType) and len(members) == 1:
        annotation = members[0]  # `Model | None`
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if _is_model(annotation):
        return _Slot(name, optional, model=annotation)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and _is_model(args[0]):
        return _Slot(name, optional, model=args[0], container="tuple", max_items=max_items)
    if origin in (dict, Mapping) and _is_model(args[1]):
        return _Slot(name, optional, model=args[1], container="map", max_items=max_items)
    return _Slot(name, optional)  # a leaf: the CBOR value is the field value


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, WireModel)


def _protocol_error(exc: ValidationError, where: str) -> ProtocolError:
    """The first validation failure as a ProtocolError (never `str(exc)`: it quotes the input)."""
    first = exc.errors(include_url=False, include_input=False)[0]
    cause = (first.get("ctx") or {}).get("error")
    loc = ".".join(str(part) for part in (where, *first["loc"]) if part != "")
    if isinstance(cause, ProtocolError):
        return ProtocolError(f"{loc}: {cause.reason}", cause.code)
    code = ErrorCode.TOO_LARGE if first["type"] == "bytes_too_long" else ErrorCode.BAD_REQUEST
    return ProtocolError(f"{loc}: {first['msg']}", code)


class WireModel(BaseModel):
    """A strict, immutable protocol value whose fields define its CBOR map (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    __wire_layout__: ClassVar[_Layout] = {}
    __wire_slots__: ClassVar[tuple[_Slot, ...]] = ()

    def __init__(self, /, **data: Any) -> None:
        for slot in self.__wire_slots__:
            slot.require_models(data.get(slot.field), type(self).__name__)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _protocol_error(exc, type(self).__name__) from None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Derive the wire layout when the class is defined, so a bad declaration fails at import."""
        super().__pydantic_init_subclass__(**kwargs)
        layout: _Layout = {}
        slots: list[_Slot] = []
        for name, info in cls.model_fields.items():
            wire = next((m for m in info.metadata if isinstance(m, Wire)), Wire())
            if wire.optional and info.is_required():
                raise TypeError(f"{cls.__name__}.{name}: an optional wire key needs a default")
            *parents, key = wire.path or (name,)
            node = layout
            for parent in parents:
                child = node.setdefault(parent, {})
                if not isinstance(child, dict):
                    raise TypeError(f"{cls.__name__}.{name}: {parent!r} is already a field")
                node = child
            if key in node:
                raise TypeError(f"{cls.__name__}.{name}: wire key {key!r} is used twice")
            max_len = next((m.max_length for m in info.metadata if hasattr(m, "max_length")), None)
            node[key] = slot = _slot(name, info.annotation, wire.optional, max_len)
            slots.append(slot)
        cls.__wire_layout__ = layout
        cls.__wire_slots__ = tuple(slot for slot in slots if slot.model is not None)

    def to_wire(self) -> dict[str, Any]:
        """The CBOR-ready map of this value, keys in declaration order (the wire bytes depend on it)."""
        return _emit(self.__wire_layout__, self)

    @classmethod
    def from_wire(cls, value: object, where: str) -> Self:
        """Read and validate a decoded CBOR map (`where` names it in errors)."""
        fields: dict[str, Any] = {}
        _collect(cls.__wire_layout__, value, where, fields)
        return cls(**fields)


class WireMessage(WireModel):
    """A top-level message: a tag (`KIND`), and a `request_id` field that pairs a reply with its request.

    Each message declares `request_id` itself (`RequestId`, or `RequestId | None` for the one reply
    that may not know it); the registry refuses a message type without one.
    """

    KIND: ClassVar[str]


def _emit(layout: _Layout, model: WireModel) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    for key, node in layout.items():
        if isinstance(node, dict):
            wire[key] = _emit(node, model)
            continue
        value = getattr(model, node.field)
        if value is None and node.optional:
            continue
        if value is None or node.model is None:
            wire[key] = value
        elif node.container == "tuple":
            wire[key] = [item.to_wire() for item in value]
        elif node.container == "map":
            wire[key] = {name: item.to_wire() for name, item in value.items()}
        else:
            wire[key] = value.to_wire()
    return wire


def _collect(layout: _Layout, value: object, where: str, fields: dict[str, Any]) -> None:
    if not isinstance(value, dict):
        raise ProtocolError(f"{where} must be a map")
    optional = {key for key, node in layout.items() if isinstance(node, _Slot) and node.optional}
    _exact_keys(value, set(layout) - optional, optional, where)
    for key, node in layout.items():
        if key not in value:
            continue  # an optional key: the field keeps its default
        item, at = value[key], f"{where}.{key}"
        if isinstance(node, dict):
            _collect(node, item, at, fields)
        elif item is None and node.optional:
            raise ProtocolError(f"{at} may be absent but not null")
        elif item is None or node.model is None:
            fields[node.field] = item  # the model validates leaves (and refuses a null it does not allow)
        else:
            fields[node.field] = _read_models(node, node.model, item, at)


def _read_models(node: _Slot, model: type[WireModel], item: object, at: str) -> Any:
    if node.container == "tuple":
        if not isinstance(item, list):
            raise ProtocolError(f"{at} must be a list")
        if node.max_items is not None and len(item) > node.max_items:
            raise ProtocolError(f"{at} must be a list of at most {node.max_items}")
        return tuple(model.from_wire(element, at) for element in item)
    if node.container == "map":
        if not isinstance(item, dict):
            raise ProtocolError(f"{at} must be a map")
        if node.max_items is not None and len(item) > node.max_items:
            raise ProtocolError(f"{at} must be a map of at most {node.max_items} entries")
        return {name: model.from_wire(element, f"{at}.{name}") for name, element in item.items()}
    return model.from_wire(item, at)


def _exact_keys(value: dict[Any, Any], required: set[str], optional: set[str], where: str) -> None:
    keys = set(value)
    if not all(isinstance(k, str) for k in keys):
        raise ProtocolError(f"{where}: map keys must be strings")
    missing = required - keys
    if missing:
        raise ProtocolError(f"{where}: missing field(s) {sorted(missing)}")
    unknown = keys - required - optional
    if unknown:
        raise ProtocolError(f"{where}: unknown field(s) {sorted(unknown)[:5]}")


# ----------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class _Variants:
    """The message types sharing one `kind`, told apart by a field each declares as a one-value Literal."""

    field: str | None
    by_value: tuple[tuple[object, type[WireMessage]], ...]

    @classmethod
    def of(cls, kind: str, classes: list[type[WireMessage]]) -> _Variants:
        if len(classes) == 1:
            return cls(None, ((None, classes[0]),))
        literals = [{n: typing.get_args(f.annotation) for n, f in c.model_fields.items()
                     if typing.get_origin(f.annotation) is Literal and len(typing.get_args(f.annotation)) == 1}
                    for c in classes]
        for name in literals[0]:
            values = [lits.get(name, ()) for lits in literals]
            if all(values) and len({(type(v[0]), v[0]) for v in values}) == len(classes):
                return cls(name, tuple((v[0], c) for v, c in zip(values, classes, strict=True)))
        raise TypeError(f"message types of kind {kind!r} need a Literal field that tells them apart")

    def select(self, value: dict[Any, Any], kind: str) -> type[WireMessage]:
        if self.field is None:
            return self.by_value[0][1]
        tag = value.get(self.field)
        for expected, message_type in self.by_value:
            if type(tag) is type(expected) and tag == expected:
                return message_type
        raise ProtocolError(f"{kind}.{self.field} must be one of {[v for v, _ in self.by_value]}")


class MessageRegistry:
    """Message types by wire tag: encodes any of them, decodes a body into the one its tag names."""

    def __init__(self, message_types: Iterable[type[WireMessage]]) -> None:
        by_kind: dict[str, list[type[WireMessage]]] = {}
        for message_type in message_types:
            if not isinstance(message_type.__wire_layout__.get("request_id"), _Slot):
                raise TypeError(f"{message_type.__name__} has no request_id field")
            by_kind.setdefault(message_type.KIND, []).append(message_type)
        self._by_kind = {kind: _Variants.of(kind, classes) for kind, classes in by_kind.items()}
        self._types = frozenset(c for classes in by_kind.values() for c in classes)

    @property
    def message_types(self) -> frozenset[type[WireMessage]]:
        return self._types

    def encode(self, message: WireMessage) -> bytes:
        """CBOR bytes: `version`, `request_id`, `kind`, then the message's fields (validated when built)."""
        if type(message) not in self._types:
            raise TypeError(f"not a protocol message: {type(message).__name__}")
        wire = message.to_wire()
        return cbor2.dumps({"version": PROTOCOL_VERSION, "request_id": wire.pop("request_id"),
                            "kind": message.KIND, **wire})

    def decode(self, data: bytes) -> WireMessage:
        """Parse and validate one message body. Raises ProtocolError (code unsupported_version/bad_request/...)."""
        value = decode_cbor(data)
        if not isinstance(value, dict):
            raise ProtocolError("message must be a CBOR map")
        version = value.get("version")
        if type(version) is not int:
            raise ProtocolError("message.version must be an integer")
        if version not in SUPPORTED_VERSIONS:
            raise ProtocolError(
                f"protocol version {version} is not supported (supported: {sorted(SUPPORTED_VERSIONS)})",
                code=ErrorCode.UNSUPPORTED_VERSION,
            )
        kind = value.get("kind")
        if not isinstance(kind, str):
            raise ProtocolError("message.kind must be a string")
        variants = self._by_kind.get(kind)
        if variants is None:
            raise ProtocolError(f"unknown message kind {kind!r}")
        body = {key: item for key, item in value.items() if key not in _ENVELOPE}
        try:
            return variants.select(value, kind).from_wire(body, kind)
        except ProtocolError:
            raise
        except (TypeError, ValueError, KeyError, OverflowError) as exc:  # defensive: never leak other types
            raise ProtocolError(f"invalid message ({type(exc).__name__})") from None

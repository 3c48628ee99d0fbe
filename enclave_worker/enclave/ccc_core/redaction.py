"""The one redaction rule of every log and trace path: metadata passes, content and secrets do not.

Why one function: a single careless ``span.set_attribute("body", data)`` or
``logger.info(..., extra={"plaintext": ...})`` would put ciphertext or, worse, a plaintext result
into a log or trace store the cloud operator can read. Every path judges fields with the same rule
in ``redact``: the Lambdas' Powertools logger (``ccc_common.lambda_observability``), the JSON-lines
logs of the parent and the enclave (``ccc_core.logs``), and OpenTelemetry span, metric and resource
attributes (``safe_attributes``, which is ``redact`` in refuse mode). Only what happens to a field
that fails the rule differs, and the caller chooses it:

* ``OnUnsafe.REFUSE`` (telemetry attributes, JSON-lines log fields): raise ``UnsafeAttributeError``,
  so the mistake is loud in tests instead of silent in production. These are metadata slots, so
  values must also be scalars, and strings short.
* ``OnUnsafe.MASK`` (the Powertools log record, which also carries the logger's own envelope:
  message, location, traceback): replace the field by ``REDACTED`` at any depth, so a log line is
  never lost, only its content.

The rule, on the words of a key (split at ``.``, ``_``, ``-`` and camelCase):
  * a word naming a secret (``secret``, ``password``, ``token``, ...) is never metadata;
  * a word naming content (``body``, ``plaintext``, ``image``, ``result``, ``cats``, ``ciphertext``,
    ``payload``, ...) is not metadata, unless a word names a handle of it (``result_key``,
    ``image.sha256``, ``ccc.job_id``) or its size (``image.bytes``, ``infer_ms``), and a size only
    when the value is a number;
  * raw ``bytes`` are never metadata, whatever the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal, overload

from ccc_core.errors import CoreError

REDACTED = "<redacted>"
# Words that name content rather than metadata.
CONTENT_WORDS = frozenset(
    {
        "body",
        "plaintext",
        "image",
        "pixels",
        "result",
        "cats",
        "detections",
        "ciphertext",
        "ciphertextblob",
        "payload",
        "data",
        "content",
    }
)
# Secrets are never metadata, whatever qualifies them ("secret_access_key" is still a secret).
SECRET_WORDS = frozenset(
    {"secret", "password", "passphrase", "token", "credentials", "credential", "authorization", "private"}
)
# Words that make a content word metadata: a handle of the content (an S3 key, a digest, an id, ...).
HANDLE_QUALIFIERS = frozenset({"key", "sha256", "status", "kind", "id"})
# Words that make a content word metadata when the value is a number: its size or a duration.
SIZE_QUALIFIERS = frozenset({"bytes", "size", "ms"})
MAX_STRING = 256
MAX_DEPTH = 12

AttributeValue = str | bool | int | float
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


class UnsafeAttributeError(CoreError, ValueError):
    """A field that could carry content (or, for an attribute, is not a short scalar) was refused."""


class OnUnsafe(StrEnum):
    """What ``redact`` does with a field that fails the rule."""

    REFUSE = "refuse"
    MASK = "mask"


def _words(key: str) -> list[str]:
    return [word for word in _SEPARATORS.split(_CAMEL.sub("_", key).lower()) if word]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _key_problem(key: object, value: object) -> str | None:
    """Why ``key`` (holding ``value``) may not be emitted, or None when it names metadata."""
    words = _words(str(key))
    if not words:
        return "empty attribute key"
    if any(word in SECRET_WORDS for word in words):
        return f"key {key!r} names a secret"
    if any(word in CONTENT_WORDS for word in words):
        if any(word in HANDLE_QUALIFIERS for word in words):
            return None
        if any(word in SIZE_QUALIFIERS for word in words) and _is_number(value):
            return None
        return f"key {key!r} names content, not metadata"
    return None


def _is_raw_bytes(value: object) -> bool:
    return isinstance(value, bytes | bytearray | memoryview)


def _refuse(fields: Mapping[str, object]) -> dict[str, AttributeValue]:
    clean: dict[str, AttributeValue] = {}
    for key, value in fields.items():
        problem = _key_problem(key, value)
        if problem is not None:
            raise UnsafeAttributeError(problem)
        if _is_raw_bytes(value):
            raise UnsafeAttributeError(f"attribute {key!r} is raw bytes; telemetry takes metadata only")
        if not isinstance(value, str | bool | int | float):
            raise UnsafeAttributeError(f"attribute {key!r} has type {type(value).__name__}; scalars only")
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise UnsafeAttributeError(f"attribute {key!r} is {len(value)} chars; metadata is short")
        clean[key] = value
    return clean


def _mask(value: object, depth: int) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"{REDACTED} {len(bytes(value))} bytes"
    if depth >= MAX_DEPTH:
        return REDACTED if isinstance(value, Mapping | list | tuple) else value
    if isinstance(value, Mapping):
        return {
            key: REDACTED if _key_problem(key, item) is not None else _mask(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_mask(item, depth + 1) for item in value]
    return value


@overload
def redact(value: Mapping[str, object], *, on_unsafe: Literal[OnUnsafe.REFUSE]) -> dict[str, AttributeValue]: ...


@overload
def redact(value: object, *, on_unsafe: Literal[OnUnsafe.MASK] = ...) -> Any: ...


def redact(value: object, *, on_unsafe: OnUnsafe = OnUnsafe.MASK) -> Any:
    """Apply the rule to ``value``: with MASK a copy with failing fields (at any depth) and all raw
    bytes replaced; with REFUSE the fields themselves (``value`` must be a mapping of short scalars),
    or ``UnsafeAttributeError`` naming the first field that fails."""
    if on_unsafe is OnUnsafe.REFUSE:
        if not isinstance(value, Mapping):
            raise UnsafeAttributeError(f"attributes must be a mapping, not {type(value).__name__}")
        return _refuse(value)
    return _mask(value, 0)


def safe_attributes(attributes: Mapping[str, object]) -> dict[str, AttributeValue]:
    """``redact`` in refuse mode: what OTel attributes and JSON-lines log fields pass through."""
    return redact(attributes, on_unsafe=OnUnsafe.REFUSE)

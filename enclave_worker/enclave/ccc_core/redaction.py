"""The gate every span/metric attribute passes: scalars only, no payload-shaped keys.

Why: a single careless `span.set_attribute("body", data)` would put ciphertext or, worse, a
plaintext result into a trace store that the cloud operator can read. Refusing bytes and
payload-named keys at one choke point makes that mistake loud in tests instead of silent in prod.
"""

from __future__ import annotations

from collections.abc import Mapping

# Keys that name content rather than metadata. Matching is on dot/underscore separated words.
FORBIDDEN_WORDS = frozenset(
    {"body", "plaintext", "image", "pixels", "result", "cats", "detections", "ciphertext", "payload"}
)
# Secrets are never metadata, whatever qualifies them ("secret_access_key" is still a secret).
SECRET_WORDS = frozenset({"secret", "password", "token", "credentials", "credential", "authorization"})
# Words that make a forbidden word metadata again (e.g. "image.bytes" is a size, "result.key" an S3 key).
METADATA_QUALIFIERS = frozenset({"bytes", "size", "key", "ms", "count_ms", "sha256", "status", "kind", "id"})
MAX_STRING = 256

AttributeValue = str | bool | int | float


class UnsafeAttributeError(ValueError):
    """An attribute that could carry content (or is not a scalar) was offered to telemetry."""


def _words(key: str) -> list[str]:
    return [w for w in key.lower().replace("-", "_").replace(".", "_").split("_") if w]


def check_key(key: str) -> None:
    words = _words(key)
    if not words:
        raise UnsafeAttributeError("empty attribute key")
    if any(w in SECRET_WORDS for w in words):
        raise UnsafeAttributeError(f"attribute key {key!r} names a secret")
    if any(w in FORBIDDEN_WORDS for w in words) and not any(w in METADATA_QUALIFIERS for w in words):
        raise UnsafeAttributeError(f"attribute key {key!r} names content, not metadata")


def safe_attributes(attributes: Mapping[str, object]) -> dict[str, AttributeValue]:
    """Validate and return attributes fit for telemetry; raise UnsafeAttributeError otherwise."""
    clean: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        check_key(key)
        if isinstance(value, bytes | bytearray | memoryview):
            raise UnsafeAttributeError(f"attribute {key!r} is raw bytes; telemetry takes metadata only")
        if not isinstance(value, str | bool | int | float):
            raise UnsafeAttributeError(f"attribute {key!r} has type {type(value).__name__}; scalars only")
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise UnsafeAttributeError(f"attribute {key!r} is {len(value)} chars; metadata is short")
        clean[key] = value
    return clean

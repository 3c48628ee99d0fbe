"""The canonical, unambiguous byte form of a KMS encryption context (the AAD of every ciphertext).

Why: an encryption context is authenticated by binding its bytes into the ciphertext. moto
serialises it as sorted key‖value with no lengths, so `{"ccc:job": "J", "ccc:kin": "dresult"}` and
`{"ccc:job": "J", "ccc:kind": "result"}` give the same bytes and authenticate the same ciphertext:
a caller allowed to make the first (it has no `ccc:kind`) obtained a ciphertext that decrypts under
the second. Here every key and value carries its length, so the encoding is injective: two
different contexts never produce the same bytes (property-tested).

Encoding (the ESDK's own AAD layout, with the pair count and lengths as big-endian uint16):
    count ‖ for each pair sorted by the UTF-8 bytes of its key: len(key) ‖ key ‖ len(value) ‖ value
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from ccc.local.errors import LocalStackError

# KMS: "The encryption context ... can contain up to 8192 characters" (keys and values together).
MAX_CONTEXT_CHARS = 8192


class EncryptionContextError(LocalStackError, ValueError):
    """An encryption context KMS would refuse (not string -> string, or too large)."""


def validate_context(context: object) -> dict[str, str]:
    """The context as a plain dict, or EncryptionContextError with KMS's reason."""
    if context is None:
        return {}
    if not isinstance(context, Mapping):
        raise EncryptionContextError("EncryptionContext must be a map of strings to strings")
    checked: dict[str, str] = {}
    total = 0
    for key, value in context.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise EncryptionContextError("EncryptionContext must map strings to strings")
        if not key:
            raise EncryptionContextError("EncryptionContext keys must not be empty")
        total += len(key) + len(value)
        checked[key] = value
    if total > MAX_CONTEXT_CHARS:
        raise EncryptionContextError(f"EncryptionContext exceeds {MAX_CONTEXT_CHARS} characters")
    return checked


def canonical_context(context: Mapping[str, str]) -> bytes:
    """Injective encoding of `context` (see the module docstring)."""
    pairs = sorted((key.encode("utf-8"), value.encode("utf-8")) for key, value in context.items())
    if len(pairs) > 0xFFFF:
        raise EncryptionContextError("EncryptionContext has too many pairs")
    out = [struct.pack(">H", len(pairs))]
    for key, value in pairs:
        if len(key) > 0xFFFF or len(value) > 0xFFFF:
            raise EncryptionContextError("EncryptionContext entry is too long")
        out += [struct.pack(">H", len(key)), key, struct.pack(">H", len(value)), value]
    return b"".join(out)

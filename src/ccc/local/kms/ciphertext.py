"""The gateway's ciphertext blobs: AES-256-GCM under a key's own material, context bound as AAD.

Why our own format: the gateway holds the key material (moto's KMS holds none, so it cannot be
used to go around the key policy), and KMS's blob format is private to AWS. What matters is what
KMS guarantees and this format keeps: a blob names the key that made it (Decrypt needs no KeyId),
it authenticates that key id, the key's material version and the exact encryption context
(`context_binding.canonical_context`), and any change to any byte makes Decrypt fail.

Layout: version (1 byte, 0x01) ‖ key id (16 bytes, the key UUID) ‖ material version (uint32 BE)
‖ nonce (12 bytes) ‖ AES-GCM ciphertext ‖ tag (16 bytes). AAD = the 21 header bytes ‖ canonical context.
"""

from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ccc.local.errors import LocalStackError
from ccc.local.kms.context_binding import canonical_context

VERSION = 1
_HEADER = struct.Struct(">B16sI")
NONCE_BYTES = 12
TAG_BYTES = 16
MATERIAL_BYTES = 32
MIN_BLOB_BYTES = _HEADER.size + NONCE_BYTES + TAG_BYTES


class InvalidCiphertext(LocalStackError, ValueError):
    """The blob is not one of ours, or it does not authenticate (wrong key, context or bytes)."""


@dataclass(frozen=True)
class BlobHeader:
    key_id: str  # the key's UUID (KMS KeyId)
    material_version: int


def read_header(blob: bytes) -> BlobHeader:
    """Which key (and material version) a blob claims; authenticated only by `open_blob`."""
    if len(blob) < MIN_BLOB_BYTES:
        raise InvalidCiphertext("ciphertext blob is too short")
    version, raw_id, material_version = _HEADER.unpack_from(blob)
    if version != VERSION:
        raise InvalidCiphertext("ciphertext blob has an unknown version")
    return BlobHeader(key_id=str(uuid.UUID(bytes=raw_id)), material_version=material_version)


def seal(material: bytes, header: BlobHeader, plaintext: bytes, context: Mapping[str, str]) -> bytes:
    if len(material) != MATERIAL_BYTES:
        raise ValueError("key material must be 32 bytes")
    head = _HEADER.pack(VERSION, uuid.UUID(header.key_id).bytes, header.material_version)
    nonce = os.urandom(NONCE_BYTES)
    return head + nonce + AESGCM(material).encrypt(nonce, plaintext, head + canonical_context(context))


def open_blob(material: bytes, blob: bytes, context: Mapping[str, str]) -> bytes:
    """The plaintext, or InvalidCiphertext (tampered blob, other key, other context)."""
    read_header(blob)
    head = blob[: _HEADER.size]
    nonce = blob[_HEADER.size : _HEADER.size + NONCE_BYTES]
    try:
        return AESGCM(material).decrypt(nonce, blob[_HEADER.size + NONCE_BYTES :], head + canonical_context(context))
    except InvalidTag:
        raise InvalidCiphertext("the ciphertext does not authenticate under this key and encryption context") from None

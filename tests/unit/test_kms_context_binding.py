"""Encryption contexts are bound canonically: two different contexts never authenticate one ciphertext."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.kms.utils import _serialize_encryption_context as moto_serialisation

from ccc.local.kms.ciphertext import BlobHeader, InvalidCiphertext, open_blob, read_header, seal
from ccc.local.kms.context_binding import EncryptionContextError, canonical_context, validate_context

KEY_ID = "0b5c2f39-1f51-4a1e-9b0e-6d1f3f0a9c11"
# Short alphabets make collisions of a naive encoding likely, so the property is really exercised.
_text = st.text(alphabet="ab:-\x00é", max_size=6)
contexts = st.dictionaries(st.text(alphabet="ab:-\x00é", min_size=1, max_size=6), _text, max_size=4)

J = "0123456789abcdef0123456789abcdef"
# What a tenant may make (an input: no ccc:kind) ... and what only the enclave may make (a result).
SMUGGLED = {"ccc:job": J, "ccc:kin": "dresult", "ccc:tenant": "tenant-b"}
RESULT = {"ccc:job": J, "ccc:kind": "result", "ccc:tenant": "tenant-b"}


@settings(max_examples=500, deadline=None)
@given(contexts, contexts)
def test_the_encoding_is_injective(first: dict[str, str], second: dict[str, str]) -> None:
    assert (canonical_context(first) == canonical_context(second)) is (first == second)


@settings(max_examples=200, deadline=None)
@given(contexts, contexts, st.binary(max_size=64))
def test_two_different_contexts_never_authenticate_the_same_ciphertext(
    first: dict[str, str], second: dict[str, str], plaintext: bytes
) -> None:
    material = os.urandom(32)
    blob = seal(material, BlobHeader(KEY_ID, 0), plaintext, first)
    assert open_blob(material, blob, first) == plaintext
    if first != second:
        with pytest.raises(InvalidCiphertext):
            open_blob(material, blob, second)


def test_the_smuggled_result_context_that_fooled_moto_is_refused() -> None:
    """moto's binding (sorted key‖value, no lengths) makes these two contexts the same bytes: a
    tenant allowed to make only inputs got a ciphertext that authenticated as a result."""
    assert moto_serialisation(SMUGGLED) == moto_serialisation(RESULT)  # the flaw this module closes
    assert canonical_context(SMUGGLED) != canonical_context(RESULT)
    material = os.urandom(32)
    blob = seal(material, BlobHeader(KEY_ID, 0), b"data key", SMUGGLED)
    with pytest.raises(InvalidCiphertext):
        open_blob(material, blob, RESULT)


def test_every_byte_of_a_blob_is_authenticated() -> None:
    material = os.urandom(32)
    blob = seal(material, BlobHeader(KEY_ID, 3), b"secret", {"k": "v"})
    assert read_header(blob) == BlobHeader(KEY_ID, 3)
    for index in range(len(blob)):
        damaged = bytearray(blob)
        damaged[index] ^= 1
        with pytest.raises(InvalidCiphertext):
            open_blob(material, bytes(damaged), {"k": "v"})
    with pytest.raises(InvalidCiphertext):
        open_blob(os.urandom(32), blob, {"k": "v"})  # another key's material


@pytest.mark.parametrize("bad", [{"k": 1}, {1: "v"}, {"": "v"}, ["k"], {"k": "v" * 8192}])
def test_contexts_kms_would_refuse(bad: object) -> None:
    with pytest.raises(EncryptionContextError):
        validate_context(bad)


def test_no_context_and_an_empty_context_are_the_same() -> None:
    assert validate_context(None) == validate_context({}) == {}
    assert canonical_context({}) == b"\x00\x00"

"""The result binding (`ccc_core.result_binding`): the attestation user_data naming input and result."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc_core.errors import CoreError
from ccc_core.result_binding import (
    RESULT_BINDING_BYTES,
    RESULT_BINDING_TAG,
    ResultBinding,
    ResultBindingError,
    parse_result_binding,
    result_user_data,
)


@given(st.binary(max_size=256), st.binary(max_size=256))
def test_the_user_data_parses_back_to_both_digests(input_ciphertext: bytes, result_ciphertext: bytes) -> None:
    user_data = result_user_data(input_ciphertext, result_ciphertext)
    assert len(user_data) == RESULT_BINDING_BYTES == 85 and user_data.startswith(RESULT_BINDING_TAG)
    binding = parse_result_binding(user_data)
    assert binding.input_sha256 == hashlib.sha256(input_ciphertext).digest()
    assert binding.input_sha256_hex == hashlib.sha256(input_ciphertext).hexdigest()
    assert binding.binds_result(result_ciphertext)
    assert not binding.binds_result(result_ciphertext + b"\x00")


pairs = st.tuples(st.binary(max_size=64), st.binary(max_size=64))


@given(pairs, pairs)
def test_distinct_input_result_pairs_never_share_user_data(first: tuple[bytes, bytes],
                                                            second: tuple[bytes, bytes]) -> None:
    # Fixed-length fields: swapping input and result, or moving bytes between them, changes what is signed.
    assert (result_user_data(*first) == result_user_data(*second)) is (first == second)
    a, b = first
    if a != b:
        assert result_user_data(a, b) != result_user_data(b, a)


@given(st.binary(max_size=200))
def test_anything_else_is_a_binding_error_never_another_exception(user_data: bytes) -> None:
    well_formed = len(user_data) == RESULT_BINDING_BYTES and user_data.startswith(RESULT_BINDING_TAG)
    try:
        parse_result_binding(user_data)
    except ResultBindingError as exc:
        assert isinstance(exc, CoreError) and not well_formed
    else:
        assert well_formed


@pytest.mark.parametrize(
    "user_data",
    [None, b"", hashlib.sha256(b"result").digest(), RESULT_BINDING_TAG,
     RESULT_BINDING_TAG.replace(b"/1", b"/2") + bytes(64), RESULT_BINDING_TAG + bytes(65)],
)
def test_named_non_bindings_are_refused(user_data: bytes | None) -> None:
    with pytest.raises(ResultBindingError):
        parse_result_binding(user_data)


def test_digests_must_be_32_bytes() -> None:
    with pytest.raises(ResultBindingError):
        ResultBinding(input_sha256=b"short", result_sha256=bytes(32))

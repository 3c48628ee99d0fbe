"""The client's provenance check: chain, PCRs, binding to the result and to the uploaded input, signing time."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc.client.errors import VerificationError
from ccc.client.provenance import (
    ATTESTATION_INVALID,
    BINDING_UNKNOWN,
    INPUT_MISMATCH,
    PCR_MISMATCH,
    RESULT_MISMATCH,
    check_result_document,
    verify_result_attestation,
)
from ccc_core.result_binding import RESULT_BINDING_TAG, result_user_data
from ccc_core.result_document import ModelInfo, ResultDocument
from ccc_enclave.nsm.simulated import LocalNitroCA, SimulatedNsm

PCRS = {0: bytes.fromhex("11" * 48), 1: bytes.fromhex("22" * 48), 2: bytes.fromhex("33" * 48)}
CIPHERTEXT = b"an ESDK result message"
INPUT = b"the ESDK input message the tenant uploaded"
INPUT_SHA256 = hashlib.sha256(INPUT).hexdigest()
SIGNED_AT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
LATER = SIGNED_AT + timedelta(minutes=1)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return LocalNitroCA.create(tmp_path_factory.mktemp("ca"), now=SIGNED_AT - timedelta(days=1))


def attest(ca, *, at=SIGNED_AT, pcrs=PCRS, ciphertext=CIPHERTEXT, source=INPUT, user_data=None) -> bytes:
    nsm = SimulatedNsm(ca, pcrs, clock=lambda: at)
    return nsm.attest(user_data=user_data if user_data is not None else result_user_data(source, ciphertext))


def reason_of(call) -> str:
    with pytest.raises(VerificationError) as info:
        call()
    return info.value.reason


def test_a_fresh_result_verifies_and_names_its_input(ca):
    verified = verify_result_attestation(
        attest(ca),
        CIPHERTEXT,
        root_der=ca.root_der,
        expected_pcrs=PCRS,
        expected_input_sha256=INPUT_SHA256,
        now=SIGNED_AT + timedelta(seconds=5),
    )
    assert verified.pcrs[0] == PCRS[0]
    assert verified.input_sha256 == INPUT_SHA256
    assert verified.result_sha256 == hashlib.sha256(CIPHERTEXT).hexdigest()


def test_without_an_upload_record_the_attested_input_is_still_reported(ca):
    verified = verify_result_attestation(attest(ca), CIPHERTEXT, root_der=ca.root_der, expected_pcrs=PCRS, now=LATER)
    assert verified.input_sha256 == INPUT_SHA256


def test_a_result_computed_from_another_ciphertext_is_an_input_mismatch(ca):
    # Someone else made a ciphertext under the tenant's context; the enclave counted it genuinely.
    document = attest(ca, source=b"another principal's ciphertext, same encryption context")
    reason = reason_of(
        lambda: verify_result_attestation(
            document,
            CIPHERTEXT,
            root_der=ca.root_der,
            expected_pcrs=PCRS,
            expected_input_sha256=INPUT_SHA256,
            now=LATER,
        )
    )
    assert reason == INPUT_MISMATCH


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=70))
def test_a_damaged_recorded_digest_never_verifies(ca, recorded):
    if recorded == INPUT_SHA256:
        return
    reason = reason_of(
        lambda: verify_result_attestation(
            attest(ca), CIPHERTEXT, root_der=ca.root_der, expected_pcrs=PCRS, expected_input_sha256=recorded, now=LATER
        )
    )
    assert reason == INPUT_MISMATCH


def test_a_result_still_verifies_after_its_leaf_certificate_expired(ca):
    # Leaf certificates live hours; a result fetched days later must still prove where it came from.
    verify_result_attestation(
        attest(ca),
        CIPHERTEXT,
        root_der=ca.root_der,
        expected_pcrs=PCRS,
        expected_input_sha256=INPUT_SHA256,
        now=SIGNED_AT + timedelta(days=3),
    )


def test_a_document_signed_in_the_future_is_refused(ca):
    with pytest.raises(VerificationError, match="future") as info:
        verify_result_attestation(
            attest(ca, at=SIGNED_AT + timedelta(hours=1)),
            CIPHERTEXT,
            root_der=ca.root_der,
            expected_pcrs=PCRS,
            now=SIGNED_AT,
        )
    assert info.value.reason == ATTESTATION_INVALID


def test_another_ciphertext_another_enclave_or_another_root_is_refused(ca, tmp_path):
    document = attest(ca)
    assert (
        reason_of(
            lambda: verify_result_attestation(
                document, b"another result", root_der=ca.root_der, expected_pcrs=PCRS, now=LATER
            )
        )
        == RESULT_MISMATCH
    )
    other_pcrs = {**PCRS, 0: bytes.fromhex("44" * 48)}
    with pytest.raises(VerificationError, match="PCR0") as info:
        verify_result_attestation(document, CIPHERTEXT, root_der=ca.root_der, expected_pcrs=other_pcrs, now=LATER)
    assert info.value.reason == PCR_MISMATCH
    other_ca = LocalNitroCA.create(tmp_path / "other", now=SIGNED_AT - timedelta(days=1))
    assert (
        reason_of(
            lambda: verify_result_attestation(
                document, CIPHERTEXT, root_der=other_ca.root_der, expected_pcrs=PCRS, now=LATER
            )
        )
        == ATTESTATION_INVALID
    )
    # the AWS root (None) never accepts a local document
    assert (
        reason_of(lambda: verify_result_attestation(document, CIPHERTEXT, root_der=None, expected_pcrs=PCRS, now=LATER))
        == ATTESTATION_INVALID
    )


@pytest.mark.parametrize(
    "user_data",
    [
        hashlib.sha256(CIPHERTEXT).digest(),  # what an enclave before the input binding signed
        RESULT_BINDING_TAG + hashlib.sha256(INPUT).digest(),  # truncated
        b"ccc-result-binding/9\x00" + hashlib.sha256(INPUT).digest() + hashlib.sha256(CIPHERTEXT).digest(),
        result_user_data(INPUT, CIPHERTEXT) + b"\x00",
    ],
)
def test_user_data_that_is_not_a_known_result_binding_is_refused(ca, user_data):
    reason = reason_of(
        lambda: verify_result_attestation(
            attest(ca, user_data=user_data), CIPHERTEXT, root_der=ca.root_der, expected_pcrs=PCRS, now=LATER
        )
    )
    assert reason == BINDING_UNKNOWN


def test_a_document_without_user_data_is_refused(ca):
    document = SimulatedNsm(ca, PCRS, clock=lambda: SIGNED_AT).attest()
    assert (
        reason_of(
            lambda: verify_result_attestation(document, CIPHERTEXT, root_der=ca.root_der, expected_pcrs=PCRS, now=LATER)
        )
        == BINDING_UNKNOWN
    )


def test_the_decrypted_document_must_name_the_attested_input(ca):
    verified = verify_result_attestation(attest(ca), CIPHERTEXT, root_der=ca.root_der, expected_pcrs=PCRS, now=LATER)

    def document(input_sha256: str) -> ResultDocument:
        return ResultDocument(
            job_id="0123456789abcdef0123456789abcdef",
            tenant="tenant-a",
            input_sha256=input_sha256,
            cats=0,
            detections=(),
            detections_truncated=False,
            model=ModelInfo(name="m", sha256="ab" * 32),
        )

    check_result_document(verified, document(INPUT_SHA256))
    assert reason_of(lambda: check_result_document(verified, document("00" * 32))) == INPUT_MISMATCH


def test_garbage_is_a_verification_error_not_a_crash(ca):
    assert (
        reason_of(
            lambda: verify_result_attestation(b"\x00garbage", CIPHERTEXT, root_der=ca.root_der, expected_pcrs=PCRS)
        )
        == ATTESTATION_INVALID
    )

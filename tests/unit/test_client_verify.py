"""The client's provenance check: chain, PCRs, binding to the ciphertext, and signing time."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from ccc.client.errors import VerificationError
from ccc.client.provenance import verify_result_attestation
from ccc_enclave.nsm.simulated import LocalNitroCA, SimulatedNsm

PCRS = {0: bytes.fromhex("11" * 48), 1: bytes.fromhex("22" * 48), 2: bytes.fromhex("33" * 48)}
CIPHERTEXT = b"an ESDK result message"
SIGNED_AT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return LocalNitroCA.create(tmp_path_factory.mktemp("ca"), now=SIGNED_AT - timedelta(days=1))


def attest(ca, *, at=SIGNED_AT, pcrs=PCRS, ciphertext=CIPHERTEXT) -> bytes:
    nsm = SimulatedNsm(ca, pcrs, clock=lambda: at)
    return nsm.attest(user_data=hashlib.sha256(ciphertext).digest())


def test_a_fresh_result_verifies(ca):
    doc = verify_result_attestation(attest(ca), CIPHERTEXT, root_der=ca.root_der, expected_pcrs=PCRS,
                                    now=SIGNED_AT + timedelta(seconds=5))
    assert doc.pcrs[0] == PCRS[0]


def test_a_result_still_verifies_after_its_leaf_certificate_expired(ca):
    # Leaf certificates live hours; a result fetched days later must still prove where it came from.
    verify_result_attestation(attest(ca), CIPHERTEXT, root_der=ca.root_der, expected_pcrs=PCRS,
                              now=SIGNED_AT + timedelta(days=3))


def test_a_document_signed_in_the_future_is_refused(ca):
    with pytest.raises(VerificationError, match="future"):
        verify_result_attestation(attest(ca, at=SIGNED_AT + timedelta(hours=1)), CIPHERTEXT, root_der=ca.root_der,
                                  expected_pcrs=PCRS, now=SIGNED_AT)


def test_another_ciphertext_another_enclave_or_another_root_is_refused(ca, tmp_path):
    document = attest(ca)
    later = SIGNED_AT + timedelta(minutes=1)
    with pytest.raises(VerificationError, match="user_data"):
        verify_result_attestation(document, b"another result", root_der=ca.root_der, expected_pcrs=PCRS, now=later)
    other_pcrs = {**PCRS, 0: bytes.fromhex("44" * 48)}
    with pytest.raises(VerificationError, match="PCR0"):
        verify_result_attestation(document, CIPHERTEXT, root_der=ca.root_der, expected_pcrs=other_pcrs, now=later)
    other_ca = LocalNitroCA.create(tmp_path / "other", now=SIGNED_AT - timedelta(days=1))
    with pytest.raises(VerificationError):
        verify_result_attestation(document, CIPHERTEXT, root_der=other_ca.root_der, expected_pcrs=PCRS, now=later)
    with pytest.raises(VerificationError):  # the AWS root (None) never accepts a local document
        verify_result_attestation(document, CIPHERTEXT, root_der=None, expected_pcrs=PCRS, now=later)


def test_garbage_is_a_verification_error_not_a_crash(ca):
    with pytest.raises(VerificationError):
        verify_result_attestation(b"\x00garbage", CIPHERTEXT, root_der=ca.root_der, expected_pcrs=PCRS)

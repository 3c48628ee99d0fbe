"""AttestedKms and EnclaveKeyPair: Recipient on every call, wrapped answers only."""

from __future__ import annotations

import os
from typing import Any

import pytest

from ccc.attestation import AttestationPolicy, verify_document
from ccc_enclave.kms.cms import build_enveloped_data
from ccc_enclave.kms.recipient import AttestedKms, AttestedKmsError, EnclaveKeyPair
from ccc_enclave.nsm.simulated import LocalNitroCA, SimulatedNsm

KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/11111111-2222-3333-4444-555555555555"


class FakeKms:
    """In-memory KMS that answers like KMS does for Recipient requests, and records requests."""

    def __init__(self, root_der: bytes, *, mode: str = "recipient") -> None:
        self.root_der = root_der
        self.mode = mode
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.plaintext = os.urandom(32)

    def _answer(self, op: str, params: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        self.requests.append((op, params))
        answer: dict[str, Any] = {"KeyId": KEY_ARN, **extra}
        if self.mode == "plaintext":
            answer["Plaintext"] = self.plaintext
            return answer
        doc = verify_document(
            params["Recipient"]["AttestationDocument"],
            root_der=self.root_der,
            policy=AttestationPolicy(allow_debug=True),
        )
        assert doc.public_key is not None
        target = doc.public_key if self.mode != "other-key" else EnclaveKeyPair.generate().public_key_der
        answer["CiphertextForRecipient"] = build_enveloped_data(self.plaintext, target)
        if self.mode == "garbage":
            answer["CiphertextForRecipient"] = b"\x30\x80garbage"
        if self.mode == "both":
            answer["Plaintext"] = self.plaintext
        return answer

    def decrypt(self, **params: Any) -> dict[str, Any]:
        return self._answer("decrypt", params, {})

    def generate_data_key(self, **params: Any) -> dict[str, Any]:
        return self._answer("generate_data_key", params, {"CiphertextBlob": b"blob"})

    def encrypt(self, **params: Any) -> dict[str, Any]:
        raise AssertionError("not used")


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalNitroCA:
    return LocalNitroCA.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def keypair() -> EnclaveKeyPair:
    return EnclaveKeyPair.generate()


def _kms(ca: LocalNitroCA, keypair: EnclaveKeyPair, mode: str = "recipient") -> tuple[AttestedKms, FakeKms]:
    fake = FakeKms(ca.root_der, mode=mode)
    nsm = SimulatedNsm(ca, {0: b"\x01" * 48, 1: b"\x02" * 48, 2: b"\x03" * 48})
    return AttestedKms(fake, nsm, keypair), fake


def test_decrypt_sends_recipient_and_context_and_unwraps(ca: LocalNitroCA, keypair: EnclaveKeyPair) -> None:
    kms, fake = _kms(ca, keypair)
    context = {"ccc:tenant": "tenant-a", "ccc:job": "0" * 32, "aws-crypto-public-key": "AxyZ"}
    assert kms.decrypt(b"blob", context, key_id=KEY_ARN) == fake.plaintext
    op, params = fake.requests[0]
    assert op == "decrypt"
    assert params["EncryptionContext"] == context
    assert params["KeyId"] == KEY_ARN
    assert params["Recipient"]["KeyEncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    doc = verify_document(params["Recipient"]["AttestationDocument"], root_der=ca.root_der)
    assert doc.public_key == keypair.public_key_der


def test_generate_data_key_returns_plaintext_and_blob(ca: LocalNitroCA, keypair: EnclaveKeyPair) -> None:
    kms, fake = _kms(ca, keypair)
    plaintext, blob = kms.generate_data_key(KEY_ARN, {"ccc:kind": "result"}, number_of_bytes=32)
    assert (plaintext, blob) == (fake.plaintext, b"blob")
    _, params = fake.requests[0]
    assert params["NumberOfBytes"] == 32 and "Recipient" in params


def test_each_call_carries_a_fresh_document(ca: LocalNitroCA, keypair: EnclaveKeyPair) -> None:
    kms, fake = _kms(ca, keypair)
    kms.decrypt(b"blob", {})
    kms.decrypt(b"blob", {})
    docs = [p["Recipient"]["AttestationDocument"] for _, p in fake.requests]
    assert docs[0] != docs[1]


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("plaintext", "instead of CiphertextForRecipient"),
        ("both", "instead of CiphertextForRecipient"),
        ("other-key", "does not open"),
        ("garbage", "does not open"),
    ],
)
def test_unacceptable_answers_are_refused(ca: LocalNitroCA, keypair: EnclaveKeyPair, mode: str, reason: str) -> None:
    kms, _ = _kms(ca, keypair, mode)
    with pytest.raises(AttestedKmsError, match=reason):
        kms.decrypt(b"blob", {})
    with pytest.raises(AttestedKmsError, match=reason):
        kms.generate_data_key(KEY_ARN, {})


def test_wrong_data_key_length_is_refused(ca: LocalNitroCA, keypair: EnclaveKeyPair) -> None:
    kms, _ = _kms(ca, keypair)
    with pytest.raises(AttestedKmsError, match="16 requested"):
        kms.generate_data_key(KEY_ARN, {}, number_of_bytes=16)


def test_bad_arguments_are_refused_before_any_call(ca: LocalNitroCA, keypair: EnclaveKeyPair) -> None:
    kms, fake = _kms(ca, keypair)
    with pytest.raises(AttestedKmsError):
        kms.decrypt(b"", {})
    with pytest.raises(AttestedKmsError):
        kms.decrypt(b"x", {"k": 1})  # type: ignore[dict-item]
    for bad in (0, 1025, True, "32"):
        with pytest.raises(AttestedKmsError):
            kms.generate_data_key(KEY_ARN, {}, number_of_bytes=bad)  # type: ignore[arg-type]
    assert fake.requests == []


def test_service_errors_keep_their_code(ca: LocalNitroCA, keypair: EnclaveKeyPair) -> None:
    from botocore.exceptions import ClientError

    class Denying(FakeKms):
        def decrypt(self, **params: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Decrypt")

    nsm = SimulatedNsm(ca, {0: b"\x01" * 48})
    kms = AttestedKms(Denying(ca.root_der), nsm, keypair)
    with pytest.raises(AttestedKmsError) as info:
        kms.decrypt(b"blob", {})
    assert info.value.code == "AccessDeniedException"


def test_keypair_is_rsa_2048_and_does_not_print_secrets(keypair: EnclaveKeyPair) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    public = load_der_public_key(keypair.public_key_der)
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    assert "PRIVATE" not in repr(keypair)
    with pytest.raises(ValueError):
        EnclaveKeyPair(rsa.generate_private_key(public_exponent=65537, key_size=1024))

"""The attested ESDK provider against moto KMS: interoperable with the standard provider both ways."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aws_encryption_sdk
import boto3
import botocore.session
import pytest
from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError, InvalidKeyIdError
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy
from moto import mock_aws

from ccc.local.kms.emulation import RecipientEmulatingKmsClient, verified_public_key
from ccc_enclave.kms.esdk_keys import AttestedKmsMasterKeyProvider, attested_provider
from ccc_enclave.kms.recipient import AttestedKms, AttestedKmsError, EnclaveKeyPair
from ccc_enclave.nsm.simulated import LocalNitroCA, SimulatedNsm

REGION = "eu-west-1"
INPUT_CONTEXT = {"ccc:job": "a" * 32, "ccc:tenant": "tenant-a"}
RESULT_CONTEXT = {**INPUT_CONTEXT, "ccc:kind": "result"}


class RecordingClient:
    """Records every call's parameters, then forwards."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(**params: Any) -> Any:
            self.calls.append((name, dict(params)))
            return method(**params)

        return call


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[dict[str, Any]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        kms = boto3.client("kms", region_name=REGION)
        key_arn = kms.create_key(Description="ccc data key")["KeyMetadata"]["Arn"]
        ca = LocalNitroCA.create(tmp_path / "ca")
        nsm = SimulatedNsm(ca, {0: b"\x0a" * 48, 1: b"\x0b" * 48, 2: b"\x0c" * 48})
        recording = RecordingClient(kms)
        emulating = RecipientEmulatingKmsClient(recording, verified_public_key(ca.root_der))
        keypair = EnclaveKeyPair.generate()
        attested = AttestedKms(emulating, nsm, keypair)
        yield {
            "kms": kms,
            "key_arn": key_arn,
            "attested": attested,
            "recording": recording,
            "emulating": emulating,
            "nsm": nsm,
        }


def _client() -> aws_encryption_sdk.EncryptionSDKClient:
    return aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)


def _standard_provider(key_arn: str) -> aws_encryption_sdk.StrictAwsKmsMasterKeyProvider:
    return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[key_arn], botocore_session=botocore.session.get_session()
    )


@pytest.mark.parametrize(
    "algorithm",
    [
        Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,  # signed: adds aws-crypto-public-key
        Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    ],
)
def test_tenant_to_enclave_to_tenant_round_trip(env: dict[str, Any], algorithm: Algorithm) -> None:
    client = _client()
    image = b"\x89PNG fake image bytes" * 100
    ciphertext, _ = client.encrypt(
        source=image,
        key_provider=_standard_provider(env["key_arn"]),
        encryption_context=INPUT_CONTEXT,
        algorithm=algorithm,
    )

    enclave_provider = attested_provider(env["attested"], [env["key_arn"]])
    plaintext, header = client.decrypt(source=ciphertext, key_provider=enclave_provider)
    assert plaintext == image
    decrypts = [p for op, p in env["recording"].calls if op == "decrypt"]
    assert len(decrypts) == 1
    # The FULL message context went to KMS (moto would refuse a partial one anyway).
    assert decrypts[0]["EncryptionContext"] == header.encryption_context
    if algorithm.is_signing():
        assert "aws-crypto-public-key" in decrypts[0]["EncryptionContext"]
    assert env["emulating"].recipient_calls == 1

    result = b'{"cats": 3}'
    result_ct, _ = client.encrypt(
        source=result, key_provider=enclave_provider, encryption_context=RESULT_CONTEXT, algorithm=algorithm
    )
    generates = [p for op, p in env["recording"].calls if op == "generate_data_key"]
    assert len(generates) == 1 and generates[0]["KeyId"] == env["key_arn"]
    assert env["emulating"].recipient_calls == 2

    back, result_header = client.decrypt(source=result_ct, key_provider=_standard_provider(env["key_arn"]))
    assert back == result
    for key, value in RESULT_CONTEXT.items():
        assert result_header.encryption_context[key] == value
    edks = list(result_header.encrypted_data_keys)
    assert [(e.key_provider.provider_id, e.key_provider.key_info) for e in edks] == [
        ("aws-kms", env["key_arn"].encode())
    ]


def test_a_kms_answer_with_plaintext_is_refused(env: dict[str, Any]) -> None:
    client = _client()
    ciphertext, _ = client.encrypt(
        source=b"secret", key_provider=_standard_provider(env["key_arn"]), encryption_context=INPUT_CONTEXT
    )
    # moto without the Recipient emulation answers Plaintext, as a misconfigured proxy would.
    downgraded = AttestedKms(env["kms"], env["nsm"], EnclaveKeyPair.generate())
    with pytest.raises(AWSEncryptionSDKClientError):
        client.decrypt(source=ciphertext, key_provider=attested_provider(downgraded, [env["key_arn"]]))
    with pytest.raises(AWSEncryptionSDKClientError):
        client.encrypt(source=b"r", key_provider=attested_provider(downgraded, [env["key_arn"]]))
    with pytest.raises(AttestedKmsError, match="instead of CiphertextForRecipient"):
        downgraded.generate_data_key(env["key_arn"], RESULT_CONTEXT)


def test_messages_under_another_key_are_not_attempted(env: dict[str, Any]) -> None:
    client = _client()
    other_arn = env["kms"].create_key()["KeyMetadata"]["Arn"]
    ciphertext, _ = client.encrypt(
        source=b"secret", key_provider=_standard_provider(other_arn), encryption_context=INPUT_CONTEXT
    )
    before = len(env["recording"].calls)
    with pytest.raises(AWSEncryptionSDKClientError):
        client.decrypt(source=ciphertext, key_provider=attested_provider(env["attested"], [env["key_arn"]]))
    assert len(env["recording"].calls) == before


def test_a_tampered_context_is_refused(env: dict[str, Any]) -> None:
    client = _client()
    ciphertext, _ = client.encrypt(
        source=b"secret",
        key_provider=_standard_provider(env["key_arn"]),
        encryption_context=INPUT_CONTEXT,
        algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    )
    tampered = ciphertext.replace(b"tenant-a", b"tenant-b")
    assert tampered != ciphertext
    with pytest.raises(AWSEncryptionSDKClientError):
        client.decrypt(source=tampered, key_provider=attested_provider(env["attested"], [env["key_arn"]]))


def test_provider_requires_key_arns(env: dict[str, Any]) -> None:
    with pytest.raises(InvalidKeyIdError):
        attested_provider(env["attested"], ["alias/ccc-local-data"])
    with pytest.raises(InvalidKeyIdError):
        attested_provider(env["attested"], [])
    with pytest.raises(InvalidKeyIdError):
        AttestedKmsMasterKeyProvider(attested_kms=env["attested"], key_ids=("not-an-arn",))

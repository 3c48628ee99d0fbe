"""The local attested-KMS gateway in front of a real moto server, driven by real boto3 clients."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aws_encryption_sdk
import boto3
import botocore.session
import cbor2
import pytest
from aws_encryption_sdk.identifiers import CommitmentPolicy
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from ccc.local.iam_users import LocalIdentity, default_identities
from ccc.local.kms.gateway import GatewayConfig, KmsGateway
from ccc.local.kms.key_store import KeyStore
from ccc_common.domain.key_policy import KeyPolicySpec, build_key_policy
from ccc_enclave.kms.cms import CmsError, parse_enveloped_data
from ccc_enclave.kms.esdk_keys import attested_provider
from ccc_enclave.kms.recipient import AttestedKms, AttestedKmsError, EnclaveKeyPair
from ccc_enclave.nsm.simulated import LocalNitroCA, SimulatedNsm

ACCOUNT = "111122223333"
REGION = "eu-west-1"
PCRS = {0: bytes.fromhex("a1" * 48), 1: bytes.fromhex("b2" * 48), 2: bytes.fromhex("c3" * 48)}
JOB = "0123456789abcdef0123456789abcdef"
INPUT_A = {"ccc:job": JOB, "ccc:tenant": "tenant-a"}
RESULT_A = {**INPUT_A, "ccc:kind": "result"}


@dataclass
class Stack:
    gateway: KmsGateway
    identities: dict[str, LocalIdentity]
    ca: LocalNitroCA
    key_arn: str
    other_key_arn: str
    moto_url: str
    policy: dict[str, Any]
    store_path: Path

    def client(self, name: str, **overrides: str) -> Any:
        identity = self.identities[name]
        return boto3.client(
            "kms",
            endpoint_url=self.gateway.url,
            region_name=REGION,
            aws_access_key_id=overrides.get("access_key_id", identity.access_key_id),
            aws_secret_access_key=overrides.get("secret", identity.secret_access_key),
            config=Config(retries={"max_attempts": 1}),
        )

    def nsm(self, pcrs: dict[int, bytes] = PCRS, ca: LocalNitroCA | None = None, **kwargs: Any) -> SimulatedNsm:
        return SimulatedNsm(ca or self.ca, pcrs, **kwargs)


def _spec(identities: dict[str, LocalIdentity]) -> KeyPolicySpec:
    return KeyPolicySpec(
        account_id=ACCOUNT,
        admin_principals=(identities["admin"].principal_arn,),
        tenant_principals={t: (identities[t].principal_arn,) for t in ("tenant-a", "tenant-b")},
        parent_role_arns=(identities["parent"].principal_arn,),
        pcrs={i: v.hex() for i, v in PCRS.items()},
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert "MOTO_ACCOUNT_ID" not in os.environ
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    identities = default_identities(ACCOUNT)
    # Created an hour ago so that documents can be back-dated (stale-document test).
    ca = LocalNitroCA.create(tmp_path_factory.mktemp("ca"), now=datetime.now(UTC) - timedelta(hours=1))
    store_path = tmp_path_factory.mktemp("kms") / "keys.json"
    gateway = KmsGateway(identities, ca.root_der, store=KeyStore(store_path)).start()
    try:
        policy = build_key_policy(_spec(identities))
        admin = boto3.client(
            "kms",
            endpoint_url=gateway.url,
            region_name=REGION,
            aws_access_key_id=identities["admin"].access_key_id,
            aws_secret_access_key=identities["admin"].secret_access_key,
        )
        key_arn = admin.create_key(Policy=json.dumps(policy), Description="ccc data key")["KeyMetadata"]["Arn"]
        other = admin.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
        assert f":{ACCOUNT}:" in key_arn
        yield Stack(gateway, identities, ca, key_arn, other, moto_url, policy, store_path)
    finally:
        gateway.stop()
        moto.stop()


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _tenant_input(stack: Stack, plaintext: bytes = b"image bytes", context: dict | None = None) -> bytes:
    blob: bytes = stack.client("tenant-a").encrypt(
        KeyId=stack.key_arn, Plaintext=plaintext, EncryptionContext=context or INPUT_A
    )["CiphertextBlob"]
    return blob


def _recipient(nsm: Any, keypair: EnclaveKeyPair) -> dict[str, Any]:
    return {
        "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
        "AttestationDocument": nsm.attest(public_key=keypair.public_key_der),
    }


# --- the parent role only gets key material through an attested enclave ------------------------


def test_parent_credentials_without_recipient_are_denied(stack: Stack) -> None:
    parent = stack.client("parent")
    blob = _tenant_input(stack)
    with pytest.raises(ClientError) as info:
        parent.decrypt(CiphertextBlob=blob, EncryptionContext=INPUT_A, KeyId=stack.key_arn)
    assert _code(info) == "AccessDeniedException"
    with pytest.raises(ClientError) as info:
        parent.generate_data_key(KeyId=stack.key_arn, NumberOfBytes=32, EncryptionContext=RESULT_A)
    assert _code(info) == "AccessDeniedException"
    with pytest.raises(ClientError) as info:
        parent.decrypt(CiphertextBlob=blob, EncryptionContext=INPUT_A)  # no KeyId either
    assert _code(info) == "AccessDeniedException"


def test_a_valid_document_gets_cms_only_the_enclave_opens(stack: Stack) -> None:
    keypair = EnclaveKeyPair.generate()
    parent = stack.client("parent")
    blob = _tenant_input(stack, b"the cat picture")
    answer = parent.decrypt(
        CiphertextBlob=blob, EncryptionContext=INPUT_A, KeyId=stack.key_arn, Recipient=_recipient(stack.nsm(), keypair)
    )
    assert "Plaintext" not in answer or not answer["Plaintext"]
    envelope = answer["CiphertextForRecipient"]
    assert envelope[:2] == b"\x30\x80"
    assert keypair.open(envelope) == b"the cat picture"
    with pytest.raises(CmsError):
        EnclaveKeyPair.generate().open(envelope)
    parse_enveloped_data(envelope)

    generated = parent.generate_data_key(
        KeyId=stack.key_arn, NumberOfBytes=32, EncryptionContext=RESULT_A, Recipient=_recipient(stack.nsm(), keypair)
    )
    data_key = keypair.open(generated["CiphertextForRecipient"])
    assert len(data_key) == 32 and not generated.get("Plaintext")
    # The blob is a normal KMS ciphertext of that data key: the tenant decrypts it (it is a "result").
    back = stack.client("tenant-a").decrypt(CiphertextBlob=generated["CiphertextBlob"], EncryptionContext=RESULT_A)
    assert back["Plaintext"] == data_key


def test_upper_case_pcrs_in_the_policy_still_match(stack: Stack) -> None:
    policy = json.loads(json.dumps(stack.policy).replace(PCRS[0].hex(), PCRS[0].hex().upper()))
    admin = stack.client("admin")
    key = admin.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
    keypair = EnclaveKeyPair.generate()
    answer = stack.client("parent").generate_data_key(
        KeyId=key, NumberOfBytes=16, Recipient=_recipient(stack.nsm(), keypair)
    )
    assert len(keypair.open(answer["CiphertextForRecipient"])) == 16


@pytest.mark.parametrize(
    "pcrs",
    [
        {**PCRS, 0: bytes.fromhex("ee" * 48)},  # another enclave image
        {**PCRS, 2: bytes.fromhex("ee" * 48)},  # same image, other application measurement
        {},  # debug-mode: PCR0/1/2 all zero
    ],
    ids=["other-pcr0", "other-pcr2", "debug"],
)
def test_a_document_from_another_enclave_is_denied(stack: Stack, pcrs: dict[int, bytes]) -> None:
    keypair = EnclaveKeyPair.generate()
    with pytest.raises(ClientError) as info:
        stack.client("parent").decrypt(
            CiphertextBlob=_tenant_input(stack),
            EncryptionContext=INPUT_A,
            KeyId=stack.key_arn,
            Recipient=_recipient(stack.nsm(pcrs), keypair),
        )
    assert _code(info) == "AccessDeniedException"


def _tamper_payload(document: bytes) -> bytes:
    protected, unprotected, payload, signature = cbor2.loads(document)
    fields = cbor2.loads(payload)
    fields["pcrs"][0] = PCRS[0]  # claim the right image...
    fields["user_data"] = b"forged"
    return cbor2.dumps([protected, unprotected, cbor2.dumps(fields), signature])


def _flip_signature(document: bytes) -> bytes:
    protected, unprotected, payload, signature = cbor2.loads(document)
    return cbor2.dumps([protected, unprotected, payload, bytes([signature[0] ^ 1]) + signature[1:]])


def _swap_public_key(document: bytes) -> bytes:
    protected, unprotected, payload, signature = cbor2.loads(document)
    fields = cbor2.loads(payload)
    fields["public_key"] = EnclaveKeyPair.generate().public_key_der  # the attacker's key
    return cbor2.dumps([protected, unprotected, cbor2.dumps(fields), signature])


@pytest.mark.parametrize("tamper", [_tamper_payload, _flip_signature, _swap_public_key, lambda d: d[:-1]])
def test_a_tampered_document_is_denied(stack: Stack, tamper: Any) -> None:
    keypair = EnclaveKeyPair.generate()
    recipient = _recipient(stack.nsm(), keypair)
    recipient["AttestationDocument"] = tamper(recipient["AttestationDocument"])
    with pytest.raises(ClientError) as info:
        stack.client("parent").generate_data_key(KeyId=stack.key_arn, NumberOfBytes=32, Recipient=recipient)
    assert _code(info) == "AccessDeniedException"


def test_documents_from_another_ca_or_too_old_are_denied(stack: Stack, tmp_path: Path) -> None:
    keypair = EnclaveKeyPair.generate()
    rogue = LocalNitroCA.create(tmp_path / "rogue")
    stale = stack.nsm(clock=lambda: datetime.now(UTC) - timedelta(minutes=10))
    for nsm in (stack.nsm(ca=rogue), stale):
        with pytest.raises(ClientError) as info:
            stack.client("parent").generate_data_key(
                KeyId=stack.key_arn, NumberOfBytes=32, Recipient=_recipient(nsm, keypair)
            )
        assert _code(info) == "AccessDeniedException"


def test_recipient_keys_kms_would_refuse(stack: Stack) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    small_der = small.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    parent = stack.client("parent")
    for document in (stack.nsm().attest(public_key=small_der), stack.nsm().attest()):
        recipient = {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": document}
        with pytest.raises(ClientError) as info:
            parent.generate_data_key(KeyId=stack.key_arn, NumberOfBytes=32, Recipient=recipient)
        assert _code(info) == "ValidationException"


# --- tenants and admins -------------------------------------------------------------------------


def test_tenant_encrypts_inputs_and_decrypts_only_its_results(stack: Stack) -> None:
    tenant_a, tenant_b = stack.client("tenant-a"), stack.client("tenant-b")
    blob = _tenant_input(stack)
    with pytest.raises(ClientError) as info:
        tenant_a.decrypt(CiphertextBlob=blob, EncryptionContext=INPUT_A)  # its own input
    assert _code(info) == "AccessDeniedException"
    with pytest.raises(ClientError) as info:
        tenant_b.encrypt(KeyId=stack.key_arn, Plaintext=b"x", EncryptionContext=INPUT_A)  # other tenant's context
    assert _code(info) == "AccessDeniedException"
    with pytest.raises(ClientError) as info:
        tenant_a.generate_data_key(KeyId=stack.key_arn, NumberOfBytes=32, EncryptionContext=RESULT_A)  # forge result
    assert _code(info) == "AccessDeniedException"

    keypair = EnclaveKeyPair.generate()
    result = stack.client("parent").generate_data_key(
        KeyId=stack.key_arn, NumberOfBytes=32, EncryptionContext=RESULT_A, Recipient=_recipient(stack.nsm(), keypair)
    )
    plain = tenant_a.decrypt(CiphertextBlob=result["CiphertextBlob"], EncryptionContext=RESULT_A)["Plaintext"]
    assert plain == keypair.open(result["CiphertextForRecipient"])
    with pytest.raises(ClientError) as info:  # the policy refuses tenant-b the tenant-a context
        tenant_b.decrypt(CiphertextBlob=result["CiphertextBlob"], EncryptionContext=RESULT_A)
    assert _code(info) == "AccessDeniedException"
    with pytest.raises(ClientError) as info:  # and the ciphertext is bound to the tenant-a context
        tenant_b.decrypt(
            CiphertextBlob=result["CiphertextBlob"], EncryptionContext={**RESULT_A, "ccc:tenant": "tenant-b"}
        )
    assert _code(info) == "InvalidCiphertextException"


def test_admin_manages_but_cannot_decrypt(stack: Stack) -> None:
    admin = stack.client("admin")
    assert admin.describe_key(KeyId=stack.key_arn)["KeyMetadata"]["Arn"] == stack.key_arn
    assert json.loads(admin.get_key_policy(KeyId=stack.key_arn, PolicyName="default")["Policy"]) == stack.policy
    admin.put_key_policy(KeyId=stack.key_arn, PolicyName="default", Policy=json.dumps(stack.policy))
    blob = _tenant_input(stack)
    for call in (
        lambda: admin.decrypt(CiphertextBlob=blob, EncryptionContext=INPUT_A),
        lambda: admin.generate_data_key(KeyId=stack.key_arn, NumberOfBytes=32, EncryptionContext=INPUT_A),
        lambda: admin.encrypt(KeyId=stack.key_arn, Plaintext=b"x", EncryptionContext=RESULT_A),
        lambda: admin.re_encrypt(CiphertextBlob=blob, DestinationKeyId=stack.other_key_arn),
        lambda: admin.create_grant(
            KeyId=stack.key_arn, GranteePrincipal=stack.identities["admin"].principal_arn, Operations=["Decrypt"]
        ),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert _code(info) == "AccessDeniedException"
    # Even with a valid enclave document, the admin is not the parent role.
    keypair = EnclaveKeyPair.generate()
    with pytest.raises(ClientError) as info:
        admin.decrypt(CiphertextBlob=blob, EncryptionContext=INPUT_A, Recipient=_recipient(stack.nsm(), keypair))
    assert _code(info) == "AccessDeniedException"


def test_policy_changes_are_checked(stack: Stack) -> None:
    admin = stack.client("admin")
    not_understood = {
        **stack.policy,
        "Statement": [
            *stack.policy["Statement"],
            {"Effect": "Allow", "NotPrincipal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"},
        ],
    }
    lockout = {**stack.policy, "Statement": [s for s in stack.policy["Statement"] if "manage" not in s["Sid"]]}
    for policy in (not_understood, lockout):
        with pytest.raises(ClientError) as info:
            admin.put_key_policy(KeyId=stack.key_arn, PolicyName="default", Policy=json.dumps(policy))
        assert _code(info) == "MalformedPolicyDocumentException"
    with pytest.raises(ClientError) as info:
        stack.client("tenant-a").put_key_policy(KeyId=stack.key_arn, PolicyName="default", Policy=json.dumps(lockout))
    assert _code(info) == "AccessDeniedException"
    with pytest.raises(ClientError) as info:
        stack.client("tenant-a").create_key()
    assert _code(info) == "AccessDeniedException"


def test_decrypt_is_authorised_against_the_key_that_encrypted(stack: Stack) -> None:
    blob = _tenant_input(stack)
    with pytest.raises(ClientError) as info:
        stack.client("tenant-a").decrypt(CiphertextBlob=blob, KeyId=stack.other_key_arn, EncryptionContext=INPUT_A)
    assert _code(info) == "IncorrectKeyException"


# --- authentication -----------------------------------------------------------------------------


def test_unknown_keys_and_bad_signatures_are_refused(stack: Stack) -> None:
    with pytest.raises(ClientError) as info:
        stack.client("tenant-a", access_key_id="AKIAUNKNOWNUNKNOWN00").describe_key(KeyId=stack.key_arn)
    assert _code(info) == "UnrecognizedClientException"
    with pytest.raises(ClientError) as info:
        stack.client("parent", secret=stack.identities["tenant-a"].secret_access_key).describe_key(KeyId=stack.key_arn)
    assert _code(info) == "InvalidSignatureException"


def test_raw_protocol_errors_have_kms_shapes(stack: Stack) -> None:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(stack.gateway.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    for headers, body in (
        ({"X-Amz-Target": "TrentService.DescribeKey"}, b"{}"),  # unsigned
        ({"X-Amz-Target": "Nope.DescribeKey"}, b"{}"),
        ({"X-Amz-Target": "TrentService.DescribeKey", "Authorization": "AWS4-HMAC-SHA256 garbage"}, b"{"),
    ):
        connection.request("POST", "/", body=body, headers={"Content-Type": "application/x-amz-json-1.1", **headers})
        response = connection.getresponse()
        answer = json.loads(response.read())
        assert response.status == 400 and set(answer) == {"__type", "message"}
    connection.close()


def test_a_replayed_signature_on_another_body_is_refused(stack: Stack) -> None:
    """A captured, validly signed request cannot be re-targeted by editing its body."""
    captured: dict[str, Any] = {}
    client = stack.client("tenant-a")

    def capture(request: Any, **_: Any) -> None:
        captured["headers"] = dict(request.headers.items())
        captured["body"] = request.body

    client.meta.events.register("before-send.kms.DescribeKey", capture)
    client.describe_key(KeyId=stack.key_arn)
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(stack.gateway.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    forged = json.dumps({"KeyId": stack.other_key_arn}).encode()
    headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in captured["headers"].items()}
    headers["Content-Length"] = str(len(forged))
    connection.request("POST", "/", body=forged, headers=headers)
    response = connection.getresponse()
    assert response.status == 400
    assert json.loads(response.read())["__type"] == "InvalidSignatureException"
    connection.close()


# --- end to end ---------------------------------------------------------------------------------


def test_esdk_round_trip_through_the_gateway(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", stack.gateway.url)
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)

    def standard_provider(name: str) -> aws_encryption_sdk.StrictAwsKmsMasterKeyProvider:
        session = botocore.session.Session()
        identity = stack.identities[name]
        session.set_credentials(identity.access_key_id, identity.secret_access_key)
        return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[stack.key_arn], botocore_session=session)

    image = os.urandom(50_000)
    ciphertext, _ = client.encrypt(source=image, key_provider=standard_provider("tenant-a"), encryption_context=INPUT_A)

    keypair = EnclaveKeyPair.generate()
    enclave = AttestedKms(stack.client("parent"), stack.nsm(), keypair)
    provider = attested_provider(enclave, [stack.key_arn])
    plaintext, header = client.decrypt(source=ciphertext, key_provider=provider)
    assert plaintext == image
    assert "aws-crypto-public-key" in header.encryption_context  # the signed suite's full context went to KMS

    result_ct, _ = client.encrypt(source=b'{"cats": 2}', key_provider=provider, encryption_context=RESULT_A)
    back, _ = client.decrypt(source=result_ct, key_provider=standard_provider("tenant-a"))
    assert back == b'{"cats": 2}'
    with pytest.raises(aws_encryption_sdk.exceptions.AWSEncryptionSDKClientError):
        client.decrypt(source=result_ct, key_provider=standard_provider("tenant-b"))
    with pytest.raises(aws_encryption_sdk.exceptions.AWSEncryptionSDKClientError):
        client.decrypt(source=ciphertext, key_provider=standard_provider("tenant-a"))  # inputs stay sealed

    other_image = AttestedKms(stack.client("parent"), stack.nsm({**PCRS, 0: b"\xee" * 48}), keypair)
    with pytest.raises(aws_encryption_sdk.exceptions.AWSEncryptionSDKClientError):
        client.decrypt(source=ciphertext, key_provider=attested_provider(other_image, [stack.key_arn]))
    with pytest.raises(AttestedKmsError) as info:
        other_image.generate_data_key(stack.key_arn, RESULT_A)
    assert info.value.code == "AccessDeniedException"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plaintext=st.binary(min_size=1, max_size=4096))
def test_any_tenant_input_reaches_the_enclave_intact(stack: Stack, plaintext: bytes) -> None:
    blob = _tenant_input(stack, plaintext)
    keypair = EnclaveKeyPair.generate()
    enclave = AttestedKms(stack.client("parent"), stack.nsm(), keypair)
    assert enclave.decrypt(blob, INPUT_A, key_id=stack.key_arn) == plaintext


def test_gateway_runs_as_a_process(stack: Stack, tmp_path: Path) -> None:
    config = GatewayConfig(
        key_store=str(stack.store_path),
        identities=stack.identities,
        attestation_root_pem=stack.ca.root_pem.decode(),
    )
    config_file = tmp_path / "gateway.json"
    config.write(config_file)
    assert config_file.stat().st_mode & 0o077 == 0
    assert GatewayConfig.load(config_file) == config
    ready = tmp_path / "ready.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "ccc.local.kms.gateway", "--config", str(config_file), "--ready-file", str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        url = json.loads(ready.read_text())["url"]
        tenant = stack.identities["tenant-a"]
        client = boto3.client(
            "kms",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id=tenant.access_key_id,
            aws_secret_access_key=tenant.secret_access_key,
        )
        assert client.describe_key(KeyId=stack.key_arn)["KeyMetadata"]["Arn"] == stack.key_arn
        with pytest.raises(ClientError):
            client.decrypt(CiphertextBlob=_tenant_input(stack), EncryptionContext=INPUT_A)
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    err = process.stderr.read().decode() if process.stderr else ""
    for identity in stack.identities.values():
        assert identity.secret_access_key not in err  # secrets never logged
    assert base64.b64encode(b"image bytes").decode() not in err


# --- the gateway owns the keys; per-tenant keys ---------------------------------------------------


def test_moto_holds_no_key_and_decrypts_nothing(stack: Stack) -> None:
    """moto is reachable by anyone: it must not be a way around the key policy."""
    blob = _tenant_input(stack)
    moto = boto3.client(
        "kms",
        endpoint_url=stack.moto_url,
        region_name=REGION,
        aws_access_key_id="AKIAANYONEATALL00000",
        aws_secret_access_key="anything-at-all-anything",
        config=Config(retries={"max_attempts": 1}),
    )
    assert moto.list_keys()["Keys"] == []
    for call in (
        lambda: moto.decrypt(CiphertextBlob=blob, EncryptionContext=INPUT_A),
        lambda: moto.decrypt(CiphertextBlob=blob, EncryptionContext=INPUT_A, KeyId=stack.key_arn),
        lambda: moto.generate_data_key(KeyId=stack.key_arn, NumberOfBytes=32),
    ):
        with pytest.raises(ClientError):
            call()


def test_a_tenant_key_serves_the_esdk_and_the_enclave_and_no_one_else(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ccc_common.domain.key_policy import TenantKeySpec, build_tenant_key_policy, release_from_pcrs

    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", stack.gateway.url)
    tenant = stack.identities["tenant-a"]
    spec = TenantKeySpec(
        tenant="tenant-a",
        partition="aws",
        key_account_id=tenant.account_id,
        key_admin_principals=(),
        tenant_principals=(tenant.principal_arn,),
        parent_role_arns=(stack.identities["parent"].principal_arn,),
        releases=(release_from_pcrs({i: v.hex() for i, v in PCRS.items()}),),
    )
    key = stack.gateway.core.store.create_key(
        partition="aws", region=REGION, account=tenant.account_id, policy=json.dumps(build_tenant_key_policy(spec))
    ).arn
    sdk = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)

    def provider(name: str) -> aws_encryption_sdk.StrictAwsKmsMasterKeyProvider:
        session = botocore.session.Session()
        identity = stack.identities[name]
        session.set_credentials(identity.access_key_id, identity.secret_access_key)
        return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[key], botocore_session=session)

    image = os.urandom(10_000)
    sealed, _ = sdk.encrypt(source=image, key_provider=provider("tenant-a"), encryption_context=INPUT_A)
    enclave = attested_provider(AttestedKms(stack.client("parent"), stack.nsm(), EnclaveKeyPair.generate()), [key])
    assert sdk.decrypt(source=sealed, key_provider=enclave)[0] == image
    result, _ = sdk.encrypt(source=b'{"cats": 1}', key_provider=enclave, encryption_context=RESULT_A)
    assert sdk.decrypt(source=result, key_provider=provider("tenant-a"))[0] == b'{"cats": 1}'
    for outsider in ("admin", "tenant-b", "parent"):
        for message in (sealed, result):
            with pytest.raises(aws_encryption_sdk.exceptions.AWSEncryptionSDKClientError):
                sdk.decrypt(source=message, key_provider=provider(outsider))
    with pytest.raises(aws_encryption_sdk.exceptions.AWSEncryptionSDKClientError):  # extra context key
        sdk.encrypt(source=b"x", key_provider=provider("tenant-a"), encryption_context={**INPUT_A, "x": "y"})

"""The page's streamed ESDK encryptor (web/src/app/esdk-stream.ts) against the enclave's decrypt path.

Node runs the page's own code (the streamed encryptor and the page's KMS keyring) over files of 0
bytes, 1 byte, exactly one 64 KiB frame, a frame and a byte, several frames, and the 20 MiB limit,
read from disk as file-backed Blobs (as a dropped File is), under a KMS key of the attested-KMS
gateway (the local stack's KMS, over real HTTP). Each message must then open exactly as the enclave
opens an input: `ccc_enclave.esdk_crypto.AttestedEsdkSession.decrypt` (ESDK for Python, committing
policy, at most 8 data keys, the key found in the message, KMS Decrypt with `Recipient` under a key
policy pinned to the enclave's PCRs, the simulated NSM's attestation), and its context must pass the
enclave's `check_input_context` (exactly this job and tenant, plus the ESDK's signer key). A flipped
byte anywhere — header, data key, header tag, any frame, the footer's signature — is refused.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header

from ccc.local.iam_users import LocalIdentity, default_identities
from ccc.local.kms.gateway import KmsGateway
from ccc_common.domain.key_policy import KeyPolicySpec, build_key_policy
from ccc_enclave.esdk_crypto import AttestedEsdkCrypto
from ccc_enclave.kms.recipient import EnclaveKeyPair
from ccc_enclave.nsm.simulated import LocalNitroCA, SimulatedNsm
from ccc_enclave.pipeline import check_input_context
from ccc_enclave.ports import CryptoSession, JobError
from ccc_enclave.protocol.errors import ErrorCode
from ccc_enclave.protocol.job_messages import Credentials, JobSpec, KmsTarget
from tests.web.web_build import run_node_tests

WEB = Path(__file__).resolve().parents[2] / "web"
ACCOUNT = "111122223333"
REGION = "eu-west-1"
TENANT = "tenant-a"
FRAME = 64 * 1024
LIMIT = 20 * 1024 * 1024
PCRS = {0: bytes.fromhex("5a" * 48), 1: bytes.fromhex("5b" * 48), 2: bytes.fromhex("5c" * 48)}
SIZES = {
    "empty": 0,
    "one-byte": 1,
    "one-frame": FRAME,
    "frame-plus-one": FRAME + 1,
    "frames": 3 * FRAME + 4321,
    "limit": LIMIT,
}
SUITE_COMMIT_KEY_ECDSA_P384 = 0x0578


@dataclass
class Kms:
    gateway: KmsGateway
    identities: dict[str, LocalIdentity]
    key_arn: str
    session: CryptoSession


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kms]:
    identities = default_identities(ACCOUNT)
    ca = LocalNitroCA.create(tmp_path_factory.mktemp("ca") / "ca")
    gateway = KmsGateway(identities, ca.root_der).start()
    try:
        admin, parent = identities["admin"], identities["parent"]
        policy = build_key_policy(
            KeyPolicySpec(
                account_id=ACCOUNT,
                admin_principals=(admin.principal_arn,),
                tenant_principals={TENANT: (identities[TENANT].principal_arn,)},
                parent_role_arns=(parent.principal_arn,),
                pcrs={i: v.hex() for i, v in PCRS.items()},
            )
        )
        client = boto3.client(
            "kms",
            endpoint_url=gateway.url,
            region_name=REGION,
            aws_access_key_id=admin.access_key_id,
            aws_secret_access_key=admin.secret_access_key,
        )
        key_arn = client.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
        enclave = AttestedEsdkCrypto(SimulatedNsm(ca, PCRS), EnclaveKeyPair.generate(), kms_endpoint_url=gateway.url)
        session = enclave.session(
            Credentials(access_key_id=parent.access_key_id, secret_access_key=parent.secret_access_key),
            KmsTarget(region=REGION, endpoint_url=gateway.url),
        )
        yield Kms(gateway, identities, key_arn, session)
    finally:
        gateway.stop()


@dataclass
class Encrypted:
    name: str
    plaintext: bytes
    ciphertext: bytes
    job: JobSpec


@pytest.fixture(scope="module")
def encrypted(kms: Kms, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Encrypted]:
    """Run the page's encryptor in node over every size (one node process, real HTTP to the gateway)."""
    work = tmp_path_factory.mktemp("stream")
    jobs: dict[str, tuple[bytes, JobSpec]] = {}
    cases = []
    for name, size in SIZES.items():
        plaintext = os.urandom(size)
        job = JobSpec(job_id=os.urandom(16).hex(), tenant=TENANT)
        (work / f"{name}.bin").write_bytes(plaintext)
        jobs[name] = (plaintext, job)
        cases.append(
            {
                "plaintext": str(work / f"{name}.bin"),
                "ciphertext": str(work / f"{name}.esdk"),
                "context": {"ccc:job": job.job_id, "ccc:tenant": TENANT},
            }
        )
    tenant = kms.identities[TENANT]
    config = work / "cases.json"
    config.write_text(
        json.dumps(
            {
                "region": REGION,
                "endpoint": kms.gateway.url,
                "keyArn": kms.key_arn,
                "cases": cases,
                "credentials": {"accessKeyId": tenant.access_key_id, "secretAccessKey": tenant.secret_access_key},
            }
        )
    )
    stdout = run_node_tests("dist-test/esdk-stream.test.mjs", {"CCC_WEB_STREAM_KMS": str(config)})
    assert re.search(r"^ok \d+ - through the page's KMS keyring", stdout, re.M), stdout[-2000:]
    return {
        name: Encrypted(name, plaintext, (work / f"{name}.esdk").read_bytes(), job)
        for name, (plaintext, job) in jobs.items()
    }


@pytest.mark.parametrize("name", list(SIZES))
def test_the_enclave_decrypts_what_the_page_streamed_to_the_original_bytes_under_the_jobs_context(
    kms: Kms, encrypted: dict[str, Encrypted], name: str
) -> None:
    message = encrypted[name]
    header, _ = deserialize_header(io.BytesIO(message.ciphertext), 8)
    assert header.algorithm.algorithm_id == SUITE_COMMIT_KEY_ECDSA_P384  # the CLI's suite: committing, signed
    assert header.frame_length == FRAME
    assert [(k.key_provider.provider_id, k.key_provider.key_info) for k in header.encrypted_data_keys] == [
        ("aws-kms", kms.key_arn.encode())
    ]  # the tenant key only

    opened = kms.session.decrypt(message.ciphertext)
    assert opened.plaintext == message.plaintext
    assert opened.key_arn == kms.key_arn
    assert set(opened.encryption_context) == {"ccc:job", "ccc:tenant", "aws-crypto-public-key"}
    check_input_context(opened.encryption_context, message.job)  # the enclave's own rule: exactly this job
    with pytest.raises(JobError) as other_job:
        check_input_context(opened.encryption_context, JobSpec(job_id=os.urandom(16).hex(), tenant=TENANT))
    assert other_job.value.code == ErrorCode.CONTEXT_MISMATCH


def _positions(message: bytes, header_length: int) -> list[int]:
    """Every byte of the header and its tag, then bytes spread over the body and every footer byte."""
    body = range(header_length, len(message) - 110)
    spread = list(body[:: max(1, len(body) // 24)]) + [body[-1]] if len(body) else []
    return list(range(header_length)) + spread + list(range(len(message) - 110, len(message)))


def test_one_flipped_byte_anywhere_in_a_streamed_message_is_refused_by_the_enclave(
    kms: Kms, encrypted: dict[str, Encrypted]
) -> None:
    message = encrypted["one-byte"].ciphertext
    _, raw_header = deserialize_header(io.BytesIO(message), 8)
    header_length = len(raw_header) + 16  # the header and its tag (message format 2: no IV on the wire)
    positions = _positions(message, header_length)
    assert len(positions) > 300
    accepted = []
    for position in positions:
        tampered = bytearray(message)
        tampered[position] ^= 0x01
        try:
            kms.session.decrypt(bytes(tampered))
        except JobError as refused:
            # A flip inside the wrapping key's ARN names another key: KMS answers NotFound (retried,
            # then dead-lettered, as for a key-policy race); every other flip fails authentication.
            assert refused.code in (ErrorCode.DECRYPT_FAILED, ErrorCode.KMS_ACCESS_DENIED), (position, refused)
            continue
        accepted.append(position)
    assert accepted == []


def test_a_flipped_byte_in_a_middle_frame_or_the_footer_of_a_large_message_is_refused(
    kms: Kms, encrypted: dict[str, Encrypted]
) -> None:
    message = encrypted["frames"].ciphertext
    for position in (len(message) // 2, len(message) - 200, len(message) - 1):
        tampered = bytearray(message)
        tampered[position] ^= 0x80
        with pytest.raises(JobError) as refused:
            kms.session.decrypt(bytes(tampered))
        assert refused.value.code == ErrorCode.DECRYPT_FAILED
    with pytest.raises(JobError):  # cut after a frame: no final frame, no signature
        kms.session.decrypt(message[: len(message) - 3000])

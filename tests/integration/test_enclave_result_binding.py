"""The enclave's result, for real (moto + attested-KMS gateway + SimulatedNsm + the ESDK):

* it is encrypted under the KMS key that protected the job's input, read from the input's own
  ESDK header, so two tenants' keys (or a tenant-owned key) need no enclave configuration;
* every result ciphertext has one size, from 0 detections to far above the cap with wide boxes;
* it is bound to the exact input ciphertext (result document and attestation user_data), and a
  strict-context violation made with the real ESDK is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aws_encryption_sdk
import boto3
import botocore.session
import pytest
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header

from ccc.client.errors import VerificationError
from ccc.client.provenance import INPUT_MISMATCH, check_result_document, verify_result_attestation
from ccc_common.domain.key_policy import KeyPolicySpec, build_key_policy
from ccc_core.identity import JobRef
from ccc_core.result_document import MAX_RESULT_DETECTIONS, decode_result_document
from ccc_enclave.attester import NsmAttester
from ccc_enclave.esdk_crypto import AttestedEsdkCrypto
from ccc_enclave.kms.recipient import EnclaveKeyPair
from ccc_enclave.nsm.simulated import SimulatedNsm
from ccc_enclave.pipeline import JobProcessor
from ccc_enclave.ports import CatDetection, CountOutcome
from ccc_enclave.protocol.job_messages import JobFailure, JobRequest, JobSpec, JobSuccess
from tests.integration.test_enclave_attested import (  # noqa: F401 - module fixture reused
    ACCOUNT,
    REGION,
    TENANT,
    AttestedStack,
    attested_stack,
    esdk,
)


class ScriptedCounter:
    """Finds `n` cats with boxes `width` pixels out: the sizes the result must not reveal."""

    model_name = "scripted-detector"
    model_sha256 = "ab" * 32

    def __init__(self) -> None:
        self.n = 2
        self.width = 40.0

    def count(self, image: bytes) -> CountOutcome:
        boxes = tuple(CatDetection((self.width - i, i * 0.37, self.width, self.width + i), 0.98765 - i / 1e5)
                      for i in range(self.n))
        return CountOutcome(cats=self.n, detections=boxes)


@dataclass
class Enclave:
    processor: JobProcessor
    counter: ScriptedCounter
    second_key_arn: str
    permissive_key_arn: str


def _policy(stack: AttestedStack) -> dict[str, Any]:
    identities = stack.identities
    return build_key_policy(KeyPolicySpec(
        account_id=ACCOUNT, admin_principals=(identities["admin"].principal_arn,),
        tenant_principals={t: (identities[t].principal_arn,) for t in ("tenant-a", "tenant-b")},
        parent_role_arns=(identities["parent"].principal_arn,),
        pcrs={i: v.hex() for i, v in stack.pcrs.items()},
    ))


def _without_tenant_context_conditions(policy: dict[str, Any]) -> dict[str, Any]:
    """A key whose policy lets its tenants encrypt under *any* context (an older or careless policy):
    what stops a crafted context is then the enclave alone."""
    statements = []
    for statement in policy["Statement"]:
        if "kms:GenerateDataKey" in statement["Action"] and "RecipientAttestation" not in json.dumps(statement):
            statement = {key: value for key, value in statement.items() if key != "Condition"}
        statements.append(statement)
    return {**policy, "Statement": statements}


@pytest.fixture(scope="module")
def enclave(attested_stack: AttestedStack) -> Iterator[Enclave]:  # noqa: F811
    nsm = SimulatedNsm(attested_stack.ca, attested_stack.pcrs)
    keypair = EnclaveKeyPair.generate()
    counter = ScriptedCounter()
    processor = JobProcessor(AttestedEsdkCrypto(nsm, keypair, kms_endpoint_url=attested_stack.gateway.url),
                             counter, NsmAttester(nsm, keypair.public_key_der))
    admin_identity = attested_stack.identities["admin"]
    admin = boto3.client("kms", endpoint_url=attested_stack.gateway.url, region_name=REGION,
                         aws_access_key_id=admin_identity.access_key_id,
                         aws_secret_access_key=admin_identity.secret_access_key)
    # A second data key from the one policy builder: only the attested enclave and the tenants may use it.
    second = admin.create_key(Policy=json.dumps(_policy(attested_stack)))["KeyMetadata"]["Arn"]
    permissive = admin.create_key(
        Policy=json.dumps(_without_tenant_context_conditions(_policy(attested_stack)))
    )["KeyMetadata"]["Arn"]
    yield Enclave(processor, counter, second, permissive)


def provider(stack: AttestedStack, key_arn: str) -> aws_encryption_sdk.StrictAwsKmsMasterKeyProvider:
    session = botocore.session.Session()
    identity = stack.identities[TENANT]
    session.set_credentials(identity.access_key_id, identity.secret_access_key)
    return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[key_arn], botocore_session=session)


def encrypt(stack: AttestedStack, key_arn: str, context: dict[str, str], data: bytes = b"IMG") -> bytes:
    ciphertext, _ = esdk().encrypt(source=data, key_provider=provider(stack, key_arn), encryption_context=context)
    return bytes(ciphertext)


def run(stack: AttestedStack, enclave: Enclave, ciphertext: bytes, ref: JobRef) -> JobSuccess | JobFailure:
    reply = enclave.processor.process(JobRequest(
        request_id=os.urandom(8).hex(), job=JobSpec(job_id=ref.job_id, tenant=ref.tenant), ciphertext=ciphertext,
        credentials=stack.parent_credentials(), kms=stack.kms_target(),
    ))
    assert isinstance(reply, JobSuccess | JobFailure)
    return reply


def new_ref() -> JobRef:
    return JobRef(tenant=TENANT, job_id=os.urandom(16).hex())


def wrapping_keys(ciphertext: bytes) -> set[str]:
    header, _ = deserialize_header(io.BytesIO(ciphertext), 8)
    return {edk.key_provider.key_info.decode() for edk in header.encrypted_data_keys}


def test_each_result_is_encrypted_under_the_key_that_protected_its_input(
    attested_stack: AttestedStack, enclave: Enclave  # noqa: F811
) -> None:
    keys = (attested_stack.key_arn, enclave.second_key_arn)
    for key, other in (keys, keys[::-1]):
        ref = new_ref()
        reply = run(attested_stack, enclave, encrypt(attested_stack, key, ref.input_context()), ref)
        assert isinstance(reply, JobSuccess), reply
        assert wrapping_keys(reply.result_ciphertext) == {key}
        plaintext, header = esdk().decrypt(source=reply.result_ciphertext, key_provider=provider(attested_stack, key))
        assert decode_result_document(plaintext, job=ref).cats == 2
        with pytest.raises(Exception, match="(?i)unable to decrypt"):  # the other key opens nothing
            esdk().decrypt(source=reply.result_ciphertext, key_provider=provider(attested_stack, other))


def test_every_result_ciphertext_has_one_size_whatever_the_count(
    attested_stack: AttestedStack, enclave: Enclave  # noqa: F811
) -> None:
    sizes: dict[str, int] = {}
    read: dict[str, tuple[int, int, bool]] = {}
    for label, n, width in (("none", 0, 0.0), ("one", 1, 64.0), ("the cap", MAX_RESULT_DETECTIONS, 1234.5),
                            ("far above the cap, wide", 5_000, 39_999_999.9)):
        enclave.counter.n, enclave.counter.width = n, width
        ref = new_ref()
        reply = run(attested_stack, enclave, encrypt(attested_stack, attested_stack.key_arn, ref.input_context()), ref)
        assert isinstance(reply, JobSuccess), reply
        sizes[label] = len(reply.result_ciphertext)
        plaintext, _ = esdk().decrypt(source=reply.result_ciphertext,
                                      key_provider=provider(attested_stack, attested_stack.key_arn))
        document = decode_result_document(plaintext, job=ref)
        read[label] = (document.cats, len(document.detections), document.detections_truncated)
    enclave.counter.n, enclave.counter.width = 2, 40.0
    assert len(set(sizes.values())) == 1, sizes
    assert read == {"none": (0, 0, False), "one": (1, 1, False),
                    "the cap": (MAX_RESULT_DETECTIONS, MAX_RESULT_DETECTIONS, False),
                    "far above the cap, wide": (5_000, MAX_RESULT_DETECTIONS, True)}


def test_the_result_and_its_attestation_name_the_exact_input_ciphertext(
    attested_stack: AttestedStack, enclave: Enclave  # noqa: F811
) -> None:
    ref = new_ref()
    uploaded = encrypt(attested_stack, attested_stack.key_arn, ref.input_context())
    reply = run(attested_stack, enclave, uploaded, ref)
    assert isinstance(reply, JobSuccess), reply
    recorded = hashlib.sha256(uploaded).hexdigest()
    verified = verify_result_attestation(reply.attestation_document, reply.result_ciphertext,
                                         root_der=attested_stack.ca.root_der, expected_pcrs=attested_stack.pcrs,
                                         expected_input_sha256=recorded)
    plaintext, _ = esdk().decrypt(source=reply.result_ciphertext,
                                  key_provider=provider(attested_stack, attested_stack.key_arn))
    check_result_document(verified, decode_result_document(plaintext, job=ref))
    assert verified.input_sha256 == recorded

    # Another principal encrypts its own image under the tenant's context: a genuinely attested
    # result, but not for the ciphertext this client recorded.
    substitute = encrypt(attested_stack, attested_stack.key_arn, ref.input_context(), b"IMG someone else's")
    forged = run(attested_stack, enclave, substitute, ref)
    assert isinstance(forged, JobSuccess), forged
    with pytest.raises(VerificationError) as info:
        verify_result_attestation(forged.attestation_document, forged.result_ciphertext,
                                  root_der=attested_stack.ca.root_der, expected_pcrs=attested_stack.pcrs,
                                  expected_input_sha256=recorded)
    assert info.value.reason == INPUT_MISMATCH


@pytest.mark.parametrize("extra", [{"CCC:TENANT": "tenant-b"}, {"Ccc:Kind": "result"}, {"ccc:kind": "input"},
                                   {"purpose": "cats"}, {"AWS-CRYPTO-PUBLIC-KEY": "x"}])
def test_an_input_with_any_extra_context_key_is_refused_by_the_enclave(
    attested_stack: AttestedStack, enclave: Enclave, extra: dict[str, str]  # noqa: F811
) -> None:
    ref = new_ref()
    ciphertext = encrypt(attested_stack, enclave.permissive_key_arn, {**ref.input_context(), **extra})
    reply = run(attested_stack, enclave, ciphertext, ref)
    assert isinstance(reply, JobFailure) and reply.error.code == "context_mismatch", reply
    # the same job with the exact context is counted: the refusal is the extra key, nothing else
    exact = run(attested_stack, enclave, encrypt(attested_stack, enclave.permissive_key_arn, ref.input_context()), ref)
    assert isinstance(exact, JobSuccess), exact

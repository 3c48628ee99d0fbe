"""Results bound to inputs, end to end (issue 11 §5): a real local stack (moto, attested-KMS
gateway, parent agent, simulated enclave in its own process).

The attack: the tenant's client encrypts an image and records the ciphertext's SHA-256 as what it
uploaded; what reaches the inbox under the job's key is instead a ciphertext someone else made
with the tenant's encryption context (the operator holding the tenant's role — on AWS every
`TenantRole` used to trust the operator account's root — here a separate session with the
tenant's credentials), of an image the tenant never sent. The enclave decrypts and counts it and
signs a genuine attestation. The tenant's verifier must refuse that result as `input_mismatch`,
and accept the very same artefacts when the expected digest is the substitute's (so the refusal
is the binding, nothing else).
"""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from pathlib import Path
from typing import Any

import aws_encryption_sdk
import boto3
import botocore.exceptions
import botocore.session
import pytest

from ccc.client.crypto import decrypt_result, encrypt_stream
from ccc.client.errors import VerificationError
from ccc.client.provenance import INPUT_MISMATCH, check_result_document, verify_result_attestation
from ccc_common.contracts.result_objects import attestation_key_for_result
from ccc_core.identity import JobRef

pytestmark = pytest.mark.slow
TENANT = "tenant-a"
JOB_TIMEOUT_S = 120.0


def _tenant_key_arn(info: Any) -> str:
    """The tenant's data key (interface C: per-tenant keys when the stack lists them)."""
    return dict(getattr(info, "tenant_key_arns", None) or {}).get(TENANT, info.key_arn)


def _provider(info: Any) -> Any:
    identity = info.identity(TENANT)
    session = botocore.session.Session()
    session.set_credentials(identity.access_key_id, identity.secret_access_key)
    return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[_tenant_key_arn(info)], botocore_session=session)


def _encrypt(info: Any, image: bytes, job: JobRef) -> bytes:
    sink = io.BytesIO()
    encrypt_stream(io.BytesIO(image), sink, provider=_provider(info), context=job.input_context())
    return sink.getvalue()


def _s3(info: Any) -> Any:
    identity = info.identity(TENANT)
    return boto3.session.Session(
        aws_access_key_id=identity.access_key_id, aws_secret_access_key=identity.secret_access_key,
        region_name=info.region,
    ).client("s3", endpoint_url=info.endpoint_url)


def _get(s3: Any, bucket: str, key: str) -> bytes | None:
    """The object, or None while it does not exist (S3 answers 403 instead of 404 to a caller that
    may not list the bucket, so both mean "not there yet")."""
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "AccessDenied", "403"}:
            return None
        raise


def _wait_for_result(s3: Any, info: Any, job: JobRef) -> bytes:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        failure = _get(s3, info.results_bucket, job.failure_key)
        assert failure is None, f"the job failed instead of producing a result: {failure!r}"
        result = _get(s3, info.results_bucket, job.result_key)
        if result is not None:
            return result
        time.sleep(0.5)
    raise AssertionError(f"no result for {job.job_id} within {JOB_TIMEOUT_S} s")


def test_a_result_for_a_ciphertext_the_client_did_not_upload_is_an_input_mismatch(
    stack, samples: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    info = stack.info
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", info.kms_endpoint_url)  # the tenant's ESDK through the gateway
    job = JobRef(tenant=TENANT, job_id=uuid.uuid4().hex)
    images = sorted(samples)
    recorded = hashlib.sha256(_encrypt(info, images[0].read_bytes(), job)).hexdigest()  # the client's record
    substitute = _encrypt(info, images[1].read_bytes(), job)  # someone else's image, the tenant's context
    assert hashlib.sha256(substitute).hexdigest() != recorded

    s3 = _s3(info)
    s3.put_object(Bucket=info.inbox_bucket, Key=job.inbox_key, Body=substitute)
    result = _wait_for_result(s3, info, job)
    document = _get(s3, info.results_bucket, attestation_key_for_result(job, result))
    assert document is not None, "the result has no attestation document"
    root, pcrs = info.attestation_root_der(), info.expected_pcr_bytes()

    with pytest.raises(VerificationError) as refused:
        verify_result_attestation(document, result, root_der=root, expected_pcrs=pcrs,
                                  expected_input_sha256=recorded)
    assert refused.value.reason == INPUT_MISMATCH

    # The same artefacts verify against the digest of what was really processed: the attestation is
    # genuine, the enclave just vouches for a different input than the tenant's.
    verified = verify_result_attestation(document, result, root_der=root, expected_pcrs=pcrs,
                                         expected_input_sha256=hashlib.sha256(substitute).hexdigest())
    assert verified.input_sha256 == hashlib.sha256(substitute).hexdigest()
    payload = decrypt_result(result, job, provider=_provider(info))
    check_result_document(verified, payload)
    assert payload.input_sha256 == verified.input_sha256 != recorded

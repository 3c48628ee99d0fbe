"""Per-tenant keys on a real local stack: the operator's admin can neither read results nor change a
tenant's key, moto's KMS is no way around the gateway, and a normal job still completes.

One stack of its own (separate processes: moto, the attested-KMS gateway, an enclave worker).
Clients here use only the AWS Encryption SDK and boto3 with the stack's local identities, exactly
as a tenant's tooling would, so the test depends on no client code but the stack's description.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aws_encryption_sdk
import boto3
import pytest
from aws_encryption_sdk.identifiers import CommitmentPolicy
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
from botocore.config import Config
from botocore.exceptions import ClientError

from ccc.local.aws_config import botocore_session
from ccc.local.stack import LocalStack
from ccc.local.state import StackInfo
from ccc_core.identity import JobRef

pytestmark = pytest.mark.slow
JOB_TIMEOUT_S = 120.0
SDK = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, model_present: None) -> Iterator[LocalStack]:
    with LocalStack.start(tmp_path_factory.mktemp("stack"), workers=1) as running:
        yield running


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from ccc.evaluation.samples import write_samples

    return write_samples(tmp_path_factory.mktemp("samples"))[0].read_bytes()


def _provider(info: StackInfo, identity: str, key_arn: str) -> Any:
    return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[key_arn], botocore_session=botocore_session(info, identity)
    )


def _kms(info: StackInfo, identity: str, endpoint_url: str) -> Any:
    record = info.identity(identity)
    return boto3.client(
        "kms",
        endpoint_url=endpoint_url,
        region_name=info.region,
        aws_access_key_id=record.access_key_id,
        aws_secret_access_key=record.secret_access_key,
        config=Config(retries={"max_attempts": 1}),
    )


def _code(call: Any) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return str(info.value.response["Error"]["Code"])


@pytest.fixture(scope="module")
def finished_job(stack: LocalStack, image: bytes) -> tuple[JobRef, bytes, bytes]:
    """tenant-a's job, encrypted to tenant-a's own key: (job, input ciphertext, result ciphertext)."""
    info = stack.info
    job = JobRef("tenant-a", uuid.uuid4().hex)
    sealed, _ = SDK.encrypt(
        source=image,
        key_provider=_provider(info, "tenant-a", info.tenant_key_arns["tenant-a"]),
        encryption_context=job.input_context(),
    )
    s3 = boto3.session.Session(botocore_session=botocore_session(info, "tenant-a")).client("s3")
    s3.upload_fileobj(io.BytesIO(sealed), info.inbox_bucket, job.inbox_key)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while True:
        try:
            result = s3.get_object(Bucket=info.results_bucket, Key=job.result_key)["Body"].read()
            return job, sealed, result
        except ClientError:
            pass
        try:
            failure = s3.get_object(Bucket=info.results_bucket, Key=job.failure_key)["Body"].read()
            pytest.fail(f"the job failed: {failure.decode(errors='replace')}")
        except ClientError:
            pass
        assert time.monotonic() < deadline, f"no result for {job.job_id} in {JOB_TIMEOUT_S:.0f}s"
        time.sleep(1.0)


def test_env_json_shows_each_tenant_its_own_key(stack: LocalStack) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "ccc", "local", "env", "--json", "--state-dir", str(stack.state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    described = json.loads(shown.stdout)
    keys = described["tenant_key_arns"]
    assert set(keys) == {"tenant-a", "tenant-b"} and len(set(keys.values())) == 2
    for tenant, arn in keys.items():
        tenant_account = described["identities"][tenant]["principal_arn"].split(":")[4]
        assert arn.split(":")[4] == tenant_account != described["account_id"]  # the tenant's own account
        assert arn != described["key_arn"]


def test_a_job_under_the_tenant_key_completes_and_its_result_is_the_tenants_alone(
    stack: LocalStack, finished_job: tuple[JobRef, bytes, bytes]
) -> None:
    info = stack.info
    job, _, result = finished_job
    tenant_key = info.tenant_key_arns["tenant-a"]
    plaintext, header = SDK.decrypt(source=result, key_provider=_provider(info, "tenant-a", tenant_key))
    # The enclave sealed the result under the key that protected the input (interface C).
    assert [k.key_provider.key_info.decode() for k in header.encrypted_data_keys] == [tenant_key]
    assert {k: v for k, v in header.encryption_context.items() if k.startswith("ccc:")} == job.result_context()
    assert "cats" in json.loads(plaintext)
    for outsider in ("admin", "tenant-b", "parent"):
        with pytest.raises(aws_encryption_sdk.exceptions.AWSEncryptionSDKClientError):
            SDK.decrypt(source=result, key_provider=_provider(info, outsider, tenant_key))


def test_the_admin_can_neither_use_nor_change_a_tenant_key(
    stack: LocalStack, finished_job: tuple[JobRef, bytes, bytes]
) -> None:
    info = stack.info
    job, _, result = finished_job
    admin = _kms(info, "admin", info.kms_endpoint_url)
    key = info.tenant_key_arns["tenant-a"]
    _, header = SDK.decrypt(source=result, key_provider=_provider(info, "tenant-a", key))
    blob = header.encrypted_data_keys.pop().encrypted_data_key
    attempts = {
        "Decrypt": lambda: admin.decrypt(CiphertextBlob=blob, EncryptionContext=dict(header.encryption_context)),
        "PutKeyPolicy": lambda: admin.put_key_policy(
            KeyId=key,
            PolicyName="default",
            Policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}],
                }
            ),
        ),
        "CreateGrant": lambda: admin.create_grant(
            KeyId=key, GranteePrincipal=info.identity("admin").principal_arn, Operations=["Decrypt"]
        ),
        "ScheduleKeyDeletion": lambda: admin.schedule_key_deletion(KeyId=key, PendingWindowInDays=7),
        "DisableKey": lambda: admin.disable_key(KeyId=key),
        "GetKeyPolicy": lambda: admin.get_key_policy(KeyId=key, PolicyName="default"),
        "Encrypt": lambda: admin.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext=job.input_context()),
    }
    assert {name: _code(call) for name, call in attempts.items()} == dict.fromkeys(attempts, "AccessDeniedException")
    # The key is untouched: still enabled, still the policy it was made with.
    tenant = _kms(info, "tenant-a", info.kms_endpoint_url)
    assert tenant.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    assert "ccc-local-admin" not in tenant.get_key_policy(KeyId=key, PolicyName="default")["Policy"]


def test_moto_kms_is_no_way_around_the_gateway(stack: LocalStack, finished_job: tuple[JobRef, bytes, bytes]) -> None:
    """`AWS_ENDPOINT_URL_KMS=<moto> aws kms decrypt ...` used to decrypt any input's data key."""
    info = stack.info
    job, sealed, _ = finished_job
    header, _ = deserialize_header(io.BytesIO(sealed))  # the input's header: its wrapped data key
    edks = list(header.encrypted_data_keys)
    assert [e.key_provider.key_info.decode() for e in edks] == [info.tenant_key_arns["tenant-a"]]
    for identity in ("tenant-a", "admin", "parent"):
        moto = _kms(info, identity, info.endpoint_url)
        try:  # moto's KMS holds no key of the stack (and the local IAM layer may refuse KMS there at all)
            assert moto.list_keys()["Keys"] == []
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "AccessDeniedException"
        code = _code(
            lambda moto=moto: moto.decrypt(
                CiphertextBlob=edks[0].encrypted_data_key, EncryptionContext=dict(header.encryption_context)
            )
        )
        assert code in {"InvalidCiphertextException", "NotFoundException", "AccessDeniedException"}, code

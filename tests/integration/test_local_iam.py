"""The local tier enforces the IAM policies AWS enforces (issue 12 §3): a real moto server process
with its access control on, the local IAM gateway in front of it, the stack's identities and the
policy documents the CDK stack attaches to the matching roles (`ccc_common.domain.iam_policies`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from ccc.local.iam_gateway import IamGateway
from ccc.local.iam_stack import gateway_config
from ccc.local.iam_users import LAMBDAS, LocalIdentity, default_identities
from ccc.local.provision import create_buckets, create_jobs_table, create_queues
from ccc.local.ttl_sweeper import expire_items
from ccc_common.domain.naming import resource_names
from ccc_common.domain.settings import stage_settings

ACCOUNT = "123456789012"
REGION = "us-east-1"
JOB_A = "a" * 32
JOB_B = "b" * 32


def _wait_for(path: Path, process: subprocess.Popen[bytes], timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise RuntimeError(f"moto_service exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError("moto_service did not become ready")
        time.sleep(0.05)
    return dict(json.loads(path.read_text()))


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    ready = tmp_path_factory.mktemp("moto") / "moto.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "ccc.local.moto_service", "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield _wait_for(ready, process)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def stack(moto_server: dict[str, Any]) -> Iterator[SimpleNamespace]:
    names = resource_names("local", ACCOUNT, REGION)
    identities = dict(default_identities(ACCOUNT))
    config = gateway_config(
        upstream_url=moto_server["endpoint_url"],
        upstream=moto_server["upstream"],
        identities=identities.values(),
        names=names,
    )
    with IamGateway(config) as gateway:

        def client(identity: str, service: str, *, endpoint: str | None = None, **kwargs: Any) -> Any:
            who = identities[identity]
            return boto3.client(
                service,
                region_name=REGION,
                endpoint_url=endpoint or gateway.url,
                aws_access_key_id=who.access_key_id,
                aws_secret_access_key=who.secret_access_key,
                config=Config(retries={"max_attempts": 1}, **kwargs),
            )

        settings = stage_settings("local")
        create_buckets(client("admin", "s3"), names, settings)
        queue_url, *_ = create_queues(client("admin", "sqs"), names, settings)
        create_jobs_table(client("admin", "dynamodb"), names)
        admin_s3 = client("admin", "s3")
        for tenant, job in (("tenant-a", JOB_A), ("tenant-b", JOB_B)):
            admin_s3.put_object(
                Bucket=names.inbox_bucket, Key=f"jobs/{tenant}/{job}.ccc", Body=b"input-" + job.encode()
            )
            admin_s3.put_object(
                Bucket=names.results_bucket, Key=f"results/{tenant}/{job}.ccc", Body=b"result-" + job.encode()
            )
        client("admin", "dynamodb").put_item(
            TableName=names.jobs_table, Item={"job_id": {"S": JOB_B}, "tenant": {"S": "tenant-b"}}
        )
        client("admin", "sqs").send_message(QueueUrl=queue_url, MessageBody="work")
        yield SimpleNamespace(
            names=names, identities=identities, gateway=gateway, client=client, queue_url=queue_url, moto=moto_server
        )


def _code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


# ----- cross-tenant: denied --------------------------------------------------------------------


def test_tenant_cannot_read_another_tenants_result_or_input(stack: SimpleNamespace) -> None:
    s3 = stack.client("tenant-a", "s3")
    for bucket, key in (
        (stack.names.results_bucket, f"results/tenant-b/{JOB_B}.ccc"),
        (stack.names.inbox_bucket, f"jobs/tenant-b/{JOB_B}.ccc"),
        (stack.names.inbox_bucket, f"jobs/tenant-a/{JOB_A}.ccc"),  # even its own input: write-only
    ):
        with pytest.raises(ClientError) as excinfo:
            s3.get_object(Bucket=bucket, Key=key)
        assert _code(excinfo) == "AccessDenied", key
        with pytest.raises(ClientError) as excinfo:
            s3.head_object(Bucket=bucket, Key=key)
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_tenant_cannot_write_into_another_tenants_prefix(stack: SimpleNamespace) -> None:
    s3 = stack.client("tenant-a", "s3")
    for bucket, key in (
        (stack.names.inbox_bucket, f"jobs/tenant-b/{'c' * 32}.ccc"),
        (stack.names.inbox_bucket, f"jobs/tenant-b/{JOB_B}.ccc"),  # overwrite the victim's input
        (stack.names.results_bucket, f"results/tenant-b/{JOB_B}.ccc"),  # forge the victim's result
        (stack.names.results_bucket, f"results/tenant-a/{JOB_A}.ccc"),  # or its own
    ):
        with pytest.raises(ClientError) as excinfo:
            s3.put_object(Bucket=bucket, Key=key, Body=b"forged")
        assert _code(excinfo) == "AccessDenied", key
    admin = stack.client("admin", "s3")
    assert admin.get_object(Bucket=stack.names.inbox_bucket, Key=f"jobs/tenant-b/{JOB_B}.ccc")["Body"].read() == (
        b"input-" + JOB_B.encode()
    )


def test_tenant_cannot_copy_another_tenants_object_into_its_own_prefix(stack: SimpleNamespace) -> None:
    s3 = stack.client("tenant-a", "s3")
    with pytest.raises(ClientError) as excinfo:
        s3.copy_object(
            Bucket=stack.names.inbox_bucket,
            Key=f"jobs/tenant-a/{'d' * 32}.ccc",
            CopySource={"Bucket": stack.names.results_bucket, "Key": f"results/tenant-b/{JOB_B}.ccc"},
        )
    assert _code(excinfo) == "AccessDenied"


def test_tenant_cannot_list_any_prefix(stack: SimpleNamespace) -> None:
    s3 = stack.client("tenant-a", "s3")
    for bucket in (stack.names.inbox_bucket, stack.names.results_bucket):
        for prefix in ("", "jobs/tenant-b/", "results/tenant-b/", "results/", "results/tenant-a", "jobs/tenant-a/"):
            with pytest.raises(ClientError) as excinfo:
                s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
            assert _code(excinfo) == "AccessDenied", (bucket, prefix)
    with pytest.raises(ClientError) as excinfo:
        s3.list_buckets()
    assert _code(excinfo) == "AccessDenied"
    # Its own results prefix it may list (the client without a jobs API finds its result so).
    listed = s3.list_objects_v2(Bucket=stack.names.results_bucket, Prefix=f"results/tenant-a/{JOB_A}")
    assert [o["Key"] for o in listed["Contents"]] == [f"results/tenant-a/{JOB_A}.ccc"]


def test_tenant_cannot_scan_query_or_read_the_jobs_table(stack: SimpleNamespace) -> None:
    dynamodb = stack.client("tenant-a", "dynamodb")
    table = stack.names.jobs_table
    calls = (
        lambda: dynamodb.scan(TableName=table),
        lambda: dynamodb.get_item(TableName=table, Key={"job_id": {"S": JOB_B}}),
        lambda: dynamodb.query(
            TableName=table, KeyConditionExpression="job_id = :j", ExpressionAttributeValues={":j": {"S": JOB_B}}
        ),
        lambda: dynamodb.batch_get_item(RequestItems={table: {"Keys": [{"job_id": {"S": JOB_B}}]}}),
        lambda: dynamodb.update_item(
            TableName=table,
            Key={"job_id": {"S": JOB_B}},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "failed"}},
        ),
        lambda: dynamodb.describe_table(TableName=table),
        lambda: dynamodb.list_tables(),
    )
    for call in calls:
        with pytest.raises(ClientError) as excinfo:
            call()
        assert _code(excinfo) == "AccessDeniedException"


def test_tenant_cannot_touch_the_work_queue(stack: SimpleNamespace) -> None:
    sqs = stack.client("tenant-a", "sqs")
    for call in (
        lambda: sqs.receive_message(QueueUrl=stack.queue_url),
        lambda: sqs.send_message(QueueUrl=stack.queue_url, MessageBody="x"),
        lambda: sqs.purge_queue(QueueUrl=stack.queue_url),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert _code(excinfo) == "AccessDenied"


# ----- the door around the gateway is shut ------------------------------------------------------


def test_moto_itself_refuses_every_local_identity(stack: SimpleNamespace) -> None:
    """Pointing the AWS CLI straight at moto (AWS_ENDPOINT_URL=<moto>) gets nowhere: moto's access
    control is on and knows only the gateway's upstream credential."""
    moto = stack.moto["endpoint_url"]
    for identity in ("tenant-a", "parent", "admin"):
        with pytest.raises(ClientError) as excinfo:
            stack.client(identity, "s3", endpoint=moto).get_object(
                Bucket=stack.names.results_bucket, Key=f"results/tenant-b/{JOB_B}.ccc"
            )
        assert _code(excinfo) == "InvalidAccessKeyId"
        with pytest.raises(ClientError) as excinfo:
            stack.client(identity, "dynamodb", endpoint=moto).scan(TableName=stack.names.jobs_table)
        # moto answers its InvalidClientTokenId in XML, which the JSON client reads as a bare 403.
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert "security token included in the request is invalid" in str(excinfo.value)


def test_moto_management_api_is_refused(stack: SimpleNamespace) -> None:
    """moto's /moto-api/reset-auth would switch its access control off for everyone."""
    for path in ("/moto-api/reset-auth", "/moto-api/data.json", "/moto-api/reset"):
        request = urllib.request.Request(stack.moto["endpoint_url"] + path, data=b"1000", method="POST")
        with pytest.raises(urllib.error.HTTPError) as excinfo:
            urllib.request.urlopen(request, timeout=10)
        assert excinfo.value.code == 403, path
    with pytest.raises(ClientError):
        stack.client("tenant-a", "s3", endpoint=stack.moto["endpoint_url"]).list_buckets()


def test_unsigned_and_badly_signed_requests_are_refused(stack: SimpleNamespace) -> None:
    url = f"{stack.gateway.url}/{stack.names.results_bucket}/results/tenant-b/{JOB_B}.ccc"
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(url, timeout=10)
    assert excinfo.value.code == 403 and b"<Code>AccessDenied</Code>" in excinfo.value.read()  # anonymous
    forged = LocalIdentity(
        "tenant-a",
        stack.identities["tenant-a"].principal_arn,
        stack.identities["tenant-a"].access_key_id,
        "not-the-secret-" * 3,
    )
    s3 = boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=stack.gateway.url,
        aws_access_key_id=forged.access_key_id,
        aws_secret_access_key=forged.secret_access_key,
    )
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=stack.names.inbox_bucket, Key=f"jobs/tenant-a/{JOB_A}.ccc", Body=b"x")
    assert _code(excinfo) == "SignatureDoesNotMatch"


def test_kms_is_not_served_by_the_iam_gateway(stack: SimpleNamespace) -> None:
    kms = stack.client("admin", "kms")
    with pytest.raises(ClientError) as excinfo:
        kms.list_keys()
    assert "attested-KMS gateway" in str(excinfo.value)


# ----- normal paths: allowed ---------------------------------------------------------------------


def test_tenant_writes_its_own_inbox_prefix_and_reads_its_own_results(stack: SimpleNamespace) -> None:
    s3 = stack.client("tenant-a", "s3")
    s3.put_object(Bucket=stack.names.inbox_bucket, Key=f"jobs/tenant-a/{'e' * 32}.ccc", Body=b"own input")
    body = s3.get_object(Bucket=stack.names.results_bucket, Key=f"results/tenant-a/{JOB_A}.ccc")["Body"].read()
    assert body == b"result-" + JOB_A.encode()
    # A missing result of its own is 403, not 404, as on S3 for a caller who may not list the bucket.
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=stack.names.results_bucket, Key=f"results/tenant-a/{'f' * 32}.ccc")
    assert _code(excinfo) == "AccessDenied"


def test_parent_does_its_job_and_nothing_more(stack: SimpleNamespace) -> None:
    s3, sqs, dynamodb = (stack.client("parent", s) for s in ("s3", "sqs", "dynamodb"))
    names = stack.names
    messages = sqs.receive_message(QueueUrl=stack.queue_url, WaitTimeSeconds=1)["Messages"]
    sqs.change_message_visibility(
        QueueUrl=stack.queue_url, ReceiptHandle=messages[0]["ReceiptHandle"], VisibilityTimeout=0
    )
    assert (
        s3.get_object(Bucket=names.inbox_bucket, Key=f"jobs/tenant-b/{JOB_B}.ccc")["Body"].read().startswith(b"input")
    )
    s3.put_object(Bucket=names.results_bucket, Key=f"results/tenant-b/{'9' * 32}.ccc", Body=b"r")
    s3.head_object(Bucket=names.results_bucket, Key=f"results/tenant-b/{'9' * 32}.ccc")
    # It may list both buckets, so a missing key is 404 ("not uploaded yet", "not finished").
    with pytest.raises(ClientError) as excinfo:
        s3.head_object(Bucket=names.inbox_bucket, Key=f"jobs/tenant-b/{'8' * 32}.ccc")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    dynamodb.get_item(TableName=names.jobs_table, Key={"job_id": {"S": JOB_B}})
    for call in (
        lambda: s3.put_object(Bucket=names.inbox_bucket, Key=f"jobs/tenant-b/{JOB_B}.ccc", Body=b"x"),
        lambda: s3.delete_object(Bucket=names.results_bucket, Key=f"results/tenant-b/{JOB_B}.ccc"),
        lambda: dynamodb.scan(TableName=names.jobs_table),
        lambda: dynamodb.put_item(TableName=names.jobs_table, Item={"job_id": {"S": "x"}}),
        lambda: sqs.send_message(QueueUrl=stack.queue_url, MessageBody="x"),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert _code(excinfo) in ("AccessDenied", "AccessDeniedException")


def _presigned_put(stack: SimpleNamespace, signer: str, key: str, expires: int = 60) -> str:
    s3 = stack.client(signer, "s3", signature_version="s3v4")
    return str(
        s3.generate_presigned_url(
            "put_object", Params={"Bucket": stack.names.inbox_bucket, "Key": key}, ExpiresIn=expires
        )
    )


def _put(url: str, body: bytes) -> int:
    # (urllib would label the body a form, which moto then parses away: say what it is, as the client does.)
    request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_presigned_upload_is_authorised_as_its_signer(stack: SimpleNamespace) -> None:
    """The client's normal path: the jobs API (lambdas identity) presigns the inbox PUT."""
    key = f"jobs/tenant-a/{'1' * 32}.ccc"
    assert _put(_presigned_put(stack, LAMBDAS, key), b"ciphertext") == 200
    admin = stack.client("admin", "s3")
    assert admin.get_object(Bucket=stack.names.inbox_bucket, Key=key)["Body"].read() == b"ciphertext"
    # A tenant can presign only what it may do itself.
    assert _put(_presigned_put(stack, "tenant-a", f"jobs/tenant-b/{'2' * 32}.ccc"), b"x") == 403
    assert _put(_presigned_put(stack, "tenant-a", f"jobs/tenant-a/{'2' * 32}.ccc"), b"x") == 200


def test_presigned_url_cannot_be_retargeted_or_used_after_expiry(stack: SimpleNamespace) -> None:
    url = _presigned_put(stack, LAMBDAS, f"jobs/tenant-a/{'3' * 32}.ccc")
    retargeted = url.replace("jobs/tenant-a/", "jobs/tenant-b/")
    assert _put(retargeted, b"x") == 403
    expired = _presigned_put(stack, LAMBDAS, f"jobs/tenant-a/{'4' * 32}.ccc", expires=1)
    time.sleep(2.1)
    assert _put(expired, b"x") == 403


def test_presigned_url_expiry_is_checked_against_its_signing_time(stack: SimpleNamespace) -> None:
    from ccc.local.sigv4 import header_lists
    from ccc.local.sigv4_s3 import verify_s3_presigned

    url = _presigned_put(stack, LAMBDAS, f"jobs/tenant-a/{'5' * 32}.ccc", expires=60)
    parts = urllib.parse.urlsplit(url)
    headers = header_lists([("host", parts.netloc)])
    secrets = {i.access_key_id: i.secret_access_key for i in stack.identities.values()}
    verify_s3_presigned(method="PUT", path=parts.path, query=parts.query, headers=headers, secret_for=secrets.get)
    later = datetime.now(UTC) + timedelta(seconds=120)
    from ccc.local.sigv4 import SignatureError

    with pytest.raises(SignatureError):
        verify_s3_presigned(
            method="PUT", path=parts.path, query=parts.query, headers=headers, secret_for=secrets.get, now=later
        )


def test_get_caller_identity_names_the_caller(stack: SimpleNamespace) -> None:
    """Always allowed on AWS, and the answer is the caller's own ARN (never the gateway's upstream user)."""
    for name in ("tenant-a", "parent"):
        who = stack.client(name, "sts").get_caller_identity()
        assert who["Arn"] == stack.identities[name].principal_arn
        assert who["Account"] == stack.identities[name].account_id


def test_the_supervisors_ttl_sweep_works_as_admin_through_the_gateway(stack: SimpleNamespace) -> None:
    """What `ccc local up` runs once a minute (ccc.local.ttl_sweeper), against moto's server."""
    dynamodb = stack.client("admin", "dynamodb")
    table = stack.names.jobs_table
    now = int(time.time())
    expired, later = "e" * 32, "f" * 32
    for job_id, ttl in ((expired, now - 10), (later, now + 3600)):
        dynamodb.put_item(TableName=table, Item={"job_id": {"S": job_id}, "tenant": {"S": "tenant-a"},
                                                 "ttl": {"N": str(ttl)}})
    assert expire_items(dynamodb, table, now=now) == 1
    assert "Item" not in dynamodb.get_item(TableName=table, Key={"job_id": {"S": expired}})
    assert "Item" in dynamodb.get_item(TableName=table, Key={"job_id": {"S": later}})
    assert "Item" in dynamodb.get_item(TableName=table, Key={"job_id": {"S": JOB_B}})  # no TTL: kept

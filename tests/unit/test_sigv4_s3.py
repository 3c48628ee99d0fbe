"""S3 SigV4 verification (header and presigned-query forms) and the IAM view of S3/DynamoDB/SQS requests.

Requests are signed by botocore itself, the client every part of the stack uses, so a verifier
that drifted from botocore's canonicalisation would fail here first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc.local.iam_eval import Access
from ccc.local.iam_requests import ClassifiedRequest, RequestFacts, classify, split_target
from ccc.local.sigv4 import SignatureError, header_lists
from ccc.local.sigv4_s3 import verify_s3_header, verify_s3_presigned

AKID = "AKIAEXAMPLEEXAMPLE01"
SECRET = "s" * 40
HOST = "127.0.0.1:4566"
SECRETS = {AKID: SECRET}


class _UnsignedPayloadAuth(S3SigV4Auth):
    """What botocore does over HTTPS: sign `UNSIGNED-PAYLOAD` instead of the body's hash."""

    def _should_sha256_sign_payload(self, request: AWSRequest) -> bool:
        return False


def _signed(method: str, path: str, body: bytes = b"", *, unsigned: bool = False) -> tuple[str, dict[str, list[str]]]:
    request = AWSRequest(method=method, url=f"http://{HOST}{path}", data=body)
    auth = _UnsignedPayloadAuth if unsigned else S3SigV4Auth
    auth(Credentials(AKID, SECRET), "s3", "us-east-1").add_auth(request)
    target = urlsplit(str(request.url))
    headers = header_lists([*request.headers.items(), ("host", HOST)])
    return target.path + (f"?{target.query}" if target.query else ""), headers


def _verify_header(method: str, target: str, headers: dict[str, list[str]], body: bytes) -> str:
    parts = urlsplit(target)
    info = verify_s3_header(
        method=method, path=parts.path, query=parts.query, headers=headers, body=body, secret_for=SECRETS.get
    )
    return info.access_key_id


def _presign(method: str, key: str, expires: int = 60) -> str:
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=f"http://{HOST}",
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        config=Config(signature_version="s3v4"),
    )
    operation = {"PUT": "put_object", "GET": "get_object"}[method]
    return str(client.generate_presigned_url(operation, Params={"Bucket": "b", "Key": key}, ExpiresIn=expires))


def _verify_presigned(method: str, url: str, now: datetime | None = None) -> str:
    parts = urlsplit(url)
    info = verify_s3_presigned(
        method=method,
        path=parts.path,
        query=parts.query,
        headers=header_lists([("host", parts.netloc)]),
        secret_for=SECRETS.get,
        now=now,
    )
    return info.access_key_id


@settings(max_examples=40, deadline=None)
@given(
    key=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="?#\\"),
        min_size=1,
        max_size=40,
    )
)
def test_botocore_signed_requests_verify_for_any_key(key: str) -> None:
    from urllib.parse import quote

    path = "/b/jobs/t/" + quote(key, safe="/~")
    target, headers = _signed("PUT", path, b"body")
    assert _verify_header("PUT", target, headers, b"body") == AKID
    url = _presign("PUT", f"jobs/t/{key}")
    assert _verify_presigned("PUT", url) == AKID


def test_a_changed_body_path_or_secret_is_refused() -> None:
    target, headers = _signed("PUT", "/b/jobs/t/k.ccc", b"body")
    with pytest.raises(SignatureError) as excinfo:
        _verify_header("PUT", target, headers, b"other")
    assert excinfo.value.code == "XAmzContentSHA256Mismatch"
    with pytest.raises(SignatureError) as excinfo:
        _verify_header("PUT", target.replace("/t/", "/u/"), headers, b"body")
    assert excinfo.value.code == "SignatureDoesNotMatch"
    with pytest.raises(SignatureError) as excinfo:
        verify_s3_header(
            method="PUT",
            path="/b/jobs/t/k.ccc",
            query="",
            headers=headers,
            body=b"body",
            secret_for={AKID: "x" * 40}.get,
        )
    assert excinfo.value.code == "SignatureDoesNotMatch"


def test_unsigned_payload_is_accepted_and_signed_chunks_are_not() -> None:
    target, headers = _signed("PUT", "/b/k", b"anything", unsigned=True)
    assert headers["x-amz-content-sha256"] == ["UNSIGNED-PAYLOAD"]
    assert _verify_header("PUT", target, headers, b"anything") == AKID
    target, headers = _signed("PUT", "/b/k", b"x")
    headers["x-amz-content-sha256"] = ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD"]
    with pytest.raises(SignatureError, match="not supported"):
        _verify_header("PUT", target, headers, b"x")


def test_presigned_urls_cannot_be_retargeted_replayed_late_or_used_for_another_method() -> None:
    url = _presign("PUT", "jobs/tenant-a/k.ccc")
    for tampered in (url.replace("tenant-a", "tenant-b"), url.replace("X-Amz-Expires=60", "X-Amz-Expires=600")):
        with pytest.raises(SignatureError) as excinfo:
            _verify_presigned("PUT", tampered)
        assert excinfo.value.code == "SignatureDoesNotMatch"
    with pytest.raises(SignatureError):
        _verify_presigned("GET", url)
    with pytest.raises(SignatureError, match="expired"):
        _verify_presigned("PUT", url, now=datetime.now(UTC) + timedelta(seconds=61))
    with pytest.raises(SignatureError, match="not valid yet"):
        _verify_presigned("PUT", url, now=datetime.now(UTC) - timedelta(minutes=30))


def test_sigv2_and_unknown_keys_are_refused() -> None:
    sigv2 = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=f"http://{HOST}",
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
    ).generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    if "X-Amz-Signature" not in sigv2:  # botocore presigns S3 with SigV2 unless told s3v4
        with pytest.raises(SignatureError, match="SigV2"):
            _verify_presigned("GET", sigv2)
    url = _presign("GET", "k")
    parts = urlsplit(url)
    with pytest.raises(SignatureError) as excinfo:
        verify_s3_presigned(
            method="GET",
            path=parts.path,
            query=parts.query,
            headers=header_lists([("host", parts.netloc)]),
            secret_for=lambda _key: None,
        )
    assert excinfo.value.code == "InvalidAccessKeyId"


# ----- the IAM view of a request ---------------------------------------------------------------------


def _classify(method: str, target: str, service: str = "s3", body: bytes = b"", **headers: str) -> ClassifiedRequest:
    path, query = split_target(target)
    return classify(
        RequestFacts(
            method=method,
            path=path,
            query=query,
            headers={k.replace("_", "-"): [v] for k, v in headers.items()},
            body=body,
            service=service,
            region="us-east-1",
            account="123456789012",
        )
    )


def test_s3_requests_map_to_the_actions_and_arns_iam_checks() -> None:
    arn = "arn:aws:s3:::b"
    assert _classify("GET", "/b/jobs/t/k").needs == (Access("s3:GetObject", f"{arn}/jobs/t/k"),)
    assert _classify("HEAD", "/b/a%20b").needs == (Access("s3:GetObject", f"{arn}/a b"),)
    assert _classify("GET", "/b/k?versionId=1").needs == (Access("s3:GetObjectVersion", f"{arn}/k"),)
    assert _classify("PUT", "/b/k?tagging").needs == (Access("s3:PutObjectTagging", f"{arn}/k"),)
    listed = _classify("GET", "/b?list-type=2&prefix=results%2Ft%2F")
    assert listed.needs == (Access("s3:ListBucket", arn),) and listed.context["s3:prefix"] == ["results/t/"]
    copy = _classify("PUT", "/b/dst", x_amz_copy_source="/other/src%20key")
    assert copy.needs == (Access("s3:PutObject", f"{arn}/dst"), Access("s3:GetObject", "arn:aws:s3:::other/src key"))
    assert _classify("POST", "/b?delete").needs == (Access("s3:DeleteObject", f"{arn}/*"),)
    assert _classify("GET", "/").needs == (Access("s3:ListAllMyBuckets", "*"),)
    assert _classify("PATCH", "/b/k").needs == (Access("s3:Unclassified", "*"),)


def test_json_and_query_requests_name_their_table_index_or_queue() -> None:
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/jobs"
    assert _classify(
        "POST", "/", "dynamodb", b'{"TableName": "jobs"}', x_amz_target="DynamoDB_20120810.Scan"
    ).needs == (Access("dynamodb:Scan", table),)
    assert _classify(
        "POST",
        "/",
        "dynamodb",
        b'{"TableName": "jobs", "IndexName": "by-tenant"}',
        x_amz_target="DynamoDB_20120810.Query",
    ).needs == (Access("dynamodb:Query", f"{table}/index/by-tenant"),)
    batch = _classify(
        "POST",
        "/",
        "dynamodb",
        b'{"RequestItems": {"jobs": {}, "other": {}}}',
        x_amz_target="DynamoDB_20120810.BatchGetItem",
    )
    assert {a.resource for a in batch.needs} == {table, table.replace("jobs", "other")}
    queue = "arn:aws:sqs:us-east-1:123456789012:work"
    assert _classify(
        "POST", "/", "sqs", b'{"QueueUrl": "http://h/123456789012/work"}', x_amz_target="AmazonSQS.ReceiveMessage"
    ).needs == (Access("sqs:ReceiveMessage", queue),)
    assert _classify(
        "POST",
        "/",
        "sqs",
        b"Action=DeleteMessageBatch&QueueUrl=http%3A%2F%2Fh%2F123456789012%2Fwork",
        content_type="application/x-www-form-urlencoded",
    ).needs == (Access("sqs:DeleteMessage", queue),)
    scaled = _classify(
        "POST",
        "/",
        "autoscaling",
        b"Action=SetDesiredCapacity&AutoScalingGroupName=fleet",
        content_type="application/x-www-form-urlencoded",
    )
    assert scaled.needs == (
        Access(
            "autoscaling:SetDesiredCapacity",
            "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:*:autoScalingGroupName/fleet",
        ),
    )

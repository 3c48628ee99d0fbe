"""jobs_api handler on moto: real presigned URLs that work, and strict tenant isolation."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from ccc_common.aws.jobs_dal import DynamoJobStore
from ccc_common.contracts.result_objects import RESULT_SHA256_METADATA, attestation_key_for_result, result_sha256
from ccc_common.domain.jobs import JobEvent
from ccc_core.identity import JobRef
from tests.conftest import load_event
from tests.integration.fn_helpers import (
    INBOX,
    REGION,
    RESULTS,
    TABLE,
    FakeLambdaContext,
    create_bucket,
    create_jobs_table,
    load_handler,
)

ROLE_A = "arn:aws:iam::111122223333:role/ccc-tenant-a-client"
USER_B = "arn:aws:iam::111122223333:user/tenant-b-ci"
PRINCIPALS = {ROLE_A: "tenant-a", USER_B: "tenant-b"}


@pytest.fixture
def api(monkeypatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        create_jobs_table(boto3.client("dynamodb"))
        s3 = boto3.client("s3")
        create_bucket(s3, INBOX)
        create_bucket(s3, RESULTS)
        yield load_handler(
            monkeypatch,
            "jobs_api",
            {
                "CCC_JOBS_TABLE": TABLE,
                "CCC_INBOX_BUCKET": INBOX,
                "CCC_RESULTS_BUCKET": RESULTS,
                "CCC_TENANT_PRINCIPALS": json.dumps(PRINCIPALS),
            },
        )


def invoke(module: ModuleType, name: str, *, user_arn: str | None = None, **changes: Any) -> tuple[int, dict]:
    event = load_event(name)
    if user_arn is not None:
        event["requestContext"]["identity"]["userArn"] = user_arn
    event.update(changes)
    response = module.handler(event, FakeLambdaContext())
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def get_job_event(job_id: str) -> dict[str, Any]:
    event = load_event("apigw_get_job.json")
    event["path"] = f"/jobs/{job_id}"
    event["pathParameters"] = {"job_id": job_id}
    return event


def test_submit_upload_with_the_presigned_url_then_fetch_results(api) -> None:
    status, created = invoke(api, "apigw_post_jobs.json")
    assert status == 201 and created["tenant"] == "tenant-a" and created["status"] == "submitted"
    ref = JobRef(tenant="tenant-a", job_id=created["job_id"])
    assert created["encryption_context"] == ref.input_context()
    upload = created["upload"]
    assert upload["method"] == "PUT" and upload["key"] == ref.inbox_key and upload["bucket"] == INBOX
    query = urllib.parse.parse_qs(urllib.parse.urlparse(upload["url"]).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and "X-Amz-Signature" in query

    # the URL really uploads to the inbox key (moto intercepts the HTTP request)
    assert requests.put(upload["url"], data=b"\x02\x05ciphertext", timeout=10).status_code == 200
    assert boto3.client("s3").get_object(Bucket=INBOX, Key=ref.inbox_key)["Body"].read() == b"\x02\x05ciphertext"

    status, body = invoke(api, "apigw_get_job.json", **_path(ref.job_id))
    assert status == 200 and body["status"] == "submitted" and body["result"] is None

    s3 = boto3.client("s3")
    s3.put_object(Bucket=RESULTS, Key=attestation_key_for_result(ref, b"result-ciphertext"), Body=b"attestation-doc")
    s3.put_object(Bucket=RESULTS, Key=ref.result_key, Body=b"result-ciphertext",
                  Metadata={RESULT_SHA256_METADATA: result_sha256(b"result-ciphertext")})
    DynamoJobStore(boto3.client("dynamodb"), TABLE, ttl_days=30).apply(JobEvent.done(ref, datetime.now(UTC)))
    status, body = invoke(api, "apigw_get_job.json", **_path(ref.job_id))
    assert status == 200 and body["status"] == "done"
    assert requests.get(body["result"]["url"], timeout=10).content == b"result-ciphertext"
    assert requests.get(body["attestation"]["url"], timeout=10).content == b"attestation-doc"


def _path(job_id: str) -> dict[str, Any]:
    event = get_job_event(job_id)
    return {"path": event["path"], "pathParameters": event["pathParameters"]}


def test_a_caller_never_sees_another_tenants_job(api) -> None:
    _, created = invoke(api, "apigw_post_jobs.json")
    status, body = invoke(api, "apigw_get_job.json", user_arn=USER_B, **_path(created["job_id"]))
    assert status == 404 and body["error"] == "not-found"
    status, listing = invoke(api, "apigw_list_jobs.json", user_arn=USER_B)
    assert status == 200 and listing == {"jobs": [], "next_cursor": None}
    status, mine = invoke(api, "apigw_list_jobs.json")
    assert [job["job_id"] for job in mine["jobs"]] == [created["job_id"]]


def test_unmapped_callers_and_bad_requests(api) -> None:
    assert invoke(api, "apigw_post_jobs.json", user_arn="arn:aws:iam::999999999999:user/mallory")[0] == 403
    assert invoke(api, "apigw_post_jobs.json", user_arn="")[0] == 403
    assert invoke(api, "apigw_post_jobs.json", body='{"tenant": "tenant-b"}')[0] == 400
    encoded = base64.b64encode(b"{}").decode()
    assert invoke(api, "apigw_post_jobs.json", body=encoded, isBase64Encoded=True)[0] == 201
    assert invoke(api, "apigw_list_jobs.json", queryStringParameters={"limit": "1000"})[0] == 400
    assert invoke(api, "apigw_get_job.json", **_path("zz"))[0] == 404


def test_responses_are_not_cached(api) -> None:
    event = load_event("apigw_list_jobs.json")
    response = api.handler(event, FakeLambdaContext())
    assert response["headers"]["Cache-Control"] == "no-store"

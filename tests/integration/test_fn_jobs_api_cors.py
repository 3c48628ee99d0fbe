"""The jobs API Lambda's CORS answer (API Gateway answers the preflight; a proxy integration must add
Allow-Origin itself): the builder's rule from CCC_WEB_ORIGINS, exactly the page's origin, never `*`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType

import boto3
import pytest
from moto import mock_aws

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
PAGE = "https://cats.example.com"


def _api(monkeypatch: pytest.MonkeyPatch, origins: str | None) -> ModuleType:
    env = {
        "CCC_JOBS_TABLE": TABLE,
        "CCC_INBOX_BUCKET": INBOX,
        "CCC_RESULTS_BUCKET": RESULTS,
        "CCC_TENANT_PRINCIPALS": json.dumps({ROLE_A: "tenant-a"}),
    }
    if origins is not None:
        env["CCC_WEB_ORIGINS"] = origins
    else:
        monkeypatch.delenv("CCC_WEB_ORIGINS", raising=False)
    module = load_handler(monkeypatch, "jobs_api", env)
    module.cors.cache_clear()  # a fresh cold start: the rule is read once per container
    return module


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        create_jobs_table(boto3.client("dynamodb"))
        s3 = boto3.client("s3")
        create_bucket(s3, INBOX)
        create_bucket(s3, RESULTS)
        yield


def _create(module: ModuleType, origin: str | None) -> dict[str, str]:
    event = load_event("apigw_post_jobs.json")
    event["requestContext"]["identity"]["userArn"] = ROLE_A
    event["headers"] = {**(event.get("headers") or {}), **({"origin": origin} if origin else {})}
    response = module.handler(event, FakeLambdaContext())
    assert response["statusCode"] == 201
    return dict(response["headers"])


def test_the_page_origin_is_allowed_to_read_the_answer(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    headers = _create(_api(monkeypatch, PAGE), PAGE)
    assert headers["Access-Control-Allow-Origin"] == PAGE
    assert "Access-Control-Allow-Credentials" not in headers


def test_another_origin_and_an_unconfigured_api_get_no_allow_origin(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "Access-Control-Allow-Origin" not in _create(_api(monkeypatch, PAGE), "https://evil.example")
    assert "Access-Control-Allow-Origin" not in _create(_api(monkeypatch, None), PAGE)

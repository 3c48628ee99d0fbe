"""CORS on the local tier as on AWS (ccc_common.domain.cors, the rules CDK sets): the page's origin
may preflight the inbox PUT, the results GET, the jobs API and KMS; another origin gets no
Access-Control-Allow-Origin, so its page cannot read anything. A real moto process behind the IAM
gateway (S3 answers preflights from the bucket's CORS configuration), the KMS gateway in-process."""

from __future__ import annotations

import http.client
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from ccc.local.iam_gateway import IamGateway
from ccc.local.iam_stack import gateway_config
from ccc.local.iam_users import default_identities
from ccc.local.kms.gateway import KmsGateway
from ccc.local.provision import create_buckets
from ccc.local.web_server import apply_bucket_cors
from ccc_common.domain.naming import resource_names
from ccc_common.domain.settings import stage_settings
from ccc_enclave.nsm.local_ca import LocalNitroCA
from tests.integration.test_local_iam import _wait_for

ACCOUNT = "123456789012"
REGION = "us-east-1"
PAGE = "http://127.0.0.1:8765"
EVIL = "http://127.0.0.1:9999"


def _request(url: str, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}


def _preflight(url: str, path: str, origin: str, method: str, headers: str = "") -> tuple[int, dict[str, str]]:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    return _request(url, "OPTIONS", path, asked)


@pytest.fixture(scope="module")
def s3_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    ready = tmp_path_factory.mktemp("moto") / "moto.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "ccc.local.moto_service", "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        moto = _wait_for(ready, process)
        names = resource_names("local", ACCOUNT, REGION)
        identities = dict(default_identities(ACCOUNT))
        config = gateway_config(
            upstream_url=moto["endpoint_url"], upstream=moto["upstream"], identities=identities.values(), names=names
        )
        with IamGateway(config) as gateway:
            admin = identities["admin"]
            s3 = boto3.client(
                "s3",
                region_name=REGION,
                endpoint_url=gateway.url,
                aws_access_key_id=admin.access_key_id,
                aws_secret_access_key=admin.secret_access_key,
            )
            create_buckets(s3, names, stage_settings("local"))
            apply_bucket_cors(s3, names.inbox_bucket, names.results_bucket, (PAGE,))
            yield gateway.url, names
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_page_may_preflight_the_inbox_put_and_the_results_get(s3_gateway: tuple[str, Any]) -> None:
    url, names = s3_gateway
    status, headers = _preflight(url, f"/{names.inbox_bucket}/jobs/tenant-a/{'a' * 32}.ccc", PAGE, "PUT")
    assert status == 200 and headers["access-control-allow-origin"] == PAGE
    status, headers = _preflight(url, f"/{names.results_bucket}/results/tenant-a/{'a' * 32}.ccc", PAGE, "GET")
    assert status == 200 and headers["access-control-allow-origin"] == PAGE


def test_another_origin_gets_no_allow_origin_from_s3(s3_gateway: tuple[str, Any]) -> None:
    url, names = s3_gateway
    status, headers = _preflight(url, f"/{names.inbox_bucket}/jobs/tenant-a/{'a' * 32}.ccc", EVIL, "PUT")
    assert status == 403 and "access-control-allow-origin" not in headers


def test_an_options_request_that_is_not_a_preflight_is_refused(s3_gateway: tuple[str, Any]) -> None:
    url, names = s3_gateway
    status, _ = _request(url, "OPTIONS", f"/{names.inbox_bucket}/x", {})
    assert status == 403


@pytest.fixture(scope="module")
def kms_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ca = LocalNitroCA.create(Path(tmp_path_factory.mktemp("ca")))
    gateway = KmsGateway(default_identities(ACCOUNT), ca.root_der).start()
    try:
        yield gateway.url
    finally:
        gateway.stop()


def test_kms_answers_a_browser_preflight_as_aws_kms_does(kms_gateway: str) -> None:
    status, headers = _preflight(kms_gateway, "/", PAGE, "POST", "authorization,content-type,x-amz-date,x-amz-target")
    assert status == 200 and headers["access-control-allow-origin"] == "*"
    # ... and a signed call's answer (here a refusal: unsigned) is readable by the page.
    status, headers = _request(kms_gateway, "POST", "/", {"Origin": PAGE, "Content-Length": "0"})
    assert status >= 400 and headers["access-control-allow-origin"] == "*"

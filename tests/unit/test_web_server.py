"""The local stack's web server: serves the built page, and the demo tenant's config only to itself."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccc.local.state import IdentityRecord, StackInfo
from ccc.local.web_server import WebServer


def _info() -> StackInfo:
    identity = IdentityRecord(
        name="tenant-a",
        principal_arn="arn:aws:iam::123456789013:role/t",
        access_key_id="AKIDEXAMPLE",
        secret_access_key="secret",
    )
    return StackInfo(
        state_dir="/tmp/x",
        stage="local",
        account_id="123456789012",
        region="us-east-1",
        endpoint_url="http://127.0.0.1:1001",
        kms_endpoint_url="http://127.0.0.1:1002",
        inbox_bucket="in",
        results_bucket="out",
        artifacts_bucket="art",
        queue_url="q",
        dlq_url="d",
        jobs_table="t",
        key_arn="k",
        key_alias="a",
        identities={"tenant-a": identity},
        attestation_root_pem="/x",
        expected_pcrs={},
        workers=1,
        api_url="http://127.0.0.1:1003",
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WebServer]:
    (tmp_path / "dist").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>ccc</title>")
    (tmp_path / "dist" / "app.js").write_text("console.log('ccc')")
    started = WebServer(_info, root=tmp_path).start()
    yield started
    started.stop()


def _get(server: WebServer, path: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    address = server.origin.split("//", 1)[1]
    connection = http.client.HTTPConnection(address, timeout=5)
    connection.request("GET", path, headers={"Host": host or address})
    response = connection.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_the_page_and_its_bundle_are_served_with_a_policy_that_allows_no_other_script(server: WebServer):
    status, headers, body = _get(server, "/")
    assert status == 200 and b"ccc" in body
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy and "http://127.0.0.1:1003" in policy
    status, headers, _ = _get(server, "/dist/app.js")
    assert status == 200 and "javascript" in headers["content-type"]


def test_the_config_names_the_endpoints_and_the_demo_tenant(server: WebServer):
    status, headers, body = _get(server, "/local/config.json")
    config = json.loads(body)
    assert status == 200 and headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in headers  # no other origin's page may read it
    assert config["tenant"] == "tenant-a" and config["api_url"] == "http://127.0.0.1:1003"
    assert config["credentials"]["accessKeyId"] == "AKIDEXAMPLE"


def test_a_request_for_another_host_name_is_refused(server: WebServer):
    # A DNS-rebinding page reaches this port under its own host name: it gets nothing.
    status, _, body = _get(server, "/local/config.json", host="evil.example:80")
    assert status == 421 and b"secret" not in body


def test_nothing_outside_the_page_is_served(server: WebServer):
    for path in ("/../pyproject.toml", "/dist/../index.html", "/node_modules/x", "/dist/other.js"):
        assert _get(server, path)[0] == 404


def test_an_unbuilt_page_says_how_to_build_it(tmp_path: Path):
    started = WebServer(_info, root=tmp_path).start()
    try:
        status, _, body = _get(started, "/")
        assert status == 503 and b"make setup" in body
    finally:
        started.stop()

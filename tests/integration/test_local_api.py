"""The local jobs API front: SigV4 (execute-api) verification and the proxy event it builds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc.local.api_server import AuthError, Caller, proxy_event, verify_sigv4

AKID, SECRET, REGION = "AKIAEXAMPLE000000001", "s3cr3t-s3cr3t-s3cr3t-s3cr3t", "us-east-1"
BASE = "http://127.0.0.1:8080"


def _signed(method="POST", path="/jobs", body=b"{}", secret=SECRET, service="execute-api", region=REGION):
    request = AWSRequest(method=method, url=BASE + path, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(AKID, secret), service, region).add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = "127.0.0.1:8080"
    raw_path = request.url[len(BASE):]
    return method, raw_path, headers, body


def _verify(method, raw_path, headers, body, **kwargs):
    return verify_sigv4(
        method=method, raw_path=raw_path, headers=headers, body=body, region=REGION,
        secret_for={AKID: SECRET}.get, **kwargs,
    )


@pytest.mark.parametrize("path", ["/jobs", "/jobs/" + "ab" * 16, "/jobs?limit=5&cursor=a%2Bb%3D"])
def test_botocore_signed_requests_verify(path):
    method = "GET" if "?" in path or path.count("/") == 2 else "POST"
    assert _verify(*_signed(method=method, path=path, body=b"" if method == "GET" else b"{}")) == AKID


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"secret": "wrong-secret-wrong-secret"}, "does not match"),
        ({"service": "kms"}, "service"),
        ({"region": "eu-west-1"}, "region"),
    ],
)
def test_wrong_secret_service_or_region_is_refused(kwargs, reason):
    with pytest.raises(AuthError, match=reason):
        _verify(*_signed(**kwargs))


def test_unsigned_unknown_key_and_stale_requests_are_refused():
    method, path, headers, body = _signed()
    with pytest.raises(AuthError, match="Authorization"):
        _verify(method, path, {k: v for k, v in headers.items() if k != "authorization"}, body)
    with pytest.raises(AuthError, match="unknown"):
        verify_sigv4(method=method, raw_path=path, headers=headers, body=body, region=REGION, secret_for={}.get)
    with pytest.raises(AuthError, match="clock"):
        _verify(method, path, headers, body, now=datetime.now(UTC) + timedelta(hours=1))


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(["method", "path", "query", "body", "date"]),
    junk=st.text("abcxyz019", min_size=1, max_size=5),
)
def test_any_change_after_signing_breaks_the_signature(field, junk):
    method, path, headers, body = _signed(method="GET", path="/jobs?limit=5", body=b"")
    if field == "method":
        method = "DELETE"
    elif field == "path":
        path = "/jobs/" + junk + "?limit=5"
    elif field == "query":
        path = "/jobs?limit=5" + junk
    elif field == "body":
        body = junk.encode()
    else:  # one second later: still within the clock skew, but not what was signed
        moment = datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ") + timedelta(seconds=1)
        headers = {**headers, "x-amz-date": moment.strftime("%Y%m%dT%H%M%SZ")}
    with pytest.raises(AuthError):
        _verify(method, path, headers, body)


def test_proxy_event_names_the_verified_caller_and_route():
    caller = Caller("tenant-a", "arn:aws:iam::123456789012:role/ccc-local-tenant-a", AKID)
    event = proxy_event(
        method="GET", raw_path="/jobs/" + "ab" * 16, headers={"authorization": "secret-ish", "host": "h"},
        body=b"", caller=caller, account="123456789012",
    )
    assert event["requestContext"]["identity"]["userArn"] == caller.principal_arn
    assert event["resource"] == "/jobs/{job_id}" and event["pathParameters"] == {"job_id": "ab" * 16}
    assert "authorization" not in event["headers"]

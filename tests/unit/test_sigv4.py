"""The one SigV4 verifier of the local stack (`ccc.local.sigv4`), against botocore's own signer.

Two profiles use it: the local jobs API (service execute-api, one region, any path) and the KMS
gateway (service kms, POST to "/", x-amz-target signed). The tests of each profile came from the
two former verifiers; the last ones pin the access-key rule they now share.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc.local.sigv4 import (
    KMS_PROFILE,
    SignatureError,
    execute_api_profile,
    header_lists,
    verify_request,
)

SECRET = "s3cr3t-s3cr3t-s3cr3t-s3cr3t"

# --- the jobs API profile (execute-api) ----------------------------------------------------------

API_AKID, API_REGION = "AKIAEXAMPLE000000001", "us-east-1"
BASE = "http://127.0.0.1:8080"


def _api_signed(method="POST", path="/jobs", body=b"{}", secret=SECRET, service="execute-api", region=API_REGION,
                akid=API_AKID):
    request = AWSRequest(method=method, url=BASE + path, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(akid, secret), service, region).add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = "127.0.0.1:8080"
    raw_path = request.url[len(BASE):]
    return method, raw_path, headers, body


def _api_verify(method, raw_path, headers, body, secret_for=None, **kwargs):
    return verify_request(
        profile=execute_api_profile(API_REGION), method=method, path=raw_path, headers=header_lists(headers.items()),
        body=body, secret_for=secret_for or {API_AKID: SECRET}.get, **kwargs,
    ).access_key_id


@pytest.mark.parametrize("path", ["/jobs", "/jobs/" + "ab" * 16, "/jobs?limit=5&cursor=a%2Bb%3D"])
def test_botocore_signed_api_requests_verify(path):
    method = "GET" if "?" in path or path.count("/") == 2 else "POST"
    assert _api_verify(*_api_signed(method=method, path=path, body=b"" if method == "GET" else b"{}")) == API_AKID


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"secret": "wrong-secret-wrong-secret"}, "does not match"),
        ({"service": "kms"}, "service"),
        ({"region": "eu-west-1"}, "region"),
    ],
)
def test_wrong_secret_service_or_region_is_refused(kwargs, reason):
    with pytest.raises(SignatureError, match=reason):
        _api_verify(*_api_signed(**kwargs))


def test_unsigned_unknown_key_and_stale_requests_are_refused():
    method, path, headers, body = _api_signed()
    with pytest.raises(SignatureError, match="Authorization"):
        _api_verify(method, path, {k: v for k, v in headers.items() if k != "authorization"}, body)
    with pytest.raises(SignatureError, match="unknown"):
        _api_verify(method, path, headers, body, secret_for={}.get)
    with pytest.raises(SignatureError, match="clock"):
        _api_verify(method, path, headers, body, now=datetime.now(UTC) + timedelta(hours=1))


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(["method", "path", "query", "body", "date"]),
    junk=st.text("abcxyz019", min_size=1, max_size=5),
)
def test_any_change_after_signing_breaks_the_signature(field, junk):
    method, path, headers, body = _api_signed(method="GET", path="/jobs?limit=5", body=b"")
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
    with pytest.raises(SignatureError):
        _api_verify(method, path, headers, body)


# --- the KMS gateway profile (kms) ---------------------------------------------------------------

AKID = "AKIAABCDEFGHIJKLMNOP"


def _signed(body: bytes = b'{"KeyId": "k"}', *, target: str = "TrentService.DescribeKey", akid: str = AKID,
            **headers: str) -> Any:
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:4566/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target, **headers},
    )
    SigV4Auth(Credentials(akid, SECRET), "kms", "eu-west-1").add_auth(request)
    return request


def _headers(request: Any) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {"host": ["127.0.0.1:4566"]}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value.decode() if isinstance(value, bytes) else value)
    return headers


def _verify(request: Any, *, body: bytes | None = None, headers: dict | None = None, **kwargs: Any) -> Any:
    profile = replace(KMS_PROFILE, service=kwargs.pop("service")) if "service" in kwargs else KMS_PROFILE
    return verify_request(
        profile=profile,
        method="POST",
        path=kwargs.pop("path", "/"),
        headers=headers if headers is not None else _headers(request),
        body=(request.body or b"") if body is None else body,
        secret_for=kwargs.pop("secret_for", lambda akid: SECRET if akid == AKID else None),
        **kwargs,
    )


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=2000), op=st.sampled_from(["Decrypt", "Encrypt", "DescribeKey"]))
def test_botocore_signatures_verify_and_any_body_change_breaks_them(body: bytes, op: str) -> None:
    request = _signed(body, target=f"TrentService.{op}")
    info = _verify(request)
    assert (info.access_key_id, info.region, info.service) == (AKID, "eu-west-1", "kms")
    with pytest.raises(SignatureError) as err:
        _verify(request, body=body + b" ")
    assert err.value.code == "InvalidSignatureException"


def test_changing_a_signed_header_breaks_the_signature() -> None:
    request = _signed()
    headers = _headers(request)
    headers["x-amz-target"] = ["TrentService.Decrypt"]
    with pytest.raises(SignatureError, match="does not match"):
        _verify(request, headers=headers)


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda h: h.pop("authorization"), "MissingAuthenticationTokenException"),
        (lambda h: h.update(authorization=["AWS4-HMAC-SHA256 Credential=nonsense"]), "IncompleteSignatureException"),
        (lambda h: h.update({"x-amz-security-token": ["token"]}), "UnrecognizedClientException"),
        (
            lambda h: h.update({"x-amz-content-sha256": [hashlib.sha256(b"other").hexdigest()]}),
            "InvalidSignatureException",
        ),
        (lambda h: h.update({"x-amz-date": ["yesterday"]}), "IncompleteSignatureException"),
        (lambda h: h.pop("host"), "IncompleteSignatureException"),
    ],
)
def test_malformed_authentication_is_refused_with_kms_codes(edit: Any, code: str) -> None:
    request = _signed()
    headers = _headers(request)
    edit(headers)
    with pytest.raises(SignatureError) as err:
        _verify(request, headers=headers)
    assert err.value.code == code


def test_unknown_keys_wrong_secrets_paths_and_services_are_refused() -> None:
    request = _signed()
    with pytest.raises(SignatureError) as err:
        _verify(request, secret_for=lambda akid: None)
    assert err.value.code == "UnrecognizedClientException"
    with pytest.raises(SignatureError) as err:
        _verify(request, secret_for=lambda akid: "another-secret-of-enough-length")
    assert err.value.code == "InvalidSignatureException"
    with pytest.raises(SignatureError):
        _verify(request, path="/?x=1")
    with pytest.raises(SignatureError, match="service"):
        _verify(request, service="s3")


def test_requests_outside_the_clock_skew_are_refused() -> None:
    request = _signed()
    assert _verify(request, now=datetime.now(UTC) + timedelta(minutes=14))
    with pytest.raises(SignatureError, match="expired"):
        _verify(request, now=datetime.now(UTC) + timedelta(minutes=16))


def test_the_kms_profile_requires_a_signed_target() -> None:
    request = AWSRequest(method="POST", url="http://127.0.0.1:4566/", data=b"{}",
                         headers={"Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(AKID, SECRET), "kms", "eu-west-1").add_auth(request)
    with pytest.raises(SignatureError, match="x-amz-target") as err:
        _verify(request)
    assert err.value.code == "IncompleteSignatureException"


# --- rules both profiles share -------------------------------------------------------------------


@pytest.mark.parametrize("akid", ["AKIAabcdefghijklmnop", "AKIA-0000000000000000", "AKIA000000", "A" * 129])
def test_access_key_ids_outside_the_iam_format_are_refused_by_both_profiles(akid: str) -> None:
    """The stricter of the two former rules: 16-128 upper-case letters and digits (what IAM issues
    and `ccc.local.iam_users` accepts), even when the server would know the key."""
    with pytest.raises(SignatureError) as err:
        _verify(_signed(akid=akid), secret_for=lambda key: SECRET)
    assert err.value.code == "IncompleteSignatureException"
    with pytest.raises(SignatureError, match="Authorization"):
        _api_verify(*_api_signed(akid=akid), secret_for=lambda key: SECRET)


def test_headers_the_signer_chose_are_canonicalised_even_where_botocore_would_not_sign_them() -> None:
    """A signer may sign `user-agent` (botocore never does): the verifier canonicalises exactly the
    declared SignedHeaders, so such a request verifies and a changed user-agent breaks it."""
    class SignsUserAgent(SigV4Auth):
        def headers_to_sign(self, request: Any) -> Any:
            headers = super().headers_to_sign(request)
            headers["user-agent"] = request.headers["User-Agent"]
            return headers

    request = AWSRequest(method="GET", url=BASE + "/jobs", data=b"", headers={"User-Agent": "custom/1.0"})
    SignsUserAgent(Credentials(API_AKID, SECRET), "execute-api", API_REGION).add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = "127.0.0.1:8080"
    assert "user-agent" in headers["authorization"]
    assert _api_verify("GET", "/jobs", headers, b"") == API_AKID
    with pytest.raises(SignatureError, match="does not match"):
        _api_verify("GET", "/jobs", {**headers, "user-agent": "other/2.0"}, b"")


def test_a_signed_header_sent_twice_is_folded_as_botocore_folds_it() -> None:
    """Both values, in order, joined by a comma: dropping one (as a dict of single values would)
    breaks the signature of a request that is genuine."""
    request = AWSRequest(method="GET", url=BASE + "/jobs", data=b"")
    request.headers["x-custom"] = "a"
    request.headers["x-custom"] = "b"  # botocore's HTTPHeaders keeps both
    SigV4Auth(Credentials(API_AKID, SECRET), "execute-api", API_REGION).add_auth(request)
    pairs = [(k, v) for k, v in request.headers.items()] + [("Host", "127.0.0.1:8080")]
    headers = header_lists(pairs)
    assert headers["x-custom"] == ["a", "b"]
    info = verify_request(profile=execute_api_profile(API_REGION), method="GET", path="/jobs", headers=headers,
                          body=b"", secret_for={API_AKID: SECRET}.get)
    assert info.access_key_id == API_AKID
    with pytest.raises(SignatureError, match="does not match"):
        verify_request(profile=execute_api_profile(API_REGION), method="GET", path="/jobs",
                       headers={**headers, "x-custom": ["a"]}, body=b"", secret_for={API_AKID: SECRET}.get)

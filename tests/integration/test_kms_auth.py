"""SigV4 verification against botocore's own signer, and the local identity table."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc.local.iam_users import (
    DEFAULT_NAMES,
    IdentityError,
    LocalIdentity,
    default_identities,
    identities_from_dict,
    identities_to_dict,
)
from ccc.local.kms.sigv4 import SignatureError, verify_request

AKID = "AKIAABCDEFGHIJKLMNOP"
SECRET = "s3cr3t-s3cr3t-s3cr3t-s3cr3t"


def _signed(body: bytes = b'{"KeyId": "k"}', *, target: str = "TrentService.DescribeKey", **headers: str) -> Any:
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:4566/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target, **headers},
    )
    SigV4Auth(Credentials(AKID, SECRET), "kms", "eu-west-1").add_auth(request)
    return request


def _headers(request: Any) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {"host": ["127.0.0.1:4566"]}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value.decode() if isinstance(value, bytes) else value)
    return headers


def _verify(request: Any, *, body: bytes | None = None, headers: dict | None = None, **kwargs: Any) -> Any:
    return verify_request(
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


# --- identities ---------------------------------------------------------------------------------


def test_default_identities_are_distinct_random_and_round_trip() -> None:
    first, second = default_identities("111122223333"), default_identities("111122223333")
    assert tuple(first) == DEFAULT_NAMES
    assert len({i.access_key_id for i in first.values()}) == 4
    assert {i.secret_access_key for i in first.values()}.isdisjoint(i.secret_access_key for i in second.values())
    assert first["parent"].principal_arn == "arn:aws:iam::111122223333:role/ccc-local-parent-instance"
    assert all(i.account_id == "111122223333" for i in first.values())
    assert identities_from_dict(identities_to_dict(first)) == first
    assert first["admin"].secret_access_key not in repr(first)


@pytest.mark.parametrize(
    "record",
    [
        {
            "name": "Admin",
            "principal_arn": "arn:aws:iam::111122223333:role/x",
            "access_key_id": AKID,
            "secret_access_key": SECRET,
        },
        {"name": "a", "principal_arn": "arn:aws:iam::1:role/x", "access_key_id": AKID, "secret_access_key": SECRET},
        {
            "name": "a",
            "principal_arn": "arn:aws:iam::111122223333:root",
            "access_key_id": AKID,
            "secret_access_key": SECRET,
        },
        {
            "name": "a",
            "principal_arn": "arn:aws:iam::111122223333:role/x",
            "access_key_id": "short",
            "secret_access_key": SECRET,
        },
        {
            "name": "a",
            "principal_arn": "arn:aws:iam::111122223333:role/x",
            "access_key_id": AKID,
            "secret_access_key": "short",
        },
        {"name": "a"},
        "not a mapping",
    ],
)
def test_malformed_identities_are_refused(record: Any) -> None:
    with pytest.raises(IdentityError):
        identities_from_dict({"a": record})


def test_identity_tables_must_be_consistent() -> None:
    ident = LocalIdentity("a", "arn:aws:iam::111122223333:role/x", AKID, SECRET)
    with pytest.raises(IdentityError, match="named"):
        identities_from_dict({"b": ident.to_dict()})
    twin = {**ident.to_dict(), "name": "b"}
    with pytest.raises(IdentityError, match="twice"):
        identities_from_dict({"a": ident.to_dict(), "b": twin})
    with pytest.raises(IdentityError):
        default_identities("not-an-account")

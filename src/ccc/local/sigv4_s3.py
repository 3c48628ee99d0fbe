"""Verify SigV4 on S3 requests: the Authorization-header form and the presigned-URL (query) form.

Why apart from `ccc.local.sigv4`: S3 signs differently from the JSON services that module serves.
The URI path is used as sent (no normalisation or double encoding), the payload hash is the
`x-amz-content-sha256` header (which may say `UNSIGNED-PAYLOAD`), and a presigned URL carries the
whole signature in its query (`X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
`X-Amz-SignedHeaders`, `X-Amz-Signature`) with an unsigned payload. The local stack hands tenants
presigned URLs signed by the jobs API, so both forms reach the local IAM gateway.

The checks both forms share with the JSON services (declared signed headers, signing time,
signature over botocore's canonical request — `S3SigV4Auth` here, over exactly the headers the
request says it signed) are `ccc.local.sigv4`'s, each raised with S3's own error code. Refused, with the error S3 gives:
SigV2 (`AWSAccessKeyId=` / `AWS ` headers: not supported for new buckets), session tokens (local
identities have none), signed-chunk streaming uploads (chunk signatures are not verified here;
botocore does not send them), a body that does not match its declared SHA-256, a request time
more than 15 minutes away, and a presigned URL past its expiry or valid for more than 7 days.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from botocore.auth import S3SigV4Auth
from botocore.credentials import Credentials

from ccc.local.sigv4 import (
    MAX_CLOCK_SKEW,
    DeclaredHeaders,
    Headers,
    SignatureError,
    SignedRequestInfo,
    check_signed_headers,
    first,
    parse_authorization,
    signature_with,
    signing_time,
)

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
MAX_PRESIGN_EXPIRY_S = 7 * 24 * 3600
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CREDENTIAL = re.compile(r"^(?P<akid>[A-Z0-9]{16,128})/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/s3/aws4_request$")

# S3's error codes (XML <Code>) for authentication failures.
ACCESS_DENIED = "AccessDenied"
SIGNATURE_MISMATCH = "SignatureDoesNotMatch"
INVALID_ACCESS_KEY = "InvalidAccessKeyId"
INVALID_REQUEST = "InvalidRequest"
AUTH_MALFORMED = "AuthorizationHeaderMalformed"
CONTENT_MISMATCH = "XAmzContentSHA256Mismatch"


class _DeclaredS3SigV4(DeclaredHeaders, S3SigV4Auth):
    """botocore's S3 SigV4 over exactly the declared headers, with a fixed payload hash."""

    def __init__(self, credentials: Credentials, region: str, signed: Sequence[str], payload_hash: str) -> None:
        super().__init__(credentials, "s3", region)
        self.signed_names = tuple(signed)
        self._payload_hash = payload_hash

    def payload(self, request: Any) -> str:
        return self._payload_hash


def _signature(
    *, method: str, path: str, query: str, headers: Headers, signed: Sequence[str], info: SignedRequestInfo,
    secret: str, amz_date: str, payload_hash: str,
) -> str:
    signer = _DeclaredS3SigV4(Credentials(info.access_key_id, secret), info.region, signed, payload_hash)
    target = path + (f"?{query}" if query else "")
    return signature_with(signer, method=method, target=target, headers=headers, body=b"", amz_date=amz_date)


def _signed_at(amz_date: str, credential_date: str) -> datetime:
    return signing_time(amz_date, credential_date, malformed=AUTH_MALFORMED, mismatch=AUTH_MALFORMED)


def _verified(expected: str, signature: str) -> None:
    if not hmac.compare_digest(expected, signature):
        raise SignatureError(
            SIGNATURE_MISMATCH, "The request signature we calculated does not match the signature you provided."
        )


def _secret(secret_for: Callable[[str], str | None], info: SignedRequestInfo) -> str:
    secret = secret_for(info.access_key_id)
    if secret is None:
        raise SignatureError(INVALID_ACCESS_KEY, "The AWS Access Key Id you provided does not exist in our records.")
    return secret


def is_presigned(query: Mapping[str, Sequence[str]]) -> bool:
    return "X-Amz-Signature" in query or "X-Amz-Credential" in query or "Signature" in query


def verify_s3_header(
    *,
    method: str,
    path: str,
    query: str,
    headers: Headers,
    body: bytes,
    secret_for: Callable[[str], str | None],
    now: datetime | None = None,
) -> SignedRequestInfo:
    """An S3 request signed in the Authorization header. ``query`` is the raw query string."""
    authorization = first(headers, "authorization")
    if authorization and authorization.startswith("AWS "):
        raise SignatureError(INVALID_REQUEST, "SigV2 is not supported: sign with AWS4-HMAC-SHA256")
    info, credential_date, signed, signature = parse_authorization(authorization)
    if info.service != "s3":
        raise SignatureError(AUTH_MALFORMED, f"credential scope names service {info.service!r}, expected 's3'")
    if "x-amz-security-token" in headers:
        raise SignatureError(INVALID_ACCESS_KEY, "local identities have no session tokens")
    check_signed_headers(signed, ("host", "x-amz-date", "x-amz-content-sha256"), headers, code=AUTH_MALFORMED)
    payload_hash = first(headers, "x-amz-content-sha256") or ""
    if _HEX64.fullmatch(payload_hash):
        if payload_hash != hashlib.sha256(body).hexdigest():
            raise SignatureError(CONTENT_MISMATCH, "the body does not match x-amz-content-sha256")
    elif payload_hash not in (UNSIGNED_PAYLOAD, UNSIGNED_TRAILER):
        raise SignatureError(INVALID_REQUEST, f"x-amz-content-sha256 {payload_hash[:40]!r} is not supported locally")
    secret = _secret(secret_for, info)
    amz_date = first(headers, "x-amz-date") or ""
    signed_at = _signed_at(amz_date, credential_date)
    if abs((now or datetime.now(UTC)) - signed_at) > MAX_CLOCK_SKEW:
        raise SignatureError(
            "RequestTimeTooSkewed", "The difference between the request time and the current time is too large."
        )
    expected = _signature(
        method=method,
        path=path,
        query=query,
        headers=headers,
        signed=signed,
        info=info,
        secret=secret,
        amz_date=amz_date,
        payload_hash=payload_hash,
    )
    _verified(expected, signature)
    return info


def strip_presign_params(query: str) -> str:
    """The raw query without the presigning parameters (what is forwarded once verified)."""
    kept = [pair for pair in query.split("&") if pair and not unquote(pair.split("=", 1)[0]).startswith("X-Amz-")]
    return "&".join(kept)


def verify_s3_presigned(
    *,
    method: str,
    path: str,
    query: str,
    headers: Headers,
    secret_for: Callable[[str], str | None],
    now: datetime | None = None,
) -> SignedRequestInfo:
    """An S3 request authenticated by its presigned query string. ``query`` is the raw query string."""
    pairs = [pair.partition("=") for pair in query.split("&") if pair]
    params: dict[str, list[str]] = {}
    for key, _, value in pairs:
        params.setdefault(unquote(key), []).append(unquote(value))
    if "Signature" in params or "AWSAccessKeyId" in params:
        raise SignatureError(INVALID_REQUEST, "SigV2 presigned URLs are not supported: presign with s3v4")

    def one(name: str) -> str:
        values = params.get(name)
        if not values or len(values) != 1:
            raise SignatureError(AUTH_MALFORMED, f"presigned URL needs exactly one {name}")
        return values[0]

    if one("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise SignatureError(AUTH_MALFORMED, "X-Amz-Algorithm must be AWS4-HMAC-SHA256")
    if "X-Amz-Security-Token" in params:
        raise SignatureError(INVALID_ACCESS_KEY, "local identities have no session tokens")
    credential = _CREDENTIAL.fullmatch(one("X-Amz-Credential"))
    if not credential:
        raise SignatureError(AUTH_MALFORMED, "X-Amz-Credential is not <access key>/<date>/<region>/s3/aws4_request")
    info = SignedRequestInfo(credential.group("akid"), credential.group("region"), "s3")
    signed = tuple(one("X-Amz-SignedHeaders").split(";"))
    check_signed_headers(signed, ("host",), headers, code=AUTH_MALFORMED)
    signature = one("X-Amz-Signature")
    if not re.fullmatch(r"[0-9a-f]{64}", signature):
        raise SignatureError(AUTH_MALFORMED, "X-Amz-Signature is not 64 hex digits")
    try:
        expires = int(one("X-Amz-Expires"))
    except ValueError:
        raise SignatureError(AUTH_MALFORMED, "X-Amz-Expires is not a number") from None
    if not 1 <= expires <= MAX_PRESIGN_EXPIRY_S:
        raise SignatureError(AUTH_MALFORMED, "X-Amz-Expires must be between 1 and 604800 seconds")
    amz_date = one("X-Amz-Date")
    signed_at = _signed_at(amz_date, credential.group("date"))
    current = now or datetime.now(UTC)
    if current > signed_at + timedelta(seconds=expires):
        raise SignatureError(ACCESS_DENIED, "Request has expired")
    if signed_at - current > MAX_CLOCK_SKEW:
        raise SignatureError(ACCESS_DENIED, "Request is not valid yet (X-Amz-Date in the future)")
    secret = _secret(secret_for, info)
    unsigned_query = "&".join(
        pair for pair in query.split("&") if pair and unquote(pair.split("=", 1)[0]) != "X-Amz-Signature"
    )
    expected = _signature(
        method=method,
        path=path,
        query=unsigned_query,
        headers=headers,
        signed=signed,
        info=info,
        secret=secret,
        amz_date=amz_date,
        payload_hash=UNSIGNED_PAYLOAD,
    )
    _verified(expected, signature)
    return info


__all__ = [
    "UNSIGNED_PAYLOAD",
    "is_presigned",
    "strip_presign_params",
    "verify_s3_header",
    "verify_s3_presigned",
]

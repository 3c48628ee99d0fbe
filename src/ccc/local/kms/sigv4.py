"""Verify AWS Signature Version 4 on requests to the local KMS gateway.

Why verify at all locally: the gateway decides who may decrypt from the caller's identity. If the
access key id alone identified the caller, anyone who saw it (it is not secret: it appears in
logs and headers) could act as the parent role. With the signature checked against the
identity's secret, only holders of the secret can.

Scope: what botocore sends to a JSON-protocol service: POST to "/", no query string, signed
headers including host, x-amz-date and x-amz-target, body hash computed over the body.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW = timedelta(minutes=15)
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z0-9-]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_REQUIRED_SIGNED = ("host", "x-amz-date", "x-amz-target")


class SignatureError(Exception):
    """The request is not signed acceptably. `code` is the AWS error type to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SignedRequestInfo:
    access_key_id: str
    region: str
    service: str


def parse_authorization(header: str | None) -> tuple[SignedRequestInfo, str, tuple[str, ...], str]:
    """(info, credential date, signed header names, signature) from an Authorization header."""
    if not header:
        raise SignatureError("MissingAuthenticationTokenException", "Request is missing Authentication Token")
    match = _AUTH_RE.fullmatch(header.strip())
    if not match:
        raise SignatureError("IncompleteSignatureException", "Authorization header is not a SigV4 signature")
    signed = tuple(match.group("signed").split(";"))
    info = SignedRequestInfo(match.group("akid"), match.group("region"), match.group("service"))
    return info, match.group("date"), signed, match.group("signature")


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _canonical_request(method: str, headers: Mapping[str, list[str]], signed: tuple[str, ...], body: bytes) -> str:
    lines = []
    for name in signed:
        values = headers.get(name)
        if not values:
            raise SignatureError("IncompleteSignatureException", f"signed header {name!r} is missing")
        lines.append(f"{name}:{','.join(' '.join(v.split()) for v in values)}")
    payload_hash = hashlib.sha256(body).hexdigest()
    return "\n".join([method.upper(), "/", "", "\n".join(lines) + "\n", ";".join(signed), payload_hash])


def verify_request(
    *,
    method: str,
    path: str,
    headers: Mapping[str, list[str]],
    body: bytes,
    secret_for: Callable[[str], str | None],
    service: str = "kms",
    now: datetime | None = None,
) -> SignedRequestInfo:
    """Check the SigV4 signature; `headers` maps lowercase names to all their values.

    `secret_for(access_key_id)` returns the secret or None for an unknown key. Raises
    SignatureError with the KMS error type for every failure; returns the signer's info.
    """
    authorization = headers.get("authorization", [None])[0]
    info, credential_date, signed, signature = parse_authorization(authorization)
    if path != "/":
        raise SignatureError("IncompleteSignatureException", f"unexpected request path {path!r}")
    if info.service != service:
        raise SignatureError("InvalidSignatureException", f"credential scope names service {info.service!r}")
    if list(signed) != sorted(set(signed)):
        raise SignatureError("IncompleteSignatureException", "SignedHeaders must be sorted and unique")
    for name in _REQUIRED_SIGNED:
        if name not in signed:
            raise SignatureError("IncompleteSignatureException", f"header {name!r} must be signed")
    if "x-amz-security-token" in headers:
        raise SignatureError("UnrecognizedClientException", "local identities have no session tokens")
    content_hash = headers.get("x-amz-content-sha256")
    if content_hash and content_hash[0] != hashlib.sha256(body).hexdigest():
        raise SignatureError("InvalidSignatureException", "x-amz-content-sha256 does not match the body")
    secret = secret_for(info.access_key_id)
    if secret is None:
        raise SignatureError("UnrecognizedClientException", "The security token included in the request is invalid.")
    amz_date = headers["x-amz-date"][0]
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SignatureError("IncompleteSignatureException", "x-amz-date is not an ISO 8601 basic timestamp") from None
    if amz_date[:8] != credential_date:
        raise SignatureError("InvalidSignatureException", "credential date does not match x-amz-date")
    current = now or datetime.now(UTC)
    if abs(current - signed_at) > MAX_CLOCK_SKEW:
        raise SignatureError("InvalidSignatureException", "Signature expired: the request time is too skewed")
    canonical = _canonical_request(method, headers, signed, body)
    scope = f"{credential_date}/{info.region}/{info.service}/aws4_request"
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _signing_key(secret, credential_date, info.region, info.service)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise SignatureError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        )
    return info

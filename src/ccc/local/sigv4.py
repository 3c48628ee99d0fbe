"""Verify AWS Signature Version 4 on requests to the local stack's own HTTP fronts.

Two servers of the local stack stand where AWS would check IAM signatures: the jobs API
(`ccc.local.api_server`, service ``execute-api``, as API Gateway with AWS_IAM authorisation) and
the attested KMS gateway (`ccc.local.kms.gateway_core`, service ``kms``). Both decide what a caller
may do from its identity. If the access key id alone identified the caller, anyone who saw it (it
is not secret: it appears in logs and headers) could act as that identity; with the signature
checked against the identity's secret, only holders of the secret can.

Why botocore: the canonical request and string to sign are rebuilt with `botocore.auth.SigV4Auth`
on a `botocore.awsrequest.AWSRequest`, the same code that signs the clients' requests, rather than
with a second hand-written canonicalisation that could drift from it (path normalisation and
double encoding, query ordering, header folding). The one deviation is which headers are
canonicalised: a signer picks them, so the verifier takes exactly the ``SignedHeaders`` the request
declares instead of botocore's choice for outgoing requests (which drops e.g. ``user-agent``).

Rules both servers share, the stricter of the two former copies:

* the access key id is 16-128 upper-case letters and digits (IAM's access key id format, and what
  `ccc.local.iam_users` issues); anything else is a malformed Authorization header. (The KMS copy
  accepted any characters but ``/``, ``,`` and whitespace.)
* ``host`` and ``x-amz-date`` (and what the profile adds, e.g. ``x-amz-target`` for KMS) must be
  signed; ``SignedHeaders`` sorted and unique; no session token (local identities have none);
  ``x-amz-content-sha256``, if sent, must be the body's hash; the request time within 15 minutes.

Errors carry the AWS error type both API Gateway and KMS answer with (``code``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from ccc.local.errors import LocalStackError

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW = timedelta(minutes=15)
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[A-Z0-9]{16,128})/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z0-9-]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"

# AWS error types (API Gateway and KMS use the same ones for authentication failures).
MISSING_AUTHENTICATION = "MissingAuthenticationTokenException"
INCOMPLETE = "IncompleteSignatureException"
INVALID = "InvalidSignatureException"
UNRECOGNIZED = "UnrecognizedClientException"

Headers = Mapping[str, Sequence[str]]  # lower-case header name -> every value, in order


class SignatureError(LocalStackError):
    """The request is not signed acceptably. ``code`` is the AWS error type to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SignedRequestInfo:
    access_key_id: str
    region: str
    service: str


@dataclass(frozen=True)
class Sigv4Profile:
    """What one server accepts: its service name, region, must-sign headers and request paths."""

    service: str
    region: str | None = None  # None: any region (the caller's scope is reported)
    required_signed: tuple[str, ...] = ("host", "x-amz-date")
    root_path_only: bool = False  # JSON-protocol services (KMS): POST to "/" without a query


KMS_PROFILE = Sigv4Profile(service="kms", required_signed=("host", "x-amz-date", "x-amz-target"), root_path_only=True)


def execute_api_profile(region: str) -> Sigv4Profile:
    """The jobs API: service execute-api in the stack's region, any path and query."""
    return Sigv4Profile(service="execute-api", region=region)


def header_lists(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """``Headers`` from (name, value) pairs as an HTTP server sees them (repeated names kept)."""
    headers: dict[str, list[str]] = {}
    for name, value in items:
        headers.setdefault(name.lower(), []).append(value)
    return headers


class DeclaredHeaders:
    """For botocore signers: canonicalise exactly the headers the request says it signed (a signer
    picks them; botocore's choice for outgoing requests drops e.g. ``user-agent``)."""

    signed_names: tuple[str, ...] = ()

    def headers_to_sign(self, request: Any) -> HTTPHeaders:
        selected = HTTPHeaders()
        for name in self.signed_names:
            for value in request.headers.get_all(name) or []:
                selected[name] = value
        return selected


class _DeclaredHeadersSigV4(DeclaredHeaders, SigV4Auth):
    """botocore's SigV4 over the declared headers."""

    def __init__(self, credentials: Credentials, service: str, region: str, signed: Sequence[str]) -> None:
        super().__init__(credentials, service, region)
        self.signed_names = tuple(signed)


def signature_with(
    signer: SigV4Auth, *, method: str, target: str, headers: Headers, body: bytes, amz_date: str
) -> str:
    """The signature `signer` (a `DeclaredHeaders` botocore signer) computes for this request.
    ``target`` is the raw request target, query included. The URL's host is never used: the host
    that was signed is the ``host`` header among the declared ones."""
    request = AWSRequest(method=method.upper(), url=f"http://signed-host{target}", data=body)
    for name in getattr(signer, "signed_names", ()):
        for value in headers.get(name, ()):
            request.headers[name] = value
    request.context["timestamp"] = amz_date
    canonical = signer.canonical_request(request)
    signature: str = signer.signature(signer.string_to_sign(request, canonical), request)
    return signature


def first(headers: Headers, name: str) -> str | None:
    """The first value of a (lower-case) header, or None."""
    values = headers.get(name)
    return values[0] if values else None


def check_signed_headers(signed: Sequence[str], required: Sequence[str], headers: Headers, *, code: str) -> None:
    """SignedHeaders sorted and unique, every required name among them, every signed one present."""
    if list(signed) != sorted(set(signed)):
        raise SignatureError(code, "SignedHeaders must be sorted and unique")
    for name in required:
        if name not in signed:
            raise SignatureError(code, f"header {name!r} must be signed")
    for name in signed:
        if not headers.get(name):
            raise SignatureError(code, f"signed header {name!r} is missing")


def signing_time(amz_date: str, credential_date: str, *, malformed: str, mismatch: str) -> datetime:
    """The request's X-Amz-Date, which must be ISO 8601 basic and on the credential scope's date."""
    try:
        signed_at = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise SignatureError(malformed, "X-Amz-Date is not an ISO 8601 basic timestamp") from None
    if amz_date[:8] != credential_date:
        raise SignatureError(mismatch, "the credential date does not match X-Amz-Date")
    return signed_at


def parse_authorization(header: str | None) -> tuple[SignedRequestInfo, str, tuple[str, ...], str]:
    """(info, credential date, signed header names, signature) from an Authorization header."""
    if not header:
        raise SignatureError(
            MISSING_AUTHENTICATION, "Request is missing Authentication Token (no SigV4 Authorization header)"
        )
    match = _AUTH_RE.fullmatch(header.strip())
    if not match:
        raise SignatureError(INCOMPLETE, "Authorization header is not a SigV4 signature of a valid access key id")
    signed = tuple(match.group("signed").split(";"))
    info = SignedRequestInfo(match.group("akid"), match.group("region"), match.group("service"))
    return info, match.group("date"), signed, match.group("signature")


def _check_scope(profile: Sigv4Profile, info: SignedRequestInfo, path: str) -> None:
    if not path.startswith("/") or (profile.root_path_only and path != "/"):
        raise SignatureError(INCOMPLETE, f"unexpected request path {path[:100]!r}")
    if info.service != profile.service:
        raise SignatureError(INVALID, f"credential scope names service {info.service!r}, expected {profile.service!r}")
    if profile.region is not None and info.region != profile.region:
        raise SignatureError(INVALID, f"credential scope names region {info.region!r}, expected {profile.region!r}")


def _check_headers(profile: Sigv4Profile, headers: Headers, signed: tuple[str, ...], body: bytes) -> None:
    check_signed_headers(signed, profile.required_signed, headers, code=INCOMPLETE)
    if "x-amz-security-token" in headers:
        raise SignatureError(UNRECOGNIZED, "local identities have no session tokens")
    content_hash = first(headers, "x-amz-content-sha256")
    if content_hash is not None and content_hash != hashlib.sha256(body).hexdigest():
        raise SignatureError(INVALID, "x-amz-content-sha256 does not match the body")


def _check_time(amz_date: str, credential_date: str, now: datetime) -> None:
    signed_at = signing_time(amz_date, credential_date, malformed=INCOMPLETE, mismatch=INVALID)
    if abs(now - signed_at) > MAX_CLOCK_SKEW:
        raise SignatureError(INVALID, "Signature expired: the request time is too far from the server's clock")


def expected_signature(
    *, method: str, path: str, headers: Headers, body: bytes, signed: Sequence[str], info: SignedRequestInfo,
    secret: str, amz_date: str,
) -> str:
    """The signature botocore computes for this request as signed (canonical request, string to
    sign and signing key all from `SigV4Auth`). ``path`` is the raw request target, query included."""
    signer = _DeclaredHeadersSigV4(Credentials(info.access_key_id, secret), info.service, info.region, signed)
    return signature_with(signer, method=method, target=path, headers=headers, body=body, amz_date=amz_date)


def verify_request(
    *,
    profile: Sigv4Profile,
    method: str,
    path: str,
    headers: Headers,
    body: bytes,
    secret_for: Callable[[str], str | None],
    now: datetime | None = None,
) -> SignedRequestInfo:
    """Check the SigV4 signature of one request; return who signed it or raise SignatureError.

    ``path`` is the raw request target (path and query as received); ``headers`` maps lower-case
    names to all their values; ``secret_for(access_key_id)`` is the secret, or None for a key
    this server does not know.
    """
    info, credential_date, signed, signature = parse_authorization(first(headers, "authorization"))
    _check_scope(profile, info, path)
    _check_headers(profile, headers, signed, body)
    secret = secret_for(info.access_key_id)
    if secret is None:
        raise SignatureError(
            UNRECOGNIZED, "The security token included in the request is invalid (unknown access key id)"
        )
    amz_date = first(headers, "x-amz-date") or ""
    _check_time(amz_date, credential_date, now or datetime.now(UTC))
    expected = expected_signature(
        method=method, path=path, headers=headers, body=body, signed=signed, info=info, secret=secret,
        amz_date=amz_date,
    )
    if not hmac.compare_digest(expected, signature):
        raise SignatureError(INVALID, "The request signature we calculated does not match the signature you provided.")
    return info


__all__ = [
    "KMS_PROFILE",
    "MAX_CLOCK_SKEW",
    "DeclaredHeaders",
    "Headers",
    "SignatureError",
    "SignedRequestInfo",
    "Sigv4Profile",
    "check_signed_headers",
    "execute_api_profile",
    "first",
    "header_lists",
    "signature_with",
    "signing_time",
    "verify_request",
]

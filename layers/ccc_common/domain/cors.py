"""Which web origins may call the stack from a browser, and how: the CORS rules, built once.

Why one module: the browser client (web/) talks to three endpoints cross-origin: the jobs API
(SigV4-signed fetches), the inbox bucket (the presigned PUT of the ciphertext) and the results
bucket (the presigned GETs of the result and its attestation), plus KMS for the ESDK. The CDK stack
sets these rules on API Gateway and the buckets; the local stack answers the same preflights from
the same rules (`ccc.local` web server, jobs API server, IAM gateway via moto's bucket CORS). If the
two built them separately, a page that works locally could fail on AWS, or the local tier could let
through an origin AWS refuses.

What is deliberately *not* allowed: credentials (cookies) on any surface (`Allow-Credentials` is never
sent: every request is SigV4-signed or presigned), wildcard origins on the API and the buckets, and
methods a surface does not need (the inbox takes PUT only, the results bucket GET/HEAD only).

KMS is different: AWS KMS answers CORS itself for any origin (it is not configurable; every request
is SigV4-signed, so the origin grants nothing). `KMS_CORS` states that behaviour so the local KMS
gateway answers as KMS does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ccc_common.contracts.lambda_env import WEB_ORIGINS
from ccc_common.errors import CommonError

# The jobs API Lambda's variable (CDK sets it; the local stack's supervisor passes it to every child).
WEB_ORIGINS_ENV: Final = WEB_ORIGINS
MAX_AGE_SECONDS: Final = 600
# What the AWS SDK for JavaScript and the page send on signed requests.
SIGNED_REQUEST_HEADERS: Final = (
    "authorization",
    "content-type",
    "x-amz-content-sha256",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-target",
    "x-amz-user-agent",
    "amz-sdk-invocation-id",
    "amz-sdk-request",
)
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d{1,5})?$")


class CorsError(CommonError, ValueError):
    """An origin that cannot be allowed (not scheme://host[:port], or a wildcard)."""


@dataclass(frozen=True)
class CorsRule:
    """One surface's rule, in the vocabulary S3 and API Gateway share."""

    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...]
    allowed_headers: tuple[str, ...]
    expose_headers: tuple[str, ...] = ()
    max_age_seconds: int = MAX_AGE_SECONDS

    def allows_origin(self, origin: str | None) -> bool:
        return origin is not None and ("*" in self.allowed_origins or origin in self.allowed_origins)

    def preflight_headers(
        self, origin: str | None, method: str | None, request_headers: str | None
    ) -> dict[str, str] | None:
        """The answer to a preflight, or None when it is refused (origin, method or a header not allowed)."""
        if not self.allows_origin(origin) or method is None or method.upper() not in self.allowed_methods:
            return None
        asked = [h.strip().lower() for h in (request_headers or "").split(",") if h.strip()]
        if "*" not in self.allowed_headers and any(h not in self.allowed_headers for h in asked):
            return None
        assert origin is not None
        return {
            "Access-Control-Allow-Origin": "*" if "*" in self.allowed_origins else origin,
            "Access-Control-Allow-Methods": ", ".join(self.allowed_methods),
            "Access-Control-Allow-Headers": ", ".join(asked) if asked else ", ".join(self.allowed_headers),
            "Access-Control-Max-Age": str(self.max_age_seconds),
            "Vary": "Origin",
        }

    def response_headers(self, origin: str | None) -> dict[str, str]:
        """Headers for the actual (non-preflight) response; empty when the origin is not allowed."""
        if not self.allows_origin(origin):
            return {}
        assert origin is not None
        headers = {"Access-Control-Allow-Origin": "*" if "*" in self.allowed_origins else origin, "Vary": "Origin"}
        if self.expose_headers:
            headers["Access-Control-Expose-Headers"] = ", ".join(self.expose_headers)
        return headers


@dataclass(frozen=True)
class WebClientCors:
    """The rules of every surface the browser client calls."""

    jobs_api: CorsRule
    inbox_bucket: CorsRule
    results_bucket: CorsRule


def check_origins(origins: Iterable[str]) -> tuple[str, ...]:
    """Exact origins only: a wildcard would let any page drive a signed-in tenant's session."""
    checked = tuple(dict.fromkeys(origins))
    for origin in checked:
        if not _ORIGIN.fullmatch(origin):
            raise CorsError(f"web origin {origin[:100]!r} is not scheme://host[:port] (no path, no wildcard)")
    return checked


def web_client_cors(origins: Iterable[str]) -> WebClientCors:
    """The CORS rules for a browser client served from `origins` (none: no cross-origin access)."""
    allowed = check_origins(origins)
    return WebClientCors(
        jobs_api=CorsRule(allowed, ("GET", "POST", "OPTIONS"), SIGNED_REQUEST_HEADERS),
        # The presigned PUT signs only the host; the page sends the body with no other header.
        inbox_bucket=CorsRule(allowed, ("PUT",), ("content-type", "content-length"), ("etag",)),
        results_bucket=CorsRule(allowed, ("GET", "HEAD"), ("range",), ("content-length", "etag")),
    )


# AWS KMS's own answer (see the module docstring): any origin, POST, whatever headers the SDK asks for.
KMS_CORS: Final = CorsRule(("*",), ("POST", "OPTIONS"), ("*",), ("x-amzn-requestid",))


def s3_cors_configuration(rule: CorsRule) -> dict[str, Any]:
    """`CORSConfiguration` for S3 PutBucketCors (boto3) — the local stack applies it to moto."""
    return {
        "CORSRules": [
            {
                "AllowedOrigins": list(rule.allowed_origins),
                "AllowedMethods": list(rule.allowed_methods),
                "AllowedHeaders": list(rule.allowed_headers),
                "ExposeHeaders": list(rule.expose_headers),
                "MaxAgeSeconds": rule.max_age_seconds,
            }
        ]
    }


def cdk_s3_cors_rule(rule: CorsRule) -> Mapping[str, Any]:
    """Keyword arguments of `aws_s3.CorsRule` (methods as `HttpMethods` names) for the CDK stack."""
    return {
        "allowed_origins": list(rule.allowed_origins),
        "allowed_methods": list(rule.allowed_methods),
        "allowed_headers": list(rule.allowed_headers),
        "exposed_headers": list(rule.expose_headers),
        "max_age": rule.max_age_seconds,
    }


def origins_from_env(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The origins named in `CCC_WEB_ORIGINS` (comma-separated); none when unset."""
    raw = environ.get(WEB_ORIGINS_ENV, "")
    return check_origins(o.strip() for o in raw.split(",") if o.strip())


__all__ = [
    "KMS_CORS",
    "WEB_ORIGINS_ENV",
    "CorsError",
    "CorsRule",
    "WebClientCors",
    "cdk_s3_cors_rule",
    "check_origins",
    "origins_from_env",
    "s3_cors_configuration",
    "web_client_cors",
]

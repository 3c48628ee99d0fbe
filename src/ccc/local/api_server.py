"""The jobs API over HTTP for the local stack: SigV4 (IAM auth) in front of the real Lambda handler.

On AWS, API Gateway (REST, AWS_IAM authorisation) verifies the caller's SigV4 signature and hands
the Lambda a proxy event whose `requestContext.identity.userArn` names the caller. Locally this
server does the same for the stack's identities: it verifies the signature with the identity's
secret (service `execute-api`), builds the same proxy event, calls `functions.jobs_api.handler`,
and returns its status, headers and body. An unsigned or badly signed request is answered 403
like API Gateway does, and never reaches the handler.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

log = logging.getLogger("ccc.local.api")

SERVICE = "execute-api"
STAGE_NAME = "local"
MAX_BODY_BYTES = 64 * 1024
MAX_CLOCK_SKEW = timedelta(minutes=15)
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[A-Z0-9]{16,128})/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z0-9-]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


class AuthError(Exception):
    """The request is not signed by a known identity (answered 403, as API Gateway does)."""


@dataclass(frozen=True)
class Caller:
    name: str
    principal_arn: str
    access_key_id: str


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _canonical_query(query: str) -> str:
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)


def verify_sigv4(
    *,
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    body: bytes,
    region: str,
    secret_for: Callable[[str], str | None],
    now: datetime | None = None,
) -> str:
    """Check a SigV4 `execute-api` signature; returns the signer's access key id or raises AuthError."""
    match = _AUTH_RE.fullmatch((headers.get("authorization") or "").strip())
    if match is None:
        raise AuthError("missing or malformed SigV4 Authorization header")
    if match.group("service") != SERVICE or match.group("region") != region:
        raise AuthError("credential scope names another service or region")
    signed = match.group("signed").split(";")
    if signed != sorted(set(signed)) or "host" not in signed or "x-amz-date" not in signed:
        raise AuthError("host and x-amz-date must be signed (sorted, unique)")
    if "x-amz-security-token" in headers:
        raise AuthError("local identities have no session tokens")
    amz_date = headers.get("x-amz-date", "")
    try:
        moment = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise AuthError("x-amz-date is not a SigV4 timestamp") from None
    if abs((now or datetime.now(UTC)) - moment) > MAX_CLOCK_SKEW or amz_date[:8] != match.group("date"):
        raise AuthError("request time is too far from the server's clock")
    secret = secret_for(match.group("akid"))
    if secret is None:
        raise AuthError("unknown access key id")
    split = urlsplit(raw_path)
    path = quote(split.path or "/", safe="/-_.~")
    lines = []
    for name in signed:
        if name not in headers:
            raise AuthError(f"signed header {name!r} is missing")
        lines.append(f"{name}:{' '.join(headers[name].split())}")
    payload = headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    if payload != hashlib.sha256(body).hexdigest():
        raise AuthError("x-amz-content-sha256 does not match the body")
    canonical = "\n".join(
        [method.upper(), path, _canonical_query(split.query), "\n".join(lines) + "\n", ";".join(signed), payload]
    )
    scope = f"{match.group('date')}/{region}/{SERVICE}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), match.group("date")), region), SERVICE), "aws4_request")
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match.group("signature")):
        raise AuthError("signature does not match")
    return match.group("akid")


def proxy_event(
    *, method: str, raw_path: str, headers: Mapping[str, str], body: bytes, caller: Caller, account: str
) -> dict[str, Any]:
    """The API Gateway REST proxy event the Lambda would receive (IAM-authorised caller)."""
    split = urlsplit(raw_path)
    query = dict(parse_qsl(split.query, keep_blank_values=True)) or None
    resource = "/jobs/{job_id}" if split.path.rstrip("/").count("/") == 2 else "/jobs"
    text = body.decode("utf-8", errors="replace") if body else None
    return {
        "resource": resource,
        "path": split.path,
        "httpMethod": method.upper(),
        "headers": {k: v for k, v in headers.items() if k != "authorization"},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"job_id": split.path.rstrip("/").rsplit("/", 1)[1]} if resource != "/jobs" else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": account,
            "resourcePath": resource,
            "httpMethod": method.upper(),
            "stage": STAGE_NAME,
            "requestId": str(uuid.uuid4()),
            "identity": {
                "accessKey": caller.access_key_id,
                "userArn": caller.principal_arn,
                "caller": caller.principal_arn,
                "user": caller.name,
                "accountId": account,
                "sourceIp": "127.0.0.1",
            },
        },
        "body": text,
        "isBase64Encoded": False,
    }


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class LocalJobsApiServer:
    """ThreadingHTTPServer on loopback serving the jobs API handler."""

    def __init__(
        self,
        handler: Handler,
        context_factory: Callable[[], Any],
        callers: Mapping[str, Caller],
        secrets: Mapping[str, str],
        *,
        region: str,
        account: str,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._handler = handler
        self._context_factory = context_factory
        self._callers = dict(callers)  # access key id -> caller
        self._secrets = dict(secrets)  # access key id -> secret
        self.region = region
        self.account = account
        server = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return  # access logs would carry nothing but paths; the handler logs each request

            def _serve(self) -> None:
                server.serve_request(self)

            do_GET = _serve
            do_POST = _serve
            do_PUT = _serve
            do_DELETE = _serve

        self._http = ThreadingHTTPServer((host, port), _RequestHandler)
        self._http.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def start(self) -> LocalJobsApiServer:
        self._thread = threading.Thread(target=self._http.serve_forever, name="jobs-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def serve_request(self, request: BaseHTTPRequestHandler) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            length = int(headers.get("content-length", "0") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._reply(request, 413, {"message": "request body too large"})
            return
        body = request.rfile.read(length) if length else b""
        try:
            akid = verify_sigv4(
                method=request.command, raw_path=request.path, headers=headers, body=body,
                region=self.region, secret_for=self._secrets.get,
            )
        except AuthError as exc:
            log.info("jobs API: %s %s refused: %s", request.command, urlsplit(request.path).path, exc)
            self._reply(request, 403, {"message": f"Forbidden: {exc}"})
            return
        event = proxy_event(
            method=request.command, raw_path=request.path, headers=headers, body=body,
            caller=self._callers[akid], account=self.account,
        )
        try:
            response = self._handler(event, self._context_factory())
            status = int(response["statusCode"])
            payload = str(response.get("body") or "").encode()
            extra = dict(response.get("headers") or {})
        except Exception as exc:  # the Lambda crashed: API Gateway answers 502
            log.warning("jobs API handler failed: %s", type(exc).__name__)
            self._reply(request, 502, {"message": "Internal server error"})
            return
        self._send(request, status, payload, extra)

    def _reply(self, request: BaseHTTPRequestHandler, status: int, body: Mapping[str, Any]) -> None:
        self._send(request, status, json.dumps(body).encode(), {"Content-Type": "application/json"})

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

"""The local IAM gateway: SigV4 and IAM identity policies in front of moto, for S3, SQS, DynamoDB, ...

Why: moto answers any caller (or, with its access control on, evaluates only Action and Resource,
no Condition, and resource `*` for DynamoDB), so locally tenant-a could list, read and write
`jobs/tenant-b/...` and scan the jobs table. On AWS each role's IAM policies stop that. This
gateway stands where AWS's authoriser stands:

1. it authenticates the caller: SigV4 in the Authorization header (`ccc.local.sigv4`, and
   `ccc.local.sigv4_s3` for S3) or an S3 presigned URL (query form, with its expiry), checked
   with the secret of one of the stack's local identities;
2. it derives the request's (action, resource ARN) pairs and condition keys
   (`ccc.local.iam_requests`) and evaluates the identity's policy documents, the very documents
   CDK attaches to the matching role (`ccc_common.domain.iam_policies`), with
   `ccc.local.iam_eval` (fail closed);
3. an allowed request is forwarded to moto re-signed with the gateway's upstream credential (moto
   runs with its own access control on and knows no other key, so nothing but this gateway and
   the supervisor's provisioning reach moto); the answer is relayed, except that S3's 404 for a
   missing object becomes 403 for a caller without `s3:ListBucket` on the bucket, as S3 does.

KMS is refused here: the attested-KMS gateway is the only KMS endpoint of the local stack.

    python -m ccc.local.iam_gateway --config run/iam-gateway.json --ready-file run/iam-gateway.ready.json
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import sys
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ccc.atomic_files import write_json_atomic
from ccc.local.errors import LocalStackError
from ccc.local.gateway_process import serve_gateway
from ccc.local.iam_eval import Access, Decision, IdentityPolicy, PolicyNotUnderstood
from ccc.local.iam_requests import ClassifiedRequest, RequestFacts, classify, split_target
from ccc.local.iam_users import LocalIdentity
from ccc.local.sigv4 import (
    MISSING_AUTHENTICATION,
    SignatureError,
    SignedRequestInfo,
    Sigv4Profile,
    header_lists,
    parse_authorization,
    verify_request,
)
from ccc.local.sigv4_s3 import is_presigned, strip_presign_params, verify_s3_header, verify_s3_presigned

log = logging.getLogger("ccc.local.iam")

MAX_BODY_BYTES = 64 * 1024 * 1024
UPSTREAM_TIMEOUT_S = 60.0
# Never forwarded: our own authentication, and hop-by-hop headers.
_DROP_REQUEST = frozenset(
    {
        "authorization",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "expect",
        "proxy-connection",
        "te",
        "upgrade",
    }
)
_DROP_RESPONSE = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"})
# Signing names that are not served here.
_REFUSED_SERVICES = {"kms": "KMS is served by the attested-KMS gateway (AWS_ENDPOINT_URL_KMS), not here"}


class IamGatewayError(LocalStackError, RuntimeError):
    """The gateway cannot start (bad config)."""


@dataclass(frozen=True)
class UpstreamCredentials:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        return f"UpstreamCredentials(access_key_id={self.access_key_id!r})"


@dataclass(frozen=True)
class Principal:
    identity: LocalIdentity
    policy: IdentityPolicy | None  # None: the documents were not understood -> every request denied


class Denial(LocalStackError):
    """A request refused before it reaches moto: ``code`` and HTTP status in the service's style."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class GatewayConfig:
    upstream_url: str
    upstream: UpstreamCredentials
    identities: Mapping[str, LocalIdentity]
    policies: Mapping[str, Sequence[Mapping[str, Any]]]  # identity name -> its policy documents
    region: str
    account_id: str
    host: str = "127.0.0.1"
    port: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GatewayConfig:
        try:
            identities = {name: LocalIdentity.from_dict(raw) for name, raw in data["identities"].items()}
            upstream = data["upstream"]
            return cls(
                upstream_url=str(data["upstream_url"]),
                upstream=UpstreamCredentials(str(upstream["access_key_id"]), str(upstream["secret_access_key"])),
                identities=identities,
                policies={name: list(docs) for name, docs in data["policies"].items()},
                region=str(data["region"]),
                account_id=str(data["account_id"]),
                host=str(data.get("host", "127.0.0.1")),
                port=int(data.get("port", 0)),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise IamGatewayError(f"IAM gateway config is malformed: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "upstream_url": self.upstream_url,
            "upstream": {
                "access_key_id": self.upstream.access_key_id,
                "secret_access_key": self.upstream.secret_access_key,
            },
            "identities": {name: identity.to_dict() for name, identity in self.identities.items()},
            "policies": {name: list(docs) for name, docs in self.policies.items()},
            "region": self.region,
            "account_id": self.account_id,
            "host": self.host,
            "port": self.port,
        }

    @classmethod
    def load(cls, path: Path) -> GatewayConfig:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict):
            raise IamGatewayError("IAM gateway config must be a JSON object")
        return cls.from_dict(data)

    def write(self, path: Path) -> None:
        """Owner-only (0600): it holds every identity's secret and the upstream credential."""
        write_json_atomic(Path(path), self.to_dict(), mode=0o600)


@dataclass
class IamAuthorizer:
    """Authentication + authorisation of one request (no I/O: the HTTP front calls it)."""

    config: GatewayConfig
    _by_key: dict[str, Principal] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for name, identity in self.config.identities.items():
            try:
                policy: IdentityPolicy | None = IdentityPolicy.parse(self.config.policies.get(name, []))
            except PolicyNotUnderstood as exc:
                log.error("policies of %s are not understood (%s): every request of it is denied", name, exc)
                policy = None
            self._by_key[identity.access_key_id] = Principal(identity, policy)

    def secret_for(self, access_key_id: str) -> str | None:
        principal = self._by_key.get(access_key_id)
        return principal.identity.secret_access_key if principal else None

    def authenticate(
        self, method: str, target: str, headers: Mapping[str, Sequence[str]], body: bytes
    ) -> tuple[Principal, SignedRequestInfo, str]:
        """(principal, signed scope, the target to forward). Raises SignatureError."""
        path, query = split_target(target)
        raw_query = urlsplit(target).query
        values = headers.get("authorization")
        authorization = values[0] if values else None
        if authorization is None and is_presigned(query):
            info = verify_s3_presigned(
                method=method, path=path, query=raw_query, headers=headers, secret_for=self.secret_for
            )
            stripped = strip_presign_params(raw_query)
            target = path + (f"?{stripped}" if stripped else "")
        elif (
            authorization is not None
            and authorization.startswith("AWS4-HMAC-SHA256")
            and "/s3/aws4_request" in authorization
        ):
            info = verify_s3_header(
                method=method, path=path, query=raw_query, headers=headers, body=body, secret_for=self.secret_for
            )
        else:
            if authorization is not None and authorization.startswith("AWS "):
                raise SignatureError("InvalidRequest", "SigV2 is not supported: sign with AWS4-HMAC-SHA256")
            scope, _, _, _ = parse_authorization(authorization)
            profile = Sigv4Profile(service=scope.service, region=self.config.region)
            info = verify_request(
                profile=profile, method=method, path=target, headers=headers, body=body, secret_for=self.secret_for
            )
        return self._by_key[info.access_key_id], info, target

    def authorize(self, principal: Principal, request: ClassifiedRequest) -> None:
        if principal.policy is None:
            raise Denial("AccessDenied", f"{principal.identity.principal_arn} has no policy this gateway understands")
        outcome = principal.policy.evaluate(list(request.needs), request.context)
        if not outcome.allowed:
            denied = outcome.denied or Access(f"{request.service}:{request.operation}", "*")
            kind = (
                "with an explicit deny"
                if outcome.decision is Decision.EXPLICIT_DENY
                else "because no identity-based policy allows it"
            )
            raise Denial(
                "AccessDenied",
                f"User: {principal.identity.principal_arn} is not authorized to perform: {denied.action} "
                f"on resource: {denied.resource} {kind}",
            )

    def may_list(self, principal: Principal, bucket_arn: str) -> bool:
        """Does the caller get 404 (rather than 403) for a missing key of this bucket?"""
        if principal.policy is None:
            return False
        return principal.policy.decide(Access("s3:ListBucket", bucket_arn), {}) is Decision.ALLOW


# ----- error answers in each protocol's shape ----------------------------------------------------


def _error_response(
    service: str, json_protocol: bool, code: str, message: str, status: int
) -> tuple[int, dict[str, str], bytes]:
    request_id = uuid.uuid4().hex
    if json_protocol:
        json_code = {"AccessDenied": "AccessDeniedException"}.get(code, code) if service != "sqs" else code
        body = json.dumps({"__type": json_code, "message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": request_id}
        if service == "sqs":
            headers["x-amzn-query-error"] = f"{code};Sender"
        return (400 if service != "sqs" else status), headers, body
    if service == "s3":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
    return status, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, body


def _signature_status(service: str, json_protocol: bool, error: SignatureError) -> tuple[int, str]:
    if service == "s3" and error.code == MISSING_AUTHENTICATION:
        return 403, "AccessDenied"  # S3 treats an unsigned request as anonymous: no anonymous grant here
    if service == "s3":
        return (
            400
            if error.code in ("InvalidRequest", "AuthorizationHeaderMalformed", "XAmzContentSHA256Mismatch")
            else 403
        ), error.code
    return (400 if json_protocol else 403), error.code


def caller_identity_response(identity: LocalIdentity) -> tuple[int, dict[str, str], bytes]:
    """STS GetCallerIdentity for the authenticated identity (query protocol, as STS answers it)."""
    request_id = uuid.uuid4().hex
    body = (
        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
        f"<Arn>{escape(identity.principal_arn)}</Arn><UserId>{escape(identity.access_key_id)}</UserId>"
        f"<Account>{escape(identity.account_id)}</Account></GetCallerIdentityResult>"
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
    ).encode()
    return 200, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body


# ----- forwarding -------------------------------------------------------------------------------


@dataclass
class Upstream:
    url: str
    credentials: UpstreamCredentials
    region: str

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname:
            raise IamGatewayError(f"upstream URL {self.url!r} must be http://host:port")
        self._host, self._port = parts.hostname, parts.port or 80
        self._netloc = parts.netloc

    def forward(
        self, method: str, target: str, headers: Mapping[str, Sequence[str]], body: bytes, service: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request to moto signed with the upstream credential; (status, headers, body)."""
        request = AWSRequest(method=method, url=f"http://{self._netloc}{target}", data=body)
        for name, values in headers.items():
            if name not in _DROP_REQUEST:
                request.headers[name] = values[0]
        request.headers["host"] = self._netloc
        credentials = Credentials(self.credentials.access_key_id, self.credentials.secret_access_key)
        if service == "s3":
            request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
            S3SigV4Auth(credentials, "s3", self.region).add_auth(request)
        else:
            SigV4Auth(credentials, service, self.region).add_auth(request)
        connection = http.client.HTTPConnection(self._host, self._port, timeout=UPSTREAM_TIMEOUT_S)
        try:
            connection.request(
                method,
                target,
                body=body if body or method in ("PUT", "POST") else None,
                headers=dict(request.headers.items()),
            )
            response = connection.getresponse()
            data = b"" if method == "HEAD" else response.read()
            return response.status, list(response.getheaders()), data
        finally:
            connection.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the client's delayed ACK added
    # ~40 ms to every answer on a kept-alive connection (measured: 48 ms vs 2.6 ms p50 per GetObject).
    disable_nagle_algorithm = True
    server: _GatewayServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise Denial("EntityTooLarge", "request body too large for the local gateway", 400)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY_BYTES:
            raise Denial("EntityTooLarge", "request body too large for the local gateway", 400)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, headers: Sequence[tuple[str, str]] | Mapping[str, str], body: bytes) -> None:
        items = headers.items() if isinstance(headers, Mapping) else headers
        self.send_response(status)
        content_length: str | None = None
        for name, value in items:
            lower = name.lower()
            if lower == "content-length":
                content_length = value
            if lower not in _DROP_RESPONSE:
                self.send_header(name, value)
        if self.command == "HEAD":
            self.send_header("Content-Length", content_length if content_length is not None else str(len(body)))
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _handle(self) -> None:
        authorizer = self.server.authorizer
        headers = header_lists(self.headers.items())
        json_protocol = "x-amz-target" in headers
        service = "s3"
        try:
            body = self._read_body()
        except (Denial, ValueError) as exc:
            self._send(*_error_response("s3", False, "InvalidRequest", str(exc)[:200], 400))
            return
        authorization = (headers.get("authorization") or [""])[0]
        if "/aws4_request" in authorization:
            service = authorization.split("/aws4_request")[0].rsplit("/", 1)[-1]
        try:
            if service in _REFUSED_SERVICES:
                raise Denial("AccessDenied", _REFUSED_SERVICES[service], 400 if json_protocol else 403)
            principal, info, target = authorizer.authenticate(self.command, self.path, headers, body)
            service = info.service
            path, query = split_target(target)
            request = classify(
                RequestFacts(
                    method=self.command,
                    path=path,
                    query=query,
                    headers=headers,
                    body=body,
                    service=service,
                    region=info.region,
                    # Resources live in the stack's account (tenants call from their own).
                    account=authorizer.config.account_id,
                )
            )
            if service == "sts" and request.operation == "GetCallerIdentity":
                # Always allowed on AWS, and it must name the caller (moto would name the upstream user).
                self._send(*caller_identity_response(principal.identity))
                return
            authorizer.authorize(principal, request)
        except SignatureError as exc:
            status, code = _signature_status(service, json_protocol, exc)
            log.info("refused %s %s: %s", self.command, service, exc.code)
            self._send(*_error_response(service, json_protocol, code, exc.message, status))
            return
        except Denial as exc:
            log.info("denied %s", exc.message)
            self._send(*_error_response(service, json_protocol, exc.code, exc.message, exc.status))
            return
        try:
            status, response_headers, response_body = self.server.upstream.forward(
                self.command, target, headers, body, service
            )
        except OSError as exc:
            self._send(*_error_response(service, json_protocol, "ServiceUnavailable", f"moto unreachable: {exc}", 503))
            return
        if status == 404 and request.bucket_arn and not authorizer.may_list(principal, request.bucket_arn):
            # S3 hides whether a key exists from callers who may not list the bucket.
            log.info(
                "404 -> 403 for %s %s: no s3:ListBucket on %s",
                principal.identity.name,
                request.operation,
                request.bucket_arn,
            )
            self._send(*_error_response("s3", False, "AccessDenied", "Access Denied", 403))
            return
        log.debug("%s %s %s -> %s", principal.identity.name, service, request.operation, status)
        self._send(status, response_headers, response_body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle

    def do_OPTIONS(self) -> None:
        """An S3 CORS preflight. S3 answers it unauthenticated from the bucket's CORS configuration
        (which the stack sets with ccc_common.domain.cors, as CDK does), so it is forwarded to moto,
        which evaluates that configuration; anything else with OPTIONS is refused."""
        origin, method = self.headers.get("Origin"), self.headers.get("Access-Control-Request-Method")
        if not origin or not method or "authorization" in {k.lower() for k in self.headers}:
            self._send(*_error_response("s3", False, "AccessDenied", "not a CORS preflight", 403))
            return
        headers = header_lists(self.headers.items())
        try:
            status, response_headers, body = self.server.upstream.forward("OPTIONS", self.path, headers, b"", "s3")
        except OSError as exc:
            self._send(*_error_response("s3", False, "ServiceUnavailable", f"moto unreachable: {exc}", 503))
            return
        self._send(status, response_headers, body)


class _GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    authorizer: IamAuthorizer
    upstream: Upstream


@dataclass
class IamGateway:
    """The HTTP front; `start()` serves on a thread and returns self."""

    config: GatewayConfig
    _server: _GatewayServer | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> IamGateway:
        server = _GatewayServer((self.config.host, self.config.port), _Handler)
        server.authorizer = IamAuthorizer(self.config)
        server.upstream = Upstream(self.config.upstream_url, self.config.upstream, self.config.region)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="iam-gateway", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> IamGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    return serve_gateway(
        argv,
        module="ccc.local.iam_gateway",
        description=(__doc__ or "").split("\n\n")[0],
        name="IAM",
        load=GatewayConfig.load,
        start=lambda config: IamGateway(config).start(),
        errors=(OSError, ValueError, IamGatewayError),
    )


if __name__ == "__main__":
    sys.exit(main())

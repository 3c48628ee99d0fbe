"""The jobs API over HTTP for the local stack: SigV4 (IAM auth) in front of the real Lambda handler.

On AWS, API Gateway (REST, AWS_IAM authorisation) verifies the caller's SigV4 signature and hands
the Lambda a proxy event whose `requestContext.identity.userArn` names the caller. Locally this
server does the same for the stack's identities: it verifies the signature with the identity's
secret (`ccc.local.sigv4`, service `execute-api`), builds the same proxy event, calls
`functions.jobs_api.handler`, and returns its status, headers and body. An unsigned or badly
signed request is answered 403 like API Gateway does, and never reaches the handler.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ccc.local.sigv4 import SignatureError, execute_api_profile, header_lists, verify_request
from ccc_common.domain.cors import origins_from_env, web_client_cors

log = logging.getLogger("ccc.local.api")

STAGE_NAME = "local"
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Caller:
    name: str
    principal_arn: str
    access_key_id: str


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
        self._profile = execute_api_profile(region)
        # The browser client's origins (the stack's web server): the CORS rules CDK gives API Gateway.
        self._cors = web_client_cors(origins_from_env(os.environ)).jobs_api
        server = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on, the client's delayed ACK
            # added ~44 ms to every answer on a kept-alive connection (0.1 ms without).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return  # access logs would carry nothing but paths; the handler logs each request

            def _serve(self) -> None:
                server.serve_request(self)

            do_GET = _serve
            do_POST = _serve
            do_PUT = _serve
            do_DELETE = _serve

            def do_OPTIONS(self) -> None:  # CORS preflight: answered unauthenticated, as API Gateway does
                server.serve_preflight(self)

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

    def serve_preflight(self, request: BaseHTTPRequestHandler) -> None:
        allowed = self._cors.preflight_headers(
            request.headers.get("Origin"),
            request.headers.get("Access-Control-Request-Method"),
            request.headers.get("Access-Control-Request-Headers"),
        )
        request.send_response(204 if allowed else 403)
        for name, value in (allowed or {}).items():
            request.send_header(name, value)
        request.send_header("Content-Length", "0")
        request.end_headers()

    def serve_request(self, request: BaseHTTPRequestHandler) -> None:
        all_headers = header_lists(request.headers.items())
        headers = {name: values[-1] for name, values in all_headers.items()}
        try:
            length = int(headers.get("content-length", "0") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._reply(request, 413, {"message": "request body too large"})
            return
        body = request.rfile.read(length) if length else b""
        try:
            signer = verify_request(
                profile=self._profile, method=request.command, path=request.path, headers=all_headers, body=body,
                secret_for=self._secrets.get,
            )
        except SignatureError as exc:  # API Gateway answers every authentication failure with 403
            log.info("jobs API: %s %s refused: %s", request.command, urlsplit(request.path).path, exc.message)
            self._reply(request, 403, {"message": f"Forbidden: {exc.message}"}, error_type=exc.code)
            return
        event = proxy_event(
            method=request.command, raw_path=request.path, headers=headers, body=body,
            caller=self._callers[signer.access_key_id], account=self.account,
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

    def _reply(
        self, request: BaseHTTPRequestHandler, status: int, body: Mapping[str, Any], *, error_type: str | None = None
    ) -> None:
        headers = {"Content-Type": "application/json"}
        if error_type:
            headers["x-amzn-ErrorType"] = error_type  # as API Gateway labels its own errors
        self._send(request, status, json.dumps(body).encode(), headers)

    def _send(self, request: BaseHTTPRequestHandler, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
        request.send_response(status)
        # Allow-Origin comes from the handler (as on AWS: a proxy integration adds it, API Gateway's own
        # 4XX answers carry none)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

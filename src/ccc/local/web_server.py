"""The local stack's web server: the browser client (web/) and, for the local tier only, its config.

Why a server of its own rather than a file:// page: a page needs an origin for CORS (the jobs API,
the buckets and KMS answer only the origins `ccc_common.domain.cors` allows) and for its storage
(the imported trust file, upload records, the outbox). It serves:

* ``/`` and ``/dist/*``: the static page, bundled by esbuild (`make setup`); nothing is fetched from
  a CDN at run time, and the Content-Security-Policy says so (scripts from this origin only;
  connections only to this origin and the stack's endpoints).
* ``/local/config.json``: the endpoints and the demo tenant's credentials. **Local tier only**: on
  AWS a tenant signs in (docs/web.md); nothing here holds a secret that `stack.json` does not.
  Answered only to requests whose ``Host`` is this server's own address (a DNS-rebinding page
  cannot read it) and never with CORS headers (another origin's page cannot read it either).

It runs on a thread of the stack's supervisor, so its origin is known before the other processes
start (they read it from ``CCC_WEB_ORIGINS``).
"""

from __future__ import annotations

import json
import logging
import mimetypes
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ccc.local.state import StackInfo
from ccc_common.domain.cors import s3_cors_configuration, web_client_cors

log = logging.getLogger("ccc.local.web")

WEB_ROOT = Path(__file__).resolve().parents[3] / "web"
DEMO_TENANT = "tenant-a"
_STATIC = {"/": "index.html", "/index.html": "index.html"}
_DIST_FILES = ("app.js", "app.js.map", "sw.js", "sw.js.map")


def local_page_config(info: StackInfo, tenant: str = DEMO_TENANT) -> dict[str, Any]:
    """What the page needs on the local tier: endpoints, region, and the tenant's credentials."""
    identity = info.identity(tenant)
    return {
        "tier": "local",
        "tenant": tenant,
        "region": info.region,
        "api_url": info.api_url,
        "kms_endpoint_url": info.kms_endpoint_url,
        "credentials": {"accessKeyId": identity.access_key_id, "secretAccessKey": identity.secret_access_key},
    }


def content_security_policy(connect: list[str]) -> str:
    sources = " ".join(["'self'", *connect])
    return (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; "
        f"connect-src {sources}; worker-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


class WebServer:
    """ThreadingHTTPServer on 127.0.0.1 serving the page; `info` supplies the stack once it is up."""

    def __init__(self, info: Callable[[], StackInfo | None], *, root: Path = WEB_ROOT, port: int = 0) -> None:
        self._info = info
        self._root = root
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                server.serve(self)

            do_HEAD = do_GET

        self._http = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._http.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        return self.origin + "/"

    def start(self) -> WebServer:
        self._thread = threading.Thread(target=self._http.serve_forever, name="ccc-web", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        if request.headers.get("Host") != self.origin.split("//", 1)[1]:
            self._send(request, 421, "text/plain", b"misdirected request\n")
            return
        path = urlsplit(request.path).path
        info = self._info()
        if path == "/local/config.json":
            if info is None:
                self._send(request, 503, "text/plain", b"the local stack is still starting\n")
                return
            body = json.dumps(local_page_config(info)).encode()
            self._send(request, 200, "application/json", body, extra={"Cache-Control": "no-store"})
            return
        name = _STATIC.get(path)
        if name is None and path.startswith("/dist/") and path[len("/dist/") :] in _DIST_FILES:
            name = "dist/" + path[len("/dist/") :]
        if path == "/sw.js":  # a service worker's scope is its own path: serve it from the root
            name = "dist/sw.js"
        if name is None:
            self._send(request, 404, "text/plain", b"not found\n")
            return
        file = self._root / name
        if not file.is_file():
            self._send(request, 503, "text/plain", b"the web client is not built: run `make setup`\n")
            return
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        endpoints = [] if info is None else [info.api_url, info.endpoint_url, info.kms_endpoint_url]
        connect = sorted({_origin_of(url) for url in endpoints if url})
        headers = {"Content-Security-Policy": content_security_policy(connect), "X-Content-Type-Options": "nosniff"}
        self._send(request, 200, kind, file.read_bytes(), extra=headers)

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler, status: int, kind: str, body: bytes, *, extra: dict[str, str] | None = None
    ) -> None:
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Referrer-Policy", "no-referrer")
        for name, value in (extra or {}).items():
            request.send_header(name, value)
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)


def _origin_of(url: str) -> str:
    """A CSP source for a whole endpoint: a source with a path would match that exact path only."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def apply_bucket_cors(s3: Any, inbox_bucket: str, results_bucket: str, origins: tuple[str, ...]) -> None:
    """Put the web client's CORS rules on the buckets, as the CDK stack does on AWS."""
    rules = web_client_cors(origins)
    s3.put_bucket_cors(Bucket=inbox_bucket, CORSConfiguration=s3_cors_configuration(rules.inbox_bucket))
    s3.put_bucket_cors(Bucket=results_bucket, CORSConfiguration=s3_cors_configuration(rules.results_bucket))


__all__ = ["DEMO_TENANT", "WebServer", "apply_bucket_cors", "content_security_policy", "local_page_config"]

"""The local attested-KMS gateway: KMS's JSON protocol, with key policies enforced, on its own keys.

Why: moto ignores `Recipient`, never evaluates key policies and serialises encryption contexts
ambiguously, and anyone who can reach it can call it; with the keys in moto the local tier let
anyone decrypt anything. This gateway is what makes the local stack prove the security design: it

1. identifies the caller from the SigV4 access key id and verifies the signature with that local
   identity's secret (`ccc.local.sigv4`, shared with the local jobs API);
2. verifies a `Recipient` attestation document against the local CA root (at the current time,
   at most MAX_ATTESTATION_AGE old) and requires an RSA-2048 `public_key`;
3. evaluates the key policy stored on the key (`ccc.local.kms.policy_eval`, fail closed) with the
   request's encryption context and the document's PCRs as `kms:RecipientAttestation:*`;
4. does the cryptography itself with the keys it holds (`key_store`, persisted under the stack's
   state directory; moto's KMS holds none): AES-256-GCM with the encryption context bound
   canonically (`context_binding`), and for attested calls `CiphertextForRecipient` (CMS for the
   enclave's key) instead of `Plaintext`, exactly as KMS answers.

Errors use KMS's shapes (`{"__type": "AccessDeniedException", "message": ...}`, HTTP 400), so
boto3 clients raise the same ClientError codes as against AWS. Only metadata is logged: the
caller's name, operation, key ARN and decision. Never a plaintext, never a secret.

Run in a thread (`KmsGateway(...).start()`) or as a process:
    python -m ccc.local.kms.gateway --config gateway.json [--ready-file run/kms-gateway.json]
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ccc.atomic_files import write_json_atomic
from ccc.local.gateway_process import serve_gateway
from ccc.local.iam_users import LocalIdentity, identities_from_dict, identities_to_dict
from ccc.local.kms.api_error import KmsApiError
from ccc.local.kms.gateway_core import (
    CONTENT_TYPE,
    MAX_ATTESTATION_AGE,
    MAX_BODY_BYTES,
    TARGET_PREFIX,
    GatewayCore,
    json_object,
)
from ccc.local.kms.key_store import KeyStore, KeyStoreError
from ccc.local.sigv4 import header_lists
from ccc_common.domain.cors import KMS_CORS

log = logging.getLogger("ccc.local.kms.gateway")

# ----- HTTP --------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ccc-kms-gateway"
    timeout = 30  # seconds per socket read: a stalled client cannot hold a thread forever
    core: GatewayCore  # set on the subclass made per server

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; with Nagle on, the second waits for the client's
        # delayed ACK (~40 ms on Linux) on every request of a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, payload: Mapping[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in KMS_CORS.response_headers(self.headers.get("Origin")).items():
            self.send_header(name, value)  # AWS KMS answers browsers (the ESDK for JavaScript) too
        self.end_headers()
        self.wfile.write(body)

    def _error(self, error: KmsApiError) -> None:
        self._send(error.status, {"__type": error.error_type, "message": error.message})

    def do_OPTIONS(self) -> None:
        """A browser's CORS preflight, answered unauthenticated as AWS KMS does (ccc_common.domain.cors)."""
        allowed = KMS_CORS.preflight_headers(
            self.headers.get("Origin"),
            self.headers.get("Access-Control-Request-Method"),
            self.headers.get("Access-Control-Request-Headers"),
        )
        self.send_response(200 if allowed else 403)
        for name, value in (allowed or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self._error(KmsApiError("UnknownOperationException", "the KMS JSON protocol uses POST"))

    def do_POST(self) -> None:
        try:
            length_header = self.headers.get("Content-Length")
            if length_header is None or not length_header.isdigit():
                self.close_connection = True
                raise KmsApiError("SerializationException", "Content-Length is required")
            length = int(length_header)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                raise KmsApiError("ValidationException", f"request body exceeds {MAX_BODY_BYTES} bytes", 413)
            body = self.rfile.read(length)
            if len(body) != length:
                self.close_connection = True
                raise KmsApiError("SerializationException", "request body is shorter than Content-Length")
            target = self.headers.get("X-Amz-Target", "")
            if not target.startswith(TARGET_PREFIX) or not target[len(TARGET_PREFIX) :].isalnum():
                raise KmsApiError("UnknownOperationException", f"unknown target {target!r}")
            operation = target[len(TARGET_PREFIX) :]
            caller = self.core.authenticate(self.path, header_lists(self.headers.items()), body)
            params = json_object(body, "request body")
            answer = self.core.handle(operation, caller, params)
            self._send(200, answer)
        except KmsApiError as error:
            self._error(error)
        except Exception:  # never leak a traceback to the caller; keep serving
            log.exception("internal error handling a KMS request")
            self._error(KmsApiError("KMSInternalException", "internal error in the local KMS gateway", 500))


class KmsGateway:
    """The gateway as an HTTP server on a background thread."""

    def __init__(
        self,
        identities: Mapping[str, LocalIdentity],
        attestation_root_der: bytes,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        store: KeyStore | None = None,
        iam_admins: Iterable[str] = ("admin",),
        clock: Callable[[], datetime] | None = None,
        max_attestation_age: timedelta = MAX_ATTESTATION_AGE,
    ) -> None:
        self.core = GatewayCore(
            identities,
            attestation_root_der,
            store=store,
            iam_admins=iam_admins,
            clock=clock,
            max_attestation_age=max_attestation_age,
        )
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the gateway is not started")
        host, port = self._server.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host_text}:{port}"

    def start(self) -> KmsGateway:
        if self._server is not None:
            raise RuntimeError("the gateway is already started")
        handler = type("GatewayHandler", (_Handler,), {"core": self.core})
        server = ThreadingHTTPServer((self._host, self._port), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="kms-gateway", daemon=True)
        self._thread.start()
        log.info("attested-KMS gateway listening on %s", self.url)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> KmsGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ----- configuration and process entry -----------------------------------------------------------


@dataclass(frozen=True)
class GatewayConfig:
    """What `python -m ccc.local.kms.gateway --config FILE` reads (JSON; holds secrets: keep it 0600)."""

    key_store: str  # path of the key store file (`key_store.KeyStore`)
    identities: Mapping[str, LocalIdentity]
    attestation_root_pem: str
    host: str = "127.0.0.1"
    port: int = 0
    iam_admins: tuple[str, ...] = ("admin",)

    def root_der(self) -> bytes:
        try:
            certificate = x509.load_pem_x509_certificate(self.attestation_root_pem.encode())
        except ValueError as exc:
            raise ValueError(f"attestation_root_pem is not a PEM certificate: {exc}") from None
        return certificate.public_bytes(Encoding.DER)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_store": self.key_store,
            "identities": identities_to_dict(self.identities),
            "attestation_root_pem": self.attestation_root_pem,
            "host": self.host,
            "port": self.port,
            "iam_admins": list(self.iam_admins),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GatewayConfig:
        try:
            return cls(
                key_store=str(data["key_store"]),
                identities=identities_from_dict(data["identities"]),
                attestation_root_pem=str(data["attestation_root_pem"]),
                host=str(data.get("host", "127.0.0.1")),
                port=int(data.get("port", 0)),
                iam_admins=tuple(data.get("iam_admins", ("admin",))),
            )
        except KeyError as exc:
            raise ValueError(f"gateway config is missing {exc.args[0]!r}") from None

    def write(self, path: Path) -> None:
        """Atomically and owner-only (0600): the config holds the identities' secret keys."""
        write_json_atomic(Path(path), self.to_dict(), mode=0o600)

    @classmethod
    def load(cls, path: Path) -> GatewayConfig:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError("gateway config must be a JSON object")
        return cls.from_dict(data)

    def gateway(self) -> KmsGateway:
        return KmsGateway(
            self.identities,
            self.root_der(),
            self.host,
            self.port,
            store=KeyStore(Path(self.key_store)),
            iam_admins=self.iam_admins,
        )


def main(argv: Sequence[str] | None = None) -> int:
    return serve_gateway(
        argv,
        module="ccc.local.kms.gateway",
        description=(__doc__ or "").split("\n\n")[0],
        name="KMS",
        load=GatewayConfig.load,
        start=lambda config: config.gateway().start(),
        errors=(OSError, ValueError, KeyStoreError),
    )


if __name__ == "__main__":
    sys.exit(main())

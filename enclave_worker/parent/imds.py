"""An IMDSv2 client: session token with TTL, role credentials, and the Auto Scaling lifecycle state.

Why our own client: the enclave has no network and no IMDS, so the parent must read its role
credentials and hand them over with each job; and the agent must watch
`autoscaling/target-lifecycle-state` to drain before scale-in. IMDSv2 only: every request carries
a session token obtained with PUT (hop limit and PUT protect against SSRF-style token theft).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from enclave_worker.parent.errors import ParentError

TOKEN_PATH = "/latest/api/token"  # noqa: S105 - a URL path, not a secret
CREDENTIALS_PATH = "/latest/meta-data/iam/security-credentials/"
LIFECYCLE_PATH = "/latest/meta-data/autoscaling/target-lifecycle-state"
INSTANCE_ID_PATH = "/latest/meta-data/instance-id"
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"  # noqa: S105 - header name
TOKEN_HEADER = "X-aws-ec2-metadata-token"  # noqa: S105 - header name
MAX_RESPONSE_BYTES = 64 * 1024
# Refresh a token / credentials this long before they expire, so no request uses a dying one.
TOKEN_REFRESH_MARGIN_S = 60.0
CREDENTIALS_REFRESH_MARGIN = timedelta(minutes=5)


class ImdsError(ParentError, RuntimeError):
    """IMDS is unreachable or answered something unusable."""


@dataclass(frozen=True)
class AwsCredentials:
    """Credentials for the enclave's KMS calls. The secret parts never appear in reprs."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expiration: datetime | None = None


Opener = Callable[[urllib.request.Request, float], Any]


def _default_opener() -> Opener:
    # No proxies: IMDS is link-local and must never be reached through (or leak to) a proxy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def open_request(request: urllib.request.Request, timeout: float) -> Any:
        return opener.open(request, timeout=timeout)

    return open_request


class ImdsClient:
    def __init__(
        self,
        base_url: str = "http://169.254.169.254",
        *,
        token_ttl_s: int = 21600,
        timeout_s: float = 2.0,
        opener: Opener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= token_ttl_s <= 21600:
            raise ValueError("IMDSv2 token TTL must be 1..21600 seconds")
        self._base = base_url.rstrip("/")
        self._ttl = token_ttl_s
        self._timeout = timeout_s
        self._open = opener or _default_opener()
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0

    def _request(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
        request = urllib.request.Request(self._base + path, method=method, headers=headers)  # noqa: S310 - http(s) only
        try:
            with self._open(request, self._timeout) as response:
                body = response.read(MAX_RESPONSE_BYTES + 1)
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise ImdsError(f"IMDS unreachable at {self._base}: {getattr(exc, 'reason', exc)}") from None
        if len(body) > MAX_RESPONSE_BYTES:
            raise ImdsError(f"IMDS answer for {path} is larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            return status, body.decode("utf-8")
        except UnicodeDecodeError:
            raise ImdsError(f"IMDS answer for {path} is not UTF-8") from None

    def token(self, *, refresh: bool = False) -> str:
        with self._lock:
            now = self._clock()
            if not refresh and self._token is not None and now < self._token_expires:
                return self._token
            status, body = self._request("PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: str(self._ttl)})
            if status != 200 or not body.strip():
                raise ImdsError(f"IMDSv2 token request failed with HTTP {status}")
            self._token = body.strip()
            self._token_expires = now + max(1.0, self._ttl - TOKEN_REFRESH_MARGIN_S)
            return self._token

    def get(self, path: str) -> str | None:
        """GET a metadata path with the session token; None on 404 (the item does not exist)."""
        status, body = self._request("GET", path, {TOKEN_HEADER: self.token()})
        if status == 401:  # token expired or revoked early: get a new one once
            status, body = self._request("GET", path, {TOKEN_HEADER: self.token(refresh=True)})
        if status == 404:
            return None
        if status != 200:
            raise ImdsError(f"IMDS GET {path} failed with HTTP {status}")
        return body

    def role_credentials(self) -> AwsCredentials:
        listing = self.get(CREDENTIALS_PATH)
        roles = [line.strip() for line in (listing or "").splitlines() if line.strip()]
        if not roles:
            raise ImdsError("this instance has no IAM role (no instance profile)")
        document = self.get(CREDENTIALS_PATH + roles[0])
        if document is None:
            raise ImdsError(f"IMDS has no credentials for role {roles[0]!r}")
        try:
            data = json.loads(document)
            if data.get("Code", "Success") != "Success":
                raise ImdsError(f"IMDS credentials status is {str(data.get('Code'))[:64]!r}")
            expiration = datetime.fromisoformat(str(data["Expiration"]).replace("Z", "+00:00"))
            return AwsCredentials(
                access_key_id=str(data["AccessKeyId"]),
                secret_access_key=str(data["SecretAccessKey"]),
                session_token=str(data["Token"]),
                expiration=expiration if expiration.tzinfo else expiration.replace(tzinfo=UTC),
            )
        except ImdsError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ImdsError("IMDS credentials document is malformed") from None

    def target_lifecycle_state(self) -> str | None:
        """`InService`, `Terminated`, `Warmed:*`, ...; None when the instance is not in a group."""
        value = self.get(LIFECYCLE_PATH)
        return value.strip() if value is not None else None

    def instance_id(self) -> str:
        value = self.get(INSTANCE_ID_PATH)
        if not value:
            raise ImdsError("IMDS has no instance id")
        return value.strip()


class ImdsCredentialsProvider:
    """Role credentials from IMDSv2, cached until five minutes before they expire (thread-safe)."""

    def __init__(self, client: ImdsClient, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._client = client
        self._now = now
        self._lock = threading.Lock()
        self._cached: AwsCredentials | None = None

    def get(self) -> AwsCredentials:
        with self._lock:
            cached = self._cached
            if cached is not None and (
                cached.expiration is None or self._now() < cached.expiration - CREDENTIALS_REFRESH_MARGIN
            ):
                return cached
            self._cached = self._client.role_credentials()
            return self._cached


class StaticCredentialsProvider:
    """Fixed credentials (the local tier's parent identity)."""

    def __init__(self, credentials: AwsCredentials) -> None:
        self._credentials = credentials

    def get(self) -> AwsCredentials:
        return self._credentials

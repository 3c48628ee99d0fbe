"""A SigV4-signed client of the jobs API (`POST /jobs`, `GET /jobs/{id}`) and its presigned URLs.

Why through the API rather than straight to S3: the API creates the job record (so its status can
be tracked from `submitted` on), chooses the job id, states the encryption context the enclave
will demand, and hands out short-lived presigned URLs, so a tenant needs no S3 permissions at all.
The client still checks what the API says: the context must be exactly the one for the job and
tenant, because a client that encrypted under someone else's context would be tricked into
sending its image to another job.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from ccc.client.errors import ClientError
from ccc_core.identity import JobRef, NamingError

SERVICE = "execute-api"
TIMEOUT_S = 30.0
MAX_RESPONSE_BYTES = 256 * 1024
LOCAL_STACK_STOPPED = (
    "the local stack stopped (its jobs, keys and results were held in memory and are gone); "
    "start it with `ccc local up` and submit again"
)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class JobsApiError(ClientError):
    """The jobs API refused the request or answered something the client cannot trust."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PresignedUpload:
    url: str
    headers: Mapping[str, str]
    max_bytes: int


@dataclass(frozen=True)
class JobState:
    job: JobRef
    status: str  # submitted | queued | done | failed
    error: str | None
    result_url: str | None
    attestation_url: str | None


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def unreachable(url: str, what: str, exc: Exception) -> JobsApiError:
    """The error for a request that never got an answer. Only the local stack listens on loopback
    (AWS endpoints never do), and when it does not answer it has stopped: moto keeps no state on
    disk, so saying "not reachable" would suggest waiting for something that is gone for good."""
    if _is_loopback(url):
        return JobsApiError(LOCAL_STACK_STOPPED)
    return JobsApiError(f"{what}: {type(exc).__name__}")


def _http() -> Any:
    return urllib3.PoolManager(timeout=urllib3.Timeout(connect=5.0, read=TIMEOUT_S), retries=False)


class JobsApiClient:
    """Calls the jobs API as the identity of `credentials` (botocore Credentials)."""

    def __init__(self, base_url: str, credentials: Any, region: str, *, http: Any = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise JobsApiError(f"jobs API URL {base_url!r} is not http(s)")
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._region = region
        self._http = http or _http()

    def _call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
        request = AWSRequest(
            method=method, url=self.base_url + path, data=body or b"", headers={"Content-Type": "application/json"}
        )
        SigV4Auth(self._credentials.get_frozen_credentials(), SERVICE, self._region).add_auth(request)
        try:
            response = self._http.request(
                method, request.url, body=body, headers=dict(request.headers.items()), preload_content=False
            )
            raw = response.read(MAX_RESPONSE_BYTES + 1)
            response.release_conn()
        except Exception as exc:  # urllib3 raises many types: all mean "not reachable"
            raise unreachable(self.base_url, f"jobs API at {self.base_url} not reachable", exc) from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise JobsApiError("jobs API answer is too large", response.status)
        try:
            document = json.loads(raw) if raw else {}
        except ValueError:
            raise JobsApiError(f"jobs API answered {response.status} with non-JSON", response.status) from None
        if not isinstance(document, dict):
            raise JobsApiError("jobs API answer is not a JSON object", response.status)
        return int(response.status), document

    @staticmethod
    def _raise(status: int, document: Mapping[str, Any], what: str) -> None:
        message = document.get("message") or document.get("error") or "no reason given"
        raise JobsApiError(f"{what}: HTTP {status}: {message}", status)

    def create_job(self, tenant: str) -> tuple[JobRef, PresignedUpload]:
        status, document = self._call("POST", "/jobs", b"{}")
        if status != 201:
            self._raise(status, document, "cannot create a job")
        try:
            job = JobRef(tenant=str(document.get("tenant")), job_id=str(document.get("job_id")))
        except NamingError as exc:
            raise JobsApiError(f"jobs API returned an invalid job: {exc}") from None
        if job.tenant != tenant:
            raise JobsApiError(f"jobs API created the job for tenant {job.tenant!r}, not {tenant!r}")
        if document.get("encryption_context") != job.input_context():
            raise JobsApiError("jobs API asks for an encryption context that does not name exactly this job and tenant")
        upload = document.get("upload")
        if not isinstance(upload, dict) or upload.get("method") != "PUT" or not isinstance(upload.get("url"), str):
            raise JobsApiError("jobs API returned no presigned PUT upload")
        if upload.get("key") != job.inbox_key:
            raise JobsApiError("jobs API presigned another object than the job's inbox key")
        headers = upload.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise JobsApiError("jobs API upload headers are malformed")
        return job, PresignedUpload(url=upload["url"], headers=headers, max_bytes=int(upload.get("max_bytes", 0)))

    def get_job(self, job: JobRef) -> JobState:
        status, document = self._call("GET", f"/jobs/{job.job_id}")
        if status != 200:
            self._raise(status, document, f"cannot read job {job.job_id}")
        if document.get("job_id") != job.job_id or document.get("tenant") != job.tenant:
            raise JobsApiError("jobs API answered about another job")

        def url(field: str) -> str | None:
            value = document.get(field)
            return value.get("url") if isinstance(value, dict) and isinstance(value.get("url"), str) else None

        error = document.get("error")
        return JobState(
            job=job,
            status=str(document.get("status")),
            error=error if isinstance(error, str) else None,
            result_url=url("result"),
            attestation_url=url("attestation"),
        )

    def put(self, upload: PresignedUpload, body: Readable, size: int) -> None:
        """Stream `size` bytes from `body` to the presigned URL."""
        if upload.max_bytes and size > upload.max_bytes:
            raise JobsApiError(f"ciphertext is {size} bytes, the upload allows {upload.max_bytes}")
        headers = {**upload.headers, "Content-Length": str(size), "Content-Type": "application/octet-stream"}
        if "Content-Type" in upload.headers:
            headers["Content-Type"] = upload.headers["Content-Type"]
        try:
            response = self._http.request("PUT", upload.url, body=body, headers=headers, preload_content=True)
        except Exception as exc:
            raise unreachable(upload.url, "upload failed", exc) from None
        if not 200 <= response.status < 300:
            raise JobsApiError(f"upload refused: HTTP {response.status}", response.status)

    def get_bytes(self, url: str, limit: int) -> bytes:
        """GET a presigned URL, refusing bodies over `limit` bytes."""
        try:
            response = self._http.request("GET", url, preload_content=False)
            data = response.read(limit + 1)
            response.release_conn()
        except Exception as exc:
            raise unreachable(url, "download failed", exc) from None
        if response.status != 200:
            raise JobsApiError(f"download refused: HTTP {response.status}", response.status)
        if len(data) > limit:
            raise JobsApiError(f"download is larger than {limit} bytes")
        return bytes(data)

"""The jobs API as plain Python: routing, tenant resolution, and the three operations.

Why independent of API Gateway: the same ``JobsApi.handle(ApiRequest)`` serves the Lambda (the
handler converts the REST proxy event) and the local stack's HTTP server, so both tiers enforce
the same rules. The central rule: the tenant comes only from the authenticated caller identity
(IAM auth -> principal ARN -> ``TENANT_PRINCIPALS``), never from the request; a job of another
tenant is answered exactly like a job that does not exist (404), so ids cannot be probed.

Routes:
  POST /jobs            -> 201 {job_id, tenant, status, created_at, encryption_context,
                                 upload: {method: PUT, url, bucket, key, expires_in, max_bytes, headers},
                                 upload_post: {url, fields, max_bytes}}
  GET  /jobs/{job_id}   -> 200 {job_id, tenant, status, created_at, updated_at, attempts, error,
                                 encryption_context, result: {url, key, expires_in} | null,
                                 attestation: {url, key, expires_in} | null}
  GET  /jobs[?limit=&cursor=] -> 200 {jobs: [...], next_cursor: str | null}
Errors: {"error": <code>, "message": <text>} with 400/403/404/405/409.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ccc_common.contracts.result_objects import attestation_key
from ccc_common.domain.job_store import MAX_PAGE, InvalidCursor, JobAlreadyExists, JobStore
from ccc_common.domain.jobs import Job, JobEvent, JobStatus, format_timestamp, new_job
from ccc_common.domain.settings import stage_settings
from ccc_common.domain.storage_ports import Presigner, ResultDigests
from ccc_common.domain.upload_window import (
    DEFAULT_UPLOAD_URL_EXPIRY_S,
    NEVER_UPLOADED,
    upload_window_closes,
)
from ccc_common.errors import CommonError
from ccc_core.identity import JobRef, NamingError, new_job_id, validate_job_id, validate_tenant

MAX_BODY_CHARS = 4096
_ASSUMED_ROLE = re.compile(r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([\w+=,.@-]{1,64})/[\w+=,.@-]{1,64}$")
_JOB_PATH = re.compile(r"^/jobs/([^/]+)$")


class ApiError(CommonError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class TenantDirectory:
    """Maps an authenticated IAM principal ARN to its tenant (TENANT_PRINCIPALS).

    An entry may name a user (``arn:aws:iam::<acct>:user/<name>``), a role
    (``arn:aws:iam::<acct>:role/<name>``, without its path: that is how STS names sessions) or an
    exact STS session ARN. A caller whose ARN is an assumed-role session matches the entry of its
    role. Nothing else matches: no wildcards, no prefixes.
    """

    def __init__(self, principals: Mapping[str, str]) -> None:
        for tenant in principals.values():
            validate_tenant(tenant)
        self._principals = dict(principals)

    @staticmethod
    def role_arn_of_session(arn: str) -> str | None:
        match = _ASSUMED_ROLE.fullmatch(arn)
        if match is None:
            return None
        partition, account, role = match.groups()
        return f"arn:{partition}:iam::{account}:role/{role}"

    def tenant_for(self, principal_arn: str | None) -> str:
        if not principal_arn:
            raise ApiError(403, "forbidden", "no authenticated caller identity")
        tenant = self._principals.get(principal_arn)
        if tenant is None:
            role = self.role_arn_of_session(principal_arn)
            tenant = self._principals.get(role) if role else None
        if tenant is None:
            raise ApiError(403, "forbidden", "the caller is not mapped to a tenant")
        return tenant


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    principal_arn: str | None
    query: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: dict[str, Any]

    def json(self) -> str:
        return json.dumps(self.body, separators=(",", ":"), sort_keys=True)


class JobsService:
    """The three operations for an already-resolved tenant."""

    def __init__(
        self,
        store: JobStore,
        presigner: Presigner,
        results: ResultDigests,
        *,
        inbox_bucket: str,
        results_bucket: str,
        ttl_days: int,
        max_upload_bytes: int,
        url_expiry_s: int,
        clock: Callable[[], datetime],
        new_job_id: Callable[[], str] = new_job_id,
    ) -> None:
        self._store = store
        self._presigner = presigner
        self._digests = results
        self._inbox = inbox_bucket
        self._results = results_bucket
        self._ttl_days = ttl_days
        self._max_upload = max_upload_bytes
        self._expiry = url_expiry_s
        self._clock = clock
        self._new_id = new_job_id

    def create_job(self, tenant: str) -> dict[str, Any]:
        ref = JobRef(tenant=tenant, job_id=self._new_id())
        job = new_job(ref, self._clock(), self._ttl_days)
        try:
            self._store.create(job)
        except JobAlreadyExists as exc:  # uuid4 collision or a broken id source: never reuse an id
            raise ApiError(409, "conflict", "job id already in use; retry") from exc
        key = ref.inbox_key
        return {
            "job_id": ref.job_id,
            "tenant": ref.tenant,
            "status": job.status.value,
            "created_at": format_timestamp(job.created_at),
            "encryption_context": ref.input_context(),
            "upload": {
                "method": "PUT",
                "url": self._presigner.presign_put(self._inbox, key, self._expiry),
                "bucket": self._inbox,
                "key": key,
                "expires_in": self._expiry,
                "max_bytes": self._max_upload,
                "headers": {},
            },
            "upload_post": {
                **self._presigner.presign_post(self._inbox, key, self._expiry, self._max_upload),
                "max_bytes": self._max_upload,
            },
        }

    def get_job(self, tenant: str, job_id: str) -> dict[str, Any]:
        try:
            validate_job_id(job_id)
        except NamingError as exc:
            raise ApiError(404, "not-found", "no such job") from exc
        job = self._store.get(job_id)
        if job is None or job.tenant != tenant:  # another tenant's job does not exist for this caller
            raise ApiError(404, "not-found", "no such job")
        job = self._expire_if_never_uploaded(job)
        view = job.public_view(self._clock())
        view["encryption_context"] = job.ref.input_context()
        view["result"] = None
        view["attestation"] = None
        if job.status is JobStatus.DONE:
            result_key = job.result_key or job.ref.result_key
            view["result"] = self._download(result_key)
            # The attestation is addressed by the result's digest: the one written for this result.
            digest = self._digests.result_digest(self._results, result_key)
            view["attestation"] = None if digest is None else self._download(attestation_key(job.ref, digest))
        return view

    def list_jobs(self, tenant: str, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
        try:
            page = self._store.list_for_tenant(tenant, limit=limit, cursor=cursor)
        except InvalidCursor as exc:
            raise ApiError(400, "bad-request", "invalid cursor") from exc
        now = self._clock()
        return {"jobs": [self._expire_if_never_uploaded(job).public_view(now) for job in page.jobs],
                "next_cursor": page.next_cursor}

    def _expire_if_never_uploaded(self, job: Job) -> Job:
        """A job still ``submitted`` after its upload window closed was never uploaded: it becomes
        ``failed: never uploaded`` the first time anyone reads it, instead of pending for ever.

        Why on read, not by a sweep: only a reader can tell the difference, no schedule or
        function is needed, and DynamoDB's TTL removes items nobody reads. The window is the upload
        URL's lifetime plus ``upload_window.UPLOAD_GRACE_S`` for an upload started just before it expired. An
        upload that still arrives later (the tenant role may PUT directly) is processed: its
        result outranks ``failed`` (``domain.jobs``).
        """
        if job.status is not JobStatus.SUBMITTED:
            return job
        now = self._clock()
        if now < upload_window_closes(job.created_at, self._expiry):
            return job
        return self._store.apply(JobEvent.failed(job.ref, now, NEVER_UPLOADED)).job

    def _download(self, key: str) -> dict[str, Any]:
        return {
            "url": self._presigner.presign_get(self._results, key, self._expiry),
            "key": key,
            "expires_in": self._expiry,
        }


def _parse_limit(query: Mapping[str, str]) -> int:
    raw = query.get("limit")
    if raw is None:
        return 50
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ApiError(400, "bad-request", f"limit must be an integer between 1 and {MAX_PAGE}")
    return int(raw)


def _check_create_body(body: str | None) -> None:
    if body is None or not body.strip():
        return
    if len(body) > MAX_BODY_CHARS:
        raise ApiError(400, "bad-request", "request body too large")
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "bad-request", "request body must be empty or a JSON object") from exc
    if not isinstance(parsed, dict):
        raise ApiError(400, "bad-request", "request body must be empty or a JSON object")
    if parsed:
        raise ApiError(400, "bad-request", f"unexpected fields: {sorted(str(k) for k in parsed)[:5]}")


class JobsApi:
    """Routing + error mapping around JobsService. Never raises for a bad request."""

    def __init__(self, service: JobsService, directory: TenantDirectory) -> None:
        self._service = service
        self._directory = directory

    def handle(self, request: ApiRequest) -> ApiResponse:
        try:
            return self._route(request)
        except ApiError as exc:
            return ApiResponse(exc.status, {"error": exc.code, "message": exc.message})

    def _route(self, request: ApiRequest) -> ApiResponse:
        method = request.method.upper()
        path = request.path.rstrip("/") or "/"
        if path == "/jobs":
            if method == "POST":
                tenant = self._directory.tenant_for(request.principal_arn)
                _check_create_body(request.body)
                return ApiResponse(201, self._service.create_job(tenant))
            if method == "GET":
                tenant = self._directory.tenant_for(request.principal_arn)
                limit = _parse_limit(request.query)
                return ApiResponse(200, self._service.list_jobs(tenant, limit, request.query.get("cursor")))
            raise ApiError(405, "method-not-allowed", f"{method} not allowed on /jobs")
        match = _JOB_PATH.fullmatch(path)
        if match is not None:
            if method != "GET":
                raise ApiError(405, "method-not-allowed", f"{method} not allowed on /jobs/{{job_id}}")
            tenant = self._directory.tenant_for(request.principal_arn)
            return ApiResponse(200, self._service.get_job(tenant, match.group(1)))
        raise ApiError(404, "not-found", "no such route")


def jobs_api_for(
    store: JobStore,
    presigner: Presigner,
    results: ResultDigests,
    *,
    stage: str,
    inbox_bucket: str,
    results_bucket: str,
    principals: Mapping[str, str],
    url_expiry_s: int = DEFAULT_UPLOAD_URL_EXPIRY_S,
    clock: Callable[[], datetime] | None = None,
) -> JobsApi:
    """The API wired with the stage's limits and TTL: what the Lambda and the local stack both use."""
    settings = stage_settings(stage)
    service = JobsService(
        store,
        presigner,
        results,
        inbox_bucket=inbox_bucket,
        results_bucket=results_bucket,
        ttl_days=settings.job_ttl_days,
        max_upload_bytes=settings.limits.max_ciphertext_bytes,
        url_expiry_s=url_expiry_s,
        clock=clock or (lambda: datetime.now(UTC)),
    )
    return JobsApi(service, TenantDirectory(principals))

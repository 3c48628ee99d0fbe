"""Submit images as jobs and collect verified results: the client's one code path for all tiers.

Submit: check the file -> `POST /jobs` (job id, encryption context, presigned PUT) -> ESDK-encrypt
the image to a temporary file (streaming, flat memory) under that context -> PUT it. Without a jobs
API (a stack that exports none) the client picks the id and uploads to the inbox key itself
(multipart above 8 MiB).
Collect: poll `GET /jobs/{id}` (or the results prefix) -> failed ends the job with its reason; a result
is trusted only after its attestation document verifies against the tenant's trust file (`ccc.trust`:
chain to the pinned root, the PCRs of a pinned release, user_data binding this result ciphertext to
the input ciphertext this client recorded uploading) and it decrypts under the result context with
the pinned key. Nothing the stack publishes is consulted for any of that: the Target only says
where to send and fetch.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError as BotoClientError
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from ccc.client.api import JobsApiClient, JobsApiError, PresignedUpload
from ccc.client.crypto import decrypt_result, encrypt_stream, key_provider
from ccc.client.errors import ClientError, JobFailed, TargetError, UnknownJob, VerificationError
from ccc.client.input_record import InputRecord, sha256_of_stream
from ccc.client.inputs import ImageInput
from ccc.client.progress import Progress
from ccc.client.provenance import check_result_document, verify_result_attestation
from ccc.client.target import Target
from ccc.client.untrusted_text import printable
from ccc.trust import PinnedRelease, TrustFile, load_tenant_trust
from ccc_common.contracts.failure_record import MAX_FAILURE_RECORD_BYTES, DocumentError, decode_failure_record
from ccc_common.contracts.result_objects import attestation_key_for_result
from ccc_core.attestation.document import parse_document
from ccc_core.attestation.errors import AttestationError
from ccc_core.identity import JobRef, new_job_id
from ccc_core.redaction import safe_attributes
from ccc_core.telemetry.job_root import job_root_span
from ccc_core.telemetry.names import (
    ATTR_JOB_ID,
    ATTR_TENANT,
    SPAN_CLIENT_ENCRYPT,
    SPAN_CLIENT_FETCH,
    SPAN_CLIENT_RESULT,
    SPAN_CLIENT_SUBMIT,
    SPAN_CLIENT_UPLOAD,
    SPAN_CLIENT_VERIFY,
)
from ccc_core.telemetry.propagation import inject, job_context

# The stack restarting, a dropped connection: worth another poll.
_TRANSIENT: tuple[type[Exception], ...] = (BotoCoreError, BotoClientError)

MULTIPART_THRESHOLD = 8 * 1024 * 1024
POLL_START_S = 0.1
POLL_MAX_S = 0.5


@dataclass
class JobReport:
    """One line of `ccc submit --json` / `ccc result --json`."""

    image: str | None
    job_id: str
    status: str  # "done" | "failed" | "pending"
    cats: int | None = None
    verified: bool = False
    input_sha256: str | None = None  # hex SHA-256 of the ciphertext this client uploaded for the job
    release: str | None = None  # the pinned release (trust file id) the result was attested by
    pcr0: str | None = None
    error: str | None = None
    elapsed_ms: int | None = None
    tenant: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "done" and self.verified

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("tenant")
        if data["error"] is not None:  # may quote the pipeline: never raw control characters
            data["error"] = printable(data["error"])
        return json.dumps(data, sort_keys=False)


class _CountingReader:
    """A file wrapper that reports bytes read (the HTTP client streams the upload through it)."""

    def __init__(self, inner: Any, progress: Progress) -> None:
        self._inner = inner
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        chunk: bytes = self._inner.read(size)
        self._progress(len(chunk))
        return chunk


@dataclass(frozen=True)
class JobTicket:
    """A job ready to receive its ciphertext: its identity and where to put the ciphertext."""

    job: JobRef
    upload: PresignedUpload | None  # None: straight to the inbox key with the tenant's S3 access

    @property
    def context(self) -> dict[str, str]:
        return self.job.input_context()


@dataclass(frozen=True)
class SubmittedJob:
    job: JobRef
    image: str
    started: float  # time.monotonic() when submission began
    ciphertext_bytes: int
    input_sha256: str  # what was uploaded (also in the client's InputRecord)


@dataclass(frozen=True)
class _Stored:
    """What the results prefix holds for a job right now."""

    keys: frozenset[str]
    result: bool
    failure: bool


def _client_step(name: str) -> Any:
    """A child span of the client's current span (submit or result): the run report's waterfall splits
    the user's wait into encrypt / upload and fetch / verify by these. Outside a job span (`ccc result`
    without --wait) nothing is emitted: a step span of no job's trace would be an orphan."""
    if not trace.get_current_span().is_recording():
        return contextlib.nullcontext()
    return trace.get_tracer("ccc.client").start_as_current_span(name, record_exception=False)


class CccClient:
    """Submits and collects jobs of one tenant on one target, trusting only the tenant's trust file.

    `trust` defaults to the tenant's file found the CLI's way (`$CCC_TRUST_FILE`, then the per-user
    default; `ccc.trust.location`), and there is no fallback: without one, NoTrustFile says how to
    make one. `inputs` is where uploads are recorded (default: the per-user state dir).
    """

    def __init__(
        self,
        target: Target,
        tenant: str | None = None,
        *,
        trust: TrustFile | None = None,
        inputs: InputRecord | None = None,
        show_progress: bool | None = None,
    ) -> None:
        self.target = target
        self.trust = trust if trust is not None else load_tenant_trust()
        if tenant is not None and tenant != self.trust.tenant:
            raise TargetError(f"the trust file is tenant {self.trust.tenant}'s, not {tenant}'s: use that tenant's "
                              "trust file (`ccc trust init --tenant ...`)")
        self.tenant = target.tenant(self.trust.tenant)
        self.inputs = inputs if inputs is not None else InputRecord()
        self.show_progress = show_progress
        # Called with each status the jobs API reports while polling (JobStatusBoard.update).
        self.on_status: Callable[[JobRef, str], None] | None = None
        self._s3: Any = None
        self._provider: Any = None
        self._api: JobsApiClient | None = None

    @property
    def api(self) -> JobsApiClient | None:
        """The jobs API client when the target has an API (the normal path), else None."""
        if self._api is None and self.target.api_url:
            session = self.target.botocore_session(self.tenant)
            self._api = JobsApiClient(self.target.api_url, session.get_credentials(), self.target.region)
        return self._api

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = self.target.s3_client(self.tenant)
        return self._s3

    @property
    def provider(self) -> Any:
        if self._provider is None:
            # Only the pinned key: an operator pointing the stack at its own key gets nothing.
            self._provider = key_provider(self.trust.data_key_arn, self.target.botocore_session(self.tenant))
        return self._provider

    # ----- submit -------------------------------------------------------------------------
    def create_job(self) -> JobTicket:
        """A new job: from the jobs API (job record, presigned upload), else a local id and the inbox key."""
        if self.api is not None:
            job, upload = self.api.create_job(self.tenant)
            return JobTicket(job=job, upload=upload)
        return JobTicket(job=JobRef(tenant=self.tenant, job_id=new_job_id()), upload=None)

    def submit(self, image: ImageInput) -> SubmittedJob:
        """Encrypt and upload one checked image; returns once the ciphertext is in the inbox.

        Traced as `ccc.client.submit` in the job's trace (metadata only: ids and sizes)."""
        started = time.monotonic()
        ticket = self.create_job()
        attributes = safe_attributes({ATTR_JOB_ID: ticket.job.job_id, ATTR_TENANT: ticket.job.tenant,
                                      "ccc.image.bytes": image.size,
                                      "ccc.create_ms": round((time.monotonic() - started) * 1000, 3)})
        # The job's root span (its deterministic ids: every component's top-level span points at it),
        # emitted here because this client created the job; the submit span is its child.
        root = job_root_span(trace.get_tracer_provider(), ticket.job.job_id,
                             safe_attributes({ATTR_JOB_ID: ticket.job.job_id, ATTR_TENANT: ticket.job.tenant}))
        with root, trace.get_tracer("ccc.client").start_as_current_span(
            SPAN_CLIENT_SUBMIT, attributes=attributes, record_exception=False
        ) as span:
            submitted = self._seal_and_upload(image, ticket, started)
            span.set_attributes(safe_attributes({"ccc.ciphertext.bytes": submitted.ciphertext_bytes}))
        return submitted

    def _seal_and_upload(self, image: ImageInput, ticket: JobTicket, started: float) -> SubmittedJob:
        with tempfile.TemporaryFile(prefix="ccc-") as sealed:
            with _client_step(SPAN_CLIENT_ENCRYPT), open(image.path, "rb") as source:
                progress = Progress(f"encrypt {image.path.name}", image.size, enabled=self.show_progress)
                size = encrypt_stream(source, sealed, provider=self.provider, context=ticket.context, progress=progress)
                progress.finish()
            if size > self.target.limits.max_ciphertext_bytes:
                limit = self.target.limits.max_ciphertext_bytes
                raise ClientError(f"{image.path}: ciphertext is {size} bytes, over the limit of {limit}")
            sealed.seek(0)
            with _client_step(SPAN_CLIENT_UPLOAD):
                digest = self.upload(ticket, sealed, size, label=f"upload {image.path.name}")
        return SubmittedJob(job=ticket.job, image=str(image.path), started=started, ciphertext_bytes=size,
                            input_sha256=digest)

    def upload(self, ticket: JobTicket, body: Any, size: int, *, label: str = "upload") -> str:
        """Put a ciphertext for the job: presigned PUT (API), or S3 upload (multipart for large bodies).

        The body's SHA-256 is recorded (InputRecord) before the first byte leaves: the job's result
        must later prove it was computed from exactly these bytes. Returns that digest."""
        if not (hasattr(body, "seekable") and body.seekable()):
            raise ClientError("the ciphertext to upload must be a seekable file (its digest is recorded first)")
        digest, measured = sha256_of_stream(body)
        if measured != size:
            raise ClientError(f"the ciphertext is {measured} bytes, not the {size} announced")
        self.inputs.remember(ticket.job, digest, size)
        self._put(ticket, body, size, label)
        return digest

    def _put(self, ticket: JobTicket, body: Any, size: int, label: str) -> None:
        if ticket.upload is not None and self.api is not None:
            progress = Progress(label, size, enabled=self.show_progress)
            self.api.put(ticket.upload, _CountingReader(body, progress), size)
            progress.finish()
            return
        progress = Progress(label, size, enabled=self.show_progress)
        config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD)
        # The submit span's context rides on the object (x-amz-meta-traceparent) so the parent agent's
        # job span becomes its child. (A presigned PUT can only carry headers signed into it.)
        self.s3.upload_fileobj(
            body,
            self.target.inbox_bucket,
            ticket.job.inbox_key,
            ExtraArgs={"ContentType": "application/octet-stream", "Metadata": inject()},
            Config=config,
            Callback=progress,
        )
        progress.finish()

    # ----- collect ------------------------------------------------------------------------
    def wait(self, job: JobRef, *, timeout: float, image: str | None = None, started: float | None = None) -> JobReport:
        """Poll until the job has a result or a failure record; verified report or failed report.

        Traced as `ccc.client.result` in the job's trace: status and verification, never the count."""
        with trace.get_tracer("ccc.client").start_as_current_span(
            SPAN_CLIENT_RESULT, context=job_context(job.job_id), record_exception=False,
            attributes=safe_attributes({ATTR_JOB_ID: job.job_id, ATTR_TENANT: job.tenant}),
        ) as span:
            report = self._wait(job, timeout=timeout, image=image, started=started)
            span.set_attributes(safe_attributes({"ccc.status": report.status, "ccc.verified": report.verified}))
            if report.status == "failed" or (report.status == "done" and not report.verified):
                # A failed or unverified job is an error in the trace view too (no message: fixed words).
                span.set_status(Status(StatusCode.ERROR, "failed" if report.status == "failed" else "not verified"))
        return report

    def _wait(self, job: JobRef, *, timeout: float, image: str | None, started: float | None) -> JobReport:
        began = started if started is not None else time.monotonic()
        deadline = time.monotonic() + timeout
        delay = POLL_START_S
        last_error: str | None = None
        while True:
            try:
                report = self.fetch(job, image=image, started=began)
            except JobsApiError as exc:  # UnknownJob (400/403/404) is not caught: waiting cannot help
                last_error = str(exc)
                report = JobReport(image=image, job_id=job.job_id, status="pending", tenant=job.tenant)
            except _TRANSIENT as exc:  # the stack restarting, a dropped connection: keep polling
                last_error = f"{type(exc).__name__}: {exc}"
                report = JobReport(image=image, job_id=job.job_id, status="pending", tenant=job.tenant)
            if report.status != "pending":
                return report
            if time.monotonic() >= deadline:
                suffix = f" (last error: {last_error})" if last_error else ""
                report.error = f"no result after {timeout:.0f}s{suffix}"
                return report
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(POLL_MAX_S, delay * 1.5)

    def fetch(self, job: JobRef, *, image: str | None = None, started: float | None = None) -> JobReport:
        """The job's state right now: done (verified or not), failed, or pending."""
        report = JobReport(image=image, job_id=job.job_id, status="pending", tenant=job.tenant)
        report.input_sha256 = self.inputs.recall(job)
        try:
            if self.api is not None:
                self._fetch_from_api(job, report)
            else:
                self._fetch_from_s3(job, report)
        except JobFailed as exc:
            report.status, report.error = "failed", exc.reason
        except VerificationError as exc:
            report.verified, report.error = False, f"{exc.reason}: {exc}"
        if started is not None and report.status != "pending":
            report.elapsed_ms = int((time.monotonic() - started) * 1000)
        return report

    def _fetch_from_api(self, job: JobRef, report: JobReport) -> None:
        assert self.api is not None
        try:
            state = self.api.get_job(job)
            if self.on_status is not None:
                self.on_status(job, state.status)
        except JobsApiError as exc:
            if exc.status in (400, 403, 404):  # the same words with and without --wait
                message = f"no job {job.job_id} for tenant {job.tenant} (unknown, or not this tenant's)"
                raise UnknownJob(message) from None
            raise
        if state.status == "done":
            if state.result_url is None or state.attestation_url is None:
                raise VerificationError("the job is done but the API offers no result and attestation")
            report.status = "done"
            limits = self.target.limits
            with _client_step(SPAN_CLIENT_FETCH):
                ciphertext = self.api.get_bytes(state.result_url, limits.max_result_ciphertext_bytes)
                document = self.api.get_bytes(state.attestation_url, limits.max_attestation_bytes)
            with _client_step(SPAN_CLIENT_VERIFY):
                self._verify_and_decrypt(job, ciphertext, document, report)
        elif state.status == "failed":
            report.status = "failed"
            report.error = state.error or "job failed (no reason recorded)"

    def _fetch_from_s3(self, job: JobRef, report: JobReport) -> None:
        stored = self._stored(job)
        if stored.result:
            report.status = "done"
            limits = self.target.limits
            with _client_step(SPAN_CLIENT_FETCH):
                ciphertext = self._get(job.result_key, limits.max_result_ciphertext_bytes)
                # The attestation written for exactly these bytes (ccc_common.contracts.result_objects):
                # another run's document can never be paired with this result.
                key = attestation_key_for_result(job, ciphertext)
                if key not in stored.keys:
                    raise VerificationError("the result has no attestation document (its digest names none)")
                document = self._get(key, limits.max_attestation_bytes)
            with _client_step(SPAN_CLIENT_VERIFY):
                self._verify_and_decrypt(job, ciphertext, document, report)
        elif stored.failure:
            report.status = "failed"
            report.error = self._failure_reason(job)

    def _stored(self, job: JobRef) -> _Stored:
        prefix = job.result_key.rsplit(".", 1)[0]
        listing = self.s3.list_objects_v2(Bucket=self.target.results_bucket, Prefix=prefix)
        keys = {item["Key"] for item in listing.get("Contents", [])}
        return _Stored(keys=frozenset(keys), result=job.result_key in keys, failure=job.failure_key in keys)

    def _get(self, key: str, limit: int) -> bytes:
        response = self.s3.get_object(Bucket=self.target.results_bucket, Key=key)
        length = int(response.get("ContentLength", 0))
        if length > limit:
            response["Body"].close()
            raise VerificationError(f"{key} is {length} bytes, more than the {limit} a genuine one can have")
        data: bytes = response["Body"].read(limit + 1)
        if len(data) > limit:
            raise VerificationError(f"{key} is larger than {limit} bytes")
        return data

    def _failure_reason(self, job: JobRef) -> str:
        """The failure record's ``<code>: <reason>`` (`ccc_common.contracts.failure_record`); a record
        this client cannot use still ends the job as failed, saying why the record was refused."""
        raw = self._get(job.failure_key, MAX_FAILURE_RECORD_BYTES)
        try:
            return decode_failure_record(raw, job=job).summary()
        except DocumentError as exc:
            return f"job failed (the failure record is unusable: {exc})"

    def _verify_and_decrypt(self, job: JobRef, ciphertext: bytes, document: bytes, report: JobReport) -> None:
        """Verify against the trust file only, then decrypt with the pinned key.

        The release is chosen by the document's PCR0 among the pinned ones (verification then checks
        every PCR that release pins); a PCR0 no pinned release has is refused by name. A job this
        client has no upload record for is refused: nothing proves the result is of the tenant's input.
        """
        expected_input = report.input_sha256
        if expected_input is None:
            raise VerificationError(
                f"this client has no record of uploading job {job.job_id} (records in {self.inputs.root}): "
                "nothing proves the result was computed from your input", "input_unknown")
        candidates = self._releases_for(document)
        last: VerificationError | None = None
        for release in candidates:
            try:
                verified = verify_result_attestation(
                    document, ciphertext, root_der=self.trust.attestation_root.der,
                    expected_pcrs=release.expected_pcrs(), expected_input_sha256=expected_input,
                )
            except VerificationError as exc:
                last = exc
                continue
            report.release = release.id
            report.pcr0 = verified.pcrs[0].hex()
            payload = decrypt_result(ciphertext, job, provider=self.provider)
            check_result_document(verified, payload)
            report.cats = payload.cats
            report.verified = True
            return
        assert last is not None
        raise last

    def _releases_for(self, document: bytes) -> list[PinnedRelease]:
        """The pinned releases whose PCR0 the (not yet verified) document claims; all of them if none
        does, so the verifier names the mismatch in its own words."""
        try:
            claimed = parse_document(document).pcrs.get(0)
        except AttestationError:
            return list(self.trust.releases)
        matching = self.trust.releases_with_pcr0(claimed) if claimed is not None else []
        if matching:
            return matching
        shown = claimed.hex()[:16] + "…" if claimed else "none"
        pinned = ", ".join(release.id for release in self.trust.releases)
        raise VerificationError(f"the result was attested by an enclave with PCR0 {shown}, not a release this "
                                f"trust file pins ({pinned})", "pcr_mismatch")

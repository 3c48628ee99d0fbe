"""One job inside the enclave: attested decrypt -> context check -> count -> encrypt result -> attest.

The security-relevant decisions live here and nowhere else:

* the decrypted message's *authenticated* encryption context must be exactly this job's input
  context: `ccc:job` and `ccc:tenant` naming the job and tenant the parent claims, plus the ESDK's
  own `aws-crypto-public-key` when the suite signs, and nothing else (no `ccc:kind`, no other key,
  no case variant such as `CCC:TENANT`), so a ciphertext cut from another job, another tenant or a
  result is refused, and no key the enclave does not understand can carry a meaning it ignores;
* the result is encrypted under the KMS key that wrapped the input's data key, as reported by the
  decryption itself (the EDK the attested provider actually opened), never under a key named by
  the parent, which is untrusted and could otherwise name a key it can decrypt; so a tenant's own
  key protects both its input and its result with no enclave configuration;
* the result document carries `input_sha256` (SHA-256 of the exact input ciphertext decrypted), and
  the attestation document's `user_data` is the result binding of `ccc_core.result_binding`
  (input digest and result-ciphertext digest under a domain tag), binding the result to this
  enclave image and to the input it came from; its `public_key` is the enclave's boot key;
* the result document has one fixed size whatever the count (`ccc_core.result_document`).

Every failure becomes a `JobFailure` with a code; the reason never quotes plaintext.

Nothing derived from the content (the count, the detections) leaves the enclave except inside the
result ciphertext for the tenant: the enclave keeps no per-tenant totals that a host could replay
jobs into and read back (docs/threat-model.md, "What the host learns").
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.trace import StatusCode

from ccc_core.identity import CTX_JOB, CTX_TENANT, JobRef
from ccc_core.logs import log_event
from ccc_core.redaction import safe_attributes
from ccc_core.result_binding import result_user_data
from ccc_core.result_document import (
    MAX_BOX_COORDINATE,
    Detection,
    ModelInfo,
    ResultDocument,
    capped_detections,
    encode_result_document,
)
from ccc_core.telemetry.names import (
    SPAN_ENCLAVE_ATTEST,
    SPAN_ENCLAVE_DECRYPT,
    SPAN_ENCLAVE_ENCRYPT,
    SPAN_ENCLAVE_INFER,
    SPAN_ENCLAVE_JOB,
)
from ccc_core.telemetry.propagation import extract
from ccc_enclave.ports import Attester, Counter, CountOutcome, EnvelopeCrypto, JobError
from ccc_enclave.protocol.error_replies import ErrorInfo
from ccc_enclave.protocol.errors import ErrorCode
from ccc_enclave.protocol.job_messages import JobFailure, JobMetrics, JobReply, JobRequest, JobSpec, JobSuccess

_LOG = logging.getLogger("ccc.enclave.job")
_TRACER = trace.get_tracer("ccc.enclave")
# The ESDK's own context key (signing suites store the message's verification key under it).
ESDK_PUBLIC_KEY_CONTEXT_KEY = "aws-crypto-public-key"
_REQUIRED_INPUT_KEYS = frozenset({CTX_JOB, CTX_TENANT})
_ALLOWED_INPUT_KEYS = _REQUIRED_INPUT_KEYS | {ESDK_PUBLIC_KEY_CONTEXT_KEY}


def check_input_context(context: Mapping[str, str], job: JobSpec) -> None:
    """Raise JobError(context_mismatch) unless the authenticated context is exactly this job's input context.

    Exactly: the key set must be {ccc:job, ccc:tenant}, plus `aws-crypto-public-key` when the ESDK
    put it there. Keys are compared byte for byte, so `CCC:TENANT` or `Ccc:Kind` next to the real
    keys is refused: KMS condition keys compare context-key *names* case-insensitively, so a case
    variant could satisfy a policy the enclave believes it checked differently.
    """
    unexpected = sorted(key for key in context if key not in _ALLOWED_INPUT_KEYS)
    if unexpected:
        shown = ", ".join(repr(key[:32]) for key in unexpected[:3])
        raise JobError(ErrorCode.CONTEXT_MISMATCH, f"encryption context has key(s) an input must not have: {shown}")
    missing = sorted(_REQUIRED_INPUT_KEYS - context.keys())
    if missing:
        raise JobError(ErrorCode.CONTEXT_MISMATCH, f"encryption context lacks {', '.join(missing)}")
    if context[CTX_JOB] != job.job_id:
        raise JobError(ErrorCode.CONTEXT_MISMATCH, f"encryption context {CTX_JOB} does not name this job")
    if context[CTX_TENANT] != job.tenant:
        raise JobError(ErrorCode.CONTEXT_MISMATCH, f"encryption context {CTX_TENANT} does not name this tenant")


def _coordinate(value: float) -> float:
    return round(min(max(float(value), 0.0), MAX_BOX_COORDINATE), 1)


def result_document(job: JobRef, outcome: CountOutcome, model: ModelInfo, input_sha256: str) -> bytes:
    """The plaintext result the client decrypts (`ccc_core.result_document`: canonical JSON, padded
    to one fixed size). Boxes and scores are clamped and rounded so each detection has a bounded
    length, and at most `MAX_RESULT_DETECTIONS` are listed, so every count fits the one size."""
    detections = capped_detections(
        Detection(box=(_coordinate(d.box[0]), _coordinate(d.box[1]), _coordinate(d.box[2]), _coordinate(d.box[3])),
                  score=round(min(max(float(d.score), 0.0), 1.0), 4))
        for d in outcome.detections
    )
    document = ResultDocument(job_id=job.job_id, tenant=job.tenant, input_sha256=input_sha256, cats=outcome.cats,
                              detections=detections, detections_truncated=outcome.cats > len(detections),
                              model=model)
    return encode_result_document(document)


class JobProcessor:
    """Runs jobs through the ports; thread-safe as long as the ports are."""

    def __init__(self, crypto: EnvelopeCrypto, counter: Counter, attester: Attester) -> None:
        self._crypto = crypto
        self._counter = counter
        self._attester = attester

    def process(self, request: JobRequest) -> JobReply:
        """Never raises: every failure is a JobFailure (unexpected ones as `internal`, retryable)."""
        job = request.job
        attributes = safe_attributes({"ccc.job_id": job.job_id, "ccc.tenant": job.tenant,
                                      "ccc.input_bytes": len(request.ciphertext)})
        # The parent's trace context (if any) makes the enclave stages children of its job span.
        # Exceptions are never recorded on spans: their messages may quote data.
        with _TRACER.start_as_current_span(SPAN_ENCLAVE_JOB, context=extract(request.trace, job_id=job.job_id),
                                           attributes=attributes, record_exception=False) as span:
            try:
                return self._process(request)
            except JobError as exc:
                error = ErrorInfo.of(exc.code, exc.reason)
            except Exception as exc:  # a bug or an adapter surprise must not kill the connection or the enclave
                log_event(_LOG, logging.ERROR, "job crashed", job_id=job.job_id, error_type=type(exc).__name__)
                error = ErrorInfo.of(ErrorCode.INTERNAL, f"unexpected {type(exc).__name__} in the enclave")
            span.set_attributes(safe_attributes({"ccc.error_code": error.code, "ccc.retryable": error.retryable}))
            span.set_status(StatusCode.ERROR)
        log_event(_LOG, logging.WARNING, "job failed", job_id=job.job_id, tenant=job.tenant,
                  request_id=request.request_id, code=error.code, retryable=error.retryable, reason=error.reason[:200])
        return JobFailure(request_id=request.request_id, error=error)

    def _process(self, request: JobRequest) -> JobSuccess:
        job = request.job
        start = time.perf_counter()
        with _TRACER.start_as_current_span(SPAN_ENCLAVE_DECRYPT, record_exception=False):
            session = self._crypto.session(request.credentials, request.kms)
            decrypted = session.decrypt(request.ciphertext)
            check_input_context(decrypted.encryption_context, job)
        after_decrypt = time.perf_counter()

        with _TRACER.start_as_current_span(SPAN_ENCLAVE_INFER, record_exception=False):
            outcome = self._counter.count(decrypted.plaintext)
        after_count = time.perf_counter()

        model = ModelInfo(name=self._counter.model_name, sha256=self._counter.model_sha256)
        ref = JobRef(tenant=job.tenant, job_id=job.job_id)
        input_sha256 = hashlib.sha256(request.ciphertext).hexdigest()
        plaintext_result = result_document(ref, outcome, model, input_sha256)
        with _TRACER.start_as_current_span(SPAN_ENCLAVE_ENCRYPT, record_exception=False):
            result_ciphertext = session.encrypt(plaintext_result, ref.result_context(), decrypted.key_arn)
        after_encrypt = time.perf_counter()

        with _TRACER.start_as_current_span(SPAN_ENCLAVE_ATTEST, record_exception=False):
            document = self._attester.attest(result_user_data(request.ciphertext, result_ciphertext))
        end = time.perf_counter()

        metrics = JobMetrics(
            decrypt_ms=round((after_decrypt - start) * 1000, 3),
            infer_ms=round((after_count - after_decrypt) * 1000, 3),
            encrypt_ms=round((after_encrypt - after_count) * 1000, 3),
            attest_ms=round((end - after_encrypt) * 1000, 3),
        )
        log_event(_LOG, logging.INFO, "job done", job_id=job.job_id, tenant=job.tenant,
                  request_id=request.request_id, input_bytes=len(request.ciphertext),
                  output_bytes=len(result_ciphertext), decrypt_ms=metrics.decrypt_ms, infer_ms=metrics.infer_ms,
                  encrypt_ms=metrics.encrypt_ms, attest_ms=metrics.attest_ms)
        return JobSuccess(
            request_id=request.request_id,
            result_ciphertext=result_ciphertext,
            attestation_document=document,
            metrics=metrics,
            model_sha256=self._counter.model_sha256,
            pcr0_hex=self._attester.pcr0_hex,
        )

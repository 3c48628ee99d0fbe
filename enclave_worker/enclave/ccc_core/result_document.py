"""The result document: the plaintext the enclave encrypts for the tenant and the client decrypts.

Writer: the enclave (`ccc_enclave.pipeline`), inside the measured image. Reader: the client
(`ccc.client.crypto`), after the attestation verified and the ESDK decrypted it under the result
context. The definition lives in ``ccc_core`` because the enclave may import only its own
distribution, and the client imports this same module, so the two cannot drift apart.

Wire shape (``ccc-result/1``): one JSON object, keys sorted, no spaces, then padded with trailing
spaces (JSON whitespace) to a multiple of ``RESULT_PAD_BYTES``::

    {"cats":2,"detections":[{"box":[x1,y1,x2,y2],"score":0.91},...],"format":"ccc-result/1",
     "job_id":"<32 hex>","model":{"name":"...","sha256":"<64 hex>"},"tenant":"<tenant>"}

Why padded: the ESDK does not pad and the parent and S3 see the ciphertext's size, so an unpadded
document would reveal how many detections (cats) it lists. 16 KiB holds the default 300.

The job and tenant repeat inside the signed plaintext as a second binding next to the encryption
context; the reader checks both. A reader refuses a ``format`` it does not know.
"""

from __future__ import annotations

import json
from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints

from ccc_core.identity import JobRef
from ccc_core.versioned import DocumentError, JobId, StrictModel, TenantId, decode_versioned

RESULT_FORMAT: Final = "ccc-result/1"
RESULT_PAD_BYTES = 16 * 1024
# A few padded blocks at most; anything far larger is not from our enclave.
MAX_RESULT_DOCUMENT_BYTES = 4 * RESULT_PAD_BYTES

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Detection(StrictModel):
    """One cat: its box in original image pixels (x1, y1, x2, y2) and its score."""

    box: tuple[float, float, float, float]
    score: float = Field(ge=0.0, le=1.0)


class ModelInfo(StrictModel):
    """The model that counted: what the tenant can compare with the published model hash."""

    name: str = Field(min_length=1, max_length=128)
    sha256: Sha256Hex


class ResultDocument(StrictModel):
    format: Literal["ccc-result/1"] = RESULT_FORMAT
    job_id: JobId
    tenant: TenantId
    cats: int = Field(ge=0)
    detections: tuple[Detection, ...]
    model: ModelInfo

    @property
    def job(self) -> JobRef:
        return JobRef(tenant=self.tenant, job_id=self.job_id)


def encode_result_document(document: ResultDocument) -> bytes:
    """Canonical JSON (sorted keys, compact), padded with spaces to a multiple of RESULT_PAD_BYTES."""
    text = json.dumps(document.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), allow_nan=False)
    data = text.encode()
    return data + b" " * (-len(data) % RESULT_PAD_BYTES)


def decode_result_document(plaintext: bytes, *, job: JobRef | None = None) -> ResultDocument:
    """The document in ``plaintext``; with ``job``, it must name exactly that job and tenant.

    Raises DocumentError (reason ``unknown-format`` for a format this reader does not know).
    """
    document = decode_versioned(
        ResultDocument, plaintext, what="result document", tag_field="format", known_tag=RESULT_FORMAT,
        max_bytes=MAX_RESULT_DOCUMENT_BYTES,
    )
    if job is not None:
        for field, found, expected in (
            ("job_id", document.job_id, job.job_id),
            ("tenant", document.tenant, job.tenant),
        ):
            if found != expected:
                raise DocumentError("wrong-job", f"result document names {field}={found!r}, expected {expected!r}")
    return document


__all__ = [
    "MAX_RESULT_DOCUMENT_BYTES",
    "RESULT_FORMAT",
    "RESULT_PAD_BYTES",
    "Detection",
    "DocumentError",
    "ModelInfo",
    "ResultDocument",
    "decode_result_document",
    "encode_result_document",
]

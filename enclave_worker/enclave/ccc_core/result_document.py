"""The result document: the plaintext the enclave encrypts for the tenant and the client decrypts.

Writer: the enclave (`ccc_enclave.pipeline`), inside the measured image. Reader: the client
(`ccc.client.crypto`), after the attestation verified and the ESDK decrypted it under the result
context. The definition lives in ``ccc_core`` because the enclave may import only its own
distribution, and the client imports this same module, so the two cannot drift apart.

Wire shape (``ccc-result/2``): one JSON object, keys sorted, no spaces, then padded with trailing
spaces (JSON whitespace) to exactly ``RESULT_DOCUMENT_BYTES``::

    {"cats":2,"detections":[{"box":[x1,y1,x2,y2],"score":0.91},...],"detections_truncated":false,
     "format":"ccc-result/2","input_sha256":"<64 hex>","job_id":"<32 hex>",
     "model":{"name":"...","sha256":"<64 hex>"},"tenant":"<tenant>"}

Why one fixed size: the ESDK does not pad, and the parent and S3 see the ciphertext's size, so a
document whose length grew with the detections would reveal how many cats it lists. So the list
is capped at ``MAX_RESULT_DETECTIONS`` (the best-scoring ones; ``cats`` stays the true count and
``detections_truncated`` says whether boxes were dropped), every value is bounded, and the
worst-case document fits in ``RESULT_DOCUMENT_BYTES``; every document is padded to exactly that.
A document that would not fit is refused by the writer (the job fails) rather than sent larger.

``input_sha256`` is SHA-256 of the exact input ciphertext the enclave decrypted: the tenant's
client compares it with what it uploaded (``ccc.client.provenance``), and the attestation's
``user_data`` carries the same digest (``ccc_core.result_binding``). The job and tenant repeat
inside the signed plaintext as a second binding next to the encryption context; the reader checks
both. A reader refuses a ``format`` it does not know.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints, model_validator

from ccc_core.identity import JobRef
from ccc_core.versioned import DocumentError, JobId, StrictModel, TenantId, decode_versioned

RESULT_FORMAT: Final = "ccc-result/2"
# At most this many boxes are listed: the counter's default `max_detections`, so with the default
# model spec no box is ever dropped. `cats` is always the true count.
MAX_RESULT_DETECTIONS: Final = 300
# Box coordinates are original-image pixels, clipped to the image; no image the enclave accepts is
# this wide or tall (ccc_core.limits: 40 M pixels), so the bound only bounds the document's size.
MAX_BOX_COORDINATE: Final = 100_000_000.0
MAX_CATS: Final = 1_000_000
# Every document is exactly this long. The worst case (300 boxes at the widest coordinates, a
# 128-character model name of escaped non-ASCII, the longest tenant) is ~23.8 KiB.
RESULT_DOCUMENT_BYTES: Final = 24 * 1024
MAX_RESULT_DOCUMENT_BYTES: Final = RESULT_DOCUMENT_BYTES

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Coordinate = Annotated[float, Field(ge=0.0, le=MAX_BOX_COORDINATE)]


class Detection(StrictModel):
    """One cat: its box in original image pixels (x1, y1, x2, y2) and its score."""

    box: tuple[Coordinate, Coordinate, Coordinate, Coordinate]
    score: float = Field(ge=0.0, le=1.0)


class ModelInfo(StrictModel):
    """The model that counted: what the tenant can compare with the published model hash."""

    name: str = Field(min_length=1, max_length=128)
    sha256: Sha256Hex


class ResultDocument(StrictModel):
    format: Literal["ccc-result/2"] = RESULT_FORMAT
    job_id: JobId
    tenant: TenantId
    input_sha256: Sha256Hex
    cats: int = Field(ge=0, le=MAX_CATS)
    detections: tuple[Detection, ...] = Field(max_length=MAX_RESULT_DETECTIONS)
    detections_truncated: bool
    model: ModelInfo

    @model_validator(mode="after")
    def _count_matches_the_list(self) -> ResultDocument:
        listed = len(self.detections)
        if self.cats < listed:
            raise ValueError("cats is smaller than the number of detections listed")
        if self.detections_truncated != (self.cats > listed):
            raise ValueError("detections_truncated must be true exactly when cats exceeds the detections listed")
        return self

    @property
    def job(self) -> JobRef:
        return JobRef(tenant=self.tenant, job_id=self.job_id)


def capped_detections(detections: Iterable[Detection]) -> tuple[Detection, ...]:
    """The best-scoring ``MAX_RESULT_DETECTIONS`` boxes, best first (ties keep their order)."""
    ranked = sorted(detections, key=lambda detection: -detection.score)
    return tuple(ranked[:MAX_RESULT_DETECTIONS])


def encode_result_document(document: ResultDocument) -> bytes:
    """Canonical JSON (sorted keys, compact), padded with spaces to exactly RESULT_DOCUMENT_BYTES.

    Raises DocumentError(too-large) if the document does not fit: the writer must never emit a
    document whose size differs from every other's.
    """
    text = json.dumps(document.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), allow_nan=False)
    data = text.encode()
    if len(data) > RESULT_DOCUMENT_BYTES:
        raise DocumentError("too-large", f"result document is {len(data)} bytes, more than {RESULT_DOCUMENT_BYTES}")
    return data + b" " * (RESULT_DOCUMENT_BYTES - len(data))


def decode_result_document(plaintext: bytes, *, job: JobRef | None = None) -> ResultDocument:
    """The document in ``plaintext``; with ``job``, it must name exactly that job and tenant.

    Raises DocumentError (reason ``unknown-format`` for a format this reader does not know).
    """
    document = decode_versioned(
        ResultDocument,
        plaintext,
        what="result document",
        tag_field="format",
        known_tag=RESULT_FORMAT,
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
    "MAX_BOX_COORDINATE",
    "MAX_CATS",
    "MAX_RESULT_DETECTIONS",
    "MAX_RESULT_DOCUMENT_BYTES",
    "RESULT_DOCUMENT_BYTES",
    "RESULT_FORMAT",
    "Detection",
    "DocumentError",
    "ModelInfo",
    "ResultDocument",
    "capped_detections",
    "decode_result_document",
    "encode_result_document",
]

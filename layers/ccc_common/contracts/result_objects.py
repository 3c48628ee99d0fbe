"""How a job's result and its attestation are stored, so that a reader can never pair them wrongly.

Why: SQS delivers a message at least once and a visibility timeout can lapse while a job runs, so
one job can be run by two workers. Every run yields a different result ciphertext (a fresh data
key) and an attestation binding exactly that ciphertext (``user_data`` = its SHA-256). With one
fixed key for each, two runs interleaved their PUTs and left one run's result beside another
run's attestation: the job read "NOT VERIFIED" for ever although it had succeeded. Hence:

* the attestation is addressed by the digest of the result it binds,
  ``results/<tenant>/<job>.<sha256 hex>.att``: runs never overwrite each other's documents, and the
  document found under a result's digest is the one written for that result;
* the result, ``results/<tenant>/<job>.ccc`` (an ESDK message, unchanged), is written after its
  attestation and only if no result exists (S3 ``If-None-Match: *``): the first run to finish is
  the job's result for good, a later run is refused with 412 and discards its own;
* the result object carries its digest as metadata (``RESULT_SHA256_METADATA``) so the jobs API can
  name the attestation without downloading the result. Readers that hold the bytes (the client)
  compute the digest themselves; a wrong metadata value can only make verification fail, since
  the client checks the attestation against the SHA-256 of the bytes it downloaded.

Writer: the parent agent. Readers: the client (``ccc.client.job_runner``), the jobs API (through the
``ResultDigests`` port), the job-events Lambda (which ignores attestation objects).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Final

from ccc_core.identity import ATTESTATION_SUFFIX, RESULTS_PREFIX, JobRef, NamingError

RESULT_SHA256_METADATA: Final = "ccc-result-sha256"
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


def result_sha256(result_ciphertext: bytes) -> str:
    """The digest that addresses a result's attestation (lowercase hex SHA-256)."""
    return hashlib.sha256(result_ciphertext).hexdigest()


def attestation_key(job: JobRef, result_digest: str) -> str:
    """``results/<tenant>/<job>.<digest>.att``: the attestation of the result with that digest."""
    if not isinstance(result_digest, str) or not _DIGEST_RE.fullmatch(result_digest):
        raise NamingError(f"invalid result digest {result_digest!r}: expected 64 lowercase hex characters")
    return f"{RESULTS_PREFIX}{job.tenant}/{job.job_id}.{result_digest}{ATTESTATION_SUFFIX}"


def attestation_key_for_result(job: JobRef, result_ciphertext: bytes) -> str:
    return attestation_key(job, result_sha256(result_ciphertext))


def digest_from_metadata(metadata: Mapping[str, str] | None) -> str | None:
    """The digest a result object declares, or None when it declares none (or nothing well-formed)."""
    value = (metadata or {}).get(RESULT_SHA256_METADATA)
    return value if isinstance(value, str) and _DIGEST_RE.fullmatch(value) else None


__all__ = [
    "RESULT_SHA256_METADATA",
    "attestation_key",
    "attestation_key_for_result",
    "digest_from_metadata",
    "result_sha256",
]

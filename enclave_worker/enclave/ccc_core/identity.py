"""Who a job is and how it is named: tenant and job ids, the encryption context, the object keys.

Why in the enclave distribution: the enclave checks every input's encryption context against the
job it was asked to process, so the id rules and context keys are part of what a tenant audits.
Every other process (client, Lambdas, parent agent, CDK) imports these same definitions, so an id
the enclave would refuse is refused everywhere.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from ccc_core.errors import CoreError

# Encryption-context keys. The ESDK binds these into every ciphertext (AAD), the key policy
# conditions on them, and the enclave checks them against the job it was asked to process.
CTX_JOB = "ccc:job"
CTX_TENANT = "ccc:tenant"
CTX_KIND = "ccc:kind"
KIND_INPUT = "input"
KIND_RESULT = "result"

INBOX_PREFIX = "jobs/"
RESULTS_PREFIX = "results/"
CIPHERTEXT_SUFFIX = ".ccc"
# Attestation documents are results/<tenant>/<job>.<sha256 of the result>.att, named by the
# contract that writes and reads them (ccc_common.contracts.result_objects), outside the enclave.
ATTESTATION_SUFFIX = ".att"
# Written by the parent agent when the enclave rejects a job for good (bad ciphertext, wrong
# context, not an image): metadata only, so the job ends `failed` with a reason instead of vanishing.
FAILURE_SUFFIX = ".failed.json"

_TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_JOB_RE = re.compile(r"^[0-9a-f]{32}$")


class NamingError(CoreError, ValueError):
    """A tenant id, job id or object key that does not follow the scheme."""


def validate_tenant(tenant: str) -> str:
    """Tenants appear in S3 keys and IAM conditions, so only a safe alphabet is allowed."""
    if not isinstance(tenant, str) or not _TENANT_RE.fullmatch(tenant):
        raise NamingError(f"invalid tenant id {tenant!r}: use 1-63 chars of a-z, 0-9 and '-'")
    return tenant


def new_job_id(now_s: float | None = None) -> str:
    """A new job id: 8 hex digits of the creation time (Unix seconds) + 24 random hex digits.

    Why the time prefix: the job's trace id is derived from its id (`telemetry.propagation`), and
    AWS X-Ray accepts a trace id only if its first 32 bits are a recent Unix time; with the prefix a
    job's spans are X-Ray trace ids as they stand. 96 random bits keep ids unguessable; the creation
    second is metadata the operator's job record holds anyway."""
    seconds = int(time.time() if now_s is None else now_s) & 0xFFFFFFFF
    return f"{seconds:08x}{secrets.token_hex(12)}"


def validate_job_id(job_id: str) -> str:
    """Job ids are 128 bits of hex (`new_job_id`: creation second + 96 random bits): safe in keys."""
    if not isinstance(job_id, str) or not _JOB_RE.fullmatch(job_id):
        raise NamingError(f"invalid job id {job_id!r}: expected 32 lowercase hex characters")
    return job_id


@dataclass(frozen=True)
class JobRef:
    """The identity of one job: who submitted it and its id."""

    tenant: str
    job_id: str

    def __post_init__(self) -> None:
        validate_tenant(self.tenant)
        validate_job_id(self.job_id)

    @property
    def inbox_key(self) -> str:
        return f"{INBOX_PREFIX}{self.tenant}/{self.job_id}{CIPHERTEXT_SUFFIX}"

    @property
    def result_key(self) -> str:
        return f"{RESULTS_PREFIX}{self.tenant}/{self.job_id}{CIPHERTEXT_SUFFIX}"

    @property
    def failure_key(self) -> str:
        return f"{RESULTS_PREFIX}{self.tenant}/{self.job_id}{FAILURE_SUFFIX}"

    def input_context(self) -> dict[str, str]:
        """The encryption context a client must use for this job's input."""
        return {CTX_JOB: self.job_id, CTX_TENANT: self.tenant}

    def result_context(self) -> dict[str, str]:
        """The encryption context the enclave uses for this job's result."""
        return {CTX_JOB: self.job_id, CTX_TENANT: self.tenant, CTX_KIND: KIND_RESULT}


def _parse_key(key: str, prefix: str, suffix: str) -> JobRef:
    if not key.startswith(prefix) or not key.endswith(suffix):
        raise NamingError(f"object key {key!r} is not of the form {prefix}<tenant>/<job>{suffix}")
    middle = key[len(prefix) : len(key) - len(suffix)]
    parts = middle.split("/")
    if len(parts) != 2:
        raise NamingError(f"object key {key!r} is not of the form {prefix}<tenant>/<job>{suffix}")
    try:
        return JobRef(tenant=parts[0], job_id=parts[1])
    except NamingError as exc:
        raise NamingError(f"object key {key!r}: {exc}") from exc


def parse_inbox_key(key: str) -> JobRef:
    """Inverse of JobRef.inbox_key; rejects anything else (no path tricks, no other prefixes)."""
    return _parse_key(key, INBOX_PREFIX, CIPHERTEXT_SUFFIX)


def parse_result_key(key: str) -> JobRef:
    """Inverse of JobRef.result_key."""
    return _parse_key(key, RESULTS_PREFIX, CIPHERTEXT_SUFFIX)


def parse_failure_key(key: str) -> JobRef:
    """Inverse of JobRef.failure_key."""
    return _parse_key(key, RESULTS_PREFIX, FAILURE_SUFFIX)

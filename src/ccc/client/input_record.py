"""The client's durable record of what it uploaded: job -> SHA-256 of the exact ciphertext bytes.

Why: a result is attested to come from *an* input under the tenant's encryption context, but the
operator (or anyone who can act as the tenant's role) can make such an input too. The enclave binds
each result to the digest of the input it decrypted (`ccc_core.result_binding`); only the tenant's
own client knows which digest it uploaded, so it keeps this record and refuses any result computed
from another input.

One small JSON file per job under the per-user state dir (`$XDG_STATE_HOME/ccc/inputs/<tenant>/`,
else `~/.local/state/ccc/inputs/<tenant>/`), written atomically before the upload starts (so a
crash mid-upload never leaves an uploaded job unrecorded), readable by several client processes at
once with no lock.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Annotated, Final, Literal

from pydantic import StringConstraints, ValidationError

from ccc.atomic_files import write_bytes_atomic
from ccc.client.errors import ClientError
from ccc_core.identity import JobRef
from ccc_core.versioned import JobId, StrictModel, TenantId, validation_summary

RECORD_FORMAT: Final = "ccc.input-record/v1"
MAX_RECORD_BYTES = 4096
HASH_CHUNK = 1024 * 1024

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class InputRecordError(ClientError):
    """The upload record cannot be written or read (the message says which file and why)."""


class UploadRecord(StrictModel):
    format: Literal["ccc.input-record/v1"]
    tenant: TenantId
    job_id: JobId
    input_sha256: Sha256Hex
    ciphertext_bytes: int


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_STATE_HOME/ccc`, else `~/.local/state/ccc`."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or ""
    if base and Path(base).is_absolute():
        return Path(base) / "ccc"
    return Path(env.get("HOME") or Path.home()) / ".local" / "state" / "ccc"


def sha256_of_stream(body: IO[bytes]) -> tuple[str, int]:
    """Digest and length of a seekable body from where it stands; the position is restored."""
    start = body.tell()
    digest = hashlib.sha256()
    size = 0
    while chunk := body.read(HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    body.seek(start)
    return digest.hexdigest(), size


class InputRecord:
    """job -> uploaded ciphertext digest, for one user, under `root` (default: the per-user state dir)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_state_dir()

    def _path(self, job: JobRef) -> Path:
        return self.root / "inputs" / job.tenant / f"{job.job_id}.json"

    def remember(self, job: JobRef, input_sha256: str, ciphertext_bytes: int) -> None:
        record = UploadRecord(
            format=RECORD_FORMAT,
            tenant=job.tenant,
            job_id=job.job_id,
            input_sha256=input_sha256,
            ciphertext_bytes=ciphertext_bytes,
        )
        path = self._path(job)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_bytes_atomic(path, record.model_dump_json().encode() + b"\n", mode=0o600)
        except OSError as exc:
            why = exc.strerror or exc
            raise InputRecordError(f"cannot record the upload of job {job.job_id} in {path}: {why}") from None

    def recall(self, job: JobRef) -> str | None:
        """The digest this user uploaded for `job`, None if it never uploaded one from here."""
        path = self._path(job)
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_RECORD_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InputRecordError(f"cannot read the upload record {path}: {exc.strerror or exc}") from None
        try:
            if len(raw) > MAX_RECORD_BYTES:
                raise ValueError("too large")
            record = UploadRecord.model_validate_json(raw)
        except ValidationError as exc:
            raise InputRecordError(f"the upload record {path} is damaged: {validation_summary(exc)}") from None
        except ValueError:
            raise InputRecordError(f"the upload record {path} is damaged") from None
        if (record.tenant, record.job_id) != (job.tenant, job.job_id):
            raise InputRecordError(f"the upload record {path} names another job")
        return record.input_sha256

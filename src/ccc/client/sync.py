"""`ccc sync`: submit what `ccc submit --queue` put in the outbox, exactly as `ccc submit` would.

Each entry is opened in memory (ccc.client.outbox), encrypted with the ESDK under the pinned key and
the job's context into a private temporary file, recorded (the upload record) and uploaded; then it
is marked with its job id and removed. A failing entry stays queued and the others go on.
"""

from __future__ import annotations

import io
import tempfile
import time
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError as BotoClientError

from ccc.client.crypto import encrypt_stream
from ccc.client.errors import ClientError
from ccc.client.job_runner import CccClient, SubmittedJob
from ccc.client.outbox import Outbox, OutboxError


@dataclass(frozen=True)
class SyncOutcome:
    name: str
    status: str  # submitted | already-submitted | failed (still queued)
    job_id: str | None = None
    error: str | None = None
    job: SubmittedJob | None = None


def submit_image_bytes(client: CccClient, name: str, image: bytes) -> SubmittedJob:
    """`CccClient.submit` for an image held in memory (the outbox never writes it in the clear)."""
    started = time.monotonic()
    ticket = client.create_job()
    with tempfile.TemporaryFile(prefix="ccc-") as sealed:
        size = encrypt_stream(io.BytesIO(image), sealed, provider=client.provider, context=ticket.context)
        limit = client.target.limits.max_ciphertext_bytes
        if size > limit:
            raise ClientError(f"{name}: ciphertext is {size} bytes, over the limit of {limit}")
        sealed.seek(0)
        digest = client.upload(ticket, sealed, size, label=f"upload {name}")
    return SubmittedJob(job=ticket.job, image=name, started=started, ciphertext_bytes=size, input_sha256=digest)


def sync_outbox(client: CccClient, outbox: Outbox) -> list[SyncOutcome]:
    """Submit every queued entry, oldest first, under the outbox's lock."""
    outcomes: list[SyncOutcome] = []
    with outbox.locked():
        for entry in outbox.entries():
            if entry.job_id is not None:  # uploaded by an interrupted sync: never submitted twice
                outbox.remove(entry)
                outcomes.append(SyncOutcome(entry.name, "already-submitted", job_id=entry.job_id))
                continue
            try:
                job = submit_image_bytes(client, entry.name, outbox.open(entry))
            except (ClientError, OutboxError, BotoCoreError, BotoClientError) as exc:
                outcomes.append(SyncOutcome(entry.name, "failed", error=str(exc)[:300]))
                continue
            outbox.remove(outbox.mark_submitted(entry, job.job.job_id))
            outcomes.append(SyncOutcome(entry.name, "submitted", job_id=job.job.job_id, job=job))
    return outcomes


__all__ = ["SyncOutcome", "submit_image_bytes", "sync_outbox"]

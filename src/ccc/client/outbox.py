"""The CLI's outbox: `ccc submit --queue` keeps images sealed on disk until `ccc sync` submits them.

Why a local key, not KMS: queueing must work with no network (on a train, behind a captive
portal), and the ESDK's KMS provider and the job's encryption context both need the service. So an
image is sealed at once with AES-256-GCM under a random key that never leaves this machine
(`<state>/outbox/key`, 0600) — nothing is ever at rest in the clear — and `ccc sync` later opens it in
memory and submits it exactly like `ccc submit` (ESDK under the pinned key, the job's context, the
upload record).

Durable, idempotent, resumable:
* each entry is one file, written atomically (0600), named by its queue time so the order survives;
* `sync` holds an exclusive lock on the outbox, so two syncs never submit the same entry;
* an entry is marked with its job id *after* its ciphertext is uploaded and removed after that; a
  sync interrupted between the upload and the removal finds the mark and removes the entry without
  submitting it again (the result is then fetched with `ccc result JOB_ID`);
* an entry whose submission fails stays queued, untouched, for the next sync.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ccc.atomic_files import write_bytes_atomic
from ccc.client.errors import ClientError
from ccc.client.input_record import default_state_dir

OUTBOX_FORMAT: Final = "ccc.outbox-entry/v1"
KEY_BYTES: Final = 32
MAX_ENTRY_BYTES: Final = 64 * 1024 * 1024  # base64 of the 20 MiB image limit, with room


class OutboxError(ClientError):
    """The outbox cannot be read or written, or an entry does not open (the message says which)."""


@dataclass(frozen=True)
class OutboxEntry:
    path: Path
    name: str  # the image's file name, for messages and reports
    queued_at: float
    job_id: str | None  # set once the ciphertext of this entry was uploaded


def default_outbox_dir() -> Path:
    return default_state_dir() / "outbox"


class Outbox:
    """Entries under `root/entries/`, sealed with the key in `root/key`."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else default_outbox_dir()
        self.entries_dir = self.root / "entries"

    # ----- the key ----------------------------------------------------------------------------
    def _key(self) -> bytes:
        key_file = self.root / "key"
        try:
            key = key_file.read_bytes()
        except FileNotFoundError:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            candidate = secrets.token_bytes(KEY_BYTES)
            try:  # O_EXCL: two processes creating it at once agree on the first one
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(candidate)
            except FileExistsError:
                pass
            key = key_file.read_bytes()
        except OSError as exc:
            raise OutboxError(f"cannot read the outbox key {key_file}: {exc.strerror}") from None
        if len(key) != KEY_BYTES:
            raise OutboxError(f"the outbox key {key_file} is damaged ({len(key)} bytes)")
        return key

    # ----- entries ----------------------------------------------------------------------------
    def add(self, name: str, image: bytes) -> OutboxEntry:
        """Seal `image` and queue it; nothing of it is written in the clear."""
        queued_at = time.time()
        entry_id = f"{time.time_ns():020d}-{secrets.token_hex(8)}"
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._key()).encrypt(nonce, image, f"{OUTBOX_FORMAT}|{entry_id}|{name}".encode())
        document = {
            "format": OUTBOX_FORMAT,
            "id": entry_id,
            "name": name,
            "queued_at": queued_at,
            "job_id": None,
            "nonce": base64.b64encode(nonce).decode(),
            "sealed": base64.b64encode(sealed).decode(),
        }
        self.entries_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.entries_dir / f"{entry_id}.json"
        write_bytes_atomic(path, json.dumps(document).encode(), mode=0o600)
        return OutboxEntry(path=path, name=name, queued_at=queued_at, job_id=None)

    def entries(self) -> list[OutboxEntry]:
        """Queued entries, oldest first."""
        if not self.entries_dir.is_dir():
            return []
        return [self._entry(path) for path in sorted(self.entries_dir.glob("*.json"))]

    def _document(self, path: Path) -> dict[str, object]:
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_ENTRY_BYTES + 1)
            document = json.loads(data)
        except (OSError, ValueError) as exc:
            raise OutboxError(f"outbox entry {path.name} is unreadable ({type(exc).__name__})") from None
        if not isinstance(document, dict) or document.get("format") != OUTBOX_FORMAT or len(data) > MAX_ENTRY_BYTES:
            raise OutboxError(f"outbox entry {path.name} is not a {OUTBOX_FORMAT}")
        return document

    def _entry(self, path: Path) -> OutboxEntry:
        document = self._document(path)
        job_id = document.get("job_id")
        return OutboxEntry(
            path=path,
            name=str(document.get("name")),
            queued_at=float(str(document.get("queued_at"))),
            job_id=job_id if isinstance(job_id, str) else None,
        )

    def open(self, entry: OutboxEntry) -> bytes:
        """The image, in memory only; OutboxError if the entry was altered or the key is another."""
        document = self._document(entry.path)
        try:
            nonce = base64.b64decode(str(document["nonce"]), validate=True)
            sealed = base64.b64decode(str(document["sealed"]), validate=True)
            aad = f"{OUTBOX_FORMAT}|{document['id']}|{document['name']}".encode()
            return AESGCM(self._key()).decrypt(nonce, sealed, aad)
        except (KeyError, ValueError, InvalidTag):
            raise OutboxError(
                f"outbox entry {entry.path.name} does not open (altered, or sealed under another key)"
            ) from None

    def mark_submitted(self, entry: OutboxEntry, job_id: str) -> OutboxEntry:
        document = self._document(entry.path)
        document["job_id"] = job_id
        write_bytes_atomic(entry.path, json.dumps(document).encode(), mode=0o600)
        return OutboxEntry(path=entry.path, name=entry.name, queued_at=entry.queued_at, job_id=job_id)

    def remove(self, entry: OutboxEntry) -> None:
        entry.path.unlink(missing_ok=True)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One sync at a time (an exclusive lock; a second sync fails at once rather than waiting)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.root / "lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OutboxError(f"another `ccc sync` is running on {self.root}") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


__all__ = ["OUTBOX_FORMAT", "Outbox", "OutboxEntry", "OutboxError", "default_outbox_dir"]

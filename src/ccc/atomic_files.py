"""Atomic file writes: readers see the old file or the whole new one, never a torn write.

Why one module: the model build (model + card), the local stack (stack.json, pid and ready files,
component configs) and the local KMS gateway (its config and ready file) all publish files that
another process may read at any moment. They share this one implementation: a temporary file in the
same directory (so the rename stays on one file system), fsync, the final mode set *before* the
rename (a secret is never briefly world-readable under its real name), then `os.replace`.
`atomic_writer` streams (the enclave bundle is ~100 MB: it is written through a handle, not held in
memory); `write_bytes_atomic` is the same thing for data already in memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int = 0o600) -> Iterator[IO[bytes]]:
    """A binary handle on a temporary sibling of `path`; on a clean exit it becomes `path` with `mode`.

    If the block raises, the temporary file is removed and `path` keeps its old content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_bytes_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write `data` to `path` via a temporary sibling and a rename; the file ends with `mode`."""
    with atomic_writer(path, mode=mode) as handle:
        handle.write(data)


def write_json_atomic(path: Path, data: Any, *, mode: int = 0o600) -> None:
    """Write `data` as indented, key-sorted JSON (plus a final newline) atomically."""
    write_bytes_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), mode=mode)

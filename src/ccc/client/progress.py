"""A minimal progress bar on stderr, shown only on a terminal (never in logs or pipes)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Counts bytes for one labelled step; redraws at most 10 times a second."""

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self.total = max(total, 1)
        self.done = 0
        self._last_draw = 0.0

    def __call__(self, amount: int) -> None:
        """boto3 transfer callback signature: bytes since the last call."""
        self.done += amount
        now = time.monotonic()
        if self.enabled and (now - self._last_draw >= 0.1 or self.done >= self.total):
            self._last_draw = now
            self._draw()

    def _draw(self) -> None:
        fraction = min(1.0, self.done / self.total)
        width = 24
        filled = int(fraction * width)
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r{self.label[:40]:<40} [{bar}] {fraction * 100:5.1f}%")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.done = max(self.done, self.total)
            self._draw()
            self.stream.write("\n")
            self.stream.flush()


# A status as the jobs API words it; anything else (a server that sends escapes) prints as "?".
_STATUS_RE = re.compile(r"[a-z][a-z_-]{0,23}")
_FINAL = ("done", "failed")


class JobStatusBoard:
    """While `--wait` polls, one line per status change of each job (submitted -> queued ->
    running -> done), on a terminal only: a fleet waking from zero on AWS takes minutes, and a
    silent terminal looks hung. Quiet in pipes and logs, whose reader gets the final reports."""

    def __init__(
        self, *, stream: TextIO | None = None, enabled: bool | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._clock = clock
        self._started = clock()
        self._labels: dict[str, str] = {}
        self._status: dict[str, str] = {}

    def track(self, job_id: str, label: str) -> None:
        """Name a job by its (local) image, printable characters only."""
        self._labels[job_id] = "".join(c if c.isprintable() else "?" for c in label)[:60]

    def update(self, job_id: str, status: str) -> None:
        shown = status if _STATUS_RE.fullmatch(status) else "?"
        previous = self._status.get(job_id)
        if shown == previous:
            return
        self._status[job_id] = shown
        if not self.enabled:
            return
        elapsed = self._clock() - self._started
        change = f"{previous} -> {shown}" if previous else shown
        label = self._labels.get(job_id, "")
        name = f"{label} ({job_id[:8]})" if label else job_id[:8]
        self.stream.write(f"  [{elapsed:6.1f}s] {name}: {change}\n")
        self.stream.flush()

    def waiting(self) -> int:
        """How many tracked jobs have no final status yet."""
        return sum(1 for job_id in self._labels if self._status.get(job_id) not in _FINAL)

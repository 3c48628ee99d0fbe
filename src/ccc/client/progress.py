"""A minimal progress bar on stderr, shown only on a terminal (never in logs or pipes)."""

from __future__ import annotations

import sys
import time
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

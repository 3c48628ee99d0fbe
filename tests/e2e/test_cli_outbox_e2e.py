"""`ccc submit --queue` then `ccc sync` against a real local stack: queued with no stack involved,
submitted later exactly once, and verified like any `ccc submit --wait` result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ccc.client.outbox import Outbox
from ccc.local.stack import LocalStack


def _ccc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccc", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=dict(os.environ),
    )


def test_queued_images_are_synced_once_and_verified(stack: LocalStack, samples: list[Path]) -> None:
    images = samples[1:3]
    queued = _ccc("submit", "--queue", *map(str, images))  # no --state-dir: nothing of the stack is read
    assert queued.returncode == 0, queued.stderr
    outbox = Outbox()  # XDG_STATE_HOME is the e2e client's (tests/e2e/conftest.py)
    assert [e.name for e in outbox.entries()] == [p.name for p in images]

    synced = _ccc("sync", "--wait", "--json", "--state-dir", str(stack.state_dir))
    assert synced.returncode == 0, synced.stderr
    reports = [json.loads(line) for line in synced.stdout.splitlines() if line.strip()]
    counted = _ccc("count", "--json", *map(str, images))
    expected = {Path(c["image"]).name: c["cats"] for c in map(json.loads, counted.stdout.splitlines())}
    assert {r["image"]: (r["verified"], r["cats"]) for r in reports} == {n: (True, c) for n, c in expected.items()}
    assert outbox.entries() == []

    again = _ccc("sync", "--state-dir", str(stack.state_dir))  # idempotent: nothing left, nothing resent
    assert again.returncode == 0 and again.stdout.strip() == "", again.stdout + again.stderr

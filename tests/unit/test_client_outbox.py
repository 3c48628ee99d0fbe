"""The CLI outbox (ccc submit --queue / ccc sync): sealed at rest, ordered, durable, never submitted twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import ccc.client.sync as sync_module
from ccc.client.errors import ClientError
from ccc.client.job_runner import SubmittedJob
from ccc.client.outbox import Outbox, OutboxError
from ccc.client.sync import sync_outbox
from ccc.telemetry.leakscan import LeakScanner
from ccc_core.identity import JobRef

IMAGE = bytes(range(256)) * 64  # 16 KiB with every byte value: any copy would be found


def test_a_queued_image_is_sealed_at_rest_and_opens_back(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    entry = outbox.add("cat.jpg", IMAGE)
    scanner = LeakScanner()
    scanner.add_blob("cat.jpg", IMAGE)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert scanner.scan_bytes(str(path), path.read_bytes()) == [], path
            assert path.stat().st_mode & 0o077 == 0, path  # 0600: no other user reads it
    assert outbox.open(entry) == IMAGE


def test_entries_keep_their_order_across_processes(tmp_path: Path) -> None:
    first = Outbox(tmp_path)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        first.add(name, IMAGE + name.encode())
    again = Outbox(tmp_path)  # a later `ccc sync`
    assert [entry.name for entry in again.entries()] == ["a.jpg", "b.jpg", "c.jpg"]
    assert again.open(again.entries()[1]) == IMAGE + b"b.jpg"


def test_an_altered_entry_or_another_key_does_not_open(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    entry = outbox.add("cat.jpg", IMAGE)
    document = json.loads(entry.path.read_text())
    document["name"] = "dog.jpg"  # the name is authenticated with the image
    entry.path.write_text(json.dumps(document))
    with pytest.raises(OutboxError, match="does not open"):
        outbox.open(entry)
    document["name"] = "cat.jpg"
    other = Outbox(tmp_path / "other")
    other.add("x", b"x")  # another machine's outbox, with its own key
    moved = other.entries_dir / entry.path.name
    moved.write_text(json.dumps(document))
    [copied] = [e for e in other.entries() if e.path == moved]
    with pytest.raises(OutboxError, match="does not open"):
        other.open(copied)


def test_two_syncs_never_run_at_once(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    with outbox.locked(), pytest.raises(OutboxError, match="another"), Outbox(tmp_path).locked():
        pass


class _Submitter:
    """Stands in for the ESDK + upload (tested elsewhere): records what would have been submitted."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.fail = fail or set()
        self.submitted: list[tuple[str, bytes]] = []

    def __call__(self, client: Any, name: str, image: bytes) -> SubmittedJob:
        if name in self.fail:
            raise ClientError(f"{name}: the jobs API is not reachable")
        self.submitted.append((name, image))
        job = JobRef(tenant="tenant-a", job_id=f"{len(self.submitted):032x}")
        return SubmittedJob(job=job, image=name, started=0.0, ciphertext_bytes=len(image), input_sha256="0" * 64)


def test_sync_submits_each_entry_once_and_keeps_failures_queued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    outbox = Outbox(tmp_path)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        outbox.add(name, IMAGE + name.encode())
    submitter = _Submitter(fail={"b.jpg"})
    monkeypatch.setattr(sync_module, "submit_image_bytes", submitter)
    outcomes = sync_outbox(object(), outbox)  # type: ignore[arg-type]
    assert [(o.name, o.status) for o in outcomes] == [
        ("a.jpg", "submitted"),
        ("b.jpg", "failed"),
        ("c.jpg", "submitted"),
    ]
    assert [e.name for e in outbox.entries()] == ["b.jpg"]  # only the failure waits
    submitter.fail.clear()
    again = sync_outbox(object(), outbox)  # type: ignore[arg-type]
    assert [(o.name, o.status) for o in again] == [("b.jpg", "submitted")]
    assert [name for name, _ in submitter.submitted] == ["a.jpg", "c.jpg", "b.jpg"]  # each exactly once
    assert outbox.entries() == []


def test_an_entry_uploaded_by_an_interrupted_sync_is_not_submitted_again(tmp_path: Path, monkeypatch):
    outbox = Outbox(tmp_path)
    outbox.mark_submitted(outbox.add("a.jpg", IMAGE), "ab" * 16)  # the sync died before removing it
    submitter = _Submitter()
    monkeypatch.setattr(sync_module, "submit_image_bytes", submitter)
    outcomes = sync_outbox(object(), outbox)  # type: ignore[arg-type]
    assert [(o.name, o.status, o.job_id) for o in outcomes] == [("a.jpg", "already-submitted", "ab" * 16)]
    assert submitter.submitted == [] and outbox.entries() == []


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=1, max_size=4096), st.text(min_size=1, max_size=40))
def test_round_trip_of_any_image_and_name(tmp_path_factory: pytest.TempPathFactory, image: bytes, name: str) -> None:
    outbox = Outbox(tmp_path_factory.mktemp("outbox"))
    entry = outbox.add(name, image)
    assert outbox.entries()[0].name == name and outbox.open(entry) == image


def test_submit_queue_needs_no_stack_and_no_trust_file(tmp_path: Path) -> None:
    sample = tmp_path / "cat.png"
    Image.new("RGB", (32, 24), (200, 120, 40)).save(sample)
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path), "CCC_TRUST_FILE": str(tmp_path / "none.json")}
    done = subprocess.run(
        [sys.executable, "-m", "ccc", "submit", "--queue", str(sample), "--state-dir", str(tmp_path / "no-stack")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [e.name for e in Outbox(tmp_path / "ccc" / "outbox").entries()] == [sample.name]

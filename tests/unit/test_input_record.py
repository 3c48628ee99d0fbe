"""The client's upload record (job -> SHA-256 of the uploaded ciphertext): durable, per user, strict.

A verifier is only as good as the digest it is given: a record that is missing says so (None, so the
result is `input_unknown`), one that is damaged or names another job is an error, never a pass.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc.client.input_record import InputRecord, InputRecordError, default_state_dir, sha256_of_stream
from ccc_core.identity import JobRef

JOB = JobRef("tenant-a", "e" * 32)


def test_the_default_is_the_per_user_state_dir(tmp_path: Path) -> None:
    assert default_state_dir({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "ccc"
    assert default_state_dir({"HOME": str(tmp_path)}) == tmp_path / ".local" / "state" / "ccc"
    assert default_state_dir({"HOME": str(tmp_path), "XDG_STATE_HOME": "relative"}).is_relative_to(tmp_path)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=5000), st.integers(min_value=0, max_value=100))
def test_a_stream_digest_is_its_bytes_digest_and_the_position_is_kept(data: bytes, skip: int) -> None:
    body = io.BytesIO(b"x" * skip + data)
    body.seek(skip)
    assert sha256_of_stream(body) == (hashlib.sha256(data).hexdigest(), len(data))
    assert body.tell() == skip


def test_remember_then_recall_across_instances_and_private_files(tmp_path: Path) -> None:
    InputRecord(tmp_path).remember(JOB, "ab" * 32, 123)
    assert InputRecord(tmp_path).recall(JOB) == "ab" * 32
    assert InputRecord(tmp_path).recall(JobRef("tenant-a", "f" * 32)) is None
    assert InputRecord(tmp_path).recall(JobRef("tenant-b", JOB.job_id)) is None
    path = tmp_path / "inputs" / "tenant-a" / f"{JOB.job_id}.json"
    assert path.stat().st_mode & 0o777 == 0o600


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_a_damaged_record_is_an_error_never_a_digest(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    root = tmp_path_factory.mktemp("records")
    record = InputRecord(root)
    record.remember(JOB, "ab" * 32, 1)
    path = root / "inputs" / "tenant-a" / f"{JOB.job_id}.json"
    path.write_bytes(data)
    try:
        recalled = record.recall(JOB)
    except InputRecordError as exc:
        assert "\n" not in str(exc)
    else:  # only a well-formed record of this very job can give a digest
        assert recalled is not None and len(recalled) == 64


def test_a_record_moved_to_another_job_is_refused(tmp_path: Path) -> None:
    InputRecord(tmp_path).remember(JOB, "ab" * 32, 1)
    other = JobRef("tenant-a", "f" * 32)
    source = tmp_path / "inputs" / "tenant-a" / f"{JOB.job_id}.json"
    source.rename(source.with_name(f"{other.job_id}.json"))
    with pytest.raises(InputRecordError, match="another job"):
        InputRecord(tmp_path).recall(other)

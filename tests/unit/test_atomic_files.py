"""Atomic writes shared by the model build, the local stack and the local KMS gateway."""

from __future__ import annotations

import json
import stat

import pytest

from ccc.atomic_files import write_bytes_atomic, write_json_atomic


def test_atomic_write_replaces_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    write_bytes_atomic(target, b"one")
    write_bytes_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_the_file_ends_with_the_requested_mode(tmp_path, mode):
    target = tmp_path / "file.json"
    write_json_atomic(target, {"b": 1, "a": [2]}, mode=mode)
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert json.loads(target.read_text()) == {"a": [2], "b": 1}
    assert target.read_text().endswith("}\n")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "file.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"v": object()})  # not JSON: fails before anything is written
    with pytest.raises(TypeError):
        write_bytes_atomic(target, "text, not bytes")  # type: ignore[arg-type]  # fails mid-write
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]

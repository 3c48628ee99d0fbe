"""A fresh stack keeps the previous run's telemetry instead of deleting it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ccc.telemetry.runs import RunNotFound, all_runs, archive_current_run, archived_runs, select_run


def _run(state_dir: Path, mtime: float, text: str = "{}\n") -> Path:
    telemetry = state_dir / "telemetry"
    telemetry.mkdir(parents=True)
    (telemetry / "parent.spans.jsonl").write_text(text)
    os.utime(telemetry, (mtime, mtime))
    return telemetry


def test_the_current_telemetry_moves_under_runs_with_its_time_as_id(tmp_path: Path) -> None:
    _run(tmp_path, 1_767_268_800, "span\n")  # 2026-01-01 12:00:00 UTC
    moved = archive_current_run(tmp_path)
    assert moved == tmp_path / "runs" / "20260101T120000Z" / "telemetry"
    assert (moved / "parent.spans.jsonl").read_text() == "span\n"
    assert not (tmp_path / "telemetry").exists()


def test_two_runs_in_the_same_second_both_survive(tmp_path: Path) -> None:
    _run(tmp_path, 1_767_268_800)
    archive_current_run(tmp_path)
    _run(tmp_path, 1_767_268_800)
    archive_current_run(tmp_path)
    assert [r.run_id for r in archived_runs(tmp_path)] == ["20260101T120000Z", "20260101T120000Z-2"]


def test_nothing_to_keep_is_not_a_run(tmp_path: Path) -> None:
    assert archive_current_run(tmp_path) is None
    (tmp_path / "telemetry").mkdir()
    assert archive_current_run(tmp_path) is None
    assert all_runs(tmp_path) == []


def test_only_the_newest_runs_are_kept(tmp_path: Path) -> None:
    for minute in range(5):
        _run(tmp_path, 1_767_268_800 + 60 * minute)
        archive_current_run(tmp_path, keep=3)
    assert [r.run_id for r in archived_runs(tmp_path)] == ["20260101T120200Z", "20260101T120300Z", "20260101T120400Z"]


def test_select_defaults_to_the_latest_and_refuses_an_unknown_id(tmp_path: Path) -> None:
    with pytest.raises(RunNotFound, match="no telemetry"):
        select_run(tmp_path, None)
    _run(tmp_path, 1_767_268_800)
    archive_current_run(tmp_path)
    assert select_run(tmp_path, None).run_id == "20260101T120000Z"
    _run(tmp_path, 1_767_268_900)
    assert select_run(tmp_path, None).run_id == "current"
    assert select_run(tmp_path, "20260101T120000Z").directory == tmp_path / "runs" / "20260101T120000Z" / "telemetry"
    with pytest.raises(RunNotFound, match="runs: 20260101T120000Z, current"):
        select_run(tmp_path, "x")

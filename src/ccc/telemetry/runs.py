"""Where a local stack's telemetry runs live: the current one and the archived ones.

Why: `ccc local up` starts every stack with empty telemetry (a report must describe one run), but
the previous run's telemetry is the only record of what happened in it. So a fresh stack *moves*
the old `<state-dir>/telemetry` to `<state-dir>/runs/<id>/telemetry` instead of deleting it, and
`ccc report --run ID` renders any of them. One module holds the layout for both the stack (writer)
and the report (reader).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ccc.errors import CccError
from ccc_core.telemetry.setup import telemetry_dir

RUNS_DIRNAME = "runs"
CURRENT_RUN = "current"
# Archived runs kept per state dir (oldest removed first): enough to compare a few runs, bounded disk.
KEEP_RUNS = 20


class RunNotFound(CccError):
    """`--run` named a run that the state dir does not hold."""


@dataclass(frozen=True)
class TelemetryRun:
    run_id: str
    directory: Path


def runs_dir(state_dir: Path) -> Path:
    return state_dir / RUNS_DIRNAME


def _run_id_for(directory: Path) -> str:
    """The run's id: its telemetry directory's last change (≈ when its processes created their files), UTC."""
    stamp = dt.datetime.fromtimestamp(directory.stat().st_mtime, tz=dt.UTC)
    return stamp.strftime("%Y%m%dT%H%M%SZ")


def archive_current_run(state_dir: Path, keep: int = KEEP_RUNS) -> Path | None:
    """Move `<state-dir>/telemetry` (if it holds anything) under `runs/<id>/`; returns where it went.

    Called by a fresh stack before its processes start. An empty directory is simply removed."""
    current = telemetry_dir(state_dir)
    if not current.is_dir():
        return None
    if not any(current.iterdir()):
        current.rmdir()
        return None
    base = _run_id_for(current)
    run_id, suffix = base, 1
    while (runs_dir(state_dir) / run_id).exists():
        suffix += 1
        run_id = f"{base}-{suffix}"
    target = runs_dir(state_dir) / run_id
    target.mkdir(parents=True)
    os.replace(current, target / current.name)
    for old in archived_runs(state_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old.directory.parent, ignore_errors=True)
    return target / current.name


def archived_runs(state_dir: Path) -> list[TelemetryRun]:
    """Archived runs, oldest first (ids sort by time)."""
    root = runs_dir(state_dir)
    if not root.is_dir():
        return []
    found = [
        TelemetryRun(entry.name, telemetry_dir(entry)) for entry in root.iterdir() if telemetry_dir(entry).is_dir()
    ]
    return sorted(found, key=lambda run: run.run_id)


def all_runs(state_dir: Path) -> list[TelemetryRun]:
    """Every run, oldest first; the running (or last started) stack's telemetry is `current`, last."""
    runs = archived_runs(state_dir)
    if telemetry_dir(state_dir).is_dir():
        runs.append(TelemetryRun(CURRENT_RUN, telemetry_dir(state_dir)))
    return runs


def select_run(state_dir: Path, run_id: str | None) -> TelemetryRun:
    """The run `--run` names; without one, the latest run (the current telemetry if any)."""
    runs = all_runs(state_dir)
    if not runs:
        raise RunNotFound(f"no telemetry in {state_dir}")
    if run_id is None:
        return runs[-1]
    for run in runs:
        if run.run_id == run_id:
            return run
    known = ", ".join(run.run_id for run in runs)
    raise RunNotFound(f"no run {run_id!r} in {state_dir} (runs: {known})")

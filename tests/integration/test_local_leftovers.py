"""`ccc local down` with a stale or copied stack.json signals only process groups that stack created.

Issue 13 §3: the clean-up SIGKILLed any pid in stack.json whose command line contained "ccc" (a
dummy process was killed while the command printed "no local stack is running"). A process is now
signalled only if it is the very process recorded (pid and kernel start time) and carries the
launch mark of this state directory; the supervisor only if its pid file was written for this
directory by that same process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccc.local.processes import ManagedProcess, launched_by
from ccc.local.stack import stop_stack
from ccc.local.state import StatePaths, process_start_ticks, write_pid_file

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)", "ccc", "local"]


def _stale_stack(state_dir: Path, pids: dict[str, int], ticks: dict[str, int] | None = None) -> None:
    """A stack.json as the supervisor writes it (start ticks of each pid unless `ticks` is given)."""
    paths = StatePaths(state_dir.resolve())
    paths.root.mkdir(parents=True, exist_ok=True)
    if ticks is None:
        ticks = {name: process_start_ticks(pid) or 0 for name, pid in pids.items()}
    paths.stack_file.write_text(json.dumps({"pids": pids, "pid_start_ticks": ticks}))
    paths.pid_file.write_text(json.dumps({"pid": 999_999_999, "start_ticks": 1}))  # a supervisor long gone


def _gone(process: ManagedProcess, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while process.running and time.monotonic() < deadline:
        time.sleep(0.05)
    return not process.running


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A process whose command line says "ccc", in a session of its own, that no stack started."""
    process = subprocess.Popen(SLEEPER, start_new_session=True)
    yield process
    process.kill()
    process.wait(10)


def test_a_stale_stack_file_naming_a_foreign_process_does_not_kill_it(tmp_path: Path, bystander) -> None:
    _stale_stack(tmp_path / "state", {"moto": bystander.pid})
    assert stop_stack(tmp_path / "state", timeout=1) is False  # "no local stack is running"
    time.sleep(0.3)
    assert bystander.poll() is None, "a process this stack never started was killed"


def test_a_copied_stack_file_does_not_reach_another_stacks_processes(tmp_path: Path) -> None:
    other = ManagedProcess(name="moto", command=SLEEPER, log_path=tmp_path / "other" / "logs" / "moto.log")
    other.start()
    try:
        assert other.pid is not None and launched_by(other.pid, tmp_path / "other")
        _stale_stack(tmp_path / "copy", {"moto": other.pid})  # stack.json copied into another state dir
        assert stop_stack(tmp_path / "copy", timeout=1) is False
        time.sleep(0.3)
        assert other.running, "another stack's process was killed through a copied stack.json"
    finally:
        other.stop(timeout=5)


def test_the_leftovers_of_this_stack_are_still_cleaned_up(tmp_path: Path) -> None:
    state = tmp_path / "state"
    leftover = ManagedProcess(name="parent-1", command=SLEEPER, log_path=state / "logs" / "parent-1.log")
    leftover.start()
    try:
        assert leftover.pid is not None
        _stale_stack(state, {"parent-1": leftover.pid})
        assert stop_stack(state, timeout=1) is False
        assert _gone(leftover), "this stack's leftover survived `ccc local down`"
    finally:
        leftover.stop(timeout=5)


def test_a_recorded_pid_now_held_by_another_process_is_not_killed(tmp_path: Path) -> None:
    """The pid number matches and the process even carries this stack's mark (a restarted
    component, say), but its start time is not the recorded one: a reused pid is never signalled."""
    state = tmp_path / "state"
    process = ManagedProcess(name="parent-1", command=SLEEPER, log_path=state / "logs" / "parent-1.log")
    process.start()
    try:
        assert process.pid is not None
        recorded = (process_start_ticks(process.pid) or 0) - 1
        _stale_stack(state, {"parent-1": process.pid}, ticks={"parent-1": recorded})
        assert stop_stack(state, timeout=1) is False
        time.sleep(0.3)
        assert process.running, "a process whose start time differs from the recorded one was killed"
        _stale_stack(state, {"parent-1": process.pid}, ticks={})  # no start time recorded: never trusted
        assert stop_stack(state, timeout=1) is False
        time.sleep(0.3)
        assert process.running
    finally:
        process.stop(timeout=5)


def test_a_pid_file_copied_from_another_state_dir_does_not_signal_its_supervisor(tmp_path: Path, bystander) -> None:
    """supervisor.pid names a live process with the right start time, but it was written for
    another state directory (or carries no start time): `ccc local down` here sends it nothing."""
    other, here = tmp_path / "other", tmp_path / "here"
    other.mkdir()
    here.mkdir()
    ticks = process_start_ticks(bystander.pid)
    for record in ({"pid": bystander.pid, "start_ticks": ticks, "state_dir": other.resolve().as_posix()},
                   {"pid": bystander.pid}):
        StatePaths(here).pid_file.write_text(json.dumps(record))
        assert stop_stack(here, timeout=1) is False
        time.sleep(0.3)
        assert bystander.poll() is None, f"a supervisor pid file {record} made down signal a bystander"
    # The pid file a supervisor writes for its own directory is trusted.
    assert write_pid_file(StatePaths(here).pid_file, here).supervises(here)

"""The local fleet's reconcile/drain/restart logic, with small stand-in processes instead of real workers."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from ccc.local.fleet_supervisor import LocalFleet, LocalWorker
from ccc.local.processes import ManagedProcess
from ccc_common.domain.drain import WorkerPhase

# A parent stand-in: reports ready, then on SIGTERM "drains" for a moment and exits.
PARENT = """
import pathlib, signal, sys, time
pathlib.Path(sys.argv[1]).write_text("ready")
def stop(*_):
    time.sleep(0.3)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    time.sleep(0.05)
"""
ENCLAVE = "import time\nwhile True: time.sleep(0.05)\n"


def _factory(tmp_path: Path):
    def make(slot: int) -> LocalWorker:
        ready = tmp_path / f"parent-{slot}.ready"
        return LocalWorker(
            slot=slot,
            enclave=ManagedProcess(f"enclave-{slot}", [sys.executable, "-c", ENCLAVE], tmp_path / f"e{slot}.log"),
            parent=ManagedProcess(
                f"parent-{slot}", [sys.executable, "-c", PARENT, str(ready)], tmp_path / f"p{slot}.log"
            ),
            parent_ready=ready,
            endpoint=f"unix://{tmp_path}/e{slot}.sock",
        )

    return make


def _until(condition, fleet: LocalFleet, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out; fleet: {fleet.describe()}"
        fleet.tick()
        time.sleep(0.05)


def test_fleet_follows_desired_capacity_drains_and_restarts(tmp_path):
    fleet = LocalFleet(_factory(tmp_path), drain_timeout_s=5)
    try:
        assert fleet.reconcile(2)
        _until(lambda: len(fleet.serving()) == 2, fleet)
        assert [w.worker_id for w in fleet.workers] == ["worker-1", "worker-2"]

        # A dead enclave of a serving worker comes back (new pid), the worker keeps serving.
        victim = fleet.workers[0].enclave.pid
        os.kill(victim, signal.SIGKILL)
        _until(lambda: fleet.workers[0].enclave.running and fleet.workers[0].enclave.pid != victim, fleet)
        assert fleet.workers[0].phase is WorkerPhase.SERVING

        # Scale in: one worker drains (parent SIGTERM, then enclave stopped) and disappears.
        assert fleet.reconcile(1)
        assert fleet.counts()["draining"] == 1
        draining = next(w for w in fleet.workers if w.phase is WorkerPhase.DRAINING)
        _until(lambda: len(fleet.workers) == 1, fleet)
        assert not draining.parent.running and not draining.enclave.running
        assert draining.parent.exit_code == 0  # it drained, it was not killed

        # Scale out again reuses the free slot.
        fleet.reconcile(2)
        assert sorted(w.slot for w in fleet.workers) == [1, 2]
        _until(lambda: len(fleet.serving()) == 2, fleet)
    finally:
        fleet.stop(timeout=5)
    assert fleet.workers == []


def test_scale_to_zero_stops_everything(tmp_path):
    fleet = LocalFleet(_factory(tmp_path), drain_timeout_s=5)
    try:
        fleet.reconcile(1)
        _until(lambda: len(fleet.serving()) == 1, fleet)
        processes = [fleet.workers[0].enclave, fleet.workers[0].parent]
        fleet.reconcile(0)
        _until(lambda: not fleet.workers, fleet)
        assert not any(p.running for p in processes)
        assert fleet.pids() == {}
    finally:
        fleet.stop(timeout=5)

"""The local enclave fleet: parent agent + enclave process pairs that follow the group's desired capacity.

Why: on AWS the Auto Scaling group launches and terminates Nitro hosts and a termination lifecycle
hook lets each parent agent drain first. moto creates and terminates instances instantly and never
honours hooks, so locally the supervisor reads the group's desired capacity and runs the matching
number of worker pairs itself, choosing which to drain with `ccc_common.domain.drain.plan_fleet` (the same
decision the design describes) and draining exactly as the agent does on AWS: SIGTERM to the parent
(it stops polling and finishes its in-flight jobs), then the enclave is stopped.

A worker is STARTING until its parent agent reports ready (the enclave answered a health check and
polling began), then SERVING. A dead process of a serving worker is restarted (an enclave crash must
not lose a job: the parent retries the job once the enclave is back).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ccc.local.processes import ManagedProcess
from ccc_common.domain.drain import WorkerPhase, WorkerView, plan_fleet

log = logging.getLogger("ccc.local.fleet_supervisor")

QUICK_DEATH_S = 5.0
MAX_RESTART_DELAY_S = 10.0
DEFAULT_DRAIN_TIMEOUT_S = 150.0  # job timeout plus margin: then the parent is killed (its messages reappear)


@dataclass
class _Restart:
    """Crash-loop back-off for one process."""

    delay_s: float = 0.5
    at: float | None = None

    def due(self, process: ManagedProcess, now: float) -> bool:
        if self.at is None:
            quick = process.uptime < QUICK_DEATH_S
            delay = self.delay_s if quick else 0.0
            self.delay_s = min(MAX_RESTART_DELAY_S, self.delay_s * 2) if quick else 0.5
            self.at = now + delay
            log.warning("%s exited with status %s; restarting in %.1fs", process.name, process.exit_code, delay)
        if now >= self.at:
            self.at = None
            return True
        return False


@dataclass
class LocalWorker:
    """One parent agent + enclave pair (the local stand-in for one Nitro host)."""

    slot: int
    enclave: ManagedProcess
    parent: ManagedProcess
    parent_ready: Path
    endpoint: str
    phase: WorkerPhase = WorkerPhase.STARTING
    started_at: float = field(default_factory=time.time)
    draining_since: float | None = None
    _restarts: dict[str, _Restart] = field(default_factory=dict)

    @property
    def worker_id(self) -> str:
        return f"worker-{self.slot}"

    def start(self) -> None:
        self.parent_ready.unlink(missing_ok=True)
        self.enclave.start()
        self.parent.start()  # the agent waits for the enclave's health itself before polling

    def view(self) -> WorkerView:
        return WorkerView(worker_id=self.worker_id, phase=self.phase, in_flight=0, started_at=self.started_at)

    def drain(self, now: float) -> None:
        if self.phase is WorkerPhase.DRAINING:
            return
        log.info("draining %s (parent pid %s)", self.worker_id, self.parent.pid)
        self.phase = WorkerPhase.DRAINING
        self.draining_since = now
        self.parent.signal(signal.SIGTERM)

    def tick(self, now: float, drain_timeout_s: float) -> bool:
        """Advance this worker; returns False once it has fully stopped (drained)."""
        if self.phase is WorkerPhase.DRAINING:
            since = self.draining_since if self.draining_since is not None else now
            if self.parent.running and now - since < drain_timeout_s:
                return True
            self.parent.stop(timeout=1.0)
            self.enclave.stop()
            log.info("%s stopped after draining %.1fs", self.worker_id, now - since)
            return False
        for process in (self.enclave, self.parent):
            if not process.running:
                restart = self._restarts.setdefault(process.name, _Restart())
                if restart.due(process, now):
                    process.restart()
                    log.info("%s restarted (pid %s, restart #%d)", process.name, process.pid, process.restarts)
        if self.phase is WorkerPhase.STARTING and self.parent_ready.exists():
            self.phase = WorkerPhase.SERVING
            log.info("%s serving (enclave pid %s, parent pid %s)", self.worker_id, self.enclave.pid, self.parent.pid)
        return True

    def stop(self, timeout: float) -> None:
        self.parent.stop(timeout=timeout)
        self.enclave.stop()


WorkerFactory = Callable[[int], LocalWorker]


class LocalFleet:
    """The set of local workers, reconciled against a desired count."""

    def __init__(self, factory: WorkerFactory, *, drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S) -> None:
        self._factory = factory
        self._drain_timeout_s = drain_timeout_s
        self.workers: list[LocalWorker] = []

    def _free_slot(self) -> int:
        used = {worker.slot for worker in self.workers}
        slot = 1
        while slot in used:
            slot += 1
        return slot

    def reconcile(self, desired: int, now: float | None = None) -> bool:
        """Start or drain workers to match `desired`; returns True if anything changed."""
        now = time.time() if now is None else now
        plan = plan_fleet(desired, [worker.view() for worker in self.workers])
        for _ in range(plan.start):
            worker = self._factory(self._free_slot())
            self.workers.append(worker)
            worker.start()
            log.info("%s starting (desired %d)", worker.worker_id, desired)
        for worker in self.workers:
            if worker.worker_id in plan.drain:
                worker.drain(now)
        return bool(plan.start or plan.drain)

    def tick(self, now: float | None = None) -> bool:
        """Readiness, restarts and finished drains; returns True if the worker set or pids changed."""
        now = time.time() if now is None else now
        before = self.signature()
        self.workers = [worker for worker in self.workers if worker.tick(now, self._drain_timeout_s)]
        return self.signature() != before

    def signature(self) -> tuple[tuple[str, str, int | None, int | None], ...]:
        return tuple((w.worker_id, w.phase.value, w.enclave.pid, w.parent.pid) for w in self.workers)

    def serving(self) -> list[LocalWorker]:
        return [worker for worker in self.workers if worker.phase is WorkerPhase.SERVING]

    def counts(self) -> dict[str, int]:
        counts = {phase.value: 0 for phase in WorkerPhase}
        for worker in self.workers:
            counts[worker.phase.value] += 1
        return counts

    def pids(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for worker in self.workers:
            for process in (worker.enclave, worker.parent):
                if process.pid is not None and process.running:
                    found[process.name] = process.pid
        return found

    def describe(self) -> list[dict[str, object]]:
        return [
            {
                "worker": w.worker_id,
                "phase": w.phase.value,
                "enclave_pid": w.enclave.pid,
                "parent_pid": w.parent.pid,
                "restarts": w.enclave.restarts + w.parent.restarts,
            }
            for w in self.workers
        ]

    def stop(self, timeout: float) -> None:
        """Drain every worker at once (parents first), then stop the enclaves."""
        for worker in self.workers:
            worker.parent.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            worker.parent.stop(timeout=max(0.1, deadline - time.monotonic()))
        for worker in self.workers:
            worker.enclave.signal(signal.SIGTERM)
        for worker in self.workers:
            worker.enclave.stop(timeout=5.0)
        self.workers.clear()

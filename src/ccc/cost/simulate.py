"""A discrete-event month of CCC: arrivals, the real scaler, an Auto Scaling group with a warm pool.

Why drive the real policy: the scaling rules (scale out at once, scale in after the idle timeout,
never below what in-flight jobs occupy) decide both the cost and the latency, so the simulator
calls `ccc_common.domain.scaler_run.run_scaler` through the same ports the Lambda uses (a simulated
queue gauge and fleet group), on the same triggers: the schedule tick and the wake job-events sends
for every new job. Only the world around it is modelled (boots, jobs, the warm pool), with the
durations of `ccc.cost.timing`.

Model: a host serves up to ``jobs_per_instance`` jobs at once (the parent's concurrency); each
job spends ``job_io_s`` in S3/KMS round trips and its compute on the enclave, one job at a time
(the bench measured a whole 2-core enclave per image). Scale-in drains (no new jobs, in-flight
ones finish) and then parks the host in the warm pool (reuse on scale-in) or terminates it. The
warm pool is refilled in the background (a cold launch that installs, billed while it runs).
Cost: host-seconds x the template's host hourly price, jobs x per-request prices, plus the idle
cost of the stack. Jobs arriving before the horizon all finish: the run continues past it.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from ccc.cost.timing import Timing
from ccc_common.domain.fleet_ports import FleetGroup, GroupState, QueueDepth, WorkQueueGauge
from ccc_common.domain.scaler_run import run_scaler
from ccc_common.domain.scaling import ScalingSettings


class HostState(Enum):
    BOOTING = "booting"
    SERVING = "serving"
    DRAINING = "draining"


@dataclass
class Host:
    id: int
    state: HostState
    launched_at: float
    busy: int = 0
    cpu_free_at: float = 0.0


@dataclass(frozen=True)
class FleetModel:
    """The group as configured: scaling settings, scaler schedule, warm pool, always-on or not."""

    scaling: ScalingSettings
    scaler_period_s: float
    warm_pool_size: int
    always_on: bool = False


@dataclass(frozen=True)
class SimResult:
    jobs: int
    latencies_s: tuple[float, ...]  # upload -> result, one per job, in arrival order
    host_seconds: float
    launches: int
    resumes: int
    max_hosts: int
    end_s: float

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile (q in [0, 100]); 0 when no job ran."""
        if not self.latencies_s:
            return 0.0
        ordered = sorted(self.latencies_s)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[rank - 1]


class _Gauge(WorkQueueGauge):
    def __init__(self, sim: _Simulation) -> None:
        self._sim = sim

    def depth(self) -> QueueDepth:
        return QueueDepth(visible=len(self._sim.queue), in_flight=sum(h.busy for h in self._sim.hosts.values()))


class _Group(FleetGroup):
    def __init__(self, sim: _Simulation) -> None:
        self._sim = sim
        self.desired = 0
        self.last_activity: float | None = None
        self.last_full_capacity: float | None = None

    def describe(self) -> GroupState:
        hosts = self._sim.hosts.values()
        return GroupState(
            desired=self.desired,
            max_size=self._sim.model.scaling.max_instances,
            in_service=sum(h.state is HostState.SERVING for h in hosts),
            pending=sum(h.state is HostState.BOOTING for h in hosts),
            draining=sum(h.state is HostState.DRAINING for h in hosts),
            last_activity=self.last_activity,
            last_full_capacity=self.last_full_capacity,
        )

    def set_desired(self, desired: int) -> None:
        self.desired = desired
        self._sim.reconcile()

    def record_marks(self, *, last_activity: float | None, last_full_capacity: float | None) -> None:
        if last_activity is not None:
            self.last_activity = last_activity
        if last_full_capacity is not None:
            self.last_full_capacity = last_full_capacity


@dataclass(order=True)
class _Event:
    time: float
    seq: int
    kind: str = field(compare=False)
    payload: int = field(compare=False, default=0)


class _Simulation:
    def __init__(self, arrivals: Sequence[float], model: FleetModel, timing: Timing, horizon_s: float, seed: int):
        self.model = model
        self.timing = timing
        self.horizon_s = horizon_s
        self.rng = random.Random(seed)
        self.now = 0.0
        self.events: list[_Event] = []
        self.seq = itertools.count()
        self.hosts: dict[int, Host] = {}
        self.host_ids = itertools.count()
        self.queue: deque[int] = deque()
        self.arrivals = list(arrivals)
        self.finished: dict[int, float] = {}
        self.host_seconds = 0.0
        self.launches = 0
        self.resumes = 0
        self.max_hosts = 0
        self.pool_ready = model.warm_pool_size  # the pool is full at the start (a steady-state month)
        self.pool_filling = 0
        self.gauge = _Gauge(self)
        self.group = _Group(self)

    # -- events ------------------------------------------------------------------------------
    def push(self, time: float, kind: str, payload: int = 0) -> None:
        heapq.heappush(self.events, _Event(time, next(self.seq), kind, payload))

    def run(self) -> SimResult:
        for job, t in enumerate(self.arrivals):
            self.push(t, "arrival", job)
        if self.model.always_on:
            self.group.desired = 1
            host = self._new_host(0.0, HostState.SERVING)
            self.hosts[host.id] = host
        else:
            self.push(self.model.scaler_period_s, "tick")
        while self.events:
            event = heapq.heappop(self.events)
            self.now = event.time
            handler = getattr(self, f"_on_{event.kind}")
            handler(event.payload)
            if event.kind == "tick" and self._done() and self.now >= self.horizon_s:
                break
        end = max(self.now, self.horizon_s)
        for host in self.hosts.values():  # still up at the end: billed to the end
            self.host_seconds += end - host.launched_at
        pipeline = self.timing.pipeline_s
        latencies = tuple(self.finished[j] - t + pipeline for j, t in enumerate(self.arrivals))
        return SimResult(
            len(self.arrivals), latencies, self.host_seconds, self.launches, self.resumes, self.max_hosts, end
        )

    def _done(self) -> bool:
        return len(self.finished) == len(self.arrivals) and not self.queue

    def _scale(self, hint: int) -> None:
        if not self.model.always_on:
            run_scaler(self.gauge, self.group, self.model.scaling, now=self.now, arrivals_hint=hint)

    def _on_arrival(self, job: int) -> None:
        self.queue.append(job)
        self._scale(1)  # job-events wakes the scaler for each new job
        self._dispatch()

    def _on_tick(self, _: int) -> None:
        self._scale(0)
        self._dispatch()
        if not (self._done() and self.now >= self.horizon_s):
            self.push(self.now + self.model.scaler_period_s, "tick")

    def _on_ready(self, host_id: int) -> None:
        host = self.hosts.get(host_id)
        if host is not None and host.state is HostState.BOOTING:
            host.state = HostState.SERVING
            self._dispatch()

    def _on_job_done(self, host_id: int) -> None:
        host = self.hosts[host_id]
        host.busy -= 1
        if host.state is HostState.DRAINING and host.busy == 0:
            self._retire(host)
        self._dispatch()

    def _on_finish(self, job: int) -> None:
        self.finished[job] = self.now

    def _on_pool_filled(self, _: int) -> None:
        self.pool_filling -= 1
        self.pool_ready += 1

    # -- the group ---------------------------------------------------------------------------
    def _new_host(self, at: float, state: HostState) -> Host:
        host = Host(next(self.host_ids), state, launched_at=at)
        return host

    def reconcile(self) -> None:
        """Auto Scaling moving the group towards its desired capacity."""
        active = [h for h in self.hosts.values() if h.state is not HostState.DRAINING]
        delta = self.group.desired - len(active)
        for _ in range(max(delta, 0)):
            self._launch()
        if delta < 0:
            # Booting hosts go first, then the least busy serving ones (they drain fastest).
            victims = sorted(active, key=lambda h: (h.state is not HostState.BOOTING, h.busy))[:-delta]
            for host in victims:
                if host.busy == 0:
                    self._retire(host)
                else:
                    host.state = HostState.DRAINING
        self.max_hosts = max(self.max_hosts, len(self.hosts))

    def _launch(self) -> None:
        timing, rng = self.timing, self.rng
        if self.pool_ready > 0:
            self.pool_ready -= 1
            self.resumes += 1
            boot = timing.resume.sample(rng)
            self._refill_pool()
        else:
            self.launches += 1
            boot = timing.cold.sample(rng)
        host = self._new_host(self.now + timing.scale_out_reaction_s, HostState.BOOTING)
        self.hosts[host.id] = host
        self.push(host.launched_at + boot + timing.enclave_start.sample(rng), "ready", host.id)

    def _pool_target(self) -> int:
        """Auto Scaling's warm-pool size: max(MinSize 0, MaxGroupPreparedCapacity - desired)."""
        return max(0, self.model.warm_pool_size - self.group.desired)

    def _refill_pool(self) -> None:
        """A new instance launches into the pool, installs, stops: billed while it runs."""
        if self.pool_ready + self.pool_filling >= self._pool_target():
            return
        install = self.timing.cold.sample(self.rng)
        self.pool_filling += 1
        self.launches += 1
        self.host_seconds += install
        self.push(self.now + install, "pool_filled")

    def _retire(self, host: Host) -> None:
        del self.hosts[host.id]
        self.host_seconds += max(self.now - host.launched_at, 0.0)
        if self.pool_ready + self.pool_filling < self._pool_target():
            self.pool_ready += 1  # reuse on scale-in: parked, stopped, installed
        self._refill_pool()

    def _dispatch(self) -> None:
        limit = self.model.scaling.jobs_per_instance
        for host in sorted(self.hosts.values(), key=lambda h: h.id):
            while host.state is HostState.SERVING and host.busy < limit and self.queue:
                job = self.queue.popleft()
                host.busy += 1
                timing, rng = self.timing, self.rng
                start_compute = max(self.now + timing.job_io_s / 2, host.cpu_free_at)
                host.cpu_free_at = start_compute + timing.compute.sample(rng)
                done = host.cpu_free_at + timing.job_io_s / 2
                self.push(done, "finish", job)
                self.push(done, "job_done", host.id)


def simulate(
    arrivals: Sequence[float], model: FleetModel, timing: Timing, horizon_s: float, seed: int = 0
) -> SimResult:
    """Run one scenario: every arrival (seconds from the start, any order) becomes a finished job."""
    return _Simulation(sorted(arrivals), model, timing, horizon_s, seed).run()

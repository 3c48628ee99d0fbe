"""Polls the enclave's health channel for metrics.

Why a thread of its own: the agent's readiness check answers "may I poll the queue?" every 15 s;
metrics want a steadier rhythm. The monitor never blocks job handling: it uses its own
connections, and a failed poll only records `ccc.enclave.up = 0`.

There is nothing else to poll: the enclave keeps no per-tenant aggregates and answers no
"privacy release" (a host could replay jobs into such totals; docs/threat-model.md).
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from ccc_core.logs import log_event
from ccc_enclave.protocol.health_messages import EnclaveStatus
from enclave_worker.parent.agent_metrics import ParentMetrics
from enclave_worker.parent.enclave_client import EnclaveUnavailable

_LOG = logging.getLogger("ccc.parent.monitor")


class MonitoredEnclave(Protocol):
    def health(self, *, timeout_s: float) -> EnclaveStatus: ...


class EnclaveMonitor:
    def __init__(
        self,
        enclave: MonitoredEnclave,
        metrics: ParentMetrics,
        *,
        health_interval_s: float = 10.0,
        timeout_s: float = 5.0,
    ) -> None:
        self._enclave = enclave
        self._metrics = metrics
        self._health_interval_s = health_interval_s
        self._timeout_s = timeout_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0
        self.failures = 0

    def poll_health(self) -> bool:
        self.polls += 1
        try:
            status = self._enclave.health(timeout_s=self._timeout_s)
        except EnclaveUnavailable:
            self.failures += 1
            self._metrics.enclave_down()
            return False
        self._metrics.enclave_health(status)
        return True

    def tick(self) -> None:
        self.poll_health()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # metrics must never take the agent down
                log_event(_LOG, logging.WARNING, "enclave monitor tick failed", error_type=type(exc).__name__)
            self._stop.wait(self._health_interval_s)

    def start(self) -> EnclaveMonitor:
        self._thread = threading.Thread(target=self.run, name="enclave-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._timeout_s + 1)

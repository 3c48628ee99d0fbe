"""Polls the enclave's health channel for metrics and its differentially private releases.

Why a thread of its own: the agent's readiness check answers "may I poll the queue?" every 15 s;
metrics want a steadier rhythm, and releases a much slower one (each spends privacy budget). The
monitor never blocks job handling: it uses its own connections, and a failed poll only records
`ccc.enclave.up = 0`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ccc_core.logs import log_event
from ccc_enclave.protocol.health_messages import EnclaveStatus
from ccc_enclave.protocol.privacy_messages import PrivacyReleaseReply
from enclave_worker.parent.agent_metrics import ParentMetrics
from enclave_worker.parent.enclave_client import EnclaveUnavailable, ReleasesNotSupported

_LOG = logging.getLogger("ccc.parent.monitor")


class MonitoredEnclave(Protocol):
    def health(self, *, timeout_s: float) -> EnclaveStatus: ...

    def privacy_release(self, *, timeout_s: float) -> PrivacyReleaseReply: ...


class EnclaveMonitor:
    def __init__(
        self,
        enclave: MonitoredEnclave,
        metrics: ParentMetrics,
        *,
        health_interval_s: float = 10.0,
        privacy_interval_s: float | None = 900.0,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._enclave = enclave
        self._metrics = metrics
        self._health_interval_s = health_interval_s
        self._privacy_interval_s = privacy_interval_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_privacy = clock() + (privacy_interval_s or 0.0)
        self._releases_supported = privacy_interval_s is not None
        self.polls = 0
        self.failures = 0
        self.releases = 0

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

    def poll_privacy(self) -> bool:
        """Ask for a release round; False if the enclave is unreachable or does not release."""
        if not self._releases_supported:
            return False
        try:
            reply = self._enclave.privacy_release(timeout_s=self._timeout_s)
        except ReleasesNotSupported:
            self._releases_supported = False
            log_event(_LOG, logging.WARNING, "enclave does not support privacy releases; not asking again")
            return False
        except EnclaveUnavailable:
            return False
        self.releases += len(reply.releases)
        self._metrics.privacy_released(reply)
        log_event(_LOG, logging.INFO, "privacy releases exported", releases=len(reply.releases),
                  refused=reply.refused)
        return True

    def tick(self) -> None:
        healthy = self.poll_health()
        if healthy and self._privacy_interval_s is not None and self._clock() >= self._next_privacy:
            self._next_privacy = self._clock() + self._privacy_interval_s
            self.poll_privacy()

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
        """Stop polling; one last release round is not attempted (it would spend budget for nothing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._timeout_s + 1)

"""Metadata-only counters the enclave reports in its health reply (resources, attestation, timings).

Why here and not in the parent: CPU and memory of the enclave VM, and how often attestation failed,
are only observable from inside. Everything kept is a count, a duration or a resource reading of
the enclave as a whole: nothing per job, nothing per tenant. Durations and readings do depend on
what the enclave processed, so they leave only on the protocol's coarse grid: the reply types
snap them (`ccc_enclave.protocol.resolution`), and the per-stage totals here add up the jobs'
already snapped timings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from ccc_enclave.protocol.errors import ErrorCode
from ccc_enclave.protocol.health_messages import PIPELINE_STEPS, EnclaveMetrics, StageTiming
from ccc_enclave.protocol.job_messages import JobFailure, JobReply, JobSuccess

MEMINFO = Path("/proc/meminfo")


def read_meminfo(path: Path = MEMINFO) -> tuple[int, int]:
    """(MemTotal, MemAvailable) in bytes of the VM the enclave runs in; (0, 0) when unreadable."""
    values: dict[str, int] = {}
    try:
        for line in path.read_text(encoding="ascii", errors="replace").splitlines():
            name, _, rest = line.partition(":")
            parts = rest.split()
            if name in ("MemTotal", "MemAvailable") and parts and parts[0].isdigit():
                values[name] = int(parts[0]) * 1024  # the kernel reports kB
    except OSError:
        return 0, 0
    return values.get("MemTotal", 0), values.get("MemAvailable", 0)


class EnclaveStats:
    """Thread-safe cumulative counters since boot."""

    def __init__(self, *, cpu_clock: Callable[[], float] = time.process_time,
                 meminfo: Callable[[], tuple[int, int]] = read_meminfo) -> None:
        self._cpu_clock = cpu_clock
        self._meminfo = meminfo
        self._lock = threading.Lock()
        self._busy = 0
        self._attest_ok = 0
        self._attest_failed = 0
        self._count = dict.fromkeys(PIPELINE_STEPS, 0)
        self._total = dict.fromkeys(PIPELINE_STEPS, 0.0)
        self._max = dict.fromkeys(PIPELINE_STEPS, 0.0)

    def busy_refused(self) -> None:
        with self._lock:
            self._busy += 1

    def job_finished(self, reply: JobReply) -> None:
        """Stage timings and attestation outcome of one answered job.

        A job that got its result attested counts as one successful attestation; a job that failed
        with `attestation_failed` (NSM error, or KMS answering without a Recipient envelope) as one
        failure: that is what the `AttestationFailures` alarm watches.
        """
        with self._lock:
            if isinstance(reply, JobSuccess):
                self._attest_ok += 1
                m = reply.metrics
                timings = (m.decrypt_ms, m.infer_ms, m.encrypt_ms, m.attest_ms)
                for stage, ms in zip(PIPELINE_STEPS, timings, strict=True):
                    self._count[stage] += 1
                    self._total[stage] += float(ms)
                    self._max[stage] = max(self._max[stage], float(ms))
            elif isinstance(reply, JobFailure) and reply.error.code == ErrorCode.ATTESTATION_FAILED:
                self._attest_failed += 1

    def snapshot(self) -> EnclaveMetrics:
        total, available = self._meminfo()
        with self._lock:
            return EnclaveMetrics(
                cpu_s=round(max(0.0, self._cpu_clock()), 3),
                memory_total_bytes=total,
                memory_available_bytes=available,
                busy_refusals=self._busy,
                attestations_ok=self._attest_ok,
                attestations_failed=self._attest_failed,
                stages={s: StageTiming(count=self._count[s], total_ms=round(self._total[s], 3),
                                       max_ms=round(self._max[s], 3))
                        for s in PIPELINE_STEPS},
            )

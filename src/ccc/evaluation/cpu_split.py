"""The CPU split of `ccc bench pipeline --enclave-cpus N`: the enclave's own cores vs everyone else's.

Why: on AWS a Nitro Enclave runs on vCPUs carved out of its instance and dedicated to it; S3, SQS,
DynamoDB, KMS and the Lambdas run elsewhere, and only the parent agent shares the instance's
remaining vCPUs. On one small box the local stack's enclave competes with moto, the gateways, the
Lambdas, the parent and the client, so its per-job time measures the box, not the enclave. The
faithful local comparison "on the same cores": the bare counter runs on a CPU set C, the stack's
enclave process(es) on the same C (`CCC_ENCLAVE_CPUS`, applied by the enclave itself before it
loads its model, so onnxruntime sizes its thread pool to |C|), and every other process of the
stack plus the client on the complement (inherited: the bench moves itself there before it starts
the stack). `check_split` reads every thread's affinity back from the kernel, so a report never
claims a split that did not hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ccc.errors import CccError
from ccc_enclave.cpus import format_cpu_list


class CpuSplitError(CccError):
    """The requested split is impossible here, or a process did not run where it should have."""


@dataclass(frozen=True)
class CpuSplit:
    """C (the enclave's and the bare counter's CPUs) and the rest (moto, gateways, Lambdas, parent, client)."""

    enclave: frozenset[int]
    rest: frozenset[int]

    def describe(self) -> dict[str, object]:
        return {
            "mode": "pinned",
            "enclave_cpus": format_cpu_list(self.enclave),
            "other_cpus": format_cpu_list(self.rest),
            "onnxruntime_threads": len(self.enclave),
        }


def plan_split(enclave_cpus: int, available: frozenset[int] | None = None) -> CpuSplit:
    """The highest-numbered `enclave_cpus` CPUs of this process's set for the enclave, the others for the rest."""
    cpus = sorted(available if available is not None else os.sched_getaffinity(0))
    if not 1 <= enclave_cpus < len(cpus):
        raise CpuSplitError(
            f"--enclave-cpus {enclave_cpus}: this process may use {len(cpus)} CPU(s) "
            f"({format_cpu_list(cpus)}); the enclave needs at least 1 and the rest of the stack at least 1"
        )
    return CpuSplit(enclave=frozenset(cpus[-enclave_cpus:]), rest=frozenset(cpus[:-enclave_cpus]))


def thread_ids(pid: int) -> list[int]:
    """Every thread of `pid` (empty if the process is gone)."""
    try:
        return [int(name) for name in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def pin_process(pid: int, cpus: frozenset[int]) -> None:
    """Move every current thread of `pid` to `cpus` (threads started later inherit their creator's set)."""
    for tid in thread_ids(pid):
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:  # the thread ended meanwhile
            continue
        except OSError as exc:
            raise CpuSplitError(
                f"cannot move thread {tid} of process {pid} to CPUs {format_cpu_list(cpus)}: {exc}"
            ) from None


def process_cpus(pid: int) -> frozenset[int] | None:
    """The union of the CPU sets of every thread of `pid`, as the kernel reports them; None if gone."""
    found: set[int] = set()
    for tid in thread_ids(pid):
        try:
            found.update(os.sched_getaffinity(tid))
        except OSError:
            continue
    return frozenset(found) if found else None


def check_split(split: CpuSplit, pids: dict[str, int]) -> dict[str, str]:
    """Every enclave-* process on exactly C, every other process inside the rest; the CPU list per process."""
    placed: dict[str, str] = {}
    for name, pid in sorted(pids.items()):
        cpus = process_cpus(pid)
        if cpus is None:
            continue
        placed[name] = format_cpu_list(cpus)
        if name.startswith("enclave") and cpus != split.enclave:
            raise CpuSplitError(
                f"{name} runs on CPUs {placed[name]}, not the enclave's {format_cpu_list(split.enclave)}"
            )
        if not name.startswith("enclave") and not cpus <= split.rest:
            raise CpuSplitError(f"{name} runs on CPUs {placed[name]}, outside the rest {format_cpu_list(split.rest)}")
    return placed

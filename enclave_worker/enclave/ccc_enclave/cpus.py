"""The CPUs an enclave process runs on: the local stand-in for a Nitro enclave's dedicated vCPUs.

On AWS an enclave owns the vCPUs carved out of its instance; nothing else runs there. Locally the
enclave is a process among moto, the gateways, the Lambdas and the parent, so `ccc bench pipeline
--enclave-cpus N` gives it a CPU set of its own through `CCC_ENCLAVE_CPUS` (`--cpus`), and moves
everything else to the other CPUs. The enclave pins itself before it loads the model, so every
thread it starts later (onnxruntime's intra-op pool sized by `available_cpus`, the connection
threads) inherits the set. CPU placement is not a security property: the host schedules the
enclave's vCPUs on AWS too; this only makes a local measurement resemble that.

The list format is the kernel's (`0`, `1,3`, `2-5`): one parser and one formatter, used by the
writer (the bench) and the reader (the enclave).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from ccc_enclave.errors import EnclaveError

ENCLAVE_CPUS_ENV = "CCC_ENCLAVE_CPUS"
_MAX_CPU = 4095


class CpuListError(EnclaveError, ValueError):
    """A CPU list that is not `N`, `N,M` or `N-M` (or a mix), or names a CPU this machine lacks."""


def parse_cpu_list(text: str) -> frozenset[int]:
    """`"0,2-3"` -> {0, 2, 3}; raises CpuListError on anything else (empty, negative, reversed range)."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise CpuListError(f"not a CPU list: {text[:40]!r} (use e.g. 1 or 0,2-3)")
        first, last = int(low), int(high) if dash else int(low)
        if first > last or last > _MAX_CPU:
            raise CpuListError(f"not a CPU list: {text[:40]!r} (range {first}-{last})")
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def format_cpu_list(cpus: Iterable[int]) -> str:
    """{0, 2, 3} -> `"0,2-3"`: the inverse of `parse_cpu_list`."""
    ordered = sorted(set(cpus))
    parts: list[str] = []
    index = 0
    while index < len(ordered):
        end = index
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        parts.append(str(ordered[index]) if end == index else f"{ordered[index]}-{ordered[end]}")
        index = end + 1
    return ",".join(parts)


def pin_this_process(cpus: frozenset[int]) -> None:
    """Run this process (the calling thread and every thread it starts later) on `cpus` only."""
    try:
        os.sched_setaffinity(0, cpus)
    except (AttributeError, OSError) as exc:  # not Linux, or CPUs that do not exist here
        raise CpuListError(f"cannot run on CPUs {format_cpu_list(cpus)}: {exc}") from None

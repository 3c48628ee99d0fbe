"""The resolution at which measurements leave the enclave: as coarse as operations need, no finer.

Why: the host may replay one job as often as it likes and average what the enclave reports. A
timing to the microsecond (how long inference or decoding took), a CPU-seconds counter to the
millisecond or a memory reading to the byte are functions of the image, so fine readings averaged
over replays say something about the content. Operations need much less: the dashboards and alarms
see latencies only through the parent's histogram buckets (5 ms ... 30 s,
`ccc_core.telemetry.setup.MS_BUCKETS`), CPU as a percentage over a 10 s interval, memory against
a VM of several GiB. So every measurement is snapped to such a grid by the message types that carry
it (`fields.CoarseMs`, `CoarseSeconds`, `CoarseBytes`): whoever builds a reply, nothing finer can be
put on the wire, and the grid is part of the protocol, not of the pipeline.

What this does not hide: the parent measures each round trip itself, to the microsecond, and sees
every ciphertext's size. The grid takes away the enclave's own per-stage breakdown, not the host's
stopwatch (docs/threat-model.md, "What the host learns").
"""

from __future__ import annotations

import math

# Upper bounds of the parent's latency histogram buckets (ccc_core.telemetry.setup.MS_BUCKETS; a
# unit test keeps the two equal). A timing is reported as the bound of its bucket.
TIMING_GRID_MS = (5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000)
# Beyond the last bucket: whole steps of this many milliseconds.
TIMING_STEP_BEYOND_GRID_MS = 10_000
# Cumulative CPU time and uptime: whole seconds (a CPU percentage over 10 s on 2 vCPUs moves by 5 %).
SECONDS_STEP = 1.0
# Memory readings: 16 MiB steps (the enclave VM has GiBs; a decoded image's size would show finer).
BYTES_STEP = 16 * 1024 * 1024


def coarse_ms(value: float) -> float:
    """The upper bound of the grid cell holding `value` (so a p95 alarm never under-reads); 0 stays
    0 (nothing measured yet, e.g. the maximum of a stage no job has run)."""
    if value == 0:
        return 0.0
    for bound in TIMING_GRID_MS:
        if value <= bound:
            return float(bound)
    return float(math.ceil(value / TIMING_STEP_BEYOND_GRID_MS) * TIMING_STEP_BEYOND_GRID_MS)


def coarse_seconds(value: float) -> float:
    """Whole seconds, rounded down (a cumulative reading stays monotonic)."""
    return float(math.floor(value / SECONDS_STEP) * SECONDS_STEP)


def coarse_bytes(value: int) -> int:
    """A multiple of BYTES_STEP, rounded down."""
    return value - value % BYTES_STEP

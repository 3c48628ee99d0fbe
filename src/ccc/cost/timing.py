"""How long things take in the simulator: boots, enclave start, one job, the pipeline around it.

Why these are assumptions with names: AWS publishes no boot or enclave-start times, so every
value below is stated, sourced where a source exists, and overridable (`ccc cost simulate
--set NAME=VALUE`). Durations are log-normal (positive, right-skewed: a slow boot is far more
likely than an impossibly fast one), given as median and p95.

The per-job *compute* time is the one measured value: `ccc bench count` on this machine (the
`tuned` profile: the session the enclave runs), read from its JSON report when given.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, fields, replace
from pathlib import Path

from ccc.cost.errors import CostError

Z95 = 1.6448536269514722


@dataclass(frozen=True)
class LogNormal:
    median_s: float
    p95_s: float

    def __post_init__(self) -> None:
        if not 0 < self.median_s <= self.p95_s:
            raise CostError(f"need 0 < median <= p95, got {self.median_s}, {self.p95_s}")

    def sample(self, rng: random.Random) -> float:
        sigma = math.log(self.p95_s / self.median_s) / Z95
        return self.median_s * math.exp(sigma * rng.gauss(0.0, 1.0))


# `ccc bench count --rounds 3 --no-int8` on this 2-core VM, 2026-12-05 (tuned profile, ms per image
# end to end: decode, 5 letterboxed views, inference, NMS): median 151.38, p95 210.77.
MEASURED_COMPUTE = LogNormal(0.15138, 0.21077)


@dataclass(frozen=True)
class Timing:
    """Every duration the simulator draws, in seconds (median / p95 where random)."""

    # Stopped -> running -> systemd multi-user on a Nitro instance (AL2023, no install): EC2 start
    # plus OS boot; assumed from AWS's "a few tens of seconds" for starting stopped instances.
    resume_median_s: float = 30.0
    resume_p95_s: float = 50.0
    # A new instance to the end of install: EC2 launch (~45 s) + dnf install of nitro-cli, Python
    # and the CloudWatch agent, the release download and the wheel install (~120 s); assumed.
    cold_median_s: float = 165.0
    cold_p95_s: float = 280.0
    # nitro-cli run-enclave (EIF load into 4 GiB), Python + onnxruntime start, model pre-warm, and
    # the parent's first receive; assumed (no AWS figure exists for enclaves).
    enclave_start_median_s: float = 12.0
    enclave_start_p95_s: float = 20.0
    # Scaler wake (job_events -> scaler Lambda) + Auto Scaling acting on the new desired capacity.
    scale_out_reaction_s: float = 8.0
    # Upload -> message visible (S3 event -> EventBridge -> SQS) plus result -> client (status poll).
    pipeline_s: float = 2.0
    # The job's I/O inside the host: S3 GET, KMS Decrypt through vsock-proxy, KMS GenerateDataKey,
    # S3 PUT of result and attestation; assumed, not measured on AWS.
    job_io_s: float = 0.5
    # Per-image compute, from `ccc bench count` (see MEASURED_COMPUTE).
    compute_median_s: float = MEASURED_COMPUTE.median_s
    compute_p95_s: float = MEASURED_COMPUTE.p95_s

    @property
    def resume(self) -> LogNormal:
        return LogNormal(self.resume_median_s, self.resume_p95_s)

    @property
    def cold(self) -> LogNormal:
        return LogNormal(self.cold_median_s, self.cold_p95_s)

    @property
    def enclave_start(self) -> LogNormal:
        return LogNormal(self.enclave_start_median_s, self.enclave_start_p95_s)

    @property
    def compute(self) -> LogNormal:
        return LogNormal(self.compute_median_s, self.compute_p95_s)

    def with_overrides(self, overrides: dict[str, float]) -> Timing:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise CostError(f"unknown timing {', '.join(unknown)} (have: {', '.join(sorted(known))})")
        return replace(self, **overrides)


def compute_from_bench(path: Path) -> tuple[float, float]:
    """(median, p95) seconds per image from a `ccc bench count` JSON report (its tuned profile)."""
    try:
        tuned = json.loads(path.read_text(encoding="utf-8"))["tuned"]
        median, p95 = float(tuned["total_ms_median"]) / 1000, float(tuned["total_ms_p95"]) / 1000
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CostError(f"cannot read a `ccc bench count` report from {path}: {exc}") from None
    return median, max(p95, median)

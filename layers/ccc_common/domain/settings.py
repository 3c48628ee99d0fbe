"""Operational settings shared by CDK and the local stack (queue, fleet, limits).

Why here: the visibility timeout must exceed the longest job, the DLQ redrive count must match
what the parent agent expects, and the size limits must be the same on the client, the parent and
the enclave. One function returns them per stage.
"""

from __future__ import annotations

from dataclasses import dataclass

from ccc_core.limits import LIMITS, Limits


@dataclass(frozen=True)
class QueueSettings:
    visibility_timeout_s: int
    max_receive_count: int
    retention_s: int
    dlq_retention_s: int
    receive_wait_s: int


@dataclass(frozen=True)
class FleetSettings:
    max_instances: int
    jobs_per_instance: int
    idle_timeout_s: int
    scaler_rate_minutes: int
    # While busy, no scale-in until the whole capacity has not been needed for this long (scaling.py
    # rule 3). At least a launch's length (warm-pool resume ~1 min, cold ~3 min): shorter, and a
    # dip sheds a host that the next peak relaunches.
    scale_in_cooldown_s: int = 0


@dataclass(frozen=True)
class StageSettings:
    stage: str
    queue: QueueSettings
    fleet: FleetSettings
    limits: Limits
    job_ttl_days: int


def stage_settings(stage: str) -> StageSettings:
    """The one function that sets queue, fleet and limit values for a stage."""
    queue = QueueSettings(
        # > job_timeout_s with margin; the parent agent also extends visibility while it works.
        visibility_timeout_s=LIMITS.job_timeout_s * 3,
        max_receive_count=3,
        retention_s=4 * 24 * 3600,
        dlq_retention_s=14 * 24 * 3600,
        receive_wait_s=20,
    )
    if stage == "local":
        queue = QueueSettings(
            visibility_timeout_s=30, max_receive_count=3, retention_s=4 * 24 * 3600,
            dlq_retention_s=14 * 24 * 3600, receive_wait_s=1,
        )
        fleet = FleetSettings(
            max_instances=2, jobs_per_instance=4, idle_timeout_s=30, scaler_rate_minutes=1, scale_in_cooldown_s=10
        )
    elif stage == "dev":
        # 5 min idle: with a warm pool a wake costs ~1 min, so holding a host 10 min after each
        # sparse job doubled dev compute for no latency gain (`ccc cost simulate`, docs/deploy.md).
        fleet = FleetSettings(
            max_instances=2, jobs_per_instance=4, idle_timeout_s=300, scaler_rate_minutes=1, scale_in_cooldown_s=300
        )
    elif stage == "prod":
        fleet = FleetSettings(
            max_instances=10, jobs_per_instance=4, idle_timeout_s=900, scaler_rate_minutes=1, scale_in_cooldown_s=300
        )
    else:
        raise ValueError(f"unknown stage {stage!r}")
    ttl_days = 90 if stage == "prod" else 30
    return StageSettings(stage=stage, queue=queue, fleet=fleet, limits=LIMITS, job_ttl_days=ttl_days)

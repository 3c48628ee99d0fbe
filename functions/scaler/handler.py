"""Scaler Lambda: runs every minute (EventBridge schedule) and when job-events wakes it.

Observe the work queue and the fleet group -> ``ccc_common.domain.scaling.decide`` -> SetDesiredCapacity.
Both triggers are treated alike; a wake-up only adds its "jobs just arrived" hint.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from ccc_common.aws.fleet_adapters import AsgFleetGroup, SqsQueueGauge
from ccc_common.contracts.lambda_env import ScalerEnv, load_env
from ccc_common.contracts.scaler_wake import wake_hint
from ccc_common.domain.fleet_ports import FleetGroup, WorkQueueGauge
from ccc_common.domain.scaler_run import run_scaler
from ccc_common.domain.scaling import ScalingSettings
from ccc_common.lambda_observability import telemetry_for
from ccc_core.telemetry import metric_registry as m
from functions.aws_clients import CLIENT_CONFIG

telemetry = telemetry_for("scaler")
logger, metrics, tracer = telemetry.logger, telemetry.metrics, telemetry.tracer


@dataclass(frozen=True)
class Runtime:
    gauge: WorkQueueGauge
    group: FleetGroup
    settings: ScalingSettings
    stage: str


@functools.cache
def runtime() -> Runtime:
    """Built once per execution environment (cold start): environment checked, clients created."""
    env = load_env(ScalerEnv)
    telemetry.bind_stage(env.stage)
    return Runtime(
        gauge=SqsQueueGauge(boto3.client("sqs", config=CLIENT_CONFIG), env.work_queue_url),
        group=AsgFleetGroup(boto3.client("autoscaling", config=CLIENT_CONFIG), env.fleet_group),
        settings=ScalingSettings.from_fleet(env.settings.fleet, idle_timeout_s=env.idle_timeout_s),
        stage=env.stage,
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(raise_on_empty_metrics=False)
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    rt = runtime()
    hint = wake_hint(event.raw_event)
    run = run_scaler(rt.gauge, rt.group, rt.settings, now=time.time(), arrivals_hint=hint)
    obs, decision = run.observation, run.decision
    telemetry.count(m.BACKLOG, obs.backlog_visible)
    telemetry.count(m.IN_FLIGHT, obs.in_flight)
    telemetry.count(m.BACKLOG_PER_INSTANCE, run.backlog_per_instance)
    telemetry.count(m.DESIRED_CAPACITY, decision.desired)
    telemetry.count(m.IN_SERVICE_INSTANCES, obs.in_service)
    logger.info(
        "scaling decision",
        extra={
            "trigger": "wake" if hint else str(event.detail_type or "invoke"),
            "backlog": obs.backlog_visible,
            "in_flight": obs.in_flight,
            "in_service": obs.in_service,
            "draining": obs.draining,
            "previous_desired": run.previous_desired,
            "desired": decision.desired,
            "reason": decision.reason.value,
        },
    )
    return {
        "previous_desired": run.previous_desired,
        "desired": decision.desired,
        "reason": decision.reason.value,
        "backlog": obs.backlog_visible,
        "in_flight": obs.in_flight,
    }

"""Job-events Lambda: S3 Object Created (inbox + results, via EventBridge) -> jobs table.

inbox object -> queued (+ wake the scaler); result object -> done; failure record -> failed.
A malformed event is logged and dropped (retrying cannot fix it); storage errors raise so that
Lambda's asynchronous retries (and the rule's DLQ / on-failure destination) take over.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from ccc_common.aws.fleet_adapters import LambdaScalerWaker
from ccc_common.aws.jobs_dal import DynamoJobStore
from ccc_common.aws.s3_adapters import S3FailureRecordReader
from ccc_common.contracts.lambda_env import JobEventsEnv, load_env
from ccc_common.contracts.work_message import EventError
from ccc_common.domain.events import ObjectKind
from ccc_common.domain.fleet_ports import NullWaker, ScalerWaker
from ccc_common.domain.job_lifecycle import EventOutcome, JobLifecycle, LifecycleResult
from ccc_common.lambda_observability import job_context, telemetry_for
from ccc_core.telemetry import metric_registry as m
from functions.aws_clients import CLIENT_CONFIG

telemetry = telemetry_for("job_events")
logger, metrics, tracer = telemetry.logger, telemetry.metrics, telemetry.tracer

_APPLIED_METRIC = {
    ObjectKind.INPUT: m.JOBS_QUEUED,
    ObjectKind.RESULT: m.JOBS_DONE,
    ObjectKind.FAILURE_RECORD: m.JOBS_FAILED,  # with dead_letters' copy: every failed job once
}


@functools.cache
def runtime() -> JobLifecycle:
    env = load_env(JobEventsEnv)
    telemetry.bind_stage(env.stage)
    waker: ScalerWaker = NullWaker()
    if env.scaler_function:
        waker = LambdaScalerWaker(boto3.client("lambda", config=CLIENT_CONFIG), env.scaler_function)
    return JobLifecycle(
        DynamoJobStore.for_env(boto3.client("dynamodb", config=CLIENT_CONFIG), env),
        inbox_bucket=env.inbox_bucket,
        results_bucket=env.results_bucket,
        failure_reader=S3FailureRecordReader(boto3.client("s3", config=CLIENT_CONFIG)),
        waker=waker,
        clock=lambda: datetime.now(UTC),
    )


def _report(result: LifecycleResult) -> None:
    fields = {"outcome": result.outcome.value, "detail": result.detail}
    if result.outcome is EventOutcome.APPLIED and result.kind is not None:
        telemetry.count(_APPLIED_METRIC[result.kind])
    elif result.outcome is EventOutcome.STALE:
        telemetry.count(m.STALE_JOB_EVENTS)
    elif result.outcome is EventOutcome.REFUSED:
        telemetry.count(m.REFUSED_JOB_EVENTS)
    else:
        telemetry.count(m.IGNORED_JOB_EVENTS)
    if result.wake_error:
        telemetry.count(m.SCALER_WAKE_ERRORS)
        logger.warning("could not wake the scaler; the schedule will scale", extra={"error": result.wake_error})
    if result.outcome is EventOutcome.REFUSED:
        logger.warning("job event refused", extra=fields)
    else:
        logger.info("job event", extra={**fields, "woke_scaler": result.woke_scaler})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(raise_on_empty_metrics=False)
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    lifecycle = runtime()
    try:
        result = lifecycle.handle_eventbridge(event.raw_event)
    except EventError as exc:
        telemetry.count(m.MALFORMED_JOB_EVENTS)
        logger.warning("malformed S3 event dropped", extra={"reason": exc.reason, "detail": exc.detail[:300]})
        return {"outcome": "malformed", "detail": exc.reason}
    if result.ref is not None:
        with job_context(logger, result.ref, tracer):
            _report(result)
    else:
        _report(result)
    return {
        "outcome": result.outcome.value,
        "job_id": result.ref.job_id if result.ref else None,
        "status": result.status.value if result.status else None,
        "woke_scaler": result.woke_scaler,
    }

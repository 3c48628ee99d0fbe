"""Dead-letters Lambda (SQS event source on the work DLQ, ReportBatchItemFailures).

Each message: archive it, mark its jobs failed, count it. A record whose archive or job update
fails is reported as a batch item failure, so it stays in the DLQ and is retried; the others are
deleted by Lambda.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from ccc_common.aws.jobs_dal import DynamoJobStore
from ccc_common.aws.s3_adapters import S3Archive
from ccc_common.contracts.lambda_env import DeadLettersEnv, load_env
from ccc_common.domain.dead_letters import DeadLetter, DeadLetterHandler
from ccc_common.lambda_observability import job_context, telemetry_for
from ccc_core.telemetry import metric_registry as m
from functions.aws_clients import CLIENT_CONFIG

telemetry = telemetry_for("dead_letters")
logger, metrics, tracer = telemetry.logger, telemetry.metrics, telemetry.tracer
processor = BatchProcessor(event_type=EventType.SQS)


@functools.cache
def runtime() -> DeadLetterHandler:
    env = load_env(DeadLettersEnv)
    telemetry.bind_stage(env.stage)
    settings = env.settings
    return DeadLetterHandler(
        DynamoJobStore.for_env(boto3.client("dynamodb", config=CLIENT_CONFIG), env),
        S3Archive(boto3.client("s3", config=CLIENT_CONFIG), env.archive_bucket),
        inbox_bucket=env.inbox_bucket,
        max_receive_count=settings.queue.max_receive_count,
        clock=lambda: datetime.now(UTC),
    )


@tracer.capture_method
def record_handler(record: SQSRecord) -> dict[str, Any]:
    letter = DeadLetter.from_lambda_record(record.raw_event)
    result = runtime().handle(letter)
    telemetry.count(m.DEAD_LETTERS)
    if result.unparsable:
        telemetry.count(m.DEAD_LETTERS_UNPARSABLE)
        logger.warning(
            "dead letter names no job; archived",
            extra={"message_id": letter.message_id, "archive_key": result.archive_key, "reason": result.unparsable},
        )
    if result.failed:
        telemetry.count(m.JOBS_FAILED, len(result.failed))
    if result.refused:
        telemetry.count(m.REFUSED_JOB_EVENTS, len(result.refused))
    for ref in (*result.failed, *result.unchanged, *result.refused):
        with job_context(logger, ref):
            logger.info(
                "dead letter archived",
                extra={
                    "message_id": letter.message_id,
                    "archive_key": result.archive_key,
                    "receive_count": letter.receive_count,
                    "marked_failed": ref in result.failed,
                    "refused": ref in result.refused,
                },
            )
    return {"archive_key": result.archive_key, "failed": [ref.job_id for ref in result.failed]}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

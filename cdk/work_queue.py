"""The work queue, its dead-letter queue, and the EventBridge rules that feed it.

Message format (what the parent agent and the `dead_letters` Lambda parse): the body of every
work-queue message is the EventBridge event **as is**, `detail-type` "Object Created", source
"aws.s3" (no input transformer; AWS documents this schema and it carries everything we need):

    {"version": "0", "id": "<event id>", "detail-type": "Object Created", "source": "aws.s3",
     "account": "...", "time": "2025-01-01T00:00:00Z", "region": "...", "resources": ["arn:aws:s3:::<inbox>"],
     "detail": {"version": "0", "bucket": {"name": "<inbox>"},
                "object": {"key": "jobs/<tenant>/<job>.ccc", "size": 1234, "etag": "...",
                           "version-id": "...", "sequencer": "..."},
                "request-id": "...", "requester": "...", "source-ip-address": "...", "reason": "PutObject"}}

Unlike classic S3 notifications, `detail.object.key` is **not** URL-encoded. The rule only
forwards keys matching `jobs/*.ccc`; the consumer must still validate the key with
`ccc_common.domain.naming.parse_inbox_key`. The same body reaches the DLQ after `max_receive_count`
failed receives, and also when EventBridge itself cannot deliver to the work queue (then with
the message attributes ERROR_CODE / ERROR_MESSAGE / RULE_ARN / TARGET_ARN).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ccc_core.identity import CIPHERTEXT_SUFFIX, INBOX_PREFIX, RESULTS_PREFIX
from cdk.stage_config import StageConfig

INBOX_KEY_PATTERN = f"{INBOX_PREFIX}*{CIPHERTEXT_SUFFIX}"


def object_created_pattern(bucket: s3.IBucket, key_match: list[str]) -> events.EventPattern:
    return events.EventPattern(
        source=["aws.s3"],
        detail_type=["Object Created"],
        detail={"bucket": {"name": [bucket.bucket_name]}, "object": {"key": key_match}},
    )


class WorkQueue(Construct):
    """SQS work queue + DLQ (SSE, TLS only) and the rules from S3 to the queue and `job_events`."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        queue = config.settings.queue
        limits = config.settings.limits
        if queue.visibility_timeout_s <= limits.job_timeout_s:
            raise ValueError("visibility timeout must exceed the longest job, or jobs run twice")
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=config.names.dead_letter_queue,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.seconds(queue.dlq_retention_s),
            removal_policy=config.removal_policy,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=config.names.work_queue,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(queue.visibility_timeout_s),
            retention_period=Duration.seconds(queue.retention_s),
            receive_message_wait_time=Duration.seconds(queue.receive_wait_s),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=queue.max_receive_count, queue=self.dead_letter_queue
            ),
            removal_policy=config.removal_policy,
        )

    def route(self, *, inbox: s3.IBucket, results: s3.IBucket, job_events: lambda_.IFunction) -> None:
        """Inbox ObjectCreated -> work queue; inbox + results ObjectCreated -> job_events."""
        self.inbox_rule = events.Rule(
            self,
            "InboxToQueue",
            description="New job ciphertext in the inbox -> work queue (event body as is)",
            event_pattern=object_created_pattern(inbox, events.Match.wildcard(INBOX_KEY_PATTERN)),
            targets=[
                targets.SqsQueue(
                    self.queue,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=185,
                    max_event_age=Duration.hours(24),
                )
            ],
        )
        job_events_target = targets.LambdaFunction(job_events, retry_attempts=185, max_event_age=Duration.hours(24))
        self.inbox_events_rule = events.Rule(
            self,
            "InboxToJobEvents",
            description="New job ciphertext -> job_events (status queued, wake the scaler)",
            event_pattern=object_created_pattern(inbox, events.Match.prefix(INBOX_PREFIX)),
            targets=[job_events_target],
        )
        self.results_events_rule = events.Rule(
            self,
            "ResultsToJobEvents",
            description="New result / attestation / failure record -> job_events (status done or failed)",
            event_pattern=object_created_pattern(results, events.Match.prefix(RESULTS_PREFIX)),
            targets=[job_events_target],
        )

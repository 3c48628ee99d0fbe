"""Dashboard, alarms and (prod) the encrypted SNS topic they notify.

Metric sources: SQS and Auto Scaling publish their own; the parent agent (EMF through the
CloudWatch agent) and the Lambdas (Powertools EMF) publish to namespace `CCC` with exactly the
dimension `Stage=<stage>`. Every custom name read here is a CloudWatch name of
`ccc_core.telemetry.metric_registry`, the registry the emitters derive their names from too; `METRICS`
lists them so tests/infra can check each has an emitter.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ccc_core.telemetry import metric_registry as m
from cdk.key_change_alarm import KeyChangeAlarm
from cdk.stage_config import StageConfig

# The custom metrics the dashboard and alarms read (CloudWatch names of ccc_core.telemetry.metric_registry).
METRICS = (m.JOB_LATENCY_MS, m.INFERENCE_MS, m.ATTESTATION_FAILURES, m.JOBS_FAILED, m.KMS_UNAVAILABLE)
PERIOD = Duration.minutes(1)


class Observability(Construct):
    """What an operator looks at, and what wakes them up."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        work_queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        fleet_group_name: str,
        functions: dict[str, lambda_.Function],
        storage_key: kms.IKey,
        watched_key_arns: list[str],
    ) -> None:
        super().__init__(scope, construct_id)
        namespace = config.names.metrics_namespace
        dims = {m.STAGE_DIMENSION: config.stage}

        def custom(name: str, statistic: str) -> cw.Metric:
            if name not in METRICS:
                raise ValueError(f"{name} is read by the dashboard but missing from METRICS")
            return cw.Metric(
                namespace=namespace,
                metric_name=name,
                dimensions_map=dims,
                statistic=statistic,
                period=PERIOD,
                label=f"{name} {statistic}",
            )

        def fleet(name: str) -> cw.Metric:
            return cw.Metric(
                namespace="AWS/AutoScaling",
                metric_name=name,
                dimensions_map={"AutoScalingGroupName": fleet_group_name},
                statistic="Average",
                period=PERIOD,
            )

        self.topic: sns.Topic | None = None
        if config.alarm_topic:
            self.topic = sns.Topic(
                self, "AlarmTopic", display_name=f"CCC {config.stage} alarms", master_key=storage_key, enforce_ssl=True
            )

        backlog = work_queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")
        in_flight = work_queue.metric_approximate_number_of_messages_not_visible(period=PERIOD, statistic="Maximum")
        oldest = work_queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum")
        dlq_depth = dead_letter_queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")
        dlq_depth_5m = dlq_depth.with_(period=Duration.minutes(5))
        dlq_received = dead_letter_queue.metric_number_of_messages_received(period=Duration.minutes(5), statistic="Sum")
        attestation_failures = custom(m.ATTESTATION_FAILURES, "Sum")
        kms_usage = cw.Metric(
            namespace="AWS/Usage",
            metric_name="CallCount",
            dimensions_map={
                "Type": "API",
                "Service": "KMS",
                "Resource": "CryptographicOperationsSymmetric",
                "Class": "None",
            },
            statistic="Sum",
            period=PERIOD,
            label="KMS symmetric operations (account quota usage)",
        )
        kms_unavailable = custom(m.KMS_UNAVAILABLE, "Sum").with_(
            label="jobs that met KMS throttling / 5xx / unreachable"
        )
        errors = [
            fn.metric_errors(period=PERIOD, statistic="Sum", label=f"{name} errors") for name, fn in functions.items()
        ]

        self.alarms = [
            cw.Alarm(
                self,
                "DeadLetters",
                alarm_description="A job reached the DLQ (failed max_receive_count times or could not be delivered)",
                metric=cw.MathExpression(
                    expression="MAX([depth, received])",
                    using_metrics={"depth": dlq_depth_5m, "received": dlq_received},
                    period=Duration.minutes(5),
                    label="DLQ depth or receives",
                ),
                threshold=0,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "AttestationFailures",
                alarm_description="An enclave could not get key material (wrong image, debug mode, stale PCRs)",
                metric=attestation_failures.with_(period=Duration.minutes(5)),
                threshold=0,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "OldestMessageAge",
                alarm_description=f"A job has waited more than {config.oldest_message_slo_s} s (fleet not keeping up)",
                metric=oldest.with_(period=Duration.minutes(5)),
                threshold=config.oldest_message_slo_s,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
        ]
        if self.topic is not None:
            for alarm in self.alarms:
                alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        # PutKeyPolicy, CreateGrant, ScheduleKeyDeletion, DisableKey, ... on this stack's own keys.
        self.key_change = KeyChangeAlarm(
            self,
            "KeyChange",
            key_arns=watched_key_arns,
            description=f"the CCC {config.stage} keys",
            topic=self.topic,
        )
        self.alarms.append(self.key_change.alarm)

        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{config.names.prefix}-overview")
        dashboard.add_widgets(
            cw.GraphWidget(title="Work queue", left=[backlog, in_flight], right=[oldest], width=12),
            cw.GraphWidget(
                title="Fleet", left=[fleet("GroupDesiredCapacity"), fleet("GroupInServiceInstances")], width=12
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Job latency (ms)",
                left=[custom(m.JOB_LATENCY_MS, "p50"), custom(m.JOB_LATENCY_MS, "p95")],
                width=8,
            ),
            cw.GraphWidget(
                title="Inference (ms)",
                left=[custom(m.INFERENCE_MS, "p50"), custom(m.INFERENCE_MS, "p95")],
                width=8,
            ),
            cw.GraphWidget(
                title="Failures",
                left=[attestation_failures, custom(m.JOBS_FAILED, "Sum"), dlq_depth],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(title="Lambda errors", left=errors, width=12),
            cw.GraphWidget(title="KMS", left=[kms_unavailable], right=[kms_usage], width=12),
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24),
        )
        self.dashboard = dashboard

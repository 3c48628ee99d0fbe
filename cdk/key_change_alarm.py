"""A change to a data key's policy, grants or state is loud: EventBridge rule + CloudWatch alarm (+ SNS).

Why: whoever can manage a key can rewrite its policy (PutKeyPolicy is needed to roll releases) or
hand out a grant that bypasses every policy condition. The policy cannot forbid its own managers
that; an alarm on every such call, in the account that owns the key, is what makes it visible.
The tenant stack watches the tenant's key; the service stack watches its own keys.

Source: the CloudTrail management events KMS records ("AWS API Call via CloudTrail"), matched on
the key's ARN in the record's `resources`. EventBridge only receives them in the key's region and
only while a CloudTrail trail logs management events there (docs/deploy.md says so).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from constructs import Construct

# Every KMS call that changes who may use a key, or whether it can be used at all.
KEY_MANAGEMENT_EVENTS: tuple[str, ...] = (
    "PutKeyPolicy",
    "CreateGrant",
    "RevokeGrant",
    "RetireGrant",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "DisableKey",
    "EnableKey",
    "DisableKeyRotation",
    "ImportKeyMaterial",
    "DeleteImportedKeyMaterial",
    "ReplicateKey",
    "UpdatePrimaryRegion",
    "UpdateAlias",
    "DeleteAlias",
)


def key_management_pattern(key_arns: Sequence[str]) -> events.EventPattern:
    """CloudTrail records of KMS management calls naming one of `key_arns` in their resources."""
    return events.EventPattern(
        source=["aws.kms"],
        detail_type=["AWS API Call via CloudTrail"],
        detail={
            "eventSource": ["kms.amazonaws.com"],
            "eventName": list(KEY_MANAGEMENT_EVENTS),
            "resources": {"ARN": list(key_arns)},
        },
    )


class KeyChangeAlarm(Construct):
    """Rule -> (SNS topic, when given); alarm on the rule firing (TriggeredRules, per RuleName) -> the topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key_arns: Sequence[str],
        description: str,
        topic: sns.ITopic | None,
    ) -> None:
        super().__init__(scope, construct_id)
        if not key_arns:
            raise ValueError("a key-change alarm needs at least one key ARN")
        self.rule = events.Rule(
            self,
            "Rule",
            description=f"KMS management calls on {description}",
            event_pattern=key_management_pattern(key_arns),
        )
        if topic is not None:
            self.rule.add_target(targets.SnsTopic(topic))
        matched = cw.Metric(
            namespace="AWS/Events",
            metric_name="TriggeredRules",
            dimensions_map={"RuleName": self.rule.rule_name},
            statistic="Sum",
            period=Duration.minutes(5),
            label="KMS management calls on the data keys",
        )
        self.alarm = cw.Alarm(
            self,
            "Alarm",
            alarm_description=(
                f"A key policy, grant or key state of {description} changed (PutKeyPolicy, CreateGrant, "
                "ScheduleKeyDeletion, DisableKey, ...): check CloudTrail for who and why"
            ),
            metric=matched,
            threshold=0,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        if topic is not None:
            self.alarm.add_alarm_action(cw_actions.SnsAction(topic))

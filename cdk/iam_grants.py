"""Attach the shared IAM policy documents (`ccc_common.domain.iam_policies`) to the stack's roles.

Why a module: the statements a tenant role, the parent instance role or a Lambda role gets are
built once, as plain dicts, by the builder the local stack also enforces (`ccc.local.iam_gateway`).
CDK only supplies the ARNs: the construct's own ARN where one is at hand (a `Fn::GetAtt`, which
also orders the deployment), otherwise the ARN of the physical name from `ccc_common.domain.naming`
(every resource the policies name has one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from aws_cdk import Aws
from aws_cdk import aws_iam as iam

from ccc_common.domain.iam_policies import PolicyResources, resources_for_names
from cdk.stage_config import StageConfig


class _HasArn(Protocol):
    @property
    def node(self) -> Any: ...


class _Principal(Protocol):
    def add_to_policy(self, statement: iam.PolicyStatement) -> bool: ...


def policy_resources(
    config: StageConfig,
    *,
    inbox_bucket_arn: str | None = None,
    results_bucket_arn: str | None = None,
    artifacts_bucket_arn: str | None = None,
    work_queue_arn: str | None = None,
    dead_letter_queue_arn: str | None = None,
    jobs_table_arn: str | None = None,
    rest_api_id: str = "*",
    scaler_function_arn: str | None = None,
) -> PolicyResources:
    """The stage's ARNs for the shared builder: given construct ARNs, else those of the physical names."""
    by_name = resources_for_names(config.names, partition=Aws.PARTITION, api_id=rest_api_id)
    given: Mapping[str, str | None] = {
        "inbox_bucket_arn": inbox_bucket_arn,
        "results_bucket_arn": results_bucket_arn,
        "artifacts_bucket_arn": artifacts_bucket_arn,
        "work_queue_arn": work_queue_arn,
        "dead_letter_queue_arn": dead_letter_queue_arn,
        "jobs_table_arn": jobs_table_arn,
        "scaler_function_arn": scaler_function_arn,
    }
    return dataclasses.replace(by_name, **{k: v for k, v in given.items() if v is not None})


def attach(principal: _Principal, statements: Iterable[Mapping[str, Any]]) -> None:
    """Add each builder statement to the principal's policy, unchanged."""
    for statement in statements:
        principal.add_to_policy(iam.PolicyStatement.from_json(dict(statement)))


__all__ = ["attach", "policy_resources"]

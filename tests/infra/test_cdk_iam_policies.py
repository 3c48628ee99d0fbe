"""The CDK stack attaches exactly the shared builder's IAM statements (`ccc_common.domain.iam_policies`),
the ones the local stack enforces (`ccc.local.iam_stack.identity_policies`): one builder, two tiers.

The synthesised template's ARNs are CloudFormation expressions (`Fn::GetAtt`, `Fn::Join` over the
pseudo parameters); they are resolved here for one account and region and compared with the
builder's statements for the same physical names."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ccc.local.iam_stack import identity_policies
from ccc_common.domain import iam_policies
from ccc_common.domain.naming import resource_names

from .iam_helpers import as_list, role_statements

ACCOUNT = "123456789012"
REGION = "eu-west-1"
_PSEUDO = {"AWS::Partition": "aws", "AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::URLSuffix": "amazonaws.com"}
_ARN_BY_TYPE = {
    "AWS::S3::Bucket": ("BucketName", "arn:aws:s3:::{}"),
    "AWS::SQS::Queue": ("QueueName", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{{}}"),
    "AWS::DynamoDB::Table": ("TableName", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{{}}"),
    "AWS::Lambda::Function": ("FunctionName", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{{}}"),
}


def _resolve(value: Any, resources: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_resolve(v, resources) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        ref = value["Ref"]
        return _PSEUDO.get(ref, ref)  # another resource's Ref: its logical id (the RestApi id here)
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(_resolve(p, resources)) for p in parts)
    if set(value) == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
        resource = resources[logical_id]
        if attribute != "Arn" or resource["Type"] not in _ARN_BY_TYPE:
            return f"<{logical_id}.{attribute}>"  # keys, log groups: never named by the builder
        name_property, pattern = _ARN_BY_TYPE[resource["Type"]]
        return pattern.format(_resolve(resource["Properties"][name_property], resources))
    return {k: _resolve(v, resources) for k, v in value.items()}


def _normal(statement: dict[str, Any]) -> str:
    """One comparable form: lists sorted, single values as lists."""
    shaped: dict[str, Any] = {
        "Sid": statement.get("Sid"),
        "Effect": statement["Effect"],
        "Action": sorted(as_list(statement["Action"])),
        "Resource": sorted(as_list(statement["Resource"])),
    }
    if "Condition" in statement:
        shaped["Condition"] = {
            op: {k: sorted(as_list(v)) for k, v in keys.items()} for op, keys in statement["Condition"].items()
        }
    return json.dumps(shaped, sort_keys=True)


def _deployed(synth: Any, role: Any) -> set[str]:
    statements = role_statements(synth.resources, synth.logical_id(role))
    return {_normal(_resolve(s, synth.resources)) for s in statements}


def _shared(synth: Any) -> iam_policies.PolicyResources:
    api_id = synth.logical_id(synth.stack.orchestration.api)
    return iam_policies.resources_for_names(resource_names(synth.stage, ACCOUNT, REGION), api_id=api_id)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_parent_role_carries_exactly_the_builders_statements(stage: str, request: pytest.FixtureRequest) -> None:
    synth = request.getfixturevalue(stage)
    expected = {_normal(s) for s in iam_policies.parent_statements(_shared(synth))}
    deployed = _deployed(synth, synth.stack.identities.parent_role)
    assert expected <= deployed, sorted(expected - deployed)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_each_lambda_role_carries_exactly_the_builders_statements(stage: str, request: pytest.FixtureRequest) -> None:
    synth = request.getfixturevalue(stage)
    shared = _shared(synth)
    assert set(synth.stack.orchestration.roles) == set(iam_policies.LAMBDA_FUNCTIONS)
    for function, role in synth.stack.orchestration.roles.items():
        expected = {_normal(s) for s in iam_policies.lambda_statements(function, shared)}
        deployed = _deployed(synth, role)
        assert expected <= deployed, (function, sorted(expected - deployed))
        # Nothing on the data plane beyond the builder's: other statements are logs, X-Ray and
        # storage-key (kms:ViaService s3) grants, plus the SQS event source's own consume grant.
        extra = [json.loads(s) for s in deployed - expected]
        for statement in extra:
            services = {a.split(":")[0] for a in statement["Action"]}
            assert services <= {"logs", "xray", "kms", "sqs"}, (function, statement)


def test_dev_tenant_roles_carry_exactly_the_builders_statements(dev: Any) -> None:
    shared = _shared(dev)
    assert dev.stack.identities.tenant_roles
    for tenant, role in dev.stack.identities.tenant_roles.items():
        expected = {_normal(s) for s in iam_policies.tenant_statements(tenant, shared)}
        deployed = _deployed(dev, role)
        assert expected <= deployed, (tenant, sorted(expected - deployed))
        extra = [json.loads(s) for s in deployed - expected]
        assert all({a.split(":")[0] for a in s["Action"]} == {"kms"} for s in extra), extra  # storage key via S3


def test_the_local_identities_carry_the_same_documents() -> None:
    """The local stack's identities get the builder's documents for the local stage's names."""
    names = resource_names("local", ACCOUNT, REGION)
    shared = iam_policies.resources_for_names(names)
    assert identity_policies("parent", names) == [iam_policies.parent_policy(shared)]
    assert identity_policies("tenant-a", names) == [iam_policies.tenant_policy("tenant-a", shared)]
    lambdas = identity_policies("lambdas", names)
    assert lambdas[: len(iam_policies.LAMBDA_FUNCTIONS)] == [
        iam_policies.lambda_policy(f, shared) for f in iam_policies.LAMBDA_FUNCTIONS
    ]

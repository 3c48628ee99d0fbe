"""The shared IAM builder and the local evaluator: what each role may reach, and how conditions match.

The evaluator (`ccc.local.iam_eval`) decides for the local stack what AWS's authoriser decides for
the CDK roles; both get their documents from `ccc_common.domain.iam_policies`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc.local.iam_eval import Access, Decision, IdentityPolicy, PolicyNotUnderstood
from ccc_common.domain import iam_policies
from ccc_common.domain.naming import resource_names

NAMES = resource_names("local", "123456789012", "us-east-1")
SHARED = iam_policies.resources_for_names(NAMES)
INBOX = SHARED.inbox_bucket_arn
RESULTS = SHARED.results_bucket_arn
TENANT = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)
JOB = st.from_regex(r"[0-9a-f]{32}", fullmatch=True)


def _allowed(policy: IdentityPolicy, action: str, resource: str, context: dict[str, list[str]] | None = None) -> bool:
    return policy.decide(Access(action, resource), context) is Decision.ALLOW


@settings(max_examples=60, deadline=None)
@given(tenant=TENANT, other=TENANT, job=JOB)
def test_a_tenant_reaches_its_own_prefix_and_never_another_tenants(tenant: str, other: str, job: str) -> None:
    policy = IdentityPolicy.parse(iam_policies.tenant_policy(tenant, SHARED))
    assert _allowed(policy, "s3:PutObject", f"{INBOX}/jobs/{tenant}/{job}.ccc")
    assert _allowed(policy, "s3:GetObject", f"{RESULTS}/results/{tenant}/{job}.ccc")
    assert _allowed(policy, "s3:ListBucket", RESULTS, {"s3:prefix": [f"results/{tenant}/{job}"]})
    # Never its own input back, never a result it did not get, never any listing outside its prefix.
    assert not _allowed(policy, "s3:GetObject", f"{INBOX}/jobs/{tenant}/{job}.ccc")
    assert not _allowed(policy, "s3:PutObject", f"{RESULTS}/results/{tenant}/{job}.ccc")
    assert not _allowed(policy, "s3:ListBucket", RESULTS, {"s3:prefix": ["results/"]})
    assert not _allowed(policy, "s3:ListBucket", RESULTS, {})
    assert not _allowed(policy, "s3:ListBucket", INBOX, {"s3:prefix": [f"jobs/{tenant}/"]})
    for action in ("dynamodb:Scan", "dynamodb:GetItem", "dynamodb:Query", "sqs:ReceiveMessage", "s3:DeleteObject"):
        assert not _allowed(policy, action, "*")
        assert not _allowed(policy, action, SHARED.jobs_table_arn)
    if other != tenant and not other.startswith(f"{tenant}/"):
        assert not _allowed(policy, "s3:PutObject", f"{INBOX}/jobs/{other}/{job}.ccc")
        assert not _allowed(policy, "s3:GetObject", f"{RESULTS}/results/{other}/{job}.ccc")
        assert not _allowed(policy, "s3:ListBucket", RESULTS, {"s3:prefix": [f"results/{other}/"]})


def test_a_tenant_prefix_is_not_a_prefix_of_another_tenants() -> None:
    """`tenant-a` must not reach `tenant-ab`'s objects: the prefix ends with a slash."""
    policy = IdentityPolicy.parse(iam_policies.tenant_policy("tenant-a", SHARED))
    assert not _allowed(policy, "s3:GetObject", f"{RESULTS}/results/tenant-ab/{'0' * 32}.ccc")
    assert not _allowed(policy, "s3:PutObject", f"{INBOX}/jobs/tenant-ab/{'0' * 32}.ccc")


def test_the_parent_serves_every_tenant_but_only_with_ciphertext_actions() -> None:
    policy = IdentityPolicy.parse(iam_policies.parent_policy(SHARED))
    job = "0" * 32
    assert _allowed(policy, "s3:GetObject", f"{INBOX}/jobs/any/{job}.ccc")
    assert _allowed(policy, "s3:PutObject", f"{RESULTS}/results/any/{job}.ccc")
    assert _allowed(policy, "dynamodb:UpdateItem", SHARED.jobs_table_arn)
    assert _allowed(policy, "sqs:ReceiveMessage", SHARED.work_queue_arn)
    assert _allowed(policy, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": [NAMES.metrics_namespace]})
    assert not _allowed(policy, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": ["Other"]})
    for action, resource in (
        ("s3:PutObject", f"{INBOX}/jobs/any/{job}.ccc"),
        ("s3:DeleteObject", f"{RESULTS}/results/any/{job}.ccc"),
        ("dynamodb:Scan", SHARED.jobs_table_arn),
        ("dynamodb:PutItem", SHARED.jobs_table_arn),
        ("sqs:SendMessage", SHARED.work_queue_arn),
        ("autoscaling:SetDesiredCapacity", SHARED.fleet_group_arn),
        ("kms:Decrypt", "*"),
    ):
        assert not _allowed(policy, action, resource), action


def test_no_lambda_reads_the_inbox_or_touches_kms() -> None:
    for function in iam_policies.LAMBDA_FUNCTIONS:
        policy = IdentityPolicy.parse(iam_policies.lambda_policy(function, SHARED))
        assert not _allowed(policy, "s3:GetObject", f"{INBOX}/jobs/t/{'0' * 32}.ccc"), function
        assert not _allowed(policy, "kms:Decrypt", "*"), function
    with pytest.raises(ValueError, match="unknown Lambda"):
        iam_policies.lambda_statements("nope", SHARED)


# ----- the evaluator ----------------------------------------------------------------------------------


def _doc(*statements: dict[str, object]) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_condition_key_names_match_case_insensitively_in_both_directions() -> None:
    """AWS compares condition-key names case-insensitively (values stay case-sensitive)."""
    lower = IdentityPolicy.parse(
        _doc(
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "*",
                "Condition": {"StringLike": {"s3:prefix": "a/*"}},
            }
        )
    )
    upper = IdentityPolicy.parse(
        _doc(
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "*",
                "Condition": {"stringlike": {"S3:PREFIX": "a/*"}},
            }
        )
    )
    for policy in (lower, upper):
        assert _allowed(policy, "s3:ListBucket", "b", {"s3:prefix": ["a/x"]})
        assert _allowed(policy, "s3:ListBucket", "b", {"S3:Prefix": ["a/x"]})
        assert not _allowed(policy, "s3:ListBucket", "b", {"s3:prefix": ["A/x"]})  # values: case-sensitive


def test_actions_match_case_insensitively_and_resources_do_not() -> None:
    policy = IdentityPolicy.parse(_doc({"Effect": "Allow", "Action": "S3:get*", "Resource": "arn:aws:s3:::b/k*"}))
    assert _allowed(policy, "s3:GetObject", "arn:aws:s3:::b/key")
    assert not _allowed(policy, "s3:GetObject", "arn:aws:s3:::B/key")


def test_explicit_deny_wins_and_nothing_is_an_implicit_deny() -> None:
    policy = IdentityPolicy.parse(
        [
            _doc({"Effect": "Allow", "Action": "*", "Resource": "*"}),
            _doc({"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}),
        ]
    )
    assert policy.decide(Access("s3:DeleteObject", "x")) is Decision.EXPLICIT_DENY
    assert IdentityPolicy.parse([]).decide(Access("s3:GetObject", "x")) is Decision.IMPLICIT_DENY
    assert not policy.evaluate([]).allowed  # a request that maps to nothing is never allowed
    assert not policy.evaluate([Access("s3:GetObject", "a"), Access("s3:DeleteObject", "b")]).allowed


def test_a_missing_request_key_fails_positive_operators_and_satisfies_negated_ones() -> None:
    positive = IdentityPolicy.parse(
        _doc({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:k": "v"}}})
    )
    negated = IdentityPolicy.parse(
        _doc({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:k": "v"}}})
    )
    assert not _allowed(positive, "s3:GetObject", "x", {})
    assert _allowed(negated, "s3:GetObject", "x", {})
    assert not _allowed(negated, "s3:GetObject", "x", {"aws:k": ["v"]})


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "*", "NotResource": "x"},
        {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4"}}},
        {"Effect": "allow", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Action": [], "Resource": "*"},
    ],
)
def test_anything_outside_the_modelled_subset_is_refused(statement: dict[str, object]) -> None:
    with pytest.raises(PolicyNotUnderstood):
        IdentityPolicy.parse(_doc(statement))

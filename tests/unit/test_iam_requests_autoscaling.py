"""The IAM gateway's view of Auto Scaling tagging calls: the group from the tag members, `aws:TagKeys`.

Why: the scaler remembers state in tags on the fleet group, and its policy allows writing only its
own tag keys on that group. Classified as `*` without tag keys (as before), the local stack refused
what AWS allows and could not refuse what AWS refuses.
"""

from __future__ import annotations

from urllib.parse import urlencode

from ccc.local.iam_eval import IdentityPolicy
from ccc.local.iam_requests import UNCLASSIFIED, RequestFacts, classify
from ccc_common.domain.fleet_ports import LAST_ACTIVITY_TAG
from ccc_common.domain.iam_policies import lambda_policy, resources_for_names
from ccc_common.domain.naming import resource_names

NAMES = resource_names("local", region="us-east-1", account="123456789012")
GROUP = NAMES.fleet_group


def _tagging(operation: str, tags: list[tuple[str, str, str]]) -> RequestFacts:
    form: dict[str, str] = {"Action": operation, "Version": "2011-01-01"}
    for index, (group, resource_type, key) in enumerate(tags, start=1):
        form |= {f"Tags.member.{index}.ResourceId": group, f"Tags.member.{index}.ResourceType": resource_type,
                 f"Tags.member.{index}.Key": key, f"Tags.member.{index}.Value": "1"}  # fmt: skip
    return RequestFacts(
        method="POST", path="/", query={}, headers={"content-type": ["application/x-www-form-urlencoded"]},
        body=urlencode(form).encode(), service="autoscaling", region="us-east-1", account="123456789012",
    )  # fmt: skip


def _allowed(facts: RequestFacts) -> bool:
    request = classify(facts)
    policy = IdentityPolicy.parse(lambda_policy("scaler", resources_for_names(NAMES)))
    return request.operation != UNCLASSIFIED and policy.evaluate(request.needs, request.context).allowed


def test_tagging_names_the_group_and_the_tag_keys() -> None:
    request = classify(_tagging("CreateOrUpdateTags", [(GROUP, "auto-scaling-group", LAST_ACTIVITY_TAG)]))
    assert [need.resource for need in request.needs] == [
        f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:*:autoScalingGroupName/{GROUP}"
    ]
    assert request.context == {"aws:TagKeys": [LAST_ACTIVITY_TAG]}


def test_the_scaler_may_write_its_own_tag_on_its_own_group_only() -> None:
    assert _allowed(_tagging("CreateOrUpdateTags", [(GROUP, "auto-scaling-group", LAST_ACTIVITY_TAG)]))
    assert not _allowed(_tagging("CreateOrUpdateTags", [(GROUP, "auto-scaling-group", "Name")]))
    two_groups = [(GROUP, "auto-scaling-group", LAST_ACTIVITY_TAG), ("other", "auto-scaling-group", LAST_ACTIVITY_TAG)]
    assert not _allowed(_tagging("CreateOrUpdateTags", two_groups))
    assert not _allowed(_tagging("DeleteTags", [(GROUP, "auto-scaling-group", LAST_ACTIVITY_TAG)]))


def test_malformed_tagging_is_unclassified_and_so_denied() -> None:
    assert classify(_tagging("CreateOrUpdateTags", [])).operation == UNCLASSIFIED
    assert classify(_tagging("CreateOrUpdateTags", [("", "auto-scaling-group", "k")])).operation == UNCLASSIFIED
    assert classify(_tagging("CreateOrUpdateTags", [(GROUP, "instance", "k")])).operation == UNCLASSIFIED

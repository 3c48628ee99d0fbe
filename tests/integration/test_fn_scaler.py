"""scaler handler on moto: 0 -> N on backlog (or on a wake-up), back to 0 only after the idle timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import ModuleType

import boto3
import pytest
from moto import mock_aws

from ccc.local.iam_eval import Access, IdentityPolicy
from ccc_common.aws.fleet_adapters import LAST_ACTIVITY_TAG
from ccc_common.domain.iam_policies import PolicyResources, lambda_policy
from ccc_common.domain.settings import stage_settings
from tests.conftest import load_event
from tests.integration.fn_helpers import GROUP, REGION, FakeLambdaContext, load_handler

MAX = stage_settings("local").fleet.max_instances
PER_INSTANCE = stage_settings("local").fleet.jobs_per_instance


@pytest.fixture
def aws(monkeypatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        queue_url = boto3.client("sqs").create_queue(QueueName="ccc-local-work")["QueueUrl"]
        ec2 = boto3.client("ec2")
        ec2.create_launch_template(
            LaunchTemplateName="ccc-local-enclave",
            LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m5.xlarge"},  # an AMI moto knows
        )
        boto3.client("autoscaling").create_auto_scaling_group(
            AutoScalingGroupName=GROUP,
            LaunchTemplate={"LaunchTemplateName": "ccc-local-enclave", "Version": "$Latest"},
            MinSize=0,
            MaxSize=MAX,
            DesiredCapacity=0,
            AvailabilityZones=[f"{REGION}a"],
        )
        yield queue_url


def scaler(monkeypatch, queue_url: str, idle: str = "30") -> ModuleType:
    return load_handler(
        monkeypatch, "scaler", {"CCC_WORK_QUEUE_URL": queue_url, "CCC_FLEET_GROUP": GROUP, "CCC_IDLE_TIMEOUT_S": idle}
    )


def group() -> dict:
    return boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][
        0
    ]


def set_last_activity(epoch: float) -> None:
    boto3.client("autoscaling").create_or_update_tags(
        Tags=[
            {
                "ResourceId": GROUP,
                "ResourceType": "auto-scaling-group",
                "Key": LAST_ACTIVITY_TAG,
                "Value": str(int(epoch)),
                "PropagateAtLaunch": False,
            }
        ]
    )


def tick(module: ModuleType) -> dict:
    return module.handler(load_event("scheduled_event.json"), FakeLambdaContext())


def test_backlog_scales_from_zero_and_idle_returns_to_zero(aws, monkeypatch, capsys) -> None:
    module = scaler(monkeypatch, aws)
    sqs = boto3.client("sqs")
    assert tick(module) == {"previous_desired": 0, "desired": 0, "reason": "steady", "backlog": 0, "in_flight": 0}

    for n in range(PER_INSTANCE * MAX + 3):
        sqs.send_message(QueueUrl=aws, MessageBody=f"job {n}")
    result = tick(module)
    assert result["desired"] == MAX and result["reason"] == "scale-out"
    assert group()["DesiredCapacity"] == MAX
    assert sum(i["LifecycleState"] == "InService" for i in group()["Instances"]) == MAX

    # the fleet takes every message: in flight, nothing visible -> keep capacity
    received = []
    while True:
        batch = sqs.receive_message(QueueUrl=aws, MaxNumberOfMessages=10, VisibilityTimeout=300).get("Messages", [])
        if not batch:
            break
        received += batch
    result = tick(module)
    assert result["in_flight"] == len(received) and result["desired"] == MAX

    for message in received:
        sqs.delete_message(QueueUrl=aws, ReceiptHandle=message["ReceiptHandle"])
    # Idle: one instance stays warm until the idle timeout, the others go a step per tick.
    warm = MAX
    while warm > 1:
        result = tick(module)
        assert result["desired"] == warm - 1 and result["reason"] == "scale-in"
        warm -= 1
    result = tick(module)
    assert result["desired"] == 1 and result["reason"] == "idle-wait"

    set_last_activity(time.time() - 31)  # the idle timeout has passed since work was last seen
    result = tick(module)
    assert result == {"previous_desired": 1, "desired": 0, "reason": "idle-timeout", "backlog": 0, "in_flight": 0}
    assert group()["DesiredCapacity"] == 0
    metrics_out = capsys.readouterr().out
    for name in ("Backlog", "BacklogPerInstance", "DesiredCapacity", "InServiceInstances"):
        assert f'"{name}"' in metrics_out


def test_wake_up_scales_out_before_the_message_is_visible(aws, monkeypatch) -> None:
    module = scaler(monkeypatch, aws)
    result = module.handler(load_event("scaler_wake_event.json"), FakeLambdaContext())
    assert result["desired"] == 1 and result["reason"] == "scale-out"
    tags = {t["Key"]: t["Value"] for t in group()["Tags"]}
    assert abs(int(tags[LAST_ACTIVITY_TAG]) - time.time()) < 60


def test_scale_in_is_one_step_at_a_time_while_busy(aws, monkeypatch) -> None:
    module = scaler(monkeypatch, aws)
    boto3.client("autoscaling").set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=MAX)
    boto3.client("sqs").send_message(QueueUrl=aws, MessageBody="one job")
    result = tick(module)
    assert result["desired"] == MAX - 1 and result["reason"] == "scale-in"


def test_bad_environment_fails_at_cold_start(aws, monkeypatch) -> None:
    from ccc_common.contracts.lambda_env import EnvError

    module = scaler(monkeypatch, aws)
    monkeypatch.delenv("CCC_FLEET_GROUP")
    module.runtime.cache_clear()
    with pytest.raises(EnvError, match="CCC_FLEET_GROUP"):
        tick(module)


def _scaler_policy(queue_url: str) -> IdentityPolicy:
    account = "123456789012"  # moto's
    resources = PolicyResources(
        partition="aws", region=REGION, account=account, stage="local",
        inbox_bucket_arn="arn:aws:s3:::inbox", results_bucket_arn="arn:aws:s3:::results",
        artifacts_bucket_arn="arn:aws:s3:::artifacts",
        work_queue_arn=f"arn:aws:sqs:{REGION}:{account}:{queue_url.rsplit('/', 1)[-1]}",
        dead_letter_queue_arn=f"arn:aws:sqs:{REGION}:{account}:dlq",
        jobs_table_arn=f"arn:aws:dynamodb:{REGION}:{account}:table/jobs", fleet_group_name=GROUP,
        metrics_namespace="CCC", jobs_api_arn=f"arn:aws:execute-api:{REGION}:{account}:api",
        scaler_function_arn=f"arn:aws:lambda:{REGION}:{account}:function:scaler",
    )  # fmt: skip
    return IdentityPolicy.parse(lambda_policy("scaler", resources))


def test_every_call_the_scaler_makes_is_allowed_by_its_shared_policy(aws, monkeypatch) -> None:
    """moto (and the local IAM gateway, which covers S3/SQS/DynamoDB only) never checks Auto Scaling
    permissions, so this records each AWS call of a busy and an idle run and evaluates it against the
    policy CDK attaches to the scaler's role. It found the missing autoscaling:CreateOrUpdateTags:
    on AWS every run that saw work failed after resizing, and the idle timeout never started."""
    calls: list[tuple[str, str, dict]] = []

    def record(model, params, **_kwargs) -> None:
        calls.append((model.service_model.signing_name, model.name, dict(params)))

    boto3.DEFAULT_SESSION = None  # a fresh default session, so the hook sees the handler's clients
    boto3.setup_default_session(region_name=REGION)
    boto3.DEFAULT_SESSION.events.register("before-parameter-build.*.*", record)
    module = scaler(monkeypatch, aws)
    boto3.client("sqs").send_message(QueueUrl=aws, MessageBody="one job")
    assert tick(module)["reason"] == "scale-out"
    boto3.client("sqs").purge_queue(QueueUrl=aws)
    tick(module)
    group_arn = group()["AutoScalingGroupARN"]
    policy = _scaler_policy(aws)
    handler_calls = [(service, name, params) for service, name, params in calls
                     if (service, name) not in {("sqs", "SendMessage"), ("sqs", "PurgeQueue")}]  # fmt: skip
    assert {name for _, name, _ in handler_calls} >= {"GetQueueAttributes", "DescribeAutoScalingGroups",
                                                      "SetDesiredCapacity", "CreateOrUpdateTags"}  # fmt: skip
    for service, name, params in handler_calls:
        if service == "sqs":
            resource = _scaler_policy_queue_arn(aws)
        elif name.startswith("Describe"):
            resource = "*"
        else:
            resource = group_arn
        context = {"aws:TagKeys": [tag["Key"] for tag in params.get("Tags", [])]} if "Tags" in params else {}
        outcome = policy.evaluate([Access(f"{service}:{name}", resource)], context)
        assert outcome.allowed, outcome.reason


def _scaler_policy_queue_arn(queue_url: str) -> str:
    return f"arn:aws:sqs:{REGION}:123456789012:{queue_url.rsplit('/', 1)[-1]}"


def test_the_scaler_may_write_only_its_own_tags(aws) -> None:
    group_arn = group()["AutoScalingGroupARN"]
    policy = _scaler_policy(aws)
    tagging = Access("autoscaling:CreateOrUpdateTags", group_arn)
    assert policy.evaluate([tagging], {"aws:TagKeys": [LAST_ACTIVITY_TAG]}).allowed
    assert not policy.evaluate([tagging], {"aws:TagKeys": [LAST_ACTIVITY_TAG, "Name"]}).allowed
    deleting = Access("autoscaling:DeleteTags", group_arn)
    assert not policy.evaluate([deleting], {"aws:TagKeys": [LAST_ACTIVITY_TAG]}).allowed

"""Provisioning of the local stack's resources (moto in-process): names, settings, policy, wiring."""

from __future__ import annotations

import json
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from ccc.local.iam_users import default_identities
from ccc.local.kms.key_store import KeyStore
from ccc.local.kms.policy_eval import RequestContext, parse_policy
from ccc.local.provision import ProvisionError, provision, sort_principals
from ccc_common.domain.key_policy import lint_key_policy, releases_from_key_policy
from ccc_common.domain.naming import resource_names
from ccc_common.domain.settings import stage_settings
from ccc_core.identity import JobRef

ACCOUNT = "123456789012"
REGION = "us-east-1"
PCRS = {0: bytes([1]) * 48, 1: bytes([2]) * 48, 2: bytes([3]) * 48}


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        services = ("s3", "sqs", "dynamodb", "kms", "events", "autoscaling", "ec2")
        yield SimpleNamespace(**{s: boto3.client(s, region_name=REGION) for s in services})


@pytest.fixture
def provisioned(aws):
    names = resource_names("local", ACCOUNT, REGION)
    identities = list(default_identities(ACCOUNT).values())
    store = KeyStore()
    resources = provision(
        s3=aws.s3,
        sqs=aws.sqs,
        dynamodb=aws.dynamodb,
        key_store=store,
        events=aws.events,
        autoscaling=aws.autoscaling,
        ec2=aws.ec2,
        names=names,
        settings=stage_settings("local"),
        principals=sort_principals(identities),
        pcrs=PCRS,
        workers=1,
    )
    return SimpleNamespace(aws=aws, names=names, identities=identities, resources=resources, store=store)


def test_buckets_use_the_shared_names_and_block_public_access(provisioned):
    names, s3 = provisioned.names, provisioned.aws.s3
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {names.inbox_bucket, names.results_bucket, names.artifacts_bucket} <= buckets
    block = s3.get_public_access_block(Bucket=names.inbox_bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())


def test_work_queue_has_the_stage_settings_and_redrive_to_the_dlq(provisioned):
    sqs, res = provisioned.aws.sqs, provisioned.resources
    settings = stage_settings("local").queue
    attributes = sqs.get_queue_attributes(QueueUrl=res.queue_url, AttributeNames=["All"])["Attributes"]
    assert int(attributes["VisibilityTimeout"]) == settings.visibility_timeout_s
    assert int(attributes["ReceiveMessageWaitTimeSeconds"]) == settings.receive_wait_s
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == res.dlq_arn
    assert int(redrive["maxReceiveCount"]) == settings.max_receive_count
    assert res.queue_url.endswith(provisioned.names.work_queue)


def test_job_buckets_carry_the_cdk_stacks_lifecycle_rules(provisioned):
    """Same retention as AWS (ccc_common.domain.bucket_lifecycle builds both): the inbox keeps an input
    as long as its message can be redriven from the DLQ; results as long as the jobs table keeps the job."""
    names, s3 = provisioned.names, provisioned.aws.s3
    settings = stage_settings("local")
    expected = {names.inbox_bucket: 15, names.results_bucket: settings.job_ttl_days}
    for bucket, days in expected.items():
        (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        assert rule["Status"] == "Enabled" and rule["Expiration"] == {"Days": days}, bucket
        assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1
        assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert expected[names.inbox_bucket] * 86400 > settings.queue.dlq_retention_s


def _drain(sqs, url):
    messages = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        messages += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )
    return messages


def test_inbox_uploads_reach_the_work_queue_through_eventbridge_as_the_agent_parses_them(provisioned):
    from ccc_common.contracts.work_message import parse_work_message

    s3, sqs, names, res = provisioned.aws.s3, provisioned.aws.sqs, provisioned.names, provisioned.resources
    job = JobRef("tenant-a", "ab" * 16)
    s3.put_object(Bucket=names.inbox_bucket, Key=job.inbox_key, Body=b"ciphertext")
    s3.put_object(Bucket=names.inbox_bucket, Key="elsewhere/file.ccc", Body=b"x")
    s3.put_object(Bucket=names.results_bucket, Key=job.result_key, Body=b"x")
    bodies = _drain(sqs, res.queue_url)
    assert [b["detail"]["object"]["key"] for b in bodies] == [job.inbox_key]
    assert parse_work_message(json.dumps(bodies[0]), inbox_bucket=names.inbox_bucket) == [job]


def test_inbox_and_result_objects_reach_the_job_events_queue(provisioned):
    s3, sqs, names, res = provisioned.aws.s3, provisioned.aws.sqs, provisioned.names, provisioned.resources
    job = JobRef("tenant-a", "cd" * 16)
    s3.put_object(Bucket=names.inbox_bucket, Key=job.inbox_key, Body=b"ciphertext")
    s3.put_object(Bucket=names.results_bucket, Key=job.result_key, Body=b"result")
    s3.put_object(Bucket=names.artifacts_bucket, Key="enclave/other", Body=b"x")
    events = _drain(sqs, res.job_events_queue_url)
    seen = {(b["detail"]["bucket"]["name"], b["detail"]["object"]["key"]) for b in events}
    assert seen == {(names.inbox_bucket, job.inbox_key), (names.results_bucket, job.result_key)}


def test_fleet_group_is_min_zero_with_the_requested_capacity_and_a_drain_hook(provisioned):
    autoscaling, names = provisioned.aws.autoscaling, provisioned.names
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[names.fleet_group])["AutoScalingGroups"][0]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (
        0,
        stage_settings("local").fleet.max_instances,
        1,
    )
    hooks = autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=names.fleet_group)["LifecycleHooks"]
    assert [h["LifecycleHookName"] for h in hooks] == [names.lifecycle_hook]


def test_jobs_table_matches_the_job_store_layout(provisioned):
    from ccc_common.contracts.jobs_table import TENANT_INDEX

    table = provisioned.aws.dynamodb.describe_table(TableName=provisioned.names.jobs_table)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
    index = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}[TENANT_INDEX]
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["tenant", "created_at"]


def test_data_key_carries_the_shared_policy_pinned_to_the_measurement(provisioned):
    store, res = provisioned.store, provisioned.resources
    policy = json.loads(store.get(res.key_id).policy)
    assert lint_key_policy(policy, expected_pcrs={i: v.hex() for i, v in PCRS.items()}) == []
    assert store.alias(provisioned.names.key_alias, account=ACCOUNT, region=REGION).target_key_id == res.key_id
    parent = next(i for i in provisioned.identities if i.name == "parent")
    assert parent.principal_arn in json.dumps(policy)


def test_moto_kms_holds_no_key_of_the_stack(provisioned):
    """The keys live in the gateway's store: moto's KMS (reachable by anyone) has none to misuse."""
    assert provisioned.aws.kms.list_keys()["Keys"] == []


def test_each_tenant_has_its_own_key_in_its_own_account(provisioned):
    store, res = provisioned.store, provisioned.resources
    by_name = {i.name: i for i in provisioned.identities}
    assert set(res.tenant_key_arns) == {"tenant-a", "tenant-b"}
    assert len(set(res.tenant_key_arns.values())) == 2
    for tenant, arn in res.tenant_key_arns.items():
        key = store.resolve(arn, account=ACCOUNT, region=REGION)
        tenant_account = by_name[tenant].principal_arn.split(":")[4]
        assert key.account == tenant_account != ACCOUNT
        policy = json.loads(key.policy)
        assert [r.pcrs for r in releases_from_key_policy(policy)] == [{i: v.hex() for i, v in PCRS.items()}]
        text = json.dumps(policy)
        assert by_name[tenant].principal_arn in text and by_name["parent"].principal_arn in text
        assert by_name["admin"].principal_arn not in text and f":{ACCOUNT}:root" not in text
        other = "tenant-b" if tenant == "tenant-a" else "tenant-a"
        assert by_name[other].principal_arn not in text
        parsed = parse_policy(policy)  # the gateway understands it (else it would deny everything)
        for action in (
            "kms:Decrypt",
            "kms:PutKeyPolicy",
            "kms:CreateGrant",
            "kms:ScheduleKeyDeletion",
            "kms:DisableKey",
            "kms:Encrypt",
        ):
            request = RequestContext(
                principal_arn=by_name["admin"].principal_arn,
                caller_account=ACCOUNT,
                action=action,
                resource_arn=arn,
                encryption_context={"ccc:job": "j", "ccc:tenant": tenant},
                iam_allows=True,
            )
            assert not parsed.evaluate(request).allowed, action


def test_principals_without_a_role_or_without_a_parent_are_refused():
    stray = SimpleNamespace(name="mallory", principal_arn=f"arn:aws:iam::{ACCOUNT}:role/m")
    with pytest.raises(ProvisionError):
        sort_principals([stray])
    tenant = SimpleNamespace(name="tenant-a", principal_arn=f"arn:aws:iam::{ACCOUNT}:role/t")
    with pytest.raises(ProvisionError, match="parent"):
        sort_principals([tenant])


def test_debug_mode_measurements_cannot_be_provisioned(aws):
    from ccc_common.domain.key_policy import KeyPolicyError

    identities = list(default_identities(ACCOUNT).values())
    with pytest.raises(KeyPolicyError, match="zero"):
        provision(
            s3=aws.s3,
            sqs=aws.sqs,
            dynamodb=aws.dynamodb,
            key_store=KeyStore(),
            events=aws.events,
            autoscaling=aws.autoscaling,
            ec2=aws.ec2,
            names=resource_names("local", ACCOUNT, REGION),
            settings=stage_settings("local"),
            principals=sort_principals(identities),
            pcrs={0: bytes(48)},
        )

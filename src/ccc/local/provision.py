"""Create the local stack's AWS resources in moto, with the names and settings the CDK stack uses.

Why a module of its own: what exists locally must mirror what CDK deploys (same names from
`ccc_common.naming`, same queue settings from `ccc_common.settings`, same key policy from
`ccc_common.key_policy`), so that a test that passes locally says something about AWS. Every
function takes injected boto3 clients (tests use moto in-process).

Difference from AWS, by design: inbox ObjectCreated events go straight from S3 to SQS (moto
cannot route S3 -> EventBridge -> SQS); the message shape is the S3 notification format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ccc_common.jobs_dal import TENANT_INDEX
from ccc_common.key_policy import KeyPolicySpec, build_key_policy
from ccc_common.naming import CIPHERTEXT_SUFFIX, INBOX_PREFIX, ResourceNames
from ccc_common.settings import StageSettings


class ProvisionError(RuntimeError):
    """A resource could not be created as specified."""


@dataclass(frozen=True)
class PrincipalSet:
    """Who gets what on the data key: the local identities sorted into their policy roles."""

    admin_arns: tuple[str, ...]
    parent_role_arns: tuple[str, ...]
    tenant_arns: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class ProvisionedResources:
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    jobs_table: str
    key_id: str
    key_arn: str
    key_alias: str


def key_policy_for(account_id: str, partition: str, principals: PrincipalSet, pcrs: Mapping[int, bytes]) -> dict:
    """The data key's policy: exactly what CDK deploys, pinned to this stack's enclave measurement."""
    spec = KeyPolicySpec(
        account_id=account_id,
        partition=partition,
        admin_principals=principals.admin_arns,
        tenant_principals=dict(principals.tenant_arns),
        parent_role_arns=principals.parent_role_arns,
        pcrs={index: value.hex() for index, value in pcrs.items()},
    )
    return build_key_policy(spec)


def create_buckets(s3: Any, names: ResourceNames, settings: StageSettings) -> None:
    expire_days = settings.job_ttl_days
    for bucket in (names.inbox_bucket, names.results_bucket, names.artifacts_bucket):
        s3.create_bucket(Bucket=bucket)
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
    for bucket in (names.inbox_bucket, names.results_bucket):
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "expire-job-objects",
                        "Status": "Enabled",
                        "Filter": {"Prefix": ""},
                        "Expiration": {"Days": expire_days},
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    }
                ]
            },
        )


def create_queues(sqs: Any, names: ResourceNames, settings: StageSettings) -> tuple[str, str, str, str]:
    """Work queue + DLQ with the stage's redrive policy. Returns (url, arn, dlq_url, dlq_arn)."""
    queue = settings.queue
    dlq_url = sqs.create_queue(
        QueueName=names.dead_letter_queue,
        Attributes={"MessageRetentionPeriod": str(queue.dlq_retention_s)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=names.work_queue,
        Attributes={
            "VisibilityTimeout": str(queue.visibility_timeout_s),
            "MessageRetentionPeriod": str(queue.retention_s),
            "ReceiveMessageWaitTimeSeconds": str(queue.receive_wait_s),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receive_count)}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return queue_url, queue_arn, dlq_url, dlq_arn


def connect_inbox_to_queue(s3: Any, sqs: Any, names: ResourceNames, queue_url: str, queue_arn: str) -> None:
    """Inbox ObjectCreated (jobs/*.ccc) -> work queue, with the queue policy S3 needs on AWS."""
    bucket_arn = f"arn:aws:s3:::{names.inbox_bucket}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InboxNotifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": bucket_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    s3.put_bucket_notification_configuration(
        Bucket=names.inbox_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "inbox-to-work-queue",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "prefix", "Value": INBOX_PREFIX},
                                {"Name": "suffix", "Value": CIPHERTEXT_SUFFIX},
                            ]
                        }
                    },
                }
            ]
        },
    )


def create_jobs_table(dynamodb: Any, names: ResourceNames) -> str:
    """Jobs table as `ccc_common.jobs_dal` documents it: key job_id; GSI by-tenant (tenant, created_at); TTL `ttl`."""
    dynamodb.create_table(
        TableName=names.jobs_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "job_id", "AttributeType": "S"},
            {"AttributeName": "tenant", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": TENANT_INDEX,
                "KeySchema": [
                    {"AttributeName": "tenant", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    dynamodb.update_time_to_live(
        TableName=names.jobs_table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
    )
    return names.jobs_table


def create_data_key(kms: Any, names: ResourceNames, policy: dict) -> tuple[str, str]:
    """The symmetric data key with the CCC key policy, and its alias. Returns (key id, key ARN)."""
    metadata = kms.create_key(
        Policy=json.dumps(policy),
        Description=f"CCC {names.stage} data key: tenant inputs and results, released only to the attested enclave",
        KeyUsage="ENCRYPT_DECRYPT",
        KeySpec="SYMMETRIC_DEFAULT",
        Tags=[{"TagKey": "project", "TagValue": "ccc"}, {"TagKey": "stage", "TagValue": names.stage}],
    )["KeyMetadata"]
    kms.create_alias(AliasName=names.key_alias, TargetKeyId=metadata["KeyId"])
    return metadata["KeyId"], metadata["Arn"]


def publish_measurement(s3: Any, names: ResourceNames, pcrs: Mapping[int, bytes]) -> None:
    """Record the expected enclave measurement in the artifacts bucket (as the EIF build does on AWS)."""
    body = json.dumps({"pcrs": {str(i): v.hex() for i, v in sorted(pcrs.items())}}, indent=2).encode()
    s3.put_object(Bucket=names.artifacts_bucket, Key="enclave/measurement.json", Body=body)


def provision(
    *,
    s3: Any,
    sqs: Any,
    dynamodb: Any,
    kms: Any,
    names: ResourceNames,
    settings: StageSettings,
    principals: PrincipalSet,
    pcrs: Mapping[int, bytes],
    partition: str = "aws",
) -> ProvisionedResources:
    """Create every resource of the stage in the account the clients point at."""
    if names.stage != settings.stage:
        raise ProvisionError(f"names are for stage {names.stage!r} but settings for {settings.stage!r}")
    policy = key_policy_for(names.account, partition, principals, pcrs)
    create_buckets(s3, names, settings)
    queue_url, queue_arn, dlq_url, dlq_arn = create_queues(sqs, names, settings)
    connect_inbox_to_queue(s3, sqs, names, queue_url, queue_arn)
    table = create_jobs_table(dynamodb, names)
    key_id, key_arn = create_data_key(kms, names, policy)
    publish_measurement(s3, names, pcrs)
    return ProvisionedResources(
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
        jobs_table=table,
        key_id=key_id,
        key_arn=key_arn,
        key_alias=names.key_alias,
    )


def sort_principals(identities: Sequence[Any]) -> PrincipalSet:
    """Map the local identities (name, principal_arn) to policy roles: admin, parent, tenant-*."""
    admins: list[str] = []
    parents: list[str] = []
    tenants: dict[str, tuple[str, ...]] = {}
    for identity in identities:
        name, arn = identity.name, identity.principal_arn
        if name == "admin":
            admins.append(arn)
        elif name == "parent":
            parents.append(arn)
        elif name.startswith("tenant-"):
            tenants[name] = (*tenants.get(name, ()), arn)
        else:
            raise ProvisionError(f"local identity {name!r} has no role in the key policy")
    if not parents:
        raise ProvisionError("the local identities include no parent role")
    return PrincipalSet(tuple(admins), tuple(parents), tenants)

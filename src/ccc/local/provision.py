"""Create the local stack's AWS resources in moto, with the names and settings the CDK stack uses.

Why a module of its own: what exists locally must mirror what CDK deploys (same names from
`ccc_common.domain.naming`, same queue settings from `ccc_common.domain.settings`, same key policy from
`ccc_common.domain.key_policy`), so that a test that passes locally says something about AWS. Every
function takes injected boto3 clients (tests use moto in-process). KMS keys are not created in
moto: they go into the attested-KMS gateway's key store (`ccc.local.kms.key_store`), which the
gateway loads when it starts, so moto's KMS never holds a key of the stack.

Keys: each tenant gets its own data key (`create_tenant_keys`), in the tenant's own account, with
the policy `build_tenant_key_policy` makes (the tenant's principals, the parent role, the release
this stack measured). The operator-run shared key (`create_data_key`, `build_key_policy`) is kept
for the demo path and for clients that do not yet pin a tenant key; docs/kms.md says what it costs.

Events flow as on AWS: S3 -> EventBridge (default bus) -> rules -> the work queue, and -> a local
job-events queue that stands in for the job_events Lambda target (the supervisor feeds its messages
to the real handler in-process).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ccc.local.errors import LocalStackError
from ccc.local.kms.key_store import Alias, KeyStore
from ccc_common.contracts import jobs_table
from ccc_common.domain.bucket_lifecycle import job_bucket_lifecycles, s3_lifecycle_configuration
from ccc_common.domain.key_policy import (
    KeyPolicySpec,
    TenantKeySpec,
    build_key_policy,
    build_tenant_key_policy,
    release_from_pcrs,
)
from ccc_common.domain.naming import ResourceNames
from ccc_common.domain.settings import StageSettings
from ccc_core.identity import INBOX_PREFIX, RESULTS_PREFIX

# No instance really boots locally (worker processes stand in for instances); moto only needs an id.
LOCAL_IMAGE_ID = "ami-0ccc0000000000001"


class ProvisionError(LocalStackError, RuntimeError):
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
    job_events_queue_url: str
    fleet_group: str
    jobs_table: str
    key_id: str
    key_arn: str
    key_alias: str
    tenant_key_arns: Mapping[str, str]  # tenant -> its own data key (interface C)


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


def _account_of(arn: str) -> str:
    return arn.split(":", 5)[4]


def tenant_key_policy_for(tenant: str, partition: str, principals: PrincipalSet, pcrs: Mapping[int, bytes]) -> dict:
    """A tenant's own key policy: its principals, the parent role, this stack's measured release.

    The key lives in the tenant's account (that of its principals); the local `admin` (the
    operator's) is named nowhere in it and its account root gets nothing, so it can neither use nor
    change the key.
    """
    tenant_arns = tuple(principals.tenant_arns.get(tenant, ()))
    accounts = {_account_of(arn) for arn in tenant_arns}
    if len(accounts) != 1:
        raise ProvisionError(f"tenant {tenant!r} needs principals in exactly one account, got {sorted(accounts)}")
    spec = TenantKeySpec(
        tenant=tenant,
        partition=partition,
        key_account_id=accounts.pop(),
        key_admin_principals=(),
        tenant_principals=tenant_arns,
        parent_role_arns=principals.parent_role_arns,
        releases=(release_from_pcrs({index: value.hex() for index, value in pcrs.items()}),),
    )
    return build_tenant_key_policy(spec)


def create_buckets(s3: Any, names: ResourceNames, settings: StageSettings) -> None:
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
    # The CDK stack's rules (ccc_common.domain.bucket_lifecycle). moto stores them and never applies
    # them; a local stack lives hours, the shortest rule is a day (docs/local-stack.md).
    lifecycles = job_bucket_lifecycles(settings)
    for bucket, rule in ((names.inbox_bucket, lifecycles.inbox), (names.results_bucket, lifecycles.results)):
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=s3_lifecycle_configuration(rule))


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


def job_events_queue_name(names: ResourceNames) -> str:
    """Local stand-in for the job_events Lambda target: a queue the supervisor drains into the handler."""
    return f"{names.prefix}-job-events"


def _object_created_pattern(bucket: str, key_prefix: str) -> str:
    # AWS matches the inbox rule with a wildcard (jobs/*.ccc); moto's event patterns know prefix and
    # suffix but not wildcard, so locally the rule matches the prefix and the parent agent refuses
    # other keys (they go to the DLQ) -- the same outcome for anything a client may upload.
    return json.dumps(
        {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": key_prefix}]}},
        }
    )


def _queue_arn(sqs: Any, queue_url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _allow_events(sqs: Any, queue_url: str, queue_arn: str, rule_arns: list[str]) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EventBridgeRules",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})


def _rule(events: Any, name: str, description: str, pattern: str, target_id: str, target_arn: str) -> str:
    arn = str(events.put_rule(Name=name, Description=description, EventPattern=pattern, State="ENABLED")["RuleArn"])
    events.put_targets(Rule=name, Targets=[{"Id": target_id, "Arn": target_arn}])
    return arn


def connect_events(
    s3: Any, sqs: Any, events: Any, names: ResourceNames, queue_url: str, queue_arn: str
) -> str:
    """S3 -> EventBridge -> work queue and job-events queue, as the CDK stack wires it.

    inbox `jobs/...` Object Created -> work queue (the parent agent's input) and job events;
    results `results/...` Object Created -> job events. Returns the job-events queue URL.
    """
    for bucket in (names.inbox_bucket, names.results_bucket):
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
    work_rule = _rule(
        events, f"{names.prefix}-inbox-to-queue", "New job ciphertext in the inbox -> work queue",
        _object_created_pattern(names.inbox_bucket, INBOX_PREFIX), "work-queue", queue_arn,
    )
    _allow_events(sqs, queue_url, queue_arn, [work_rule])
    events_url = sqs.create_queue(QueueName=job_events_queue_name(names))["QueueUrl"]
    events_arn = _queue_arn(sqs, events_url)
    rules = [
        _rule(
            events, f"{names.prefix}-inbox-to-job-events", "New job ciphertext -> job_events (queued, wake scaler)",
            _object_created_pattern(names.inbox_bucket, INBOX_PREFIX), "job-events", events_arn,
        ),
        _rule(
            events, f"{names.prefix}-results-to-job-events", "New result / failure record -> job_events",
            _object_created_pattern(names.results_bucket, RESULTS_PREFIX), "job-events", events_arn,
        ),
    ]
    _allow_events(sqs, events_url, events_arn, rules)
    return str(events_url)


def create_fleet_group(autoscaling: Any, ec2: Any, names: ResourceNames, settings: StageSettings, desired: int) -> str:
    """The enclave fleet's Auto Scaling group (min 0) and its drain hook, as on AWS.

    moto creates and terminates instances at once and never honours the hook; the local fleet
    supervisor follows the group's desired capacity with worker processes and drains them itself.
    """
    template = f"{names.prefix}-enclave-host"
    ec2.create_launch_template(
        LaunchTemplateName=template,
        LaunchTemplateData={
            "ImageId": LOCAL_IMAGE_ID,
            "InstanceType": "m5.xlarge",
            "EnclaveOptions": {"Enabled": True},
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
        },
    )
    maximum = settings.fleet.max_instances
    if not 0 <= desired <= maximum:
        raise ProvisionError(f"{desired} workers requested, the {names.stage} fleet allows 0..{maximum}")
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=names.fleet_group,
        LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
        MinSize=0,
        MaxSize=maximum,
        DesiredCapacity=desired,
        AvailabilityZones=[f"{names.region}a"],
    )
    autoscaling.put_lifecycle_hook(
        LifecycleHookName=names.lifecycle_hook,
        AutoScalingGroupName=names.fleet_group,
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=settings.limits.job_timeout_s * 2,
        DefaultResult="CONTINUE",
    )
    return names.fleet_group


def create_jobs_table(dynamodb: Any, names: ResourceNames) -> str:
    """The jobs table exactly as `ccc_common.contracts.jobs_table` defines it (the schema CDK deploys
    and the job store queries), with TTL enabled."""
    dynamodb.create_table(**jobs_table.create_table_request(names.jobs_table))
    dynamodb.update_time_to_live(**jobs_table.time_to_live_request(names.jobs_table))
    return names.jobs_table


def create_data_key(store: KeyStore, names: ResourceNames, policy: dict, partition: str = "aws") -> tuple[str, str]:
    """The operator-run shared data key with the CCC key policy, and its alias. Returns (key id, key ARN)."""
    record = store.create_key(
        partition=partition,
        region=names.region,
        account=names.account,
        policy=json.dumps(policy),
        description=f"CCC {names.stage} data key: tenant inputs and results, released only to the attested enclave",
        tags={"project": "ccc", "stage": names.stage},
    )
    store.put_alias(Alias(names.key_alias, partition, names.region, names.account, record.key_id))
    return record.key_id, record.arn


def create_tenant_keys(
    store: KeyStore, names: ResourceNames, principals: PrincipalSet, pcrs: Mapping[int, bytes], partition: str = "aws"
) -> dict[str, str]:
    """One data key per tenant, in the tenant's account, with its own policy. Returns tenant -> key ARN."""
    arns: dict[str, str] = {}
    for tenant in sorted(principals.tenant_arns):
        policy = tenant_key_policy_for(tenant, partition, principals, pcrs)
        record = store.create_key(
            partition=partition,
            region=names.region,
            account=_account_of(principals.tenant_arns[tenant][0]),
            policy=json.dumps(policy),
            description=f"CCC {names.stage} data key of {tenant}: its inputs and results, released only to "
            "the enclave releases it approved",
            tags={"project": "ccc", "stage": names.stage, "ccc:tenant": tenant, "ccc:data-key": "tenant"},
        )
        arns[tenant] = record.arn
    return arns


def publish_measurement(s3: Any, names: ResourceNames, pcrs: Mapping[int, bytes]) -> None:
    """Record the expected enclave measurement in the artifacts bucket (as the EIF build does on AWS)."""
    body = json.dumps({"pcrs": {str(i): v.hex() for i, v in sorted(pcrs.items())}}, indent=2).encode()
    s3.put_object(Bucket=names.artifacts_bucket, Key="enclave/measurement.json", Body=body)


def provision(
    *,
    s3: Any,
    sqs: Any,
    dynamodb: Any,
    key_store: KeyStore,
    events: Any,
    autoscaling: Any,
    ec2: Any,
    names: ResourceNames,
    settings: StageSettings,
    principals: PrincipalSet,
    pcrs: Mapping[int, bytes],
    workers: int = 1,
    partition: str = "aws",
) -> ProvisionedResources:
    """Create every resource of the stage in the account the clients point at (keys: in `key_store`)."""
    if names.stage != settings.stage:
        raise ProvisionError(f"names are for stage {names.stage!r} but settings for {settings.stage!r}")
    policy = key_policy_for(names.account, partition, principals, pcrs)
    create_buckets(s3, names, settings)
    queue_url, queue_arn, dlq_url, dlq_arn = create_queues(sqs, names, settings)
    job_events_url = connect_events(s3, sqs, events, names, queue_url, queue_arn)
    table = create_jobs_table(dynamodb, names)
    group = create_fleet_group(autoscaling, ec2, names, settings, workers)
    key_id, key_arn = create_data_key(key_store, names, policy, partition)
    tenant_key_arns = create_tenant_keys(key_store, names, principals, pcrs, partition)
    publish_measurement(s3, names, pcrs)
    return ProvisionedResources(
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
        job_events_queue_url=job_events_url,
        fleet_group=group,
        jobs_table=table,
        key_id=key_id,
        key_arn=key_arn,
        key_alias=names.key_alias,
        tenant_key_arns=tenant_key_arns,
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
        elif name == "lambdas":
            continue  # the Lambdas never use a data key (no key policy names them, as on AWS)
        else:
            raise ProvisionError(f"local identity {name!r} has no role in the key policy")
    if not parents:
        raise ProvisionError("the local identities include no parent role")
    return PrincipalSet(tuple(admins), tuple(parents), tenants)

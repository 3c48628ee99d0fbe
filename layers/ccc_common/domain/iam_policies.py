"""The IAM identity policies of every principal of a stage, as plain policy documents.

Why one module: the CDK stack attaches these statements to its roles (tenant roles, the parent
instance role, the Lambda roles) and the local stack enforces the very same documents on its local
identities (`ccc.local.iam_gateway`). If each tier wrote its own grants, a tenant could reach
another tenant's objects on one tier and not on the other, and a test passing locally would say
nothing about AWS. Everything here is a pure function of resource ARNs: CDK passes its tokens
(`bucket.bucket_arn`, `table.table_arn`, ...), the local stack passes the concrete ARNs of
`resources_for_names`.

What the documents grant, and the principle behind each:

* a tenant: call the jobs API; write only `jobs/<tenant>/*` in the inbox; read and list only
  `results/<tenant>/*` (listing with `s3:prefix` under its own prefix: the client without a jobs
  API finds its result that way). No other listing, no delete, no table access: a tenant learns
  nothing about any other tenant's jobs, not even that they exist.
* the parent (enclave host): consume the work queue; read any inbox object and write any result
  (it serves every tenant, but sees only ciphertext); read the release it boots; the job lease
  items; complete its lifecycle hook; metrics in the project namespace. `s3:ListBucket` on the
  inbox and results buckets, because S3 answers a missing object with 404 only to callers that may
  list the bucket (403 otherwise), and the agent's "not uploaded yet" and "already finished"
  decisions rest on that 404.
* each Lambda: exactly the item, object and queue actions its handler makes.
* the local admin: everything (the operator's AdministratorAccess); it exists only locally.

Statements that refer to CDK-only resources (the storage key's `kms:ViaService` grants, log
groups, Session Manager) stay in `cdk/`: they have no local counterpart. KMS is never granted
here: the data key's key policy is the only grant on it (`ccc_common.domain.key_policy`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ccc_common.contracts.jobs_table import TENANT_INDEX
from ccc_common.domain import dead_letters
from ccc_common.domain.fleet_ports import SCALER_TAG_KEYS
from ccc_common.domain.naming import ResourceNames
from ccc_core.identity import FAILURE_SUFFIX, INBOX_PREFIX, RESULTS_PREFIX, validate_tenant

VERSION = "2012-10-17"
# Where a release (EIF + parent agent bundle) lives in the artifacts bucket.
RELEASE_PREFIX = "release/"
LAMBDA_FUNCTIONS = ("scaler", "job_events", "jobs_api", "dead_letters")

PARENT_QUEUE_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
)
# Job leases (ccc_common.aws.job_leases): a conditional UpdateItem claims and releases, GetItem reads.
PARENT_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem")
# What an SQS event source mapping does with the function's role.
QUEUE_CONSUMER_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
)

Statement = dict[str, Any]
PolicyDocument = dict[str, Any]


@dataclass(frozen=True)
class PolicyResources:
    """The ARNs the policies name. Strings: concrete ARNs locally, CDK tokens in the CDK stack."""

    partition: str
    region: str
    account: str
    stage: str
    inbox_bucket_arn: str
    results_bucket_arn: str
    artifacts_bucket_arn: str
    work_queue_arn: str
    dead_letter_queue_arn: str
    jobs_table_arn: str
    fleet_group_name: str
    metrics_namespace: str
    # arn:<partition>:execute-api:<region>:<account>:<rest api id>
    jobs_api_arn: str
    scaler_function_arn: str

    @property
    def fleet_group_arn(self) -> str:
        """The Auto Scaling group ARN by name (its middle part is a random id, hence the wildcard)."""
        return (
            f"arn:{self.partition}:autoscaling:{self.region}:{self.account}:autoScalingGroup:*:"
            f"autoScalingGroupName/{self.fleet_group_name}"
        )


def resources_for_names(names: ResourceNames, *, partition: str = "aws", api_id: str = "local") -> PolicyResources:
    """Concrete ARNs of a stage's named resources (every resource the policies name has a physical name)."""
    region, account = names.region, names.account
    return PolicyResources(
        partition=partition,
        region=region,
        account=account,
        stage=names.stage,
        inbox_bucket_arn=f"arn:{partition}:s3:::{names.inbox_bucket}",
        results_bucket_arn=f"arn:{partition}:s3:::{names.results_bucket}",
        artifacts_bucket_arn=f"arn:{partition}:s3:::{names.artifacts_bucket}",
        work_queue_arn=f"arn:{partition}:sqs:{region}:{account}:{names.work_queue}",
        dead_letter_queue_arn=f"arn:{partition}:sqs:{region}:{account}:{names.dead_letter_queue}",
        jobs_table_arn=f"arn:{partition}:dynamodb:{region}:{account}:table/{names.jobs_table}",
        fleet_group_name=names.fleet_group,
        metrics_namespace=names.metrics_namespace,
        jobs_api_arn=f"arn:{partition}:execute-api:{region}:{account}:{api_id}",
        scaler_function_arn=f"arn:{partition}:lambda:{region}:{account}:function:{names.function_name('scaler')}",
    )


def statement(
    sid: str, actions: Sequence[str], resources: Sequence[str], condition: Mapping[str, Any] | None = None
) -> Statement:
    """One Allow statement (lists always, so CDK and the local evaluator read one shape)."""
    result: Statement = {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": list(resources)}
    if condition:
        result["Condition"] = {op: dict(values) for op, values in condition.items()}
    return result


def document(statements: Sequence[Statement]) -> PolicyDocument:
    return {"Version": VERSION, "Statement": [dict(s) for s in statements]}


def objects(bucket_arn: str, prefix: str) -> str:
    return f"{bucket_arn}/{prefix}*"


# ----- tenants --------------------------------------------------------------------------------


def tenant_statements(tenant: str, r: PolicyResources) -> list[Statement]:
    """Call the jobs API, write its own inbox prefix, read its own results. Nothing else."""
    validate_tenant(tenant)
    api = r.jobs_api_arn
    return [
        statement(
            "InvokeJobsApi",
            ["execute-api:Invoke"],
            [f"{api}/{r.stage}/POST/jobs", f"{api}/{r.stage}/GET/jobs", f"{api}/{r.stage}/GET/jobs/*"],
        ),
        statement("UploadOwnInputs", ["s3:PutObject"], [objects(r.inbox_bucket_arn, f"{INBOX_PREFIX}{tenant}/")]),
        statement(
            "ReadOwnResults",
            ["s3:GetObject", "s3:GetObjectVersion"],
            [objects(r.results_bucket_arn, f"{RESULTS_PREFIX}{tenant}/")],
        ),
        # A client without the jobs API finds its result by listing its own results prefix, and only that.
        statement(
            "ListOwnResults",
            ["s3:ListBucket"],
            [r.results_bucket_arn],
            {"StringLike": {"s3:prefix": [f"{RESULTS_PREFIX}{tenant}/*"]}},
        ),
    ]


def tenant_policy(tenant: str, r: PolicyResources) -> PolicyDocument:
    return document(tenant_statements(tenant, r))


# ----- the parent instance role -----------------------------------------------------------------


def parent_statements(r: PolicyResources) -> list[Statement]:
    """What the host may do: ciphertext in, ciphertext out, its queue, its leases (see the module docstring)."""
    return [
        statement("ConsumeWorkQueue", PARENT_QUEUE_ACTIONS, [r.work_queue_arn]),
        statement("ReadInputs", ["s3:GetObject"], [objects(r.inbox_bucket_arn, INBOX_PREFIX)]),
        # HEAD of a result decides "already finished" (first result wins): GetObject covers HeadObject.
        statement(
            "WriteAndCheckResults", ["s3:PutObject", "s3:GetObject"], [objects(r.results_bucket_arn, RESULTS_PREFIX)]
        ),
        # Without it S3 answers a missing key with 403, and "not uploaded yet" / "not finished" look like errors.
        statement("MissingObjectsAre404", ["s3:ListBucket"], [r.inbox_bucket_arn, r.results_bucket_arn]),
        statement("ReadRelease", ["s3:GetObject"], [objects(r.artifacts_bucket_arn, RELEASE_PREFIX)]),
        statement("JobLeases", PARENT_TABLE_ACTIONS, [r.jobs_table_arn]),
        statement(
            "DrainHook",
            ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"],
            [r.fleet_group_arn],
        ),
        # PutMetricData has no resource-level permissions; the namespace is the limit.
        statement(
            "Metrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            {"StringEquals": {"cloudwatch:namespace": r.metrics_namespace}},
        ),
    ]


def parent_policy(r: PolicyResources) -> PolicyDocument:
    return document(parent_statements(r))


# ----- Lambdas ----------------------------------------------------------------------------------


def lambda_statements(function: str, r: PolicyResources) -> list[Statement]:
    """The data-plane grants of one Lambda role (its log group and storage-key grants are CDK's)."""
    table = [r.jobs_table_arn]
    if function == "scaler":
        return [
            statement("ReadBacklog", ["sqs:GetQueueAttributes"], [r.work_queue_arn]),
            statement("SizeFleet", ["autoscaling:SetDesiredCapacity"], [r.fleet_group_arn]),
            # The scaler is stateless: what it must remember between runs (when work was last seen)
            # is a tag on the group, and it may write those tag keys only.
            statement(
                "RememberFleetState",
                ["autoscaling:CreateOrUpdateTags"],
                [r.fleet_group_arn],
                {"ForAllValues:StringEquals": {"aws:TagKeys": list(SCALER_TAG_KEYS)}, "Null": {"aws:TagKeys": "false"}},
            ),
            # Describe* calls have no resource-level permissions in Auto Scaling.
            statement("DescribeFleet", ["autoscaling:DescribeAutoScalingGroups"], ["*"]),
        ]
    if function == "job_events":
        return [
            statement("JobRecords", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], table),
            statement("WakeScaler", ["lambda:InvokeFunction"], [r.scaler_function_arn]),
            statement(
                "ReadFailureRecords",
                ["s3:GetObject"],
                [f"{r.results_bucket_arn}/{RESULTS_PREFIX}*{FAILURE_SUFFIX}"],
            ),
        ]
    if function == "jobs_api":
        return [
            statement("JobRecords", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], table),
            statement("ListTenantJobs", ["dynamodb:Query"], [f"{r.jobs_table_arn}/index/{TENANT_INDEX}"]),
            # Presigned requests are authorised as their signer: the upload and the download URLs.
            statement("PresignUploads", ["s3:PutObject"], [objects(r.inbox_bucket_arn, INBOX_PREFIX)]),
            statement("PresignDownloads", ["s3:GetObject"], [objects(r.results_bucket_arn, RESULTS_PREFIX)]),
        ]
    if function == "dead_letters":
        return [
            statement("ConsumeDeadLetters", QUEUE_CONSUMER_ACTIONS, [r.dead_letter_queue_arn]),
            statement("FailJobs", ["dynamodb:GetItem", "dynamodb:UpdateItem"], table),
            statement(
                "ArchiveDeadLetters",
                ["s3:PutObject"],
                [objects(r.artifacts_bucket_arn, dead_letters.ARCHIVE_PREFIX)],
            ),
        ]
    raise ValueError(f"unknown Lambda function {function!r}; expected one of {LAMBDA_FUNCTIONS}")


def lambda_policy(function: str, r: PolicyResources) -> PolicyDocument:
    return document(lambda_statements(function, r))


# ----- the local admin --------------------------------------------------------------------------


def admin_policy() -> PolicyDocument:
    """The operator's AdministratorAccess (local only: on AWS the deployer brings their own)."""
    return document([statement("Administrator", ["*"], ["*"])])


__all__ = [
    "LAMBDA_FUNCTIONS",
    "PARENT_QUEUE_ACTIONS",
    "PARENT_TABLE_ACTIONS",
    "RELEASE_PREFIX",
    "PolicyDocument",
    "PolicyResources",
    "Statement",
    "admin_policy",
    "document",
    "lambda_policy",
    "lambda_statements",
    "parent_policy",
    "parent_statements",
    "resources_for_names",
    "tenant_policy",
    "tenant_statements",
]

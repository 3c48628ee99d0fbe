"""Every cdk-nag (AwsSolutions) finding this app accepts, with the reason: the ONE table.

Why a table: an acknowledgement is a security decision. Keeping them all here, each tied to a
construct path and one exact finding id, makes them reviewable in one place and impossible to
add silently elsewhere. Paths are relative to the stack. `{tenant}` expands to every tenant that
has a client role, `{stage}` and `{fleet_group}` to the stage's values. An entry whose construct
does not exist in a stage is skipped for that stage, and so is one whose `only_if` feature the
stack does not have (tests check that each entry applies somewhere, so stale entries cannot pile up).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


@dataclass(frozen=True)
class Ack:
    path: str  # construct path below the stack ("" = the stack itself)
    finding: str  # exact cdk-nag finding id, e.g. "AwsSolutions-IAM5[Resource::*]"
    reason: str
    only_if: str = ""  # a stack feature (see `stack_features`) the finding exists with; "" = always


# Features of a synthesised stack that decide whether a finding exists at all.
MIXED_INSTANCES = "mixed-instances"  # the group has a mixed instances policy (no warm pool)


_XRAY = (
    "X-Ray tracing (Tracing.ACTIVE) adds xray:PutTraceSegments/PutTelemetryRecords, which have no "
    "resource-level permissions; nothing else in this policy uses '*'."
)
_FLEET_ARN = (
    "IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup:*:"
    "autoScalingGroupName/{fleet_group}]"
)
_FLEET_REASON = (
    "An Auto Scaling group ARN has a random group id in the middle; the wildcard covers only that id, the "
    "group is pinned by name."
)

ACKNOWLEDGEMENTS: tuple[Ack, ...] = (
    # --- parent instance role ------------------------------------------------------------------
    Ack(
        "Identities/ParentInstanceRole/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
        "emf/logs/default:log-stream:*]",
        "The CloudWatch agent writes the parent's EMF metric documents to its fixed EMF log group "
        "(emf/logs/default), one stream per instance id, unknown at synth time; the wildcard covers only the "
        "streams of that one group (logs:CreateLogStream/PutLogEvents).",
    ),
    Ack(
        "Identities/ParentInstanceRole/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::*]",
        "cloudwatch:PutMetricData (conditioned on cloudwatch:namespace=CCC), the X-Ray write actions the "
        "CloudWatch agent uses to forward the host's OTLP traces (xray:PutTraceSegments, PutTelemetryRecords, "
        "GetSampling*) and the Session Manager channel actions (ssm:UpdateInstanceInformation, "
        "ssmmessages:*Channel, ec2messages:*) have no resource-level permissions. No KMS action is among them.",
    ),
    Ack(
        "Identities/ParentInstanceRole/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::<StorageInbox618003E1.Arn>/jobs/*]",
        "The host reads any job ciphertext under the inbox prefix jobs/ (job keys are only known at run time); "
        "reading yields ESDK ciphertext that only the attested enclave can decrypt.",
    ),
    Ack(
        "Identities/ParentInstanceRole/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::<StorageResultsB2A4FB2E.Arn>/results/*]",
        "The host writes results, attestation documents and failure records under results/ for any job; "
        "s3:PutObject only.",
    ),
    Ack(
        "Identities/ParentInstanceRole/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::<StorageArtifacts08431D1F.Arn>/release/*]",
        "The host fetches the EIF and agent bundle of a release under release/<id>/; read-only.",
    ),
    Ack("Identities/ParentInstanceRole/DefaultPolicy/Resource", "AwsSolutions-" + _FLEET_ARN, _FLEET_REASON),
    # --- tenant client roles -------------------------------------------------------------------
    Ack(
        "Identities/TenantRole-{tenant}/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::<StorageInbox618003E1.Arn>/jobs/{tenant}/*]",
        "A tenant uploads ciphertext for its own jobs, whose ids are random: only its own prefix jobs/<tenant>/.",
    ),
    Ack(
        "Identities/TenantRole-{tenant}/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::<StorageResultsB2A4FB2E.Arn>/results/{tenant}/*]",
        "A tenant downloads its own results only: the prefix results/<tenant>/.",
    ),
    Ack(
        "Identities/TenantRole-{tenant}/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
        "<OrchestrationJobsApi5A9DB6F1>/{stage}/GET/jobs/*]",
        "GET /jobs/{id}: the job id is a path parameter, so the execute-api ARN needs a wildcard for it.",
    ),
    # --- Lambdas -------------------------------------------------------------------------------
    Ack(
        "Orchestration/scaler-role/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::*]",
        _XRAY + " Also autoscaling:DescribeAutoScalingGroups, which has no resource-level permissions.",
    ),
    Ack("Orchestration/scaler-role/DefaultPolicy/Resource", "AwsSolutions-" + _FLEET_ARN, _FLEET_REASON),
    Ack("Orchestration/job_events-role/DefaultPolicy/Resource", "AwsSolutions-IAM5[Resource::*]", _XRAY),
    Ack("Orchestration/dead_letters-role/DefaultPolicy/Resource", "AwsSolutions-IAM5[Resource::*]", _XRAY),
    Ack("Orchestration/jobs_api-role/DefaultPolicy/Resource", "AwsSolutions-IAM5[Resource::*]", _XRAY),
    Ack(
        "Orchestration/jobs_api-role/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::<StorageInbox618003E1.Arn>/jobs/*]",
        "jobs_api presigns the upload URL of a new job (jobs/<tenant>/<random id>.ccc), so it may PutObject "
        "under jobs/; it cannot read anything.",
    ),
    Ack(
        "Orchestration/jobs_api-role/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::<StorageResultsB2A4FB2E.Arn>/results/*]",
        "jobs_api presigns the download of a finished job's result and attestation document "
        "(results/<tenant>/<job>.*) after checking the caller owns the job; read-only, ciphertext only.",
    ),
    Ack(
        "Orchestration/job_events-role/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::<StorageResultsB2A4FB2E.Arn>/results/*.failed.json]",
        "job_events reads only the parent's failure records (results/<tenant>/<job>.failed.json, metadata) "
        "to store the failure reason; it cannot read results themselves.",
    ),
    Ack(
        "Orchestration/dead_letters-role/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::<StorageArtifacts08431D1F.Arn>/dead-letters/*]",
        "dead_letters archives each dead-lettered message (S3 event metadata) under dead-letters/<date>/; "
        "write-only, and that prefix expires with the job records.",
    ),
    Ack(
        "Orchestration",
        "AwsSolutions-L1",
        "Lambdas run python3.13 (arm64) because the public Powertools v3 layer and our tested toolchain "
        "cover it; python3.14 will follow once its layer is published and tested.",
    ),
    # --- browser client hosting (only with -c web_hosting=true; cdk/web_hosting.py) -------------
    Ack(
        "Web/Cdn/Resource",
        "AwsSolutions-CFR1",
        "The page is static public code holding no data; tenants may work from anywhere, and every call it "
        "makes is SigV4-signed with the tenant's own credentials.",
    ),
    Ack(
        "Web/Cdn/Resource",
        "AwsSolutions-CFR2",
        "Only cached static files (GET/HEAD) are served; there is nothing for WAF to protect that caching and "
        "CloudFront's own protections do not, and WAF adds a fixed monthly cost.",
    ),
    Ack(
        "Web/Cdn/Resource",
        "AwsSolutions-CFR3",
        "Standard logging needs an ACL-enabled bucket, and the stack's log buckets enforce bucket-owner "
        "ownership (no ACLs); the requests carry no tenant data (the page's own files), the bucket's "
        "access is logged.",
    ),
    Ack(
        "Web/Cdn/Resource",
        "AwsSolutions-CFR4",
        "The default *.cloudfront.net certificate cannot be pinned to TLS 1.2; the distribution sets "
        "TLSv1.2_2021 for a custom domain with an ACM certificate (docs/web.md), which removes this finding.",
    ),
    # --- jobs API ------------------------------------------------------------------------------
    Ack(
        "Orchestration/JobsApi",
        "AwsSolutions-COG4",
        "The jobs API uses IAM (SigV4) authorisation on every method instead of Cognito: clients are IAM "
        "principals (tenant roles) because they need AWS credentials for KMS and S3 anyway.",
    ),
    Ack(
        "Orchestration/JobsApi/DeploymentStage.{stage}/Resource",
        "AwsSolutions-APIG3",
        "No WAF: every method requires SigV4 IAM auth, so unsigned traffic is rejected before any "
        "integration; stage throttling limits signed callers. WAF would add a fixed monthly cost.",
    ),
    Ack(
        "Orchestration/JobsApi/CloudWatchRole/Resource",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AmazonAPIGatewayPushToCloudWatchLogs]",
        "The account-level API Gateway logging role (needed for execution logs, APIG6) uses the AWS-managed "
        "service policy documented for exactly this purpose.",
    ),
    # --- fleet ---------------------------------------------------------------------------------
    Ack(
        "Fleet/Group/ASG",
        "AwsSolutions-EC26",
        "The rule cannot evaluate the mixed-instances launch template (intrinsics). The launch template's "
        "only block device is encrypted (tests/infra assert Encrypted=true).",
        only_if=MIXED_INSTANCES,
    ),
    Ack(
        "Fleet/Group/ASG",
        "AwsSolutions-AS3",
        "The fleet scales to zero and back many times a day by design; per-instance notifications would be "
        "noise. Scaling shows in the activity history and the dashboard; alarms cover backlog and DLQ.",
    ),
)


# The tenant's own stack (`CccTenant`, cdk/tenant_stack.py) with browser sign-in (cdk/tenant_sign_in.py):
# applied by `TenantSignIn.acknowledge_findings` on its construct, with the deployment's ARNs for
# `{inbox_arn}`, `{results_arn}`, `{jobs_api_arn}`, `{stage}` and `{tenant}` (the web user role's policy
# is the shared `tenant_policy`, whose resources are the service's, known only from the context).
TENANT_SIGN_IN_ACKNOWLEDGEMENTS: tuple[Ack, ...] = (
    Ack(
        "UserPool/Resource",
        "AwsSolutions-COG8",
        "The Plus feature plan (threat protection) is billed per monthly active user. The pool has no self "
        "sign-up (the tenant's admin creates every user), requires TOTP MFA and 14-character passwords, and "
        "its tokens only reach the tenant's own role; a tenant that wants adaptive authentication can switch "
        "the plan on without any other change.",
    ),
    Ack(
        "WebUserRole/Resource",
        "AwsSolutions-IAM5[Resource::{inbox_arn}/jobs/{tenant}/*]",
        "The shared tenant policy (iam_policies.tenant_policy, the CLI principal's): a tenant uploads "
        "ciphertext for its own jobs, whose ids are random: only its own prefix jobs/<tenant>/.",
    ),
    Ack(
        "WebUserRole/Resource",
        "AwsSolutions-IAM5[Resource::{results_arn}/results/{tenant}/*]",
        "The shared tenant policy (iam_policies.tenant_policy, the CLI principal's): a tenant downloads its "
        "own results only, the prefix results/<tenant>/.",
    ),
    Ack(
        "WebUserRole/Resource",
        "AwsSolutions-IAM5[Resource::{jobs_api_arn}/{stage}/GET/jobs/*]",
        "GET /jobs/{id}: the job id is a path parameter, so the execute-api ARN needs a wildcard for it; "
        "the service's jobs API answers only for jobs of the caller's tenant.",
    ),
)


def _find(stack: Stack, path: str) -> IConstruct | None:
    node: IConstruct = stack
    for part in filter(None, path.split("/")):
        child = node.node.try_find_child(part)
        if child is None:
            return None
        node = child
    return node


def expand(table: Iterable[Ack], *, tenants: Iterable[str], stage: str, fleet_group: str) -> list[Ack]:
    """Concrete entries: templates with `{tenant}` repeat per tenant; the others once."""
    concrete: list[Ack] = []
    for ack in table:
        values = {"stage": stage, "fleet_group": fleet_group}
        if "{tenant}" in ack.path or "{tenant}" in ack.finding:
            for tenant in sorted(tenants):
                concrete.append(
                    Ack(
                        ack.path.format(tenant=tenant, **values),
                        ack.finding.format(tenant=tenant, **values),
                        ack.reason,
                        ack.only_if,
                    )
                )
        else:
            concrete.append(Ack(ack.path.format(**values), ack.finding.format(**values), ack.reason, ack.only_if))
    return concrete


def apply_acknowledgements(
    stack: Stack,
    *,
    tenants: Iterable[str],
    stage: str,
    fleet_group: str,
    table: tuple[Ack, ...] = ACKNOWLEDGEMENTS,
    features: frozenset[str] = frozenset(),
) -> list[Ack]:
    """Acknowledge each finding on its construct; return the entries that applied."""
    applied = []
    for ack in expand(table, tenants=tenants, stage=stage, fleet_group=fleet_group):
        if not ack.reason.strip():
            raise ValueError(f"acknowledgement {ack.finding} at {ack.path!r} has no reason")
        if ack.only_if and ack.only_if not in features:
            continue
        target = _find(stack, ack.path)
        if target is None:
            continue
        Validations.of(target).acknowledge(Acknowledgment(id=ack.finding, reason=ack.reason))
        applied.append(ack)
    return applied
